"""Text scopes and AIF (RFC 9237)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ace.cbor.scope import AifScope, TextScope, method_bit, parse_scope
from ace.errors import DecodeError, ErrorCode, RemoteError

# RFC 9237 §3 example: [["/s/temp", 1], ["/a/led", 5], ["/dtls", 2]]
RFC9237_EXAMPLE = bytes.fromhex("8382672f732f74656d700182662f612f6c65640582652f64746c7302")


def test_rfc9237_example_round_trip() -> None:
    scope = AifScope.decode(RFC9237_EXAMPLE)
    assert scope.entries == (("/s/temp", 1), ("/a/led", 5), ("/dtls", 2))
    assert scope.encode() == RFC9237_EXAMPLE


@pytest.mark.parametrize(
    ("path", "method", "allowed"),
    [
        ("/s/temp", "GET", True), ("s/temp", "GET", True), ("/s/temp", "PUT", False),
        ("/a/led", "GET", True), ("/a/led", "PUT", True), ("/a/led", "POST", False),
        ("/dtls", "POST", True), ("/dtls", 2, True), ("/nope", "GET", False), ("/s/temp/x", "GET", False),
    ],
)
def test_aif_allows(path: str, method: str | int, allowed: bool) -> None:
    assert AifScope.decode(RFC9237_EXAMPLE).allows(path, method) is allowed


def test_method_bits_follow_coap_codes() -> None:
    assert [method_bit(m) for m in ("GET", "POST", "PUT", "DELETE", "FETCH", "PATCH", "iPATCH")] == [
        1, 2, 4, 8, 16, 32, 64]
    with pytest.raises(ValueError):
        method_bit("BREW")


def test_dynamic_bits_do_not_grant_the_path() -> None:
    assert not AifScope.of([("/r", 1 << 32)]).allows("/r", "GET")


def test_aif_intersection_narrows_each_path() -> None:
    requested = AifScope.of([("/a", 0b111), ("/b", 1), ("/c", 2)])
    granted = AifScope.of([("/a", 0b101), ("/c", 1)])
    assert requested.intersect(granted).entries == (("/a", 0b101),)
    assert not AifScope.of([("/x", 1)]).intersect(granted)


def test_text_scope_intersection_keeps_request_order() -> None:
    req = TextScope.parse("r_temp rw_config foobar")
    assert req.intersect(TextScope.parse("rw_config r_temp")).encode() == "r_temp rw_config"


def test_text_scope_meaning() -> None:
    meaning = {"r_temp": [("/temp", method_bit("GET"))], "rw_led": [("/led", method_bit("GET") | method_bit("PUT"))]}
    scope = TextScope.parse("r_temp rw_led")
    assert scope.allows("/temp", "GET", meaning)
    assert not scope.allows("/temp", "PUT", meaning)
    assert scope.allows("/led", "PUT", meaning)
    assert not TextScope.parse("unknown").allows("/temp", "GET", meaning)


BAD_SCOPES: list[str | bytes] = [
    "", "a  b", "quote\"d", "back\\slash", "ünï", bytes.fromhex("a0"), bytes.fromhex("8161"),
    bytes.fromhex("81 82 01 01".replace(" ", "")), bytes.fromhex("818261 2f f5".replace(" ", "")),
    bytes.fromhex("818261 2f 20".replace(" ", "")), bytes.fromhex("81 82 61 2f 1b ff ff ff ff ff ff ff ff 00"),
]


@pytest.mark.parametrize("raw", BAD_SCOPES)
def test_bad_scopes_are_invalid_scope(raw: str | bytes) -> None:
    with pytest.raises(DecodeError) as info:
        parse_scope(raw)
    assert info.value.error_code in (ErrorCode.INVALID_SCOPE, ErrorCode.INVALID_REQUEST)


@given(st.binary(max_size=40))
def test_aif_decoder_raises_only_remote_errors(data: bytes) -> None:
    with contextlib.suppress(RemoteError):
        AifScope.decode(data)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=6), st.integers(0, 2**64 - 1)), max_size=5))
def test_aif_round_trip(entries: list[tuple[str, int]]) -> None:
    scope = AifScope.of(entries)
    assert AifScope.decode(scope.encode()) == scope
