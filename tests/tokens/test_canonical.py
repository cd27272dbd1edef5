"""The canonical encoding of a token (``cwt.canonical_token``): what names a token for replay and
revocation (RFC 9770 hashes), so that a re-encoded token is the same token (issue 17 item 2)."""

from __future__ import annotations

import random

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ace.cbor.labels import Curve
from ace.errors import DecodeError, ErrorCode, RemoteError
from ace.tokens import crypto
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, canonical_token, issue_token, verify_token
from ace.tokens.keys import symmetric_key

KEY = symmetric_key(bytes(range(32)), kid=b"rs1")
AEAD_KEY = symmetric_key(bytes(range(16)), kid=b"rs1")
CLAIMS = AccessTokenClaims(aud="rs1", exp=1_800_000_000, cti=b"\x07", scope="r_temp")


def make(kind: Kind = Kind.AEAD, **kw: bool) -> bytes:
    return issue_token(CLAIMS, AEAD_KEY if kind is Kind.AEAD else KEY, kind=kind, rng=random.Random(1).randbytes, **kw)


@pytest.mark.parametrize("kind", [Kind.AEAD, Kind.MAC])
def test_our_tokens_are_canonical_in_each_tag_form(kind: Kind) -> None:
    plain, tagged, cwt = make(kind), make(kind, tagged=True), make(kind, cwt_tag=True)
    for form in (plain, tagged, cwt):
        assert canonical_token(form) == plain
        assert canonical_token(form, "cose") == tagged
        assert canonical_token(form, "cwt") == cwt
    assert tagged[1:] == plain and cwt[3:] == plain


def _bad(token: bytes) -> list[tuple[str, bytes]]:
    item = cbor2.loads(token)
    prot, unprot, body = item[0], item[1], item[2]
    return [
        ("extra unprotected label", cbor2.dumps([prot, {**unprot, 77: b"x"}, body])),
        ("alg in the unprotected bucket", cbor2.dumps([prot, {**unprot, 1: 10}, body])),
        ("unprotected map reordered", cbor2.dumps([prot, dict(reversed(list(unprot.items()))), body])),
        ("kid as text", cbor2.dumps([prot, {4: "rs1", 5: unprot[5]}, body])),
        ("array head in two bytes", b"\x98\x03" + token[1:]),
        ("indefinite-length array", b"\x9f" + token[1:] + b"\xff"),
        ("not COSE", b"\x41\x00"),
        ("a map", cbor2.dumps({1: 2})),
    ]


@pytest.mark.parametrize(("name", "data"), _bad(make()))
def test_non_canonical_tokens_are_refused(name: str, data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        canonical_token(data)
    assert info.value.error_code == ErrorCode.INVALID_REQUEST and info.value.coap_code == (4, 0), name


def test_an_empty_protected_bucket_is_named_as_h_empty() -> None:
    """RFC 9052 §3: recipients MUST accept h'a0' for an empty bucket, which h'' also encodes."""
    item = cbor2.loads(make())
    plain = cbor2.dumps([b"", item[1], item[2]])
    assert canonical_token(cbor2.dumps([b"\xa0", item[1], item[2]])) == canonical_token(plain) == plain


def test_es256_signatures_are_low_s_and_a_high_s_twin_is_the_same_token() -> None:
    key = generate(Curve.P_256, kid=b"as")
    for i in range(8):  # the signature is random: several draws
        token = issue_token(AccessTokenClaims(aud="rs1", cti=bytes([i]), scope="r"), key, kind=Kind.SIGN)
        item = cbor2.loads(token)
        sig = item[3]
        assert not crypto.high_s(sig) and canonical_token(token) == token
        twin = sig[:32] + (crypto.P256_ORDER - int.from_bytes(sig[32:], "big")).to_bytes(32, "big")
        flipped = cbor2.dumps([*item[:3], twin])  # verifies as well: the same token, other bytes
        verify_token(flipped, KeyRing([key.public()]), audience="rs1", clock=lambda: 0)
        assert canonical_token(flipped) == token  # named by the low-s twin: one token, one hash


def test_tag_forms_are_checked() -> None:
    with pytest.raises(DecodeError):
        canonical_token(b"\xd9\x00\x10" + make())  # tag 16 in a three-byte head: not preferred


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_remote_errors_and_results_are_fixed_points(data: bytes) -> None:
    try:
        out = canonical_token(data)
    except RemoteError:
        return
    assert canonical_token(out) == out


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=1))
def test_mutated_tokens_are_refused_or_the_same_token(pos: int, byte: bytes) -> None:
    token = make()
    i = pos % len(token)
    mutated = token[:i] + byte + token[i + 1:]
    try:
        out = canonical_token(mutated)
    except RemoteError:
        return
    assert out == mutated  # a mutation that stays canonical is other bytes, not another form of these
