"""ace.tokens.encrypt: encrypting to a shared key (COSE_Encrypt0) or a public key (COSE_Encrypt,
ECDH-ES + HKDF-256), nested Sign1-in-Encrypt tokens, and Encrypted_COSE_Key in cnf."""

from __future__ import annotations

import random

import cbor2
import pytest
from support import NOW

from ace.cbor.labels import Alg, Curve, KeyType
from ace.errors import RemoteError
from ace.tokens import cose
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, EncryptedCoseKeyCnf, cnf_from_map, cnf_to_map, encrypted_cnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, canonical_token, issue_token, peek_kid, verify_token
from ace.tokens.encrypt import Recipient, decrypt, encrypt_to
from ace.tokens.keyring import rs_keyring
from ace.tokens.keys import CoseKey, symmetric_key

RS_P256 = generate(Curve.P_256, kid=b"rs-ec")
RS_X25519 = generate(Curve.X25519, kid=b"rs-x")
AS_SIGN = generate(Curve.P_256, kid=b"as")
SHARED = symmetric_key(bytes(range(16)), kid=b"shared")
POP = symmetric_key(bytes(range(100, 132)), kid=b"pop")


def rng(seed: int = 1) -> random.Random:
    return random.Random(seed)


@pytest.mark.parametrize("rs_key", [RS_P256, RS_X25519, SHARED], ids=["p256", "x25519", "shared"])
def test_round_trip(rs_key: CoseKey) -> None:
    public = rs_key if rs_key.is_symmetric else rs_key.public()
    message = encrypt_to(b"hello", Recipient(public), external_aad=b"aad")
    msg = cose.parse(message)
    assert msg.kind is Kind.AEAD and msg.key_id == rs_key.kid
    assert msg.cbor_tag == (16 if rs_key.is_symmetric else 96)
    assert len(msg.recipients) == (0 if rs_key.is_symmetric else 1)
    assert decrypt(message, KeyRing([rs_key]), external_aad=b"aad") == b"hello"


def test_ecdh_default_content_alg_and_deterministic_rng() -> None:
    a = encrypt_to(b"x", Recipient(RS_P256.public()), rng=rng().randbytes)
    b = encrypt_to(b"x", Recipient(RS_P256.public()), rng=rng().randbytes)
    assert a == b
    assert cose.parse(a).alg == Alg.AES_CCM_16_64_128


@pytest.fixture
def claims() -> AccessTokenClaims:
    return AccessTokenClaims(iss="as", aud="rs1", exp=NOW + 3600, iat=NOW, cti=b"\x01", scope="r",
                             cnf=encrypted_cnf(POP, Recipient(RS_P256.public())))


@pytest.mark.parametrize("rs_key", [RS_P256, RS_X25519, SHARED], ids=["p256", "x25519", "shared"])
def test_nested_sign1_in_encryption(claims: AccessTokenClaims, rs_key: CoseKey) -> None:
    to = Recipient(rs_key if rs_key.is_symmetric else rs_key.public())
    token = issue_token(claims, AS_SIGN, kind=Kind.SIGN, encrypt_to=to)
    assert peek_kid(token) == rs_key.kid
    keys = KeyRing([AS_SIGN.public(), rs_key])
    assert verify_token(token, keys, audience="rs1", clock=lambda: NOW) == claims
    assert canonical_token(token) == token
    assert cose.parse(canonical_token(token, "cose")).cbor_tag == (16 if rs_key.is_symmetric else 96)


def test_encrypt_to_refuses_aead_kind(claims: AccessTokenClaims) -> None:
    with pytest.raises(ValueError, match="SIGN or MAC"):
        issue_token(claims, SHARED, encrypt_to=Recipient(RS_P256.public()))


def test_encrypted_cnf_round_trip() -> None:
    cnf = encrypted_cnf(POP, Recipient(RS_X25519.public()), rng=rng().randbytes)
    again = cnf_from_map(cbor2.loads(cbor2.dumps(cnf_to_map(cnf))))
    assert isinstance(again, EncryptedCoseKeyCnf) and again == cnf
    assert again.decrypt(KeyRing([RS_X25519])) == POP
    assert again.decrypt(RS_X25519) == POP
    shared = encrypted_cnf(POP, Recipient(SHARED))
    assert shared.decrypt(SHARED) == POP and shared.decrypt(KeyRing([SHARED])) == POP
    assert not isinstance(again, CoseKeyCnf)


def test_ecdh_refuses_unusable_recipient_keys() -> None:
    with pytest.raises(ValueError):
        encrypt_to(b"x", Recipient(generate(Curve.ED25519).public()))
    with pytest.raises(ValueError):
        encrypt_to(b"x", Recipient(RS_P256.public(), alg=int(Alg.HMAC_256_64)))
    assert CoseKey(kty=KeyType.EC2, crv=Curve.P_256, x=RS_P256.x, y=RS_P256.y).d is None


@pytest.mark.parametrize("bad", [CoseKey(kty=KeyType.OKP, crv=Curve.X25519, x=bytes(32), kid=b"x0"),
                                 CoseKey(kty=KeyType.EC2, crv=Curve.P_256, x=bytes(32), y=bytes(31) + b"\x01")],
                         ids=["x25519-low-order", "p256-off-curve"])
def test_encrypt_to_an_invalid_public_key_is_a_value_error(bad: CoseKey) -> None:
    """The AS's own configuration at fault (add-rs, /token: 5.00), not the client's token (4.01)."""
    with pytest.raises(ValueError, match="not a valid point") as raised:
        encrypt_to(b"x", Recipient(bad))
    assert not isinstance(raised.value, RemoteError)  # never answered to the client as its token's fault


def test_rs_keyring_never_verifies_a_signature_with_the_rs_own_key(claims: AccessTokenClaims) -> None:
    # one key, one use: a token signed with the RS's own ECDH key (kid rs-ec) is refused by the RS's ring
    forged = issue_token(claims, RS_P256, kind=Kind.SIGN, encrypt_to=Recipient(RS_P256.public()))
    ring = rs_keyring([AS_SIGN.public(), RS_P256])
    with pytest.raises(RemoteError):
        verify_token(forged, ring, audience="rs1", clock=lambda: NOW)
    assert [k.alg for k in ring.keys_for(b"rs-ec")] == [int(Alg.ECDH_ES_HKDF_256)]
    genuine = issue_token(claims, AS_SIGN, kind=Kind.SIGN, encrypt_to=Recipient(RS_P256.public()))
    assert verify_token(genuine, ring, audience="rs1", clock=lambda: NOW) == claims
