"""``client.toml``: the client's file config (``ace client``), read and checked as ``ace.cli.config`` reads the
others."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ace.cli.config import _choice, _file, _get, _keys, _load, _profiles, _section
from ace.errors import ConfigError
from ace.profiles.edhoc_presets import DEFAULT_PRESET, PRESETS


@dataclass(frozen=True, slots=True)
class ClientFileConfig:
    path: Path
    client_id: str | None
    as_uri: str
    as_context: Path
    state: Path
    audience: str | None
    scope: str | None
    profile: int | None = None
    as_psk: Path | None = None
    edhoc_key: Path | None = None
    observe_trl: bool = False  # observe the AS's Token Revocation List (RFC 9770) while running
    trl_path: str = "/revoke/trl"
    audiences: dict[str, str] = field(default_factory=dict)  # [client.audiences]: RS origin -> audience
    trust_first_hints: bool = True  # an RS origin with no audience configured: pin its first hints' audience
    edhoc_preset: str = DEFAULT_PRESET  # EDHOC profile code points (ace.profiles.edhoc_presets)
    edhoc_reverse: bool = False  # EDHOC: the reverse message flow (EP §4.4), the token in EAD_4
    edhoc_rs_cred_by_value: bool = False  # EDHOC: ask for ID_CRED_R by value (EAD_1 Credential By Value, EP §4.14)
    token_upload: int | None = None  # WF §3.1: ask the AS to upload the token to the RS (0, 1 or 2)


def _origin_audiences(table: Any, where: str) -> dict[str, str]:
    """``[client.audiences]``: ``"coap://host:port" = "audience"`` (RFC 9200 §6.9: provisioned audiences)."""
    if not isinstance(table, dict) or not all(isinstance(v, str) and v for v in table.values()):
        raise ConfigError(f"{where}: [client.audiences] must map RS origins to audience strings")
    from ace.client.pins import normalize_origin  # the client's: ``ace rs`` loads no client code

    out: dict[str, str] = {}
    for uri, audience in table.items():
        parts = urlsplit(uri)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(f"{where}: [client.audiences]: {uri!r} is not an origin (scheme://host:port)")
        try:
            out[normalize_origin(uri)] = audience
        except ValueError as exc:
            raise ConfigError(f"{where}: [client.audiences]: {exc}") from None
    return out


def _token_upload(t: dict[str, Any], where: str) -> int | None:
    """``token_upload``: absent, or what the token response carries after an upload (WF §3.1)."""
    value: int | None = _get(t, "token_upload", int, where, None)
    if value is not None and value not in (0, 1, 2):
        raise ConfigError(f"{where}: token_upload must be 0 (nothing back), 1 (the token hash) or 2 (the token)")
    return value


CLIENT_KEYS = _keys(ClientFileConfig)


def load_client(path: Path) -> ClientFileConfig:
    path = path.resolve()
    t = _section(_load(path), "client", path, CLIENT_KEYS)
    w = f"{path} [client]"
    return ClientFileConfig(
        path, _get(t, "client_id", str, w, None), _get(t, "as_uri", str, w),
        path.parent / _get(t, "as_context", str, w), path.parent / _get(t, "state", str, w, "client-state.json"),
        _get(t, "audience", str, w, None), _get(t, "scope", str, w, None),
        _profiles([t["profile"]], w, "profile")[0] if "profile" in t else None,
        _file(t, "as_psk", path, w), _file(t, "edhoc_key", path, w),
        observe_trl=_get(t, "observe_trl", bool, w, False), trl_path=_get(t, "trl_path", str, w, "/revoke/trl"),
        audiences=_origin_audiences(t.get("audiences", {}), w),
        trust_first_hints=_get(t, "trust_first_hints", bool, w, True),
        edhoc_preset=_choice(t, "edhoc_preset", (DEFAULT_PRESET, *sorted(set(PRESETS) - {DEFAULT_PRESET})), w),
        edhoc_reverse=_get(t, "edhoc_reverse", bool, w, False),
        edhoc_rs_cred_by_value=_get(t, "edhoc_rs_cred_by_value", bool, w, False),
        token_upload=_token_upload(t, w),
    )
