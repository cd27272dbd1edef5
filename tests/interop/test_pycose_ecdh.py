"""Interop with pycose 1.1.0 for COSE_Encrypt with one ECDH-ES + HKDF-256 recipient (both ways).

* pycose decrypts our ``encrypt_to`` messages to a P-256 key (AES-CCM-16-64-128, A128GCM,
  A256GCM; with and without external AAD) and nested Sign1-in-Encrypt tokens;
* we decrypt pycose-built ``EncMessage`` + ``DirectKeyAgreement`` messages with ``decrypt``
  and, as tokens, with ``verify_token``;
* a flipped byte in the ephemeral key or ciphertext is refused by both.

pycose's ECDH recipients take EC2 keys only (``peer_key.verify(EC2Key, ...)``): the X25519
direction cannot be tested against pycose (python-cwt covers it, see test_python_cwt_ecdh).
"""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from interop_tokens import AUDIENCE, CLAIMS
from pycose import algorithms as pyalg
from pycose.headers import IV, KID, Algorithm, EphemeralKey, StaticKey
from pycose.keys import CoseKey as PyCoseKey
from pycose.messages import CoseMessage, EncMessage, Sign1Message
from pycose.messages.recipient import DirectKeyAgreement

from ace.cbor.labels import Alg, Curve
from ace.errors import VerificationError
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token, verify_token
from ace.tokens.encrypt import Recipient, decrypt, encrypt_to
from ace.tokens.keys import CoseKey

NOW = 1_750_000_000
RS = generate(Curve.P_256, kid=b"rs-ecdh")
AS_KEY = generate(Curve.P_256, kid=b"as-sign")
PAYLOAD = b"ACE pycose ECDH interop \x00\xff"
CONTENT = {int(Alg.AES_CCM_16_64_128): pyalg.AESCCM1664128, int(Alg.A128GCM): pyalg.A128GCM,
           int(Alg.A256GCM): pyalg.A256GCM}


def _peer_key(key: CoseKey) -> Any:
    return PyCoseKey.from_dict(key.to_map())


def _peer_decrypt(message: bytes, key: CoseKey, external_aad: bytes = b"") -> bytes:
    msg = CoseMessage.decode(message)
    assert isinstance(msg, EncMessage) and len(msg.recipients) == 1
    msg.external_aad = external_aad
    recipient = msg.recipients[0]
    recipient.key = _peer_key(key)
    return msg.decrypt(recipient)  # type: ignore[no-any-return]


def _peer_encrypt(payload: bytes, to: CoseKey, content_alg: int, external_aad: bytes = b"") -> bytes:
    ephemeral = generate(to.crv or Curve.P_256)  # pycose encrypts before it would make its own
    recipient = DirectKeyAgreement(phdr={Algorithm: pyalg.EcdhEsHKDF256},
                                   uhdr={KID: to.kid, EphemeralKey: _peer_key(ephemeral.public())})
    recipient.key = _peer_key(ephemeral)
    recipient.local_attrs = {StaticKey: _peer_key(to.public())}
    nonce = bytes(range(12 if content_alg in (Alg.A128GCM, Alg.A256GCM) else 13))
    msg = EncMessage(phdr={Algorithm: CONTENT[content_alg]}, uhdr={IV: nonce}, payload=payload,
                     recipients=[recipient], external_aad=external_aad)
    return msg.encode()  # type: ignore[no-any-return]


@pytest.mark.parametrize("alg", sorted(CONTENT), ids=lambda a: Alg(a).name)
@pytest.mark.parametrize("aad", [b"", b"external"], ids=["no-aad", "aad"])
def test_pycose_decrypts_ours(alg: int, aad: bytes) -> None:
    message = encrypt_to(PAYLOAD, Recipient(RS.public(), alg=alg), external_aad=aad)
    assert _peer_decrypt(message, RS, aad) == PAYLOAD


@pytest.mark.parametrize("alg", sorted(CONTENT), ids=lambda a: Alg(a).name)
@pytest.mark.parametrize("aad", [b"", b"external"], ids=["no-aad", "aad"])
def test_we_decrypt_pycose(alg: int, aad: bytes) -> None:
    message = _peer_encrypt(PAYLOAD, RS, alg, aad)
    assert cbor2.loads(message).tag == 96
    assert decrypt(message, KeyRing([RS]), external_aad=aad) == PAYLOAD
    with pytest.raises(VerificationError):
        decrypt(message, KeyRing([generate(Curve.P_256, kid=RS.kid)]), external_aad=aad)


def test_pycose_opens_our_nested_token() -> None:
    token = issue_token(CLAIMS, AS_KEY, kind=Kind.SIGN, encrypt_to=Recipient(RS.public()), tagged=True)
    inner = _peer_decrypt(token, RS)
    sign1 = CoseMessage.decode(inner)
    assert isinstance(sign1, Sign1Message)
    sign1.key = _peer_key(AS_KEY.public())
    assert sign1.verify_signature()
    assert cbor2.loads(sign1.payload) == cbor2.loads(CLAIMS.encode())


def test_we_verify_a_pycose_nested_token() -> None:
    sign1 = Sign1Message(phdr={Algorithm: pyalg.Es256}, uhdr={KID: AS_KEY.kid}, payload=CLAIMS.encode())
    sign1.key = _peer_key(AS_KEY)
    token = _peer_encrypt(sign1.encode(tag=True), RS, int(Alg.AES_CCM_16_64_128))
    assert verify_token(token, KeyRing([RS, AS_KEY.public()]), audience=AUDIENCE, clock=lambda: NOW) == CLAIMS


def _flip_ephemeral_x(message: bytes) -> bytes:
    item = cbor2.loads(message)
    eph = item.value[3][0][1][-1]
    eph[-2] = bytes([eph[-2][0] ^ 1]) + eph[-2][1:]
    return cbor2.dumps(item)


def test_tampered_ephemeral_key_is_refused_by_both() -> None:
    ours = _flip_ephemeral_x(encrypt_to(PAYLOAD, Recipient(RS.public())))
    with pytest.raises(Exception):  # noqa: B017 - pycose raises cryptography's or its own errors
        _peer_decrypt(ours, RS)
    theirs = _flip_ephemeral_x(_peer_encrypt(PAYLOAD, RS, int(Alg.AES_CCM_16_64_128)))
    with pytest.raises(VerificationError):
        decrypt(theirs, KeyRing([RS]))
