"""A token encrypted to the RS's public key has one name (``canonical_token``, its RFC 9770 hash):
the recipient's unprotected sender key is bound only through the ECDH, so a third party can add
labels to it, reorder its bucket, send -P for P (P-256: the same x, the same secret) or an X25519
u with its top bit set (RFC 7748 §5: masked). Each such encoding still opens; each must be named as
the token the AS issued (whose hash the AS lists in its TRL), or refused, never a new token."""

from __future__ import annotations

import cbor2
import pytest
from support import NOW

from ace.cbor.labels import Curve
from ace.errors import DecodeError
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, canonical_token, issue_token, verify_token
from ace.tokens.encrypt import Recipient
from ace.tokens.keys import CoseKey

RS_P256 = generate(Curve.P_256, kid=b"rs-ec")
RS_X25519 = generate(Curve.X25519, kid=b"rs-x")
AS_SIGN = generate(Curve.P_256, kid=b"as")
P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1  # P-256 field prime
CLAIMS = AccessTokenClaims(iss="as", aud="rs1", exp=NOW + 3600, cti=b"\x01")


def token_to(rs: CoseKey, seed: int) -> bytes:
    draws = iter(range(seed * 1000, seed * 1000 + 1000))
    return issue_token(CLAIMS, AS_SIGN, kind=Kind.SIGN, encrypt_to=Recipient(rs.public()), tagged=True,
                       rng=lambda n: next(draws).to_bytes(4, "big") * (n // 4) + bytes(n % 4))


def altered(token: bytes, change: str) -> bytes:
    item = cbor2.loads(token)
    unprotected = item.value[3][0][1]
    sender = unprotected[-1]
    if change == "extra label":
        sender[2] = b"added"
    elif change == "reordered":
        item.value[3][0][1] = dict(reversed(list(unprotected.items())))
    elif change == "-P":
        sender[-3] = (P256_P - int.from_bytes(sender[-3], "big")).to_bytes(32, "big")
    elif change == "top bit":
        sender[-2] = sender[-2][:31] + bytes([sender[-2][31] | 0x80])
    return cbor2.dumps(item)


@pytest.mark.parametrize("seed", range(8))
def test_issued_tokens_are_named_by_their_bytes(seed: int) -> None:
    for rs in (RS_P256, RS_X25519):
        token = token_to(rs, seed)
        assert canonical_token(token, "cose") == token


@pytest.mark.parametrize(("rs", "change"), [(RS_P256, "extra label"), (RS_P256, "reordered"), (RS_P256, "-P"),
                                            (RS_X25519, "extra label"), (RS_X25519, "reordered")])
@pytest.mark.parametrize("seed", range(4))
def test_another_encoding_that_opens_has_the_same_name(rs: CoseKey, change: str, seed: int) -> None:
    token = token_to(rs, seed)
    other = altered(token, change)
    assert other != token
    verify_token(other, KeyRing([AS_SIGN.public(), rs]), audience="rs1", clock=lambda: NOW)  # it opens
    assert canonical_token(other, "cose") == token


def test_x25519_top_bit_refused() -> None:
    other = altered(token_to(RS_X25519, 0), "top bit")
    verify_token(other, KeyRing([AS_SIGN.public(), RS_X25519]), audience="rs1", clock=lambda: NOW)  # it opens
    with pytest.raises(DecodeError, match="canonical"):
        canonical_token(other, "cose")
