"""RFC 8747 Section 3: the cnf examples through ``ace.tokens.cnf`` and the claims codec.

The ``cbor_hex`` of these examples was generated from the RFC's diagnostic notation (the
RFC prints no hex), so comparisons are structural (decoded maps), not byte-for-byte.
RFC 8747 3.3 labels claim 5 as "iat"; in RFC 8392 label 5 is nbf, and so it decodes here.
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from vectors import load_vector

from ace.cbor import codec
from ace.cbor.labels import Alg, Curve, KeyType
from ace.errors import DecodeError, ErrorCode, VerificationError
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import (
    Cnf,
    CoseKeyCnf,
    EncryptedCoseKeyCnf,
    KidCnf,
    cnf_from_map,
    cnf_to_map,
)
from ace.tokens.keys import CoseKey, symmetric_key


def _vectors() -> dict[str, Any]:
    data: dict[str, Any] = load_vector("pop_rfc8747.json")["vectors"]
    return data


V = _vectors()
CNF_CLAIM = 8


def _claims_map(name: str) -> dict[Any, Any]:
    value = codec.loads(bytes.fromhex(V[name]["cbor_hex"]))
    assert isinstance(value, dict)
    return value


def _cnf_map(name: str) -> dict[Any, Any]:
    cnf = _claims_map(name)[CNF_CLAIM]
    assert isinstance(cnf, dict)
    return cnf


ENCRYPTION_KEY = symmetric_key(bytes.fromhex(V["3.3_encrypted_cose_key"]["encryption_key_hex"]))
PLAINTEXT_KEY_HEX = V["3.3_symmetric_cose_key_plaintext"]["cbor_hex"]

CASES = [
    pytest.param("3.2_cose_key_asymmetric", CoseKeyCnf, id="3.2-COSE_Key"),
    pytest.param("3.3_encrypted_cose_key", EncryptedCoseKeyCnf, id="3.3-Encrypted_COSE_Key"),
    pytest.param("3.4_kid", KidCnf, id="3.4-kid"),
]


@pytest.mark.parametrize(("name", "cls"), CASES)
def test_cnf_decodes_to_the_right_dataclass(name: str, cls: type[Cnf]) -> None:
    assert type(cnf_from_map(_cnf_map(name))) is cls


@pytest.mark.parametrize(("name", "cls"), CASES)
def test_claims_decode_carries_the_cnf(name: str, cls: type[Cnf]) -> None:
    claims = AccessTokenClaims.decode(bytes.fromhex(V[name]["cbor_hex"]))
    assert type(claims.cnf) is cls
    assert claims.cnf == cnf_from_map(_cnf_map(name))


@pytest.mark.parametrize(("name", "cls"), CASES)
def test_cnf_round_trip_is_structurally_equal(name: str, cls: type[Cnf]) -> None:
    original = _cnf_map(name)
    assert cnf_to_map(cnf_from_map(original)) == original


@pytest.mark.parametrize(("name", "cls"), CASES)
def test_claims_round_trip_is_structurally_equal(name: str, cls: type[Cnf]) -> None:
    data = bytes.fromhex(V[name]["cbor_hex"])
    assert codec.loads(AccessTokenClaims.decode(data).encode()) == codec.loads(data)


def test_3_2_cose_key_fields() -> None:
    cnf = cnf_from_map(_cnf_map("3.2_cose_key_asymmetric"))
    assert isinstance(cnf, CoseKeyCnf)
    key = cnf.key
    assert key.kty is KeyType.EC2
    assert key.crv is Curve.P_256
    assert key.x == bytes.fromhex("d7cc072de2205bdc1537a543d53c60a6acb62eccd890c7fa27c9e354089bbe13")
    assert key.y == bytes.fromhex("f95e1d4b851a2cc80fff87d8e23f22afb725d535e515d020731e79a3b4e47120")
    assert key.d is None and key.kid is None and key.alg is None
    assert not key.has_private


def test_3_2_claims_fields() -> None:
    claims = AccessTokenClaims.decode(bytes.fromhex(V["3.2_cose_key_asymmetric"]["cbor_hex"]))
    assert claims.iss == "coaps://server.example.com"
    assert claims.aud == "coaps://client.example.org"
    assert claims.exp == 1879067471


def test_3_3_claims_fields_label_5_is_nbf() -> None:
    claims = AccessTokenClaims.decode(bytes.fromhex(V["3.3_encrypted_cose_key"]["cbor_hex"]))
    assert claims.iss == "coaps://server.example.com"
    assert claims.sub == "24400320"
    assert claims.aud == "s6BhdRkqt3"
    assert claims.exp == 1311281970
    assert claims.nbf == 1311280970  # shown as "/iat/ 5" in the RFC text
    assert claims.iat is None


def test_3_3_encrypted_member_is_kept_as_the_encrypt0() -> None:
    cnf = cnf_from_map(_cnf_map("3.3_encrypted_cose_key"))
    assert isinstance(cnf, EncryptedCoseKeyCnf)
    assert cnf.encrypted == bytes.fromhex(V["3.3_encrypted_cose_key"]["cose_encrypt0_hex"])


def test_3_3_encrypted_cose_key_decrypts_to_the_symmetric_key() -> None:
    cnf = cnf_from_map(_cnf_map("3.3_encrypted_cose_key"))
    assert isinstance(cnf, EncryptedCoseKeyCnf)
    key = cnf.decrypt(ENCRYPTION_KEY)
    expected = CoseKey.decode(bytes.fromhex(PLAINTEXT_KEY_HEX))
    assert key == expected
    assert key.kty is KeyType.SYMMETRIC
    assert key.alg == Alg.HMAC_256_256
    assert key.k == bytes.fromhex("6684523ab17337f173500e5728c628547cb37dfe68449c65f885d1b73b49eae1")
    # structurally the RFC's plaintext (the computed plaintext orders the map 3, 1, -1)
    assert key.to_map() == codec.loads(bytes.fromhex(PLAINTEXT_KEY_HEX))
    computed = bytes.fromhex(V["3.3_encrypted_cose_key"]["decrypted_plaintext_hex_computed"])
    assert codec.loads(computed) == key.to_map()


def test_3_3_tagged_encrypt0_is_accepted_too() -> None:
    member = _cnf_map("3.3_encrypted_cose_key")[2]
    cnf = cnf_from_map({2: cbor2.CBORTag(16, member)})
    assert isinstance(cnf, EncryptedCoseKeyCnf)
    assert cnf.decrypt(ENCRYPTION_KEY) == CoseKey.decode(bytes.fromhex(PLAINTEXT_KEY_HEX))


def test_3_3_wrong_key_does_not_decrypt() -> None:
    cnf = cnf_from_map(_cnf_map("3.3_encrypted_cose_key"))
    assert isinstance(cnf, EncryptedCoseKeyCnf)
    wrong = symmetric_key(bytes(16))
    with pytest.raises(VerificationError):
        cnf.decrypt(wrong)


def test_3_4_kid() -> None:
    cnf = cnf_from_map(_cnf_map("3.4_kid"))
    assert cnf == KidCnf(bytes.fromhex("dfd1aa976d8d4575a0fe34b96de2bfad"))


def test_cnf_with_two_methods_is_refused() -> None:
    both = {**_cnf_map("3.4_kid"), **_cnf_map("3.2_cose_key_asymmetric")}
    with pytest.raises(DecodeError) as info:
        cnf_from_map(both)
    assert info.value.error_code is ErrorCode.INVALID_REQUEST


def test_cnf_without_a_known_method_is_unsupported_pop_key() -> None:
    with pytest.raises(DecodeError) as info:
        cnf_from_map({99: b"x"})
    assert info.value.error_code is ErrorCode.UNSUPPORTED_POP_KEY
