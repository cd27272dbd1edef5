"""Reference tokens (RFC 9200 §5.9: opaque to the client and the RS, their claims kept at the AS):
their length and the shape both sides agree on, sans I/O. Their first byte never starts a CBOR
array, map or tag, so an RS tells one from a COSE message (a self-contained CWT) and from an
ace+cbor map by that byte alone, without a parse; junk of any other shape is refused at the RS
without costing the AS an introspection."""

from __future__ import annotations

from collections.abc import Callable

REFERENCE_LEN = 16  # bytes of the reference tokens our AS issues
MIN_REFERENCE_LEN = 8  # bytes: shorter opaque tokens are guessable, refused without asking the AS
MAX_REFERENCE_LEN = 64  # bytes: an opaque token longer than this is junk, refused without asking the AS
_NOT_FIRST = (4, 5, 6)  # CBOR major types array, map, tag: what a COSE message or an ace+cbor map starts with


def mint_reference(rng: Callable[[int], bytes], length: int = REFERENCE_LEN) -> bytes:
    """A random reference token whose first byte starts no CBOR array, map or tag (``is_reference``)."""
    token = bytearray(rng(length))
    if token[0] >> 5 in _NOT_FIRST:  # array, map, tag -> unsigned, negative, bytes
        token[0] ^= 0x80
    return bytes(token)


def is_reference(token: bytes, length: int | None = None) -> bool:
    """Whether ``token`` is a reference token: not a COSE message, not even an attempt at one or at an
    ace+cbor map (those are refused as malformed, locally), and ``length`` bytes long (None: any
    length from ``MIN_REFERENCE_LEN`` to ``MAX_REFERENCE_LEN``)."""
    if length is not None and len(token) != length:
        return False
    return MIN_REFERENCE_LEN <= len(token) <= MAX_REFERENCE_LEN and token[0] >> 5 not in _NOT_FIRST
