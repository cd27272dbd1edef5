"""Scopes: OAuth text scopes (RFC 6749 §3.3) and AIF (RFC 9237) in its REST data model.

A text scope is a set of space-separated scope-tokens whose meaning the RS defines; to
decide a request it is mapped to AIF through a ``ScopeMeaning`` table. An AIF scope is
``[* [path, permissions]]`` with ``path`` the URI local-part ("/s/temp") and
``permissions`` a bit set of CoAP method codes (RFC 9237 §3: bit N-1 for method code N;
the "dynamic" bits 32+ concern resources a POST creates and never grant the path itself).
Both kinds know ``allows(path, method)`` and ``intersect(other)`` (how the AS narrows a
request to the Resource Owner's grants).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ace.cbor import codec
from ace.errors import DecodeError, InvalidScope

METHODS = {"GET": 1, "POST": 2, "PUT": 3, "DELETE": 4, "FETCH": 5, "PATCH": 6, "IPATCH": 7}
MAX_PERMS = (1 << 64) - 1
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token


def method_bit(method: str | int) -> int:
    """The AIF permission bit of a CoAP method given as name or code (RFC 9237 §3)."""
    code = METHODS.get(method.upper()) if isinstance(method, str) else method
    if code is None or not 1 <= code <= 31:
        raise ValueError(f"not a CoAP request method: {method!r}")
    return 1 << (code - 1)


def _norm(path: str) -> str:
    return path if path.startswith("/") else "/" + path


@dataclass(frozen=True, slots=True)
class AifScope:
    """AIF-REST: ``((path, permissions), ...)`` with distinct paths, in given order."""

    entries: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, entries: Iterable[tuple[str, int]]) -> AifScope:
        merged: dict[str, int] = {}
        for path, perms in entries:
            if not isinstance(path, str) or not path or isinstance(perms, bool) or not isinstance(perms, int):
                raise InvalidScope("AIF entries must be [tstr, uint]")
            if not 0 <= perms <= MAX_PERMS:
                raise InvalidScope("AIF permissions out of range")
            merged[path] = merged.get(path, 0) | perms
        return cls(tuple(merged.items()))

    @classmethod
    def decode(cls, data: bytes) -> AifScope:
        try:
            value = codec.loads(data, what="AIF scope", allowed_tags=frozenset())
        except DecodeError as exc:  # RFC 6749 §5.2: a malformed scope is invalid_scope
            raise InvalidScope(exc.description) from None
        if not isinstance(value, list) or not all(isinstance(e, list) and len(e) == 2 for e in value):
            raise InvalidScope("AIF scope must be an array of [path, permissions]")
        return cls.of((e[0], e[1]) for e in value)

    def encode(self) -> bytes:
        return codec.dumps([[p, m] for p, m in self.entries])

    def allows(self, path: str, method: str | int) -> bool:
        bit, path = method_bit(method), _norm(path)
        return any(p == path and perms & bit for p, perms in self.entries)

    def intersect(self, other: AifScope) -> AifScope:
        theirs = dict(other.entries)
        return AifScope(tuple(
            (p, m & theirs[p]) for p, m in self.entries if p in theirs and m & theirs[p]
        ))

    def __bool__(self) -> bool:
        return bool(self.entries)


@dataclass(frozen=True, slots=True)
class TextScope:
    """Space-separated scope-tokens; order as given, duplicates dropped."""

    tokens: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> TextScope:
        parts = text.split(" ")
        if not all(_SCOPE_TOKEN.fullmatch(p) for p in parts):
            raise InvalidScope("scope must be space-separated scope-tokens (RFC 6749 §3.3)")
        return cls(tuple(dict.fromkeys(parts)))

    def encode(self) -> str:
        return " ".join(self.tokens)

    def intersect(self, other: TextScope) -> TextScope:
        theirs = set(other.tokens)
        return TextScope(tuple(t for t in self.tokens if t in theirs))

    def to_aif(self, meaning: ScopeMeaning) -> AifScope:
        """The AIF this scope stands for at an RS; unknown tokens grant nothing."""
        return AifScope.of(e for t in self.tokens for e in meaning.get(t, ()))

    def allows(self, path: str, method: str | int, meaning: ScopeMeaning) -> bool:
        return self.to_aif(meaning).allows(path, method)

    def __bool__(self) -> bool:
        return bool(self.tokens)


ScopeMeaning = Mapping[str, Iterable[tuple[str, int]]]
Scope = TextScope | AifScope


def parse_scope(raw: str | bytes) -> Scope:
    """A scope parameter or claim: text is a text scope, bytes are AIF (RFC 9237)."""
    if isinstance(raw, str):
        return TextScope.parse(raw)
    if isinstance(raw, bytes):
        return AifScope.decode(raw)
    raise InvalidScope("scope must be a text or byte string")

