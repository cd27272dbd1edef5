"""RFC 8392 Appendix A: the published CWT examples through ace's COSE and CWT layers.

A.3 (Sign1, ES256), A.4 (Mac0 inside the CWT tag 61), A.5 (Encrypt0, AES-CCM-16-64-128),
A.6 (Sign1 nested in Encrypt0) and A.7 (Mac0 with a floating-point iat) are opened both
with ``cose.parse``/``cose.open_message`` and with ``cwt.verify_token``.

RFC 8392 A.2.2 caveat (see the vectors README): the published hex of the 256-bit key says
alg 10 (AES-CCM-16-64-128), not HMAC 256/64, so only its ``k`` is used for A.4 and A.7.
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from vectors import load_vector

from ace.cbor import codec
from ace.cbor.labels import Alg, Curve, KeyType
from ace.errors import ClaimsError, RemoteError, UnknownKeyError, VerificationError
from ace.tokens import cose, cwt
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cose import CoseMessage
from ace.tokens.crypto import Kind
from ace.tokens.keys import CoseKey, symmetric_key

AUDIENCE = "coap://light.example.com"
A1_ISS = "coap://as.example.com"
A1_SUB = "erikw"
A1_EXP = 1444064944
A1_NBF = A1_IAT = 1443944944
A1_CTI = bytes.fromhex("0b71")
INSIDE_WINDOW = 1444000000.0  # nbf < now < exp
KID_128 = b"Symmetric128"
KID_256 = b"Symmetric256"
KID_EC = b"AsymmetricECDSA256"


def _vectors() -> dict[str, Any]:
    data: dict[str, Any] = load_vector("cwt_rfc8392.json")["vectors"]
    return data


V = _vectors()


def _hex(name: str) -> bytes:
    return bytes.fromhex(V[name]["hex"])


A1 = _hex("A.1_claims_set")
A3 = _hex("A.3_signed_cwt")
A4 = _hex("A.4_maced_cwt_with_cwt_tag")
A5 = _hex("A.5_encrypted_cwt")
A6 = _hex("A.6_nested_cwt")
A7 = _hex("A.7_maced_cwt_float_iat")

KEY_128 = CoseKey.decode(_hex("A.2.1_key_symmetric_128"))
# A.2.2: only k (the published hex carries alg 10, see the module docstring)
KEY_256 = symmetric_key(bytes.fromhex(V["A.2.2_key_symmetric_256"]["k_hex"]), kid=KID_256)
KEY_EC_PRIVATE = CoseKey.decode(_hex("A.2.3_key_ecdsa_p256"))
KEY_EC = KEY_EC_PRIVATE.public()


def _flip(b: bytes) -> bytes:
    return bytes([b[0] ^ 0x01]) + b[1:]


def _other_p256(kid: bytes) -> CoseKey:
    """A fixed P-256 public key that is not the A.2.3 key."""
    nums = ec.derive_private_key(0x1234567890ABCDEF, ec.SECP256R1()).public_key().public_numbers()
    return CoseKey(kty=KeyType.EC2, crv=Curve.P_256, kid=kid, alg=int(Alg.ES256),
                   x=nums.x.to_bytes(32, "big"), y=nums.y.to_bytes(32, "big"))


WRONG_128 = symmetric_key(_flip(KEY_128.k or b""), kid=KID_128, alg=KEY_128.alg)
WRONG_256 = symmetric_key(_flip(KEY_256.k or b""), kid=KID_256)
WRONG_EC = _other_p256(KID_EC)


def _parse_cwt(data: bytes) -> CoseMessage:
    """``cose.parse`` after stripping the optional CWT tag 61 (which parse does not accept)."""
    item = codec.loads(data)
    if isinstance(item, cbor2.CBORTag) and item.tag == 61:
        item = item.value
    return cose.parse(item)


def _assert_a1(claims: AccessTokenClaims) -> None:
    assert claims.iss == A1_ISS
    assert claims.sub == A1_SUB
    assert claims.aud == AUDIENCE
    assert claims.audiences == (AUDIENCE,)
    assert claims.exp == A1_EXP
    assert claims.nbf == A1_NBF
    assert claims.iat == A1_IAT
    assert claims.cti == A1_CTI
    assert claims.cnf is None and claims.scope is None and claims.extra == ()


def _verify(token: bytes, keys: list[CoseKey], audience: str | None = AUDIENCE,
            now: float = INSIDE_WINDOW) -> AccessTokenClaims:
    return cwt.verify_token(token, cwt.KeyRing(keys), audience=audience, clock=lambda: now)


# --- the key and claims figures ---------------------------------------------------------


def test_a1_claims_decode_to_the_published_values() -> None:
    _assert_a1(AccessTokenClaims.decode(A1))


def test_a1_claims_reencode_byte_exactly() -> None:
    assert AccessTokenClaims.decode(A1).encode() == A1


def test_a2_keys_decode() -> None:
    assert KEY_128.kty is KeyType.SYMMETRIC
    assert KEY_128.kid == KID_128
    assert KEY_128.alg == Alg.AES_CCM_16_64_128
    assert KEY_128.k == bytes.fromhex(V["A.2.1_key_symmetric_128"]["k_hex"])
    assert KEY_EC_PRIVATE.crv is Curve.P_256
    assert KEY_EC_PRIVATE.kid == KID_EC
    assert KEY_EC_PRIVATE.alg == Alg.ES256
    assert KEY_EC_PRIVATE.x == bytes.fromhex(V["A.2.3_key_ecdsa_p256"]["x_hex"])
    assert KEY_EC_PRIVATE.y == bytes.fromhex(V["A.2.3_key_ecdsa_p256"]["y_hex"])
    assert KEY_EC_PRIVATE.d == bytes.fromhex(V["A.2.3_key_ecdsa_p256"]["d_hex"])


def test_a2_2_published_key_is_pinned_to_aes_ccm_and_refused_for_hmac() -> None:
    """The caveat itself: the literal A.2.2 COSE_Key says alg 10, so it cannot verify A.4."""
    published = CoseKey.decode(_hex("A.2.2_key_symmetric_256"))
    assert published.alg == Alg.AES_CCM_16_64_128
    assert published.k == KEY_256.k
    assert published.kid == KID_256
    with pytest.raises(VerificationError):
        cose.open_message(_parse_cwt(A4), published)


# --- low level: cose.parse + cose.open_message -----------------------------------------


def test_a3_sign1_low_level() -> None:
    msg = cose.parse(A3)
    assert msg.kind is Kind.SIGN
    assert msg.cbor_tag == 18
    assert msg.alg == Alg.ES256
    assert msg.kid == KID_EC
    assert cose.open_message(msg, KEY_EC) == A1
    assert cose.open_message(msg, KEY_EC_PRIVATE) == A1  # d is simply not used


def test_a4_mac0_with_cwt_tag_low_level() -> None:
    outer = codec.loads(A4)
    assert isinstance(outer, cbor2.CBORTag) and outer.tag == 61
    assert isinstance(outer.value, cbor2.CBORTag) and outer.value.tag == 17
    with pytest.raises(RemoteError):  # cose.parse is the COSE layer: tag 61 is cwt's business
        cose.parse(A4)
    msg = cose.parse(outer.value)
    assert msg.kind is Kind.MAC
    assert msg.alg == Alg.HMAC_256_64
    assert msg.kid == KID_256
    assert cose.open_message(msg, KEY_256) == A1


def test_a5_encrypt0_low_level() -> None:
    msg = cose.parse(A5)
    assert msg.kind is Kind.AEAD
    assert msg.alg == Alg.AES_CCM_16_64_128
    assert msg.kid == KID_128
    assert cose.open_message(msg, KEY_128) == A1


def test_a6_nested_low_level() -> None:
    outer = cose.parse(A6)
    assert outer.kind is Kind.AEAD and outer.kid == KID_128
    inner_bytes = cose.open_message(outer, KEY_128)
    assert inner_bytes == A3
    assert inner_bytes == bytes.fromhex(V["A.6_nested_cwt"]["decrypted_plaintext_hex_computed"])
    inner = cose.parse(inner_bytes)
    assert inner.kind is Kind.SIGN and inner.kid == KID_EC
    assert cose.open_message(inner, KEY_EC) == A1


def test_a7_mac0_float_iat_low_level() -> None:
    msg = cose.parse(A7)
    assert msg.kind is Kind.MAC and msg.kid == KID_256
    payload = cose.open_message(msg, KEY_256)
    assert codec.loads(payload) == {6: 1443944944.5}
    claims = AccessTokenClaims.decode(payload)
    assert claims.iat == 1443944944.5
    assert isinstance(claims.iat, float)
    assert claims.encode() == payload  # the double stays a double (fb ...)


# --- high level: cwt.verify_token -------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "keys"),
    [
        pytest.param(A3, [KEY_EC], id="A.3-sign1"),
        pytest.param(A4, [KEY_256], id="A.4-mac0-cwt-tag"),
        pytest.param(A5, [KEY_128], id="A.5-encrypt0"),
        pytest.param(A6, [KEY_128, KEY_EC], id="A.6-nested"),
    ],
)
def test_verify_token_yields_a1_claims(token: bytes, keys: list[CoseKey]) -> None:
    _assert_a1(_verify(token, keys))


def test_verify_token_a4_envelope_reports_cwt_tag() -> None:
    env = cwt.open_envelope(A4)
    assert env.cwt_tagged
    assert env.message.kind is Kind.MAC
    assert cwt.peek_kid(A4) == KID_256


def test_verify_token_a7_float_iat() -> None:
    # A.7 carries only iat: no aud to check, no exp/nbf window
    claims = _verify(A7, [KEY_256], audience=None)
    assert claims.iat == 1443944944.5
    assert claims.aud is None and claims.exp is None


def test_verify_token_a7_with_an_audience_is_refused() -> None:
    with pytest.raises(ClaimsError):
        _verify(A7, [KEY_256])


def test_verify_token_a6_needs_the_inner_key_too() -> None:
    with pytest.raises(UnknownKeyError):  # inner kid AsymmetricECDSA256 is unknown
        _verify(A6, [KEY_128])


@pytest.mark.parametrize("now", [A1_NBF - 3600, A1_EXP + 3600], ids=["before-nbf", "after-exp"])
def test_verify_token_outside_validity_window(now: float) -> None:
    with pytest.raises(ClaimsError):
        _verify(A3, [KEY_EC], now=now)


def test_verify_token_wrong_audience() -> None:
    with pytest.raises(ClaimsError) as info:
        _verify(A3, [KEY_EC], audience="coap://other.example.com")
    assert info.value.coap_code == (4, 3)


# --- wrong keys -------------------------------------------------------------------------

WRONG_KEY_CASES = [
    pytest.param(A3, WRONG_EC, id="A.3-sign1"),
    pytest.param(A4, WRONG_256, id="A.4-mac0-cwt-tag"),
    pytest.param(A5, WRONG_128, id="A.5-encrypt0"),
    pytest.param(A6, WRONG_128, id="A.6-nested-outer"),
    pytest.param(A7, WRONG_256, id="A.7-mac0-float"),
]


@pytest.mark.parametrize(("token", "key"), WRONG_KEY_CASES)
def test_wrong_key_low_level(token: bytes, key: CoseKey) -> None:
    msg = _parse_cwt(token)
    with pytest.raises(VerificationError) as info:
        cose.open_message(msg, key)
    assert info.value.coap_code == (4, 1)


@pytest.mark.parametrize(("token", "key"), WRONG_KEY_CASES)
def test_wrong_key_verify_token(token: bytes, key: CoseKey) -> None:
    # the wrong key carries the right kid, so the lookup finds it and verification fails
    keys = [key, KEY_EC] if token is A6 else [key]
    with pytest.raises(VerificationError):
        _verify(token, keys, audience=None)


def test_a6_wrong_inner_key() -> None:
    inner = cose.parse(cose.open_message(cose.parse(A6), KEY_128))
    with pytest.raises(VerificationError):
        cose.open_message(inner, WRONG_EC)
    with pytest.raises(VerificationError):
        _verify(A6, [KEY_128, WRONG_EC])


def test_symmetric_key_of_the_other_size_is_refused() -> None:
    """A.5 with the 256-bit key: the key length does not fit AES-CCM-16-64-128."""
    with pytest.raises(VerificationError):
        cose.open_message(cose.parse(A5), symmetric_key(KEY_256.k or b""))


@pytest.mark.parametrize(
    ("token", "key"),
    [
        pytest.param(A3, KEY_EC, id="A.3-sign1"),
        pytest.param(A5, KEY_128, id="A.5-encrypt0"),
        pytest.param(A7, KEY_256, id="A.7-mac0"),
    ],
)
def test_tampered_last_byte_fails(token: bytes, key: CoseKey) -> None:
    tampered = token[:-1] + bytes([token[-1] ^ 0x01])
    with pytest.raises(VerificationError):
        cose.open_message(cose.parse(tampered), key)
