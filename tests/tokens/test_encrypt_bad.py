"""Bad-input rows for COSE_Encrypt (ECDH-ES recipient), nested tokens and Encrypted_COSE_Key:
each row names the input, the error class and the CoAP code the RS would answer with.

Not here (the AS/RS side's job, issue 16's other half): refusing a COSE_Key sent in the clear
where the RS requires an encrypted one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import cbor2
import pytest
from support import NOW, counter_rng, fixed_clock

from ace.cbor.labels import Alg, Curve
from ace.errors import DecodeError, RemoteError, UnknownKeyError, VerificationError
from ace.tokens import cose, ecdh
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import EncryptedCoseKeyCnf, encrypted_cnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token, verify_token
from ace.tokens.encrypt import Recipient, decrypt, encrypt_to
from ace.tokens.keys import CoseKey, symmetric_key

RS = generate(Curve.P_256, kid=b"rs")
RS_X = generate(Curve.X25519, kid=b"rsx")
OTHER = generate(Curve.P_256, kid=b"rs")  # same kid, another key pair
AS_KEY = generate(Curve.P_256, kid=b"as")
ED = generate(Curve.ED25519, kid=b"rs")
K16 = symmetric_key(bytes(range(16)), kid=b"rs")
CLAIMS = AccessTokenClaims(aud="rs1", exp=NOW + 60, cti=b"\x01", scope="r")
P256_ORDER_Y_BUMP = 1  # y + 1: (x, y + 1) is not on P-256


def _to_rs(payload: bytes = b"secret", key: CoseKey = RS) -> list[Any]:
    item = cbor2.loads(encrypt_to(payload, Recipient(key.public()), rng=counter_rng()))
    assert isinstance(item, cbor2.CBORTag) and item.tag == 96
    return list(item.value)


def _enc(f: Callable[[list[Any]], None], key: CoseKey = RS) -> bytes:
    parts = _to_rs(key=key)
    f(parts)
    return cbor2.dumps(cbor2.CBORTag(96, parts))


def _eph(parts: list[Any]) -> dict[int, Any]:
    eph: dict[int, Any] = parts[3][0][1][-1]
    return eph


def _set_eph(value: object) -> Callable[[list[Any]], None]:
    def f(parts: list[Any]) -> None:
        parts[3][0][1][-1] = value
    return f


def _bump_y(parts: list[Any]) -> None:
    y = int.from_bytes(_eph(parts)[-3], "big") + P256_ORDER_Y_BUMP
    _eph(parts)[-3] = y.to_bytes(32, "big")


def _other_valid_point(parts: list[Any]) -> None:
    parts[3][0][1][-1] = ecdh.ephemeral_key(Curve.P_256, counter_rng(7)).public().to_map()


def _with_d(parts: list[Any]) -> None:
    _eph(parts)[-4] = bytes(32)


def _recipient_protected(alg: int) -> Callable[[list[Any]], None]:
    def f(parts: list[Any]) -> None:
        parts[3][0][0] = cbor2.dumps({1: alg})
    return f


def _content_alg(alg: int) -> Callable[[list[Any]], None]:
    def f(parts: list[Any]) -> None:
        parts[0] = cbor2.dumps({1: alg})
    return f


def _set(path: tuple[int, ...], value: object) -> Callable[[list[Any]], None]:
    def f(parts: list[Any]) -> None:
        target: Any = parts
        for i in path[:-1]:
            target = target[i]
        target[path[-1]] = value
    return f


def _encrypt0_naming(key_kid: bytes) -> bytes:
    return cose.build(Kind.AEAD, b"secret", replace(K16, kid=key_kid), kid=key_kid, tagged=True, rng=counter_rng())


# (id, message, keys, error class): what ``decrypt`` raises
ROWS: list[tuple[str, bytes, list[CoseKey], type[RemoteError]]] = [
    ("wrong recipient key (same kid)", _enc(lambda p: None), [OTHER], VerificationError),
    ("unknown recipient kid", _enc(lambda p: None), [replace(RS, kid=b"other")], UnknownKeyError),
    ("no kid, keys only by kid", _enc(lambda p: p[3][0][1].pop(4)), [RS], UnknownKeyError),
    ("tampered ephemeral key (another valid point)", _enc(_other_valid_point), [RS], VerificationError),
    ("ephemeral key not on the curve", _enc(_bump_y), [RS], VerificationError),
    ("ephemeral X25519 key for a P-256 recipient",
     _enc(_set_eph(RS_X.public().to_map())), [RS], VerificationError),
    ("ephemeral P-256 key for an X25519 recipient",
     _enc(_set_eph(RS.public().to_map()), key=RS_X), [RS_X], VerificationError),
    ("X25519 low-order ephemeral point", _enc(_set_eph({1: 1, -1: 4, -2: bytes(32)}), key=RS_X), [RS_X],
     VerificationError),
    ("ephemeral key with its private part", _enc(_with_d), [RS], VerificationError),
    ("ephemeral key of an unsupported curve", _enc(_set_eph({1: 2, -1: 2, -2: bytes(48), -3: bytes(48)})), [RS],
     DecodeError),
    ("ephemeral key missing", _enc(lambda p: p[3][0][1].pop(-1)), [RS], DecodeError),
    ("ephemeral key not a map", _enc(_set_eph(b"\x04" + bytes(64))), [RS], DecodeError),
    ("-25 recipient on a symmetric key", _enc(lambda p: None), [K16], VerificationError),
    ("-25 recipient on an Ed25519 signing key", _enc(lambda p: None), [ED], VerificationError),
    ("-25 recipient on a key pinned to ES256", _enc(lambda p: None), [replace(RS, alg=int(Alg.ES256))],
     VerificationError),
    ("-25 recipient on the AS's public key (no d)", _enc(lambda p: None), [AS_KEY.public().with_kid(b"rs")],
     VerificationError),
    ("direct (-6) recipient on an EC key", _enc(_recipient_protected(int(Alg.DIRECT))), [RS], VerificationError),
    ("A128KW (-3) recipient", _enc(_recipient_protected(-3)), [RS], VerificationError),
    ("recipient alg unprotected", _enc(lambda p: (p[3][0].__setitem__(0, b""), p[3][0][1].__setitem__(1, -25))),
     [RS], VerificationError),
    ("content alg an array", _enc(_set((0,), cbor2.dumps({1: [10]}))), [RS], VerificationError),
    ("recipient alg an array", _enc(_set((3, 0, 0), cbor2.dumps({1: [-25]}))), [RS], VerificationError),
    ("content alg a MAC alg", _enc(_content_alg(int(Alg.HMAC_256_256))), [RS], VerificationError),
    ("content alg a signature alg", _enc(_content_alg(int(Alg.ES256))), [RS], VerificationError),
    ("content alg changed (KDF binds it)", _enc(_content_alg(int(Alg.AES_CCM_16_64_256))), [RS],
     VerificationError),
    ("recipient protected re-encoded (KDF binds it)", _enc(_set((3, 0, 0), b"\xa1\x01\x39\x00\x18")), [RS],
     RemoteError),
    ("two recipients", _enc(lambda p: p[3].append(p[3][0])), [RS], DecodeError),
    ("no recipient", _enc(_set((3,), [])), [RS], DecodeError),
    ("recipient with a ciphertext (key wrap)", _enc(_set((3, 0, 2), bytes(16))), [RS], DecodeError),
    ("nested recipients", _enc(lambda p: p[3][0].append([])), [RS], DecodeError),
    ("IV in the recipient", _enc(_set((3, 0, 1, 5), bytes(13))), [RS], DecodeError),
    ("kid in the content layer", _enc(_set((1, 4), b"rs")), [RS], DecodeError),
    ("Partial IV in the content layer", _enc(_set((1, 6), b"\x01")), [RS], DecodeError),
    ("recipient kid too long", _enc(_set((3, 0, 1, 4), bytes(300))), [RS], DecodeError),
    ("IV of the wrong length", _enc(_set((1, 5), bytes(12))), [RS], VerificationError),
    ("ciphertext tampered", _enc(lambda p: p.__setitem__(2, bytes([p[2][0] ^ 1]) + p[2][1:])), [RS],
     VerificationError),
    ("detached ciphertext", _enc(_set((2,), None)), [RS], DecodeError),
    ("Encrypt0 alg on a Sign1 key (kid names the AS key)", _encrypt0_naming(b"as"), [AS_KEY.public()],
     VerificationError),
    ("Encrypt0 alg on the RS's ECDH key", _encrypt0_naming(b"rs"), [RS], VerificationError),
    ("oversized message", encrypt_to(bytes(20000), Recipient(RS.public()), rng=counter_rng()), [RS], DecodeError),
]


@pytest.mark.parametrize(("message", "keys", "error"), [pytest.param(*r[1:], id=r[0]) for r in ROWS])
def test_bad_encrypted_message(message: bytes, keys: list[CoseKey], error: type[RemoteError]) -> None:
    with pytest.raises(error) as info:
        decrypt(message, KeyRing(keys))
    assert info.value.coap_code == ((4, 1) if issubclass(info.type, VerificationError | UnknownKeyError)
                                    else info.value.coap_code)
    if error is DecodeError:
        assert info.value.coap_code == (4, 0)


def test_right_keys_open_the_unmodified_message() -> None:
    assert decrypt(_enc(lambda p: None), KeyRing([OTHER, AS_KEY.public(), RS])) == b"secret"


def _nested(signer: CoseKey, to: CoseKey) -> bytes:
    return issue_token(CLAIMS, signer, kind=Kind.SIGN, encrypt_to=Recipient(to.public()), rng=counter_rng())


@pytest.mark.parametrize(("token", "keys", "error"), [
    pytest.param(_nested(AS_KEY, RS), [RS], UnknownKeyError, id="AS key unknown"),
    pytest.param(_nested(replace(OTHER, kid=b"as"), RS), [RS, AS_KEY.public()], VerificationError,
                 id="inner signed by another key"),
    pytest.param(_nested(AS_KEY, RS), [OTHER, AS_KEY.public()], VerificationError, id="outer to another RS key"),
    pytest.param(_nested(AS_KEY, RS), [AS_KEY.public()], UnknownKeyError, id="RS private key missing"),
    pytest.param(encrypt_to(CLAIMS.encode(), Recipient(RS.public()), rng=counter_rng()), [RS, AS_KEY.public()],
                 VerificationError, id="claims encrypted to the RS's public key, not signed inside"),
    pytest.param(encrypt_to(_nested(AS_KEY, RS), Recipient(RS.public()), rng=counter_rng()),
                 [RS, AS_KEY.public()], VerificationError, id="ECDH inside ECDH"),
])
def test_bad_nested_tokens(token: bytes, keys: list[CoseKey], error: type[RemoteError]) -> None:
    accept = frozenset({Kind.AEAD, Kind.SIGN})
    with pytest.raises(error):
        verify_token(token, KeyRing(keys), audience="rs1", clock=fixed_clock(), accept=accept)


@pytest.mark.parametrize(("plaintext", "error"), [
    (b"\x01", DecodeError), (cbor2.dumps([1, 2]), DecodeError), (cbor2.dumps({1: 99, -1: b"k"}), DecodeError),
    (b"\xa1\x01", DecodeError),
])
def test_encrypted_cose_key_plaintext_must_be_a_cose_key(plaintext: bytes, error: type[RemoteError]) -> None:
    cnf = EncryptedCoseKeyCnf(encrypt_to(plaintext, Recipient(RS_X.public()), tagged=False, rng=counter_rng()))
    with pytest.raises(error):
        cnf.decrypt(KeyRing([RS_X]))


def test_encrypted_cose_key_with_wrong_recipient_key() -> None:
    cnf = encrypted_cnf(K16, Recipient(RS.public()), rng=counter_rng())
    with pytest.raises(VerificationError):
        cnf.decrypt(OTHER)
    with pytest.raises(VerificationError):
        cnf.decrypt(K16)
