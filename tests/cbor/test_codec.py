"""The strict CBOR decoder: what cbor2 would accept silently is refused here."""

from __future__ import annotations

import contextlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ace.cbor import codec
from ace.errors import BAD_REQUEST, DecodeError, ErrorCode, RemoteError

BAD = [
    ("empty", ""),
    ("truncated map", "a1"),
    ("truncated uint", "19 01"),
    ("truncated bstr", "43 0102"),
    ("trailing bytes", "01 02"),
    ("duplicate int key", "a2 01 02 01 03"),
    ("duplicate key, non-preferred encoding", "a2 01 02 18 01 03"),
    ("duplicate text key", "a2 61 31 01 61 31 02"),
    ("duplicate key in nested map", "a1 01 a2 02 00 02 01"),
    ("duplicate key, indefinite map", "bf 01 02 01 03 ff"),
    ("bool key merges with 1", "a2 01 02 f5 03"),
    ("float key merges with 1", "a2 01 02 f9 3c00 03"),
    ("reserved additional info", "1c"),
    ("indefinite uint", "1f"),
    ("unexpected break", "ff"),
    ("missing break", "9f 01"),
    ("bad chunk in indefinite bstr", "5f 61 31 ff"),
    ("nested indefinite chunk", "5f 5f ff ff"),
    ("tag not allowed (datetime)", "c1 1a 00000000"),
    ("tag not allowed (shared ref)", "d8 1c 80"),
    ("tag not allowed (bignum)", "c2 41 01"),
    ("two-byte simple below 32", "f8 10"),
    ("invalid utf-8", "62 c328"),
    ("array claims more items than bytes", "9b 00ffffffffffffff 01"),
    ("too deep", "81" * 17 + "01"),
]


@pytest.mark.parametrize(("name", "hexdata"), BAD, ids=[b[0] for b in BAD])
def test_bad_cbor_is_a_decode_error(name: str, hexdata: str) -> None:
    with pytest.raises(DecodeError) as info:
        codec.loads(bytes.fromhex(hexdata.replace(" ", "")))
    assert info.value.error_code is ErrorCode.INVALID_REQUEST
    assert info.value.coap_code == BAD_REQUEST


GOOD = [
    ("map", "a2 01 02 03 04", {1: 2, 3: 4}),
    ("indefinite bstr", "5f 41 01 41 02 ff", b"\x01\x02"),
    ("indefinite map", "bf 01 02 ff", {1: 2}),
    ("cose tag", "d2 80", cbor2.CBORTag(18, [])),
    ("depth 16", "81" * 16 + "01", None),
    ("same key in sibling maps", "82 a1 01 01 a1 01 01", [{1: 1}, {1: 1}]),
    ("int and text keys differ", "a2 01 00 61 31 00", {1: 0, "1": 0}),
]


@pytest.mark.parametrize(("name", "hexdata", "value"), GOOD, ids=[g[0] for g in GOOD])
def test_good_cbor(name: str, hexdata: str, value: object) -> None:
    decoded = codec.loads(bytes.fromhex(hexdata.replace(" ", "")))
    if value is not None:
        assert decoded == value


def test_non_bytes_input() -> None:
    with pytest.raises(DecodeError):
        codec.loads("a0")  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_remote_errors(data: bytes) -> None:
    with contextlib.suppress(RemoteError):
        codec.loads(data)


CBOR_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=8) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.integers(-30, 30) | st.text(max_size=3), inner,
                                                                max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(CBOR_VALUES)
def test_round_trip_of_valid_values(value: object) -> None:
    assert codec.loads(codec.dumps(value)) == value
