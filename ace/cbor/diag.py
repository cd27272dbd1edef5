"""CBOR extended diagnostic notation (RFC 8949 §8, RFC 8610 App. G) for people to read.

``diag(value)`` renders a decoded item; ``labels`` adds ``/ name /`` comments to the keys
of the outermost map (as the RFC figures do). Byte strings that hold a CBOR item can be
shown as ``<< ... >>`` via ``nested``. Secrets are the caller's business: pass redacted values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any

import cbor2

Namer = Callable[[Any], str | None]


def label_namer(enum: type[IntEnum] | None) -> Namer | None:
    """``/ name /`` comments from an IntEnum of labels (unknown labels get none)."""
    if enum is None:
        return None

    def name(label: Any) -> str | None:
        if not isinstance(label, int) or isinstance(label, bool):
            return None
        try:
            return enum(label).name.lower()
        except ValueError:
            return None
    return name


def diag(value: Any, *, labels: Namer | None = None, indent: int = 0, step: int = 2) -> str:
    """Render ``value``; maps and arrays span lines, one member a line."""
    pad, inner = " " * indent, " " * (indent + step)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        rows = []
        for k, v in value.items():
            name = labels(k) if labels is not None else None
            comment = f" / {name} /" if name else ""
            rows.append(f"{inner}{diag(k)}{comment}: {diag(v, indent=indent + step, step=step)}")
        return "{\n" + ",\n".join(rows) + f"\n{pad}}}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = [diag(v, indent=indent + step, step=step) for v in value]
        if sum(len(i) for i in items) < 60 and not any("\n" in i for i in items):
            return "[" + ", ".join(items) + "]"
        return "[\n" + ",\n".join(inner + i for i in items) + f"\n{pad}]"
    if isinstance(value, cbor2.CBORTag):
        return f"{value.tag}({diag(value.value, labels=labels, indent=indent, step=step)})"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if value is cbor2.undefined:
        return "undefined"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, bytes):
        return f"h'{value.hex()}'"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, cbor2.CBORSimpleValue):
        return f"simple({value.value})"
    return repr(value)
