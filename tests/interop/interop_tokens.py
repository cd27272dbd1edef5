"""What the token interop tests (cose-js, pycose, python-cwt) share: the PoP key and claims
they exchange, and how they damage a token by one byte."""

from __future__ import annotations

import cbor2

from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf
from ace.tokens.keys import CoseKey

AUDIENCE = "rs1"

POP_KEY = CoseKey.from_map(
    {
        1: 2,  # kty EC2
        2: b"client-pop",
        -1: 1,  # P-256
        -2: bytes.fromhex("bac5b11cad8f99f9c72b05cf4b9e26d244dc189f745228255a219a86d6a09eff"),
        -3: bytes.fromhex("20138bf82dc1b6d562be0fa54ab7804a3a64b6d72ccfed6b6fb6ed28bbfc117e"),
    }
)
CLAIMS = AccessTokenClaims(
    iss="as.example",
    aud=AUDIENCE,
    exp=4_000_000_000,
    nbf=1_700_000_000,
    iat=1_700_000_000,
    cti=bytes.fromhex("0102030405060708"),
    cnf=CoseKeyCnf(POP_KEY),
    scope="r_temp rw_config",
)


def cose_body(token: bytes) -> bytes:
    """The payload (Sign1/Mac0) or ciphertext (Encrypt0) of a token, tagged or not."""
    item = cbor2.loads(token)
    while isinstance(item, cbor2.CBORTag):
        item = item.value
    body = item[2]
    assert isinstance(body, bytes)
    return body


def tamper(token: bytes, where: str) -> bytes:
    """``token`` with exactly one byte flipped: in the body or the last byte (tag/signature)."""
    if where == "last":
        pos = len(token) - 1
    else:
        body = cose_body(token)
        pos = token.index(body) + len(body) // 2
    tampered = token[:pos] + bytes([token[pos] ^ 0x01]) + token[pos + 1 :]
    assert len(tampered) == len(token) and sum(a != b for a, b in zip(tampered, token, strict=True)) == 1
    return tampered
