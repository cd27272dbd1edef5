"""Interop with pycose 1.1.0 as an independent COSE peer (both directions).

* pycose verifies/decrypts our Sign1 (EdDSA, ES256), Mac0 (HMAC 256/64, 256/256) and
  Encrypt0 (AES-CCM-16-64-128 = alg 10, AES-CCM-16-128-256 = alg 31), as tokens from
  ``issue_token`` (tagged and untagged) and as bare ``cose.build`` messages.
* We verify pycose-built messages of the same kinds, with Algorithm/KID in either header
  bucket (IV always unprotected), tagged and untagged, via ``verify_token`` and
  ``cose.open_message``.
* A copy with one byte flipped is rejected on both sides.

pycose's ``CoseMessage.decode`` needs a COSE tag; untagged messages are handed to pycose
through ``<Message>.from_cose_obj`` on the decoded array instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
import pytest
from cryptography.exceptions import InvalidTag
from interop_tokens import AUDIENCE, CLAIMS, tamper
from pycose import algorithms as pyalg
from pycose.headers import IV, KID, Algorithm
from pycose.keys import CoseKey as PyCoseKey
from pycose.messages import CoseMessage, Enc0Message, Mac0Message, Sign1Message

from ace.cbor.labels import Alg, Curve
from ace.errors import VerificationError
from ace.tokens import cose
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token, verify_token
from ace.tokens.keys import CoseKey, symmetric_key

KID_VALUE = b"as-key-1"
NOW = 1_750_000_000
PEER_IV = bytes(range(0xA0, 0xA0 + 13))
RAW_PAYLOAD = b"ACE pycose interop \x00\x01\xff"



def _rng(n: int) -> bytes:
    return bytes(range(1, n + 1))  # deterministic IVs (tests only)


@dataclass(frozen=True)
class Case:
    kind: Kind
    alg: Alg
    peer_alg: type[Any]
    message: type[Any]
    make_key: Callable[[], CoseKey]


CASES: dict[str, Case] = {
    "sign1-EdDSA": Case(
        Kind.SIGN, Alg.EDDSA, pyalg.EdDSA, Sign1Message, lambda: generate(Curve.ED25519, kid=KID_VALUE)
    ),
    "sign1-ES256": Case(Kind.SIGN, Alg.ES256, pyalg.Es256, Sign1Message, lambda: generate(Curve.P_256, kid=KID_VALUE)),
    "mac0-HMAC256/64": Case(
        Kind.MAC, Alg.HMAC_256_64, pyalg.HMAC25664, Mac0Message, lambda: symmetric_key(bytes(range(32)), kid=KID_VALUE)
    ),
    "mac0-HMAC256/256": Case(
        Kind.MAC, Alg.HMAC_256_256, pyalg.HMAC256, Mac0Message, lambda: symmetric_key(bytes(range(32)), kid=KID_VALUE)
    ),
    "encrypt0-AES-CCM-16-64-128": Case(
        Kind.AEAD, Alg.AES_CCM_16_64_128, pyalg.AESCCM1664128, Enc0Message,
        lambda: symmetric_key(bytes(range(0x40, 0x50)), kid=KID_VALUE),
    ),
    "encrypt0-AES-CCM-16-128-256": Case(
        Kind.AEAD, Alg.AES_CCM_16_128_256, pyalg.AESCCM16128256, Enc0Message,
        lambda: symmetric_key(bytes(range(0x40, 0x60)), kid=KID_VALUE),
    ),
}
TAGS = {Kind.SIGN: 18, Kind.MAC: 17, Kind.AEAD: 16}


@pytest.fixture(scope="module")
def keys() -> dict[str, CoseKey]:
    return {name: case.make_key() for name, case in CASES.items()}


def _verifier(key: CoseKey) -> CoseKey:
    return key if key.is_symmetric else key.public()


def _peer_key(key: CoseKey) -> Any:
    return PyCoseKey.from_dict(key.to_map())


def _peer_open(name: str, message: bytes, key: CoseKey) -> bytes:
    """Verify/decrypt with pycose; return the payload, raise AssertionError if rejected."""
    case = CASES[name]
    item = cbor2.loads(message)
    if isinstance(item, cbor2.CBORTag):
        msg = CoseMessage.decode(message)
        assert isinstance(msg, case.message)
    else:  # pycose's decode() refuses untagged input
        msg = case.message.from_cose_obj(list(item), True)
    msg.key = _peer_key(_verifier(key))
    if case.kind is Kind.SIGN:
        assert msg.verify_signature(), "pycose: signature does not verify"
        return msg.payload  # type: ignore[no-any-return]
    if case.kind is Kind.MAC:
        assert msg.verify_tag(), "pycose: MAC does not verify"
        return msg.payload  # type: ignore[no-any-return]
    return msg.decrypt()  # type: ignore[no-any-return]


def _peer_build(name: str, payload: bytes, key: CoseKey, *, layout: str, tagged: bool) -> bytes:
    """A pycose-built message: Algorithm and KID placed per ``layout``, IV unprotected."""
    case = CASES[name]
    phdr: dict[Any, Any] = {}
    uhdr: dict[Any, Any] = {}
    alg_bucket, kid_bucket = {
        "alg-protected/kid-unprotected": (phdr, uhdr),
        "all-protected": (phdr, phdr),
        "all-unprotected": (uhdr, uhdr),
    }[layout]
    alg_bucket[Algorithm] = case.peer_alg
    kid_bucket[KID] = KID_VALUE
    if case.kind is Kind.AEAD:
        uhdr[IV] = PEER_IV
    msg = case.message(phdr=phdr, uhdr=uhdr, payload=payload)
    msg.key = _peer_key(key)
    return msg.encode(tag=tagged)  # type: ignore[no-any-return]


def _ours_verify(token: bytes, key: CoseKey) -> AccessTokenClaims:
    return verify_token(token, KeyRing([_verifier(key)]), audience=AUDIENCE, clock=lambda: NOW)


def _issue(name: str, key: CoseKey, *, tagged: bool) -> bytes:
    case = CASES[name]
    return issue_token(CLAIMS, key, kind=case.kind, alg=case.alg, tagged=tagged, rng=_rng)


# --- pycose opens what we build -------------------------------------------------------


@pytest.mark.parametrize("tagged", [True, False], ids=["tagged", "untagged"])
@pytest.mark.parametrize("name", list(CASES))
def test_pycose_opens_our_token(name: str, tagged: bool, keys: dict[str, CoseKey]) -> None:
    key = keys[name]
    token = _issue(name, key, tagged=tagged)
    payload = _peer_open(name, token, key)
    assert payload == CLAIMS.encode()
    assert AccessTokenClaims.decode(payload) == CLAIMS


@pytest.mark.parametrize("name", list(CASES))
def test_pycose_opens_our_cose_message(name: str, keys: dict[str, CoseKey]) -> None:
    key, case = keys[name], CASES[name]
    message = cose.build(case.kind, RAW_PAYLOAD, key, alg=case.alg, kid=KID_VALUE, tagged=True, rng=_rng)
    assert _peer_open(name, message, key) == RAW_PAYLOAD
    parsed = CoseMessage.decode(message)
    assert parsed.get_attr(KID) == KID_VALUE
    assert parsed.get_attr(Algorithm) is case.peer_alg


@pytest.mark.parametrize("where", ["body", "last"])
@pytest.mark.parametrize("name", list(CASES))
def test_pycose_rejects_our_tampered_token(name: str, where: str, keys: dict[str, CoseKey]) -> None:
    key, case = keys[name], CASES[name]
    bad = tamper(_issue(name, key, tagged=True), where)
    if case.kind is Kind.AEAD:
        with pytest.raises(InvalidTag):
            _peer_open(name, bad, key)
    else:
        with pytest.raises(AssertionError, match="does not verify"):
            _peer_open(name, bad, key)


# --- we open what pycose builds -------------------------------------------------------

LAYOUTS = ["alg-protected/kid-unprotected", "all-protected", "all-unprotected"]


@pytest.mark.parametrize("tagged", [True, False], ids=["tagged", "untagged"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", list(CASES))
def test_we_verify_pycose_token(name: str, layout: str, tagged: bool, keys: dict[str, CoseKey]) -> None:
    key, case = keys[name], CASES[name]
    token = _peer_build(name, CLAIMS.encode(), key, layout=layout, tagged=tagged)
    item = cbor2.loads(token)
    assert (isinstance(item, cbor2.CBORTag) and item.tag == TAGS[case.kind]) if tagged else isinstance(item, list)
    assert _ours_verify(token, key) == CLAIMS

    msg = cose.parse(token)
    assert (msg.kind, msg.alg, msg.kid) == (case.kind, int(case.alg), KID_VALUE)
    assert cose.open_message(msg, _verifier(key)) == CLAIMS.encode()
    # the peer agrees with itself on the same bytes
    assert _peer_open(name, token, key) == CLAIMS.encode()


@pytest.mark.parametrize("where", ["body", "last"])
@pytest.mark.parametrize("name", list(CASES))
def test_we_reject_tampered_pycose_token(name: str, where: str, keys: dict[str, CoseKey]) -> None:
    key = keys[name]
    token = _peer_build(name, CLAIMS.encode(), key, layout="alg-protected/kid-unprotected", tagged=True)
    assert _ours_verify(token, key) == CLAIMS
    bad = tamper(token, where)
    with pytest.raises(VerificationError):
        _ours_verify(bad, key)


@pytest.mark.parametrize("name", list(CASES))
def test_wrong_key_rejected_both_ways(name: str, keys: dict[str, CoseKey]) -> None:
    key, case = keys[name], CASES[name]
    other = case.make_key() if not key.is_symmetric else symmetric_key(bytes(b ^ 0x55 for b in key.k or b""),
                                                                      kid=KID_VALUE)
    theirs = _peer_build(name, CLAIMS.encode(), key, layout="alg-protected/kid-unprotected", tagged=True)
    with pytest.raises(VerificationError):
        _ours_verify(theirs, other)
    ours = _issue(name, key, tagged=True)
    with pytest.raises((AssertionError, InvalidTag)):
        _peer_open(name, ours, other)
