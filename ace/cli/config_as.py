"""``as.toml``: the AS's file config (``ace as``), read and checked as ``ace.cli.config`` reads the others."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ace.cli.config import DEFAULT_AS_PORT, _error_form, _get, _keys, _load, _section
from ace.errors import ConfigError
from ace.problem import DEFAULT_CODES, WorkflowCodes


@dataclass(frozen=True, slots=True)
class AsFileConfig:
    path: Path
    bind: str
    port: int
    store: Path
    issuer: str | None
    include_iat: bool
    salt_len: int
    dtls: bool = False
    exi_audiences: tuple[str, ...] = ()
    reference_audiences: tuple[str, ...] = ()  # RSs that get reference tokens (RFC 9200 §5.9)
    max_live_tokens: int = 256  # live tokens one client may hold per audience (more are refused)
    dtls_port: int | None = None  # with dtls: the coaps port; None: port + 1 (aiocoap's layout)
    error_format: str = "ace"  # "problem-details": every error with a code as RFC 9290 problem details (WF §6)
    workflow_codes: WorkflowCodes = DEFAULT_CODES  # [as.workflow_codes]: the WF error code numbers (TBD at IANA)


AS_KEYS = _keys(AsFileConfig)


def load_as(path: Path) -> AsFileConfig:
    path = path.resolve()
    t = _section(_load(path), "as", path, AS_KEYS)
    w = f"{path} [as]"
    issuer = _get(t, "issuer", str, w, "") or None
    max_live = _get(t, "max_live_tokens", int, w, 256)
    if max_live < 1:
        raise ConfigError(f"{w}: max_live_tokens must be at least 1")
    port = _get(t, "port", int, w, DEFAULT_AS_PORT)
    dtls_port = _get(t, "dtls_port", int, w, 0) or None
    if dtls_port is not None and not (1 <= dtls_port <= 65535 and dtls_port != port):
        raise ConfigError(f"{w}: dtls_port must be a UDP port (1..65535) other than port")
    return AsFileConfig(path, _get(t, "bind", str, w, "::1"), port,
                        path.parent / _get(t, "store", str, w, "as.db"), issuer,
                        _get(t, "include_iat", bool, w, True), _get(t, "salt_len", int, w, 0),
                        _get(t, "dtls", bool, w, False), tuple(_get(t, "exi_audiences", list, w, [])),
                        _audiences(_get(t, "reference_audiences", list, w, []), f"{w}: reference_audiences"),
                        max_live, dtls_port, **_error_form(t, w))


def _audiences(values: list[Any], where: str) -> tuple[str, ...]:
    if not all(isinstance(v, str) and v for v in values):
        raise ConfigError(f"{where} must be a list of audiences")
    return tuple(values)
