"""The field table behind every RFC 9200 §5 message (``ace.messages``), and the one message an RS
answers before it has seen a token: the AS Request Creation Hints of its 4.01 (RFC 9200 §5.3).

Apart from ``ace.messages`` so that an RS answers an unauthorized request without loading the
other messages and the PoP key code (issue 14: cold start); ``ace.messages`` re-exports all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any, ClassVar, NamedTuple, Self

from ace.cbor import codec
from ace.cbor.codec import MapReader
from ace.cbor.labels import AceProfile, CreationHint, GrantType, TokenType
from ace.errors import ErrorCode


class _F(NamedTuple):  # one field of a message (a tuple: built in a tenth of a dataclass's time)
    name: str
    label: IntEnum
    kind: str  # bytes | text | uint | bool | scope | cnf | edhoc_info | grant | token_type | profile | error
    required: bool = False


_ENUMS: dict[str, type[IntEnum]] = {
    "grant": GrantType, "token_type": TokenType, "profile": AceProfile, "error": ErrorCode,
}


def _read(r: MapReader, f: _F) -> Any:
    if f.kind == "bytes":
        return r.bytes_(f.label, required=f.required)
    if f.kind == "text":
        return r.text(f.label, required=f.required)
    if f.kind == "uint":
        return r.uint(f.label, required=f.required)
    if f.kind == "bool":
        return r.bool_(f.label, required=f.required)
    if f.kind == "scope":  # RFC 9200 §5.8.1: scope is a text or byte string
        return r.text_or_bytes(f.label, required=f.required)
    if f.kind == "cnf":
        from ace.tokens.cnf import cnf_from_map  # the PoP key's code: loaded with the first message that has one

        value = r.map_(f.label, required=f.required)
        return None if value is None else cnf_from_map(value, f"{f.label.name.lower()}({int(f.label)})")
    if f.kind == "edhoc_info":
        from ace.tokens.edhoc_info import EdhocInfo  # the EDHOC profile's (EP §3.4)

        value = r.map_(f.label, required=f.required)
        return None if value is None else EdhocInfo.from_map(value)
    return r.enum(f.label, _ENUMS[f.kind], required=f.required)


class _Message:
    """Mixin: generic to_map/from_map/encode/decode over the ``_fields`` table."""

    __slots__ = ()
    _fields: ClassVar[tuple[_F, ...]]
    _labels: ClassVar[type[IntEnum]]
    _what: ClassVar[str]

    def to_map(self) -> dict[Any, Any]:
        m: dict[Any, Any] = {}
        for f in self._fields:
            value = getattr(self, f.name)
            if value is None:
                continue
            m[int(f.label)] = _encoded(f, value)
        m.update(getattr(self, "extra", ()))
        return m

    def encode(self) -> bytes:
        return codec.dumps(self.to_map())

    @classmethod
    def from_map(cls, value: object) -> Self:
        r = MapReader(value, cls._what, cls._labels)
        known = {int(f.label) for f in cls._fields}
        kwargs = {f.name: _read(r, f) for f in cls._fields}
        extra = {k: v for k, v in r.items.items() if not (isinstance(k, int) and k in known)}
        return cls(**kwargs, extra=codec.freeze_extra(extra))  # type: ignore[call-arg]

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """From the encoded map; a kccs cnf keeps the bytes it arrived as (EDHOC profile §3.3.1)."""
        msg = cls.from_map(codec.loads(data, what=cls._what))
        cnfs = [f for f in cls._fields if f.kind == "cnf" and getattr(msg, f.name) is not None]
        if not cnfs:
            return msg
        from ace.tokens.cnf import KccsCnf, with_raw

        raw = {f.name: with_raw(getattr(msg, f.name), data, (int(f.label),))
               for f in cnfs if isinstance(getattr(msg, f.name), KccsCnf)}
        return replace(msg, **raw) if raw else msg  # type: ignore[type-var]


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, IntEnum) else value


def _encoded(f: _F, value: Any) -> Any:
    if f.kind == "cnf":
        from ace.tokens.cnf import cnf_to_map  # the PoP key's code: loaded with the first message that has one

        return cnf_to_map(value)
    if f.kind == "edhoc_info":
        return value.to_map()
    return _plain(value)


Extra = tuple[tuple[Any, Any], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreationHints(_Message):
    """AS Request Creation Hints (RFC 9200 §5.3); ``as_uri`` is the "AS" parameter."""

    as_uri: str | None = None
    kid: bytes | None = None
    audience: str | None = None
    scope: str | bytes | None = None
    cnonce: bytes | None = None
    extra: Extra = ()

    _what = "AS request creation hints"
    _labels = CreationHint
    _fields = (
        _F("as_uri", CreationHint.AS, "text"),
        _F("kid", CreationHint.KID, "bytes"),
        _F("audience", CreationHint.AUDIENCE, "text"),
        _F("scope", CreationHint.SCOPE, "scope"),
        _F("cnonce", CreationHint.CNONCE, "bytes"),
    )
