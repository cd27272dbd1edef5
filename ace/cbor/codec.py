"""Strict CBOR in and out (RFC 8949), and typed readers for ACE parameter maps.

cbor2 decodes permissively: it keeps the last of duplicate map keys, ignores trailing
bytes and builds Python objects for dozens of tags (including shared references that can
make cycles). ``loads`` first walks the encoded item itself and rejects duplicate map keys
(RFC 8949 §5.6: such maps are not valid for ACE, which relies on unique labels), trailing
bytes, nesting deeper than ``MAX_DEPTH``, reserved additional information, and any tag
outside the COSE/CWT set; only then does cbor2 build the value.

Unknown labels, decided once for every ACE message: they are *kept* (in the message's
``extra`` map, re-encoded unchanged) and never interpreted. RFC 9200 builds on OAuth,
where a receiver MUST ignore parameters it does not understand (RFC 6749 §3.2), and
RFC 8392 §7.2 has claims that are not understood ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from functools import cache
from typing import Any, Literal, TypeVar, overload

import cbor2

from ace.cbor.labels import CoseTag
from ace.errors import DecodeError

MAX_DEPTH = 16
COSE_TAGS = frozenset(int(t) for t in CoseTag)

E = TypeVar("E", bound=IntEnum)


class RawCbor:
    """One encoded CBOR item embedded as it is by ``dumps`` (a credential that must keep its
    exact bytes, such as a kccs CWT Claims Set used as CRED_x in EDHOC)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawCbor) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"RawCbor({self.data.hex()})"


def _embed(encoder: cbor2.CBOREncoder, value: object) -> None:
    if isinstance(value, RawCbor):
        encoder.write(value.data)
        return
    raise cbor2.CBOREncodeTypeError(f"cannot serialize type {type(value).__name__}")


def dumps(value: object) -> bytes:
    """Encode with preferred (shortest) serialization, map order as given; ``RawCbor`` verbatim."""
    return cbor2.dumps(value, default=_embed)


def raw_at(data: bytes, path: tuple[int, ...], *, what: str = "CBOR item") -> bytes | None:
    """The exact encoded bytes of the item reached from the map ``data`` by the integer keys of
    ``path`` (each step a map, a tag over a map is stepped through), or None if a key is missing."""
    scanner = _Scanner(bytes(data), what, ANY_TAG)
    start = 0
    for key in path:
        start = _find_key(scanner, start, key)
        if start < 0:
            return None
    return scanner.data[start:scanner.item(start, 0)]


def raw_at_tag_content(data: bytes) -> bytes:
    """The encoded item under the tag head that starts ``data`` (one level)."""
    scanner = _Scanner(bytes(data), "tagged item", ANY_TAG)
    major, _, _, pos = scanner.head(0)
    if major != 6:
        raise DecodeError("not a tagged item")
    return scanner.data[pos:]


class _AnyTag(frozenset[int]):
    def __contains__(self, tag: object) -> bool:
        return True


ANY_TAG = _AnyTag()  # ``allowed_tags`` that lets every tag through


def _find_key(scanner: _Scanner, pos: int, key: int) -> int:
    major, _, count, pos = scanner.head(pos)
    while major == 6:
        major, _, count, pos = scanner.head(pos)
    if major != 5:
        return -1
    n = 0
    while (count is None and not scanner.at_break(pos)) or (count is not None and n < count):
        key_id, pos = scanner.key(pos, 1)
        if key_id == key and isinstance(key_id, int):
            return pos
        pos = scanner.item(pos, 1)
        n += 1
    return -1


def head(major: int, n: int) -> bytes:
    """The encoded head of a major type with argument ``n`` (preferred serialization)."""
    mt = major << 5
    if n < 24:
        return bytes((mt | n,))
    if n < 0x100:
        return bytes((mt | 24, n))
    if n < 0x10000:
        return bytes((mt | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((mt | 26,)) + n.to_bytes(4, "big")
    return bytes((mt | 27,)) + n.to_bytes(8, "big")


def bstr(data: bytes) -> bytes:
    """``data`` encoded as a CBOR byte string."""
    return head(2, len(data)) + data


def loads(data: bytes, *, what: str = "CBOR item", allowed_tags: frozenset[int] = COSE_TAGS) -> Any:
    """Decode exactly one well-formed CBOR item, strictly (see module docstring)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"{what} must be a byte string")
    data = bytes(data)
    if not data:
        raise DecodeError(f"{what}: empty payload")
    end = _Scanner(data, what, allowed_tags).item(0, 0)
    if end != len(data):
        raise DecodeError(f"{what}: {len(data) - end} trailing bytes after the CBOR item")
    try:
        return cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise DecodeError(f"{what}: invalid CBOR ({type(exc).__name__})") from exc


class _Scanner:
    """A structural walk over encoded CBOR: heads only, string contents skipped."""

    __slots__ = ("data", "tags", "what")

    def __init__(self, data: bytes, what: str, tags: frozenset[int]) -> None:
        self.data, self.what, self.tags = data, what, tags

    def fail(self, why: str) -> DecodeError:
        return DecodeError(f"{self.what}: {why}")

    def head(self, pos: int) -> tuple[int, int, int | None, int]:
        """Return (major, additional info, argument or None if indefinite, next pos)."""
        data = self.data
        if pos >= len(data):
            raise self.fail("truncated CBOR")
        ib = data[pos]
        major, ai = ib >> 5, ib & 0x1F
        pos += 1
        if ai < 24:
            return major, ai, ai, pos
        if ai == 31:
            if major in (0, 1, 6):
                raise self.fail("indefinite length on a major type without one")
            return major, ai, None, pos
        if ai > 27:
            raise self.fail(f"reserved additional information {ai}")
        size = 1 << (ai - 24)
        if pos + size > len(data):
            raise self.fail("truncated CBOR")
        return major, ai, int.from_bytes(data[pos : pos + size], "big"), pos + size

    def item(self, pos: int, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH}")
        data = self.data
        if pos < len(data):  # fast path: small ints and short strings, most of any ACE message
            ib = data[pos]
            if ib < 0x18 or 0x20 <= ib < 0x38:
                return pos + 1
            if 0x40 <= ib < 0x58 or 0x60 <= ib < 0x78:
                end = pos + 1 + (ib & 0x1F)
                if end > len(data):
                    raise self.fail("truncated CBOR string")
                return end
        major, ai, arg, pos = self.head(pos)
        if major in (0, 1):
            return pos
        if major in (2, 3):
            return self.string(major, arg, pos)
        if major == 4:
            return self.array(arg, pos, depth)
        if major == 5:
            return self.map(arg, pos, depth)
        if major == 6:
            if arg not in self.tags:
                raise self.fail(f"CBOR tag {arg} is not accepted here")
            return self.item(pos, depth + 1)
        if arg is None:
            raise self.fail("unexpected break")
        if ai == 24 and arg < 32:
            raise self.fail("simple value in two-byte form below 32")
        return pos

    def string(self, major: int, arg: int | None, pos: int) -> int:
        if arg is not None:
            if pos + arg > len(self.data):
                raise self.fail("truncated CBOR string")
            return pos + arg
        while True:  # indefinite: definite chunks of the same major type until break
            if pos < len(self.data) and self.data[pos] == 0xFF:
                return pos + 1
            chunk_major, _, chunk_len, pos = self.head(pos)
            if chunk_major != major or chunk_len is None:
                raise self.fail("bad chunk in an indefinite-length string")
            pos = self.string(major, chunk_len, pos)

    def array(self, count: int | None, pos: int, depth: int) -> int:
        if count is None:
            while not self.at_break(pos):
                pos = self.item(pos, depth + 1)
            return pos + 1
        if count > len(self.data) - pos:
            raise self.fail("truncated CBOR array")
        for _ in range(count):
            pos = self.item(pos, depth + 1)
        return pos

    def map(self, count: int | None, pos: int, depth: int) -> int:
        seen: set[object] = set()
        n = 0
        while (count is None and not self.at_break(pos)) or (count is not None and n < count):
            key_id, pos = self.key(pos, depth)
            if key_id in seen:
                raise self.fail("duplicate map key")
            seen.add(key_id)
            pos = self.item(pos, depth + 1)
            n += 1
        return pos + 1 if count is None else pos

    def at_break(self, pos: int) -> bool:
        if pos >= len(self.data):
            raise self.fail("truncated CBOR: missing break")
        return self.data[pos] == 0xFF

    def key(self, pos: int, depth: int) -> tuple[object, int]:
        """Identity of a map key: the int for integers, (major, bytes) for strings, else
        ("raw", encoding). Ints never equal tuples, so the kinds cannot collide."""
        if pos < len(self.data):
            ib = self.data[pos]
            if ib < 0x18:
                return ib, pos + 1
            if 0x20 <= ib < 0x38:
                return 0x1F - ib, pos + 1
        major, _, arg, after = self.head(pos)
        if major == 0:
            return arg, after
        if major == 1:
            assert arg is not None
            return -1 - arg, after
        if major == 7:  # true == 1 and 1.0 == 1 in Python: such keys would merge silently
            raise self.fail("map keys must be integers, strings or containers")
        end = self.item(pos, depth + 1)
        if major in (2, 3) and arg is not None:
            return (major, self.data[after:end]), end
        return ("raw", self.data[pos:end]), end


_MISSING = object()


@cache
def _labels_of(enum: type[IntEnum]) -> frozenset[int]:
    return frozenset(int(m) for m in enum)


class MapReader:
    """Typed access to a decoded ACE map; errors name the field and its label."""

    __slots__ = ("items", "known", "what")

    def __init__(self, value: object, what: str, known: type[IntEnum] | None = None) -> None:
        if not isinstance(value, Mapping):
            raise DecodeError(f"{what} must be a CBOR map")
        self.items: Mapping[Any, Any] = value
        self.what = what
        self.known = _labels_of(known) if known is not None else frozenset()

    def _name(self, label: IntEnum) -> str:
        return f"{label.name.lower()}({int(label)})"

    # IntEnum members hash and compare as their ints: they index the decoded map directly.
    def has(self, label: IntEnum) -> bool:
        return label in self.items

    def raw(self, label: IntEnum) -> Any:
        return self.items.get(label)

    def require(self, label: IntEnum) -> Any:
        value = self.items.get(label, _MISSING)
        if value is _MISSING:
            raise DecodeError(f"{self.what}: missing {self._name(label)}")
        return value

    def _typed(self, label: IntEnum, types: tuple[type, ...], kind: str, required: bool) -> Any:
        value = self.items.get(label, _MISSING)
        if value is _MISSING:
            if required:
                raise DecodeError(f"{self.what}: missing {self._name(label)}")
            return None
        if not isinstance(value, types) or (value.__class__ is bool and bool not in types):
            raise DecodeError(f"{self.what}: {self._name(label)} must be {kind}")
        return value

    @overload
    def bytes_(self, label: IntEnum, *, required: Literal[True]) -> bytes: ...
    @overload
    def bytes_(self, label: IntEnum, *, required: bool = False) -> bytes | None: ...
    def bytes_(self, label: IntEnum, *, required: bool = False) -> bytes | None:
        return self._typed(label, (bytes,), "a byte string", required)  # type: ignore[no-any-return]

    @overload
    def text(self, label: IntEnum, *, required: Literal[True]) -> str: ...
    @overload
    def text(self, label: IntEnum, *, required: bool = False) -> str | None: ...
    def text(self, label: IntEnum, *, required: bool = False) -> str | None:
        return self._typed(label, (str,), "a text string", required)  # type: ignore[no-any-return]

    @overload
    def int_(self, label: IntEnum, *, required: Literal[True]) -> int: ...
    @overload
    def int_(self, label: IntEnum, *, required: bool = False) -> int | None: ...
    def int_(self, label: IntEnum, *, required: bool = False) -> int | None:
        return self._typed(label, (int,), "an integer", required)  # type: ignore[no-any-return]

    def uint(self, label: IntEnum, *, required: bool = False) -> int | None:
        value = self.int_(label, required=required)
        if value is not None and value < 0:
            raise DecodeError(f"{self.what}: {self._name(label)} must be an unsigned integer")
        return value

    def bool_(self, label: IntEnum, *, required: bool = False) -> bool | None:
        return self._typed(label, (bool,), "true or false", required)  # type: ignore[no-any-return]

    def map_(self, label: IntEnum, *, required: bool = False) -> Mapping[Any, Any] | None:
        return self._typed(label, (Mapping,), "a map", required)  # type: ignore[no-any-return]

    def text_or_bytes(self, label: IntEnum, *, required: bool = False) -> str | bytes | None:
        value = self._typed(label, (str, bytes), "a text or byte string", required)
        return value  # type: ignore[no-any-return]

    def enum(self, label: IntEnum, enum: type[E], *, required: bool = False) -> E | int | None:
        """An integer of a registry; unregistered values are passed through as int."""
        value = self.int_(label, required=required)
        if value is None:
            return None
        try:
            return enum(value)
        except ValueError:
            return value

    def extra(self) -> dict[Any, Any]:
        """The labels this message type does not define (kept, never interpreted)."""
        return {k: v for k, v in self.items.items() if not (isinstance(k, int) and k in self.known)}


def freeze_extra(extra: Mapping[Any, Any] | None) -> tuple[tuple[Any, Any], ...]:
    """Unknown labels as a hashable tuple of pairs, for frozen dataclasses."""
    return tuple(extra.items()) if extra else ()
