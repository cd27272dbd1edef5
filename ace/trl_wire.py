"""The TRL endpoint's wire format (RFC 9770): query parameters, problem-details errors and the
full/diff query payloads (application/ace-trl+cbor), shared by the AS and the TRL's observers.
``ace.authz_server.trl`` re-exports all."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from ace.cbor import codec
from ace.cbor.labels import TrlParam
from ace.errors import DecodeError, RemoteError

MAX_ENTRIES = 4096  # revoked hashes one full query lists at most (bounded response, bounded work)
MAX_N = 64  # items an update collection keeps (RFC 9770 §8 MAX_N, communicated at registration)
MAX_INDEX = 2**32 - 1  # item indexes are taken modulo MAX_INDEX + 1 (RFC 9770 §9)
MAX_QUERY_DIGITS = 64  # longest diff/cursor value taken
PD_TITLE = -1  # RFC 9290 standard problem detail entry "title"
ACE_TRL_ERROR = 1  # RFC 9770 Custom Problem Detail key "ace-trl-error"
PROBLEM_DETAILS_CF = 257  # application/concise-problem-details+cbor (RFC 9290)


# -- query parameters and errors ------------------------------------------------------------

class TrlErrorId(IntEnum):
    """RFC 9770 "ACE Token Revocation List Errors"."""

    INVALID_PARAMETER_VALUE = 0
    INVALID_SET_OF_PARAMETERS = 1
    OUT_OF_BOUND_CURSOR_VALUE = 2


_TITLES = {
    TrlErrorId.INVALID_PARAMETER_VALUE: "Invalid parameter value",
    TrlErrorId.INVALID_SET_OF_PARAMETERS: "Invalid set of parameters",
    TrlErrorId.OUT_OF_BOUND_CURSOR_VALUE: "Out of bound cursor value",
}


class TrlError(RemoteError):
    """A 4.00 of the TRL endpoint with RFC 9770 §6.3 problem details."""

    default_error_code = None

    def __init__(self, description: str, error_id: TrlErrorId, *, cursor: int | None = None,
                 with_cursor: bool = False) -> None:
        super().__init__(description)
        self.error_id, self.cursor, self.with_cursor = error_id, cursor, with_cursor

    def problem_details(self) -> bytes:
        """{-1 / title /: text, 1 / ace-trl-error /: {0 / error-id /: int, ? 1 / cursor /: uint / null}}"""
        entry: dict[int, int | None] = {0: int(self.error_id)}
        if self.with_cursor:
            entry[1] = self.cursor
        return codec.dumps({PD_TITLE: _TITLES[self.error_id], ACE_TRL_ERROR: entry})

    def reply_body(self) -> tuple[bytes, int]:
        return self.problem_details(), PROBLEM_DETAILS_CF


@dataclass(frozen=True, slots=True)
class TrlQuery:
    diff: int | None = None  # None: a full query; else N (0: as many as kept)
    cursor: int | None = None  # the Cursor extension's P (with diff only)


def _count(value: str | None) -> int | None:
    ok = value is not None and 0 < len(value) <= MAX_QUERY_DIGITS and value.isascii() and value.isdigit()
    return int(value) if ok and value is not None else None


def parse_query(options: Iterable[str]) -> TrlQuery:
    """The Uri-Query options of a TRL GET (RFC 9770 §6), checked in the RFC's order (§6.3): a bad
    ``diff`` (error-id 0), ``cursor`` without ``diff`` (1), a bad ``cursor`` (0, with the
    requester's last_index: ``TrlError.with_cursor``, filled in by the endpoint). A repeated
    parameter is error-id 1; unknown ones are ignored."""
    values: dict[str, str | None] = {}
    for option in options:
        name, sep, value = option.partition("=")
        if name not in ("diff", "cursor"):
            continue  # RFC 9770 §6: the AS MUST silently ignore unknown query parameters
        if name in values:
            raise TrlError(f"query parameter {name!r} repeated", TrlErrorId.INVALID_SET_OF_PARAMETERS)
        values[name] = value if sep else None
    diff = _count(values.get("diff"))
    if "diff" in values and diff is None:
        raise TrlError("diff must be a non-negative integer", TrlErrorId.INVALID_PARAMETER_VALUE)
    if "cursor" not in values:
        return TrlQuery(diff)
    if diff is None:
        raise TrlError("cursor needs diff", TrlErrorId.INVALID_SET_OF_PARAMETERS)
    cursor = _count(values["cursor"])
    if cursor is None:
        raise TrlError("cursor must be a non-negative integer", TrlErrorId.INVALID_PARAMETER_VALUE,
                       with_cursor=True)
    return TrlQuery(diff, cursor)


# -- payloads ---------------------------------------------------------------------------------

def encode_full_set(hashes: Iterable[bytes], cursor: int | None) -> bytes:
    """The full query response (RFC 9770 §6.1, §9.1): {0 / full_set /: [* bstr], 2 / cursor /: uint / null}."""
    return codec.dumps({int(TrlParam.FULL_SET): list(hashes), int(TrlParam.CURSOR): cursor})


def encode_diff_set(entries: Iterable[tuple[Sequence[bytes], Sequence[bytes]]], cursor: int | None,
                    more: bool) -> bytes:
    """The diff query response (RFC 9770 §6.2, §9.2), newest entry first:
    {1 / diff_set /: [* [removed: [* bstr], added: [* bstr]]], 2 / cursor /: uint / null, 3 / more /: bool}."""
    return codec.dumps({int(TrlParam.DIFF_SET): [[list(r), list(a)] for r, a in entries],
                        int(TrlParam.CURSOR): cursor, int(TrlParam.MORE): more})


def _hashes(value: object, what: str) -> list[bytes]:
    if not isinstance(value, list) or len(value) > MAX_ENTRIES or not all(
            isinstance(h, bytes) and 0 < len(h) <= 64 for h in value):
        raise DecodeError(f"TRL response: {what} must be an array of token hashes")
    return list(value)


def _cursor(reader: codec.MapReader) -> int | None:
    value = reader.raw(TrlParam.CURSOR)
    if value is not None and (type(value) is not int or not 0 <= value <= MAX_INDEX):
        raise DecodeError("TRL response: cursor(2) must be an index or null")
    return value


def decode_full_set(payload: bytes) -> list[bytes]:
    """The full_set of a TRL response (what an RS or a client observes), strictly."""
    reader = codec.MapReader(codec.loads(payload, what="TRL response"), "TRL response", TrlParam)
    hashes = _hashes(reader.require(TrlParam.FULL_SET), "full_set(0)")
    _cursor(reader)
    return hashes


@dataclass(frozen=True, slots=True)
class DiffSet:
    entries: list[tuple[list[bytes], list[bytes]]]  # (removed, added), newest first
    cursor: int | None
    more: bool


def decode_diff_set(payload: bytes) -> DiffSet:
    """A diff query response, strictly."""
    reader = codec.MapReader(codec.loads(payload, what="TRL response"), "TRL response", TrlParam)
    value = reader.require(TrlParam.DIFF_SET)
    if not isinstance(value, list) or len(value) > MAX_N or not all(
            isinstance(e, list) and len(e) == 2 for e in value):
        raise DecodeError("TRL response: diff_set(1) must be an array of [removed, added]")
    entries = [(_hashes(r, "removed"), _hashes(a, "added")) for r, a in value]
    more = reader.raw(TrlParam.MORE)
    if more is not None and not isinstance(more, bool):
        raise DecodeError("TRL response: more(3) must be a boolean")
    return DiffSet(entries, _cursor(reader), bool(more))
