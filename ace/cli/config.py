"""TOML configuration of the three roles, and the OSCORE context files they point to.

Paths in a config file are relative to that file. Secrets never sit in a config file:
keys are COSE_Key files and pre-established OSCORE contexts are small TOML files, both
mode 0600 (refused when readable by others). Every problem is a ``ConfigError`` naming
the file and the key.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ace.cbor.labels import AceProfile
from ace.cbor.scope import method_bit
from ace.cli.rs_resources import resource_table
from ace.coap.devices import ResourceSpec
from ace.errors import ConfigError
from ace.problem import DEFAULT_CODES, WorkflowCodes, workflow_codes
from ace.profiles import NUMBERS
from ace.profiles.edhoc_presets import DEFAULT_PRESET, PRESETS
from ace.replies import ERROR_FORMATS
from ace.rs.store import DEFAULT_MAX_BYTES
from ace.tokens.defaults import TOKEN_TAGS
from ace.tokens.oscore_params import OscoreContextParams

if TYPE_CHECKING:
    from ace.store.base import DtlsPsk

DEFAULT_AS_PORT = 5689  # the ports of ace-java's interop deployment (INTEROP.md)
DEFAULT_RS_PORT = 5690
HKDF_NAMES = ("sha256", "sha384", "sha512")  # an OSCORE context file's hkdf (RFC 8613 §3.2.1: SHA-256 the default)


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc


def _get(table: dict[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}: missing {key}")
        return default
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {key} must be {kind.__name__}")
    return value


def _keys(cls: type) -> frozenset[str]:
    """The keys a config table may hold: its dataclass's fields (``path`` is where it was read)."""
    return frozenset(f.name for f in fields(cls)) - {"path"}


def _section(data: dict[str, Any], name: str, path: Path, allowed: frozenset[str]) -> dict[str, Any]:
    """The file's one table, with no key it does not know (a typo must not be a silent default)."""
    _known(data, frozenset({name}), str(path), "table")
    table = data.get(name)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: missing [{name}] table")
    _known(table, allowed, f"{path} [{name}]")
    return table


def _known(table: dict[str, Any], allowed: frozenset[str], where: str, what: str = "key") -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown {what} {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


def _hex(value: str, where: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ConfigError(f"{where}: not hex") from None


# -- OSCORE context files ----------------------------------------------------------------

def _check_private(path: Path, holds: str) -> None:
    """A secret file others can read, or its group write, is refused (as key files: 0600 or 0640)."""
    from ace.cli.keyfiles import SECRET_MODES, secret_mode_refused

    mode = path.stat().st_mode & 0o777 if path.exists() else 0
    if secret_mode_refused(mode):
        raise ConfigError(f"{path}: holds {holds} but has mode {mode:o}; {SECRET_MODES}")


OSCORE_FILE_KEYS = frozenset({"master_secret", "master_salt", "sender_id", "recipient_id", "id_context", "alg",
                              "hkdf"})


def load_oscore_secret(path: Path) -> OscoreContextParams:
    _check_private(path, "a master secret")
    t = _load(path)
    w = str(path)
    _known(t, OSCORE_FILE_KEYS, w)
    id_context = _get(t, "id_context", str, w, None)
    return OscoreContextParams(
        master_secret=_hex(_get(t, "master_secret", str, w), f"{w}: master_secret"),
        master_salt=_hex(_get(t, "master_salt", str, w, ""), f"{w}: master_salt"),
        sender_id=_hex(_get(t, "sender_id", str, w), f"{w}: sender_id"),
        recipient_id=_hex(_get(t, "recipient_id", str, w), f"{w}: recipient_id"),
        id_context=None if id_context is None else _hex(id_context, f"{w}: id_context"),
        alg=_get(t, "alg", int, w, 10), hkdf=_choice(t, "hkdf", HKDF_NAMES, w),
    )


def write_oscore_secret(path: Path, secret: OscoreContextParams) -> None:
    lines = [
        "# A pre-established OSCORE context (RFC 8613 §3.1). Secret: keep mode 0600.",
        f'master_secret = "{secret.master_secret.hex()}"',
        f'master_salt = "{secret.master_salt.hex()}"',
        f'sender_id = "{secret.sender_id.hex()}"',
        f'recipient_id = "{secret.recipient_id.hex()}"',
    ]
    if secret.id_context is not None:
        lines.append(f'id_context = "{secret.id_context.hex()}"')
    lines += [f"alg = {secret.alg}", f'hkdf = "{secret.hkdf}"']
    write_private(path, "\n".join(lines) + "\n")


def load_psk(path: Path) -> DtlsPsk:
    """A DTLS pre-shared key file: ``identity`` and ``key`` as hex (RFC 9202 §3.1)."""
    from ace.store.base import DtlsPsk  # the DTLS profile's: an OSCORE-only RS never loads one

    _check_private(path, "a key")
    t = _load(path)
    w = str(path)
    _known(t, frozenset({"identity", "key"}), w)
    return DtlsPsk(identity=_hex(_get(t, "identity", str, w), f"{w}: identity"),
                   key=_hex(_get(t, "key", str, w), f"{w}: key"))


def write_psk(path: Path, psk: DtlsPsk) -> None:
    write_private(path, "# A DTLS pre-shared key (RFC 4279). Secret: keep mode 0600.\n"
                        f'identity = "{psk.identity.hex()}"\nkey = "{psk.key.hex()}"\n')


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, 0o600)
        f.write(text)


# -- role configs ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RsFileConfig:
    path: Path
    audience: str
    bind: str
    port: int
    as_uri: str
    token_keys: tuple[Path, ...]
    scopes: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    hint_scope: str | None = None
    max_tokens: int = 64
    profiles: tuple[int, ...] = (2,)
    edhoc_key: Path | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    cnonce: bool = False
    state: Path | None = None
    rs_id: str | None = None
    exi_unit: float = 1.0
    as_context: Path | None = None  # our OSCORE context with the AS (RsRecord.oscore there): the TRL
    observe_trl: bool = False  # observe the AS's Token Revocation List (RFC 9770)
    trl_path: str = "/revoke/trl"
    introspect: bool = False  # introspect every token at the AS (reference tokens always are)
    introspect_path: str = "/introspect"
    token_tags: str = "none"  # the tags the AS's tokens carry (their RFC 9770 hash is of that form)
    reference_len: int = 16  # bytes of the AS's reference tokens (0: any length from 8 to 64)
    reference_tokens: bool = True  # the AS may issue reference tokens (with as_context); false: it never does
    resources: tuple[ResourceSpec, ...] | None = None  # [[rs.resources]]; None: the demo's /temp and /led
    edhoc_preset: str = "draft-11"  # the EDHOC profile's code points (ace.profiles.edhoc_presets)
    edhoc_message_4: bool = False  # the EDHOC responder sends message_4 (edhoc_info message_4)
    error_format: str = "ace"  # "problem-details": every error with a code as RFC 9290 problem details (WF §6)
    workflow_codes: WorkflowCodes = DEFAULT_CODES  # [rs.workflow_codes]: the WF error code numbers (TBD at IANA)


def _scopes(table: Any, where: str) -> dict[str, list[tuple[str, int]]]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [rs.scopes] must map scope-tokens to [[path, [methods]], ...]")
    out: dict[str, list[tuple[str, int]]] = {}
    for token, entries in table.items():
        try:
            out[token] = [(str(p), sum(method_bit(m) for m in methods)) for p, methods in entries]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: scope {token!r}: {exc}") from exc
    return out


RS_KEYS = _keys(RsFileConfig)
EDHOC_PRESETS = (DEFAULT_PRESET, *(name for name in PRESETS if name != DEFAULT_PRESET))
# exi in seconds (RFC 9200 §5.10.3) or in milliseconds (ace-java); one spelling each, as
# `ace policy add-rs --time-unit` spells them: anything else ("msec", "milliseconds") is an error
EXI_UNITS = {"s": 1.0, "ms": 0.001}


def load_rs(path: Path) -> RsFileConfig:
    path = path.resolve()
    data = _load(path)
    t = _section(data, "rs", path, RS_KEYS)
    w = f"{path} [rs]"
    keys = _get(t, "token_keys", list, w)
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ConfigError(f"{w}: token_keys must be a non-empty list of key files")
    return RsFileConfig(
        path, _get(t, "audience", str, w), _get(t, "bind", str, w, "::1"), _get(t, "port", int, w, DEFAULT_RS_PORT),
        _get(t, "as_uri", str, w), tuple(path.parent / k for k in keys), _scopes(t.get("scopes", {}), w),
        _get(t, "hint_scope", str, w, None), _get(t, "max_tokens", int, w, 64),
        _profiles(_get(t, "profiles", list, w, ["coap_oscore"]), w),
        _file(t, "edhoc_key", path, w),
        _get(t, "max_bytes", int, w, DEFAULT_MAX_BYTES), _get(t, "cnonce", bool, w, False),
        path.parent / _get(t, "state", str, w, "rs-state.json"), _get(t, "rs_id", str, w, None),
        EXI_UNITS[_choice(t, "exi_unit", tuple(EXI_UNITS), w)],
        as_context=_file(t, "as_context", path, w),
        observe_trl=_get(t, "observe_trl", bool, w, False), trl_path=_get(t, "trl_path", str, w, "/revoke/trl"),
        introspect=_get(t, "introspect", bool, w, False),
        introspect_path=_get(t, "introspect_path", str, w, "/introspect"),
        token_tags=_choice(t, "token_tags", TOKEN_TAGS, w), reference_len=_get(t, "reference_len", int, w, 16),
        reference_tokens=_get(t, "reference_tokens", bool, w, True),
        resources=resource_table(t.get("resources"), w, path.parent),
        edhoc_preset=_choice(t, "edhoc_preset", EDHOC_PRESETS, w),
        edhoc_message_4=_get(t, "edhoc_message_4", bool, w, False),
        **_error_form(t, w),
    )


def _error_form(t: dict[str, Any], where: str) -> dict[str, Any]:
    """``error_format`` and ``workflow_codes`` of an [as] or [rs] table."""
    return {"error_format": _choice(t, "error_format", ERROR_FORMATS, where),
            "workflow_codes": workflow_codes(t.get("workflow_codes", {}), where)}


def _file(t: dict[str, Any], key: str, path: Path, where: str) -> Path | None:
    """An optional file name, relative to the config file."""
    name: str | None = _get(t, key, str, where, None)
    return None if name is None else path.parent / name


def _choice(t: dict[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str:
    """An enum value (the first allowed one is the default); anything else is an error naming all."""
    value: str = _get(t, key, str, where, allowed[0])
    if value not in allowed:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}")
    return value


PROFILE_NAMES = {p.name.lower(): int(p) for p in AceProfile}  # as the config files spell them
SHORT_PROFILES = dict(NUMBERS)  # as --profile spells them
PROFILE_ALIASES = {**PROFILE_NAMES, **SHORT_PROFILES}  # either spelling, wherever profiles are named


def profile_choices() -> str:
    return f"{', '.join(sorted(PROFILE_NAMES))} (or {', '.join(sorted(SHORT_PROFILES))})"


def _profiles(names: list[Any], where: str, key: str = "profiles") -> tuple[int, ...]:
    bad = [n for n in names if not isinstance(n, str) or n not in PROFILE_ALIASES]
    if bad or not names:
        raise ConfigError(f"{where}: {key}: unknown profile {bad[0] if bad else None!r}; "
                          f"allowed: {profile_choices()}")
    return tuple(PROFILE_ALIASES[n] for n in names)


# the AS's and the client's file configs live in their own modules (ace.cli.config_as, config_client: import
# them from there), still found here when first named: `ace rs` does not build their classes (a dataclass
# costs about a millisecond of start)
_ELSEWHERE = {"AS_KEYS": "config_as", "AsFileConfig": "config_as", "load_as": "config_as",
              "CLIENT_KEYS": "config_client", "ClientFileConfig": "config_client", "load_client": "config_client"}


def __getattr__(name: str) -> Any:
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"ace.cli.{module}"), name)
