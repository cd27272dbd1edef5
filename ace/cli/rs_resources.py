"""rs.toml's ``[[rs.resources]]``: the RS's resources as a small table (``ace.coap.devices.ResourceSpec``).

    [[rs.resources]]
    path = "/temp"                        # required; not /authz-info; each path once
    methods = ["GET", "PUT", "POST"]      # default ["GET"]; of GET, PUT, POST (others: 4.05)
    content_format = 0                    # of GET's answers (default text/plain; a handler's own)
    # one kind: a value (the default) ...
    value = "0"                           # the initial value (default "")
    answer = "{value} C"                  # what GET answers, {value} the current value (default "{value}")
    accept = "integer"                    # what PUT/POST store: "text" (non-empty, default) or "integer"
    # ... or a file (relative to rs.toml; it must exist: a regular, sysfs or procfs file, or a
    # character device such as /dev/i2c-1, read as a stream of at most max_bytes) ...
    file = "/sys/class/thermal/thermal_zone0/temp"
    max_bytes = 16384                     # the most GET reads and PUT writes (1..65536)
    poll = 1.0                            # seconds between reads while observed (0.1..3600)
    # ... or a Python handler (methods: any of GET, POST, PUT, DELETE, FETCH, PATCH, iPATCH)
    handler = "mymodule:handle"           # an async (request, binding) -> response, or an aiocoap Resource

Without the table the RS serves the demo's /temp and /led. Every mistake is a ConfigError naming
the file, the entry, the key and what is allowed.
"""

from __future__ import annotations

import stat
from dataclasses import fields
from pathlib import Path
from typing import Any

from ace.coap.devices import HANDLER_METHODS, MAX_VALUE_BYTES, RESOURCE_METHODS, VALUE_KINDS, ResourceSpec
from ace.errors import ConfigError

RESOURCE_KEYS = frozenset(f.name for f in fields(ResourceSpec))
KIND_KEYS = {"value": frozenset({"value", "answer", "accept"}),
             "file": frozenset({"file", "accept", "max_bytes", "poll"}),
             "handler": frozenset({"handler"})}  # what each kind takes beyond path, methods, content_format
MAX_FILE_BYTES = 65536  # a file resource's bound at most (Block2 serves it in blocks)
POLL_RANGE = (0.1, 3600.0)  # seconds between reads of an observed file
RESERVED_PATHS = ("/authz-info", "/.well-known/core", "/.well-known/edhoc")  # served by the RS itself


def resource_table(entries: Any, where: str, base: Path | None = None) -> tuple[ResourceSpec, ...] | None:
    """The ``[[rs.resources]]`` entries, checked; None when rs.toml has none (the demo resources).
    A relative ``file`` is relative to ``base`` (rs.toml's directory)."""
    if entries is None:
        return None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{where}: resources must be one or more [[rs.resources]] tables")
    specs: list[ResourceSpec] = []
    for i, entry in enumerate(entries):
        spec = _entry(entry, f"{where}: [[rs.resources]] #{i + 1}", base)
        if any(s.path == spec.path for s in specs):
            raise ConfigError(f"{where}: [[rs.resources]] #{i + 1}: path {spec.path!r} is declared twice")
        specs.append(spec)
    return tuple(specs)


def _entry(entry: dict[str, Any], where: str, base: Path | None) -> ResourceSpec:
    unknown = sorted(set(entry) - RESOURCE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(RESOURCE_KEYS))}")
    kind = _kind(entry, where)
    path = _text(entry, "path", where, None)
    if path is None or not path.startswith("/") or path == "/" or "//" in path or path.endswith("/"):
        raise ConfigError(f"{where}: path must be like \"/temp\" (a leading /, no empty segment), not {path!r}")
    if path in RESERVED_PATHS:
        raise ConfigError(f"{where}: path {path!r} is the RS's own; allowed: any other")
    allowed = HANDLER_METHODS if kind == "handler" else RESOURCE_METHODS
    methods = entry.get("methods", ["GET"])
    if (not isinstance(methods, list) or not methods or len(set(methods)) != len(methods)
            or not all(m in allowed for m in methods)):
        raise ConfigError(f"{where}: methods must be a non-empty list of distinct {', '.join(allowed)}, "
                          f"not {methods!r}")
    accept = _text(entry, "accept", where, VALUE_KINDS[0])
    if accept not in VALUE_KINDS:
        raise ConfigError(f"{where}: accept must be one of {', '.join(repr(k) for k in VALUE_KINDS)}, not {accept!r}")
    spec = ResourceSpec(path=path, methods=tuple(methods), value=_text(entry, "value", where, ""),
                        answer=_text(entry, "answer", where, "{value}"), accept=accept,
                        content_format=_number(entry, "content_format", where, None, (0, 65535), int),
                        file=_file(entry, where, base), handler=_handler(entry, where),
                        max_bytes=_number(entry, "max_bytes", where, 16384, (1, MAX_FILE_BYTES), int),
                        poll=_number(entry, "poll", where, 1.0, POLL_RANGE, (int, float)))
    if len(spec.value.encode()) > MAX_VALUE_BYTES or (spec.value and not spec.valid(spec.value)):
        raise ConfigError(f"{where}: value {spec.value!r} is not what accept = {accept!r} stores "
                          f"(at most {MAX_VALUE_BYTES} bytes)")
    return spec


def _kind(entry: dict[str, Any], where: str) -> str:
    """value (the default), file or handler: one kind per entry, with only its own keys."""
    kinds = [k for k in ("file", "handler") if k in entry]
    if len(kinds) > 1:
        raise ConfigError(f"{where}: file and handler are two kinds of resource; give one")
    kind = kinds[0] if kinds else "value"
    common = RESOURCE_KEYS - frozenset().union(*KIND_KEYS.values())
    stray = sorted(set(entry) - common - KIND_KEYS[kind])
    if stray:
        raise ConfigError(f"{where}: {stray[0]} does not go with a {kind} resource; "
                          f"it takes {', '.join(sorted(KIND_KEYS[kind]))}")
    return kind


def _number(entry: dict[str, Any], key: str, where: str, default: Any, bounds: tuple[float, float],
            kind: type | tuple[type, ...]) -> Any:
    value: Any = entry.get(key, default)
    if value is default:
        return value
    number = isinstance(value, kind) and isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not bounds[0] <= value <= bounds[1]:
        raise ConfigError(f"{where}: {key} must be a number from {bounds[0]:g} to {bounds[1]:g}, not {value!r}")
    return value


def _file(entry: dict[str, Any], where: str, base: Path | None) -> str | None:
    name = _text(entry, "file", where, None)
    if name is None:
        return None
    path = Path(name) if base is None else base / name
    try:
        mode = path.stat().st_mode
    except OSError:  # a typo must not be a resource that answers 5.00 forever
        raise ConfigError(f"{where}: file {str(path)!r} is not an existing file") from None
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):  # sysfs and procfs attributes are regular files
        raise ConfigError(f"{where}: file {str(path)!r} is a {_kind_of(mode)}; allowed: a regular file "
                          "(sysfs and procfs attributes too) or a character device")
    return str(path)


def _kind_of(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "directory"), (stat.S_ISSOCK, "socket"), (stat.S_ISFIFO, "FIFO"),
             (stat.S_ISBLK, "block device"))
    return next((name for test, name in kinds if test(mode)), "special file")


def _handler(entry: dict[str, Any], where: str) -> str | None:
    name: str | None = _text(entry, "handler", where, None)
    if name is not None:
        module, colon, attr = name.partition(":")
        if not (colon and all(p.isidentifier() for p in module.split(".") + attr.split("."))):
            raise ConfigError(f"{where}: handler must be \"module:attr\", not {name!r}")
    return name  # imported when the RS is built (ace.coap.resources.handler_of)


def _text(entry: dict[str, Any], key: str, where: str, default: str | None) -> Any:
    value = entry.get(key, default)
    if value is not default and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, not {value!r}")
    return value
