"""rs.toml's ``[[rs.resources]]``: the RS's resources as a small table (``ace.coap.devices.ResourceSpec``).

    [[rs.resources]]
    path = "/temp"                        # required; not /authz-info; each path once
    methods = ["GET", "PUT", "POST"]      # default ["GET"]; of GET, PUT, POST (others: 4.05)
    value = "0"                           # the initial value (default "")
    answer = "{value} C"                  # what GET answers, {value} the current value (default "{value}")
    accept = "integer"                    # what PUT/POST store: "text" (non-empty, default) or "integer"

Without the table the RS serves the demo's /temp and /led. Every mistake is a ConfigError naming
the file, the entry, the key and what is allowed.
"""

from __future__ import annotations

from typing import Any

from ace.coap.devices import MAX_VALUE_BYTES, RESOURCE_METHODS, VALUE_KINDS, ResourceSpec
from ace.errors import ConfigError

RESOURCE_KEYS = frozenset({"path", "methods", "value", "answer", "accept"})
RESERVED_PATHS = ("/authz-info", "/.well-known/core", "/.well-known/edhoc")  # served by the RS itself


def resource_table(entries: Any, where: str) -> tuple[ResourceSpec, ...] | None:
    """The ``[[rs.resources]]`` entries, checked; None when rs.toml has none (the demo resources)."""
    if entries is None:
        return None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{where}: resources must be one or more [[rs.resources]] tables")
    specs: list[ResourceSpec] = []
    for i, entry in enumerate(entries):
        spec = _entry(entry, f"{where}: [[rs.resources]] #{i + 1}")
        if any(s.path == spec.path for s in specs):
            raise ConfigError(f"{where}: [[rs.resources]] #{i + 1}: path {spec.path!r} is declared twice")
        specs.append(spec)
    return tuple(specs)


def _entry(entry: dict[str, Any], where: str) -> ResourceSpec:
    unknown = sorted(set(entry) - RESOURCE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(RESOURCE_KEYS))}")
    path = _text(entry, "path", where, None)
    if path is None or not path.startswith("/") or path == "/" or "//" in path or path.endswith("/"):
        raise ConfigError(f"{where}: path must be like \"/temp\" (a leading /, no empty segment), not {path!r}")
    if path in RESERVED_PATHS:
        raise ConfigError(f"{where}: path {path!r} is the RS's own; allowed: any other")
    methods = entry.get("methods", ["GET"])
    if (not isinstance(methods, list) or not methods or len(set(methods)) != len(methods)
            or not all(m in RESOURCE_METHODS for m in methods)):
        raise ConfigError(f"{where}: methods must be a non-empty list of distinct {', '.join(RESOURCE_METHODS)}, "
                          f"not {methods!r}")
    accept = _text(entry, "accept", where, VALUE_KINDS[0])
    if accept not in VALUE_KINDS:
        raise ConfigError(f"{where}: accept must be one of {', '.join(repr(k) for k in VALUE_KINDS)}, not {accept!r}")
    spec = ResourceSpec(path=path, methods=tuple(methods), value=_text(entry, "value", where, ""),
                        answer=_text(entry, "answer", where, "{value}"), accept=accept)
    if len(spec.value.encode()) > MAX_VALUE_BYTES or (spec.value and not spec.valid(spec.value)):
        raise ConfigError(f"{where}: value {spec.value!r} is not what accept = {accept!r} stores "
                          f"(at most {MAX_VALUE_BYTES} bytes)")
    return spec


def _text(entry: dict[str, Any], key: str, where: str, default: str | None) -> Any:
    value = entry.get(key, default)
    if value is not default and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, not {value!r}")
    return value
