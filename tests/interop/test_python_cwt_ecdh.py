"""Interop with python-cwt (``cwt`` 3.3.0) for ECDH-ES encryption (issue 16), both ways where
the library can:

* COSE_Encrypt with one ECDH-ES + HKDF-256 recipient: python-cwt decrypts ours to P-256 and
  X25519 keys; we decrypt python-cwt's to P-256 keys. python-cwt 3.3.0 cannot encrypt to an
  X25519 key (its ECDH-ES sender builds an OKP key without a body: ``ValueError``), which
  ``test_python_cwt_cannot_encrypt_to_x25519`` records.
* A Sign1 token nested in a COSE_Encrypt to the RS's key (RFC 8392 §7.1): python-cwt decodes
  ours (with the AS's public key and the RS's private key); we verify python-cwt's.
* A Sign1 token whose cnf holds an Encrypted_COSE_Key (RFC 8747 §3.3), as a COSE_Encrypt to
  the RS's public key and as a COSE_Encrypt0 with a shared key: each side opens the other's.

python-cwt wants the key's alg (-25) set on an ECDH key and the content alg as ``context``.
"""

from __future__ import annotations

from typing import Any

import cbor2
import cwt
import pytest
from cwt import COSE, COSEKey, EncryptedCOSEKey
from cwt import Recipient as PeerRecipient
from interop_tokens import AUDIENCE, CLAIMS

from ace.cbor.labels import Alg, Curve
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import EncryptedCoseKeyCnf, encrypted_cnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token, verify_token
from ace.tokens.encrypt import Recipient, decrypt, encrypt_to
from ace.tokens.keys import CoseKey, symmetric_key

NOW = 1_750_000_000
ES = int(Alg.ECDH_ES_HKDF_256)
CCM = int(Alg.AES_CCM_16_64_128)
CONTEXT = {"alg": "AES-CCM-16-64-128"}
AS_KEY = generate(Curve.P_256, kid=b"as-sign")
RS_KEYS = {"P-256": generate(Curve.P_256, kid=b"rs-ec"), "X25519": generate(Curve.X25519, kid=b"rs-x")}
SHARED = symmetric_key(bytes(range(0x40, 0x50)), kid=b"as-rs")
POP = symmetric_key(bytes(range(0x60, 0x70)), kid=b"pop", alg=CCM)  # python-cwt wants alg on a key


def _peer(key: CoseKey, alg: int) -> Any:
    return COSEKey.new({**key.to_map(), 3: alg})


def _peer_encrypt(payload: bytes, rs: CoseKey, *, out: str = "") -> Any:
    recipient = PeerRecipient.new(protected={"alg": "ECDH-ES+HKDF-256"}, unprotected={"kid": rs.kid},
                                  recipient_key=_peer(rs.public(), ES), context=CONTEXT)
    return COSE.new().encode(payload, protected={"alg": "AES-CCM-16-64-128"}, recipients=[recipient], out=out)


def _peer_decrypt(message: bytes, rs: CoseKey) -> bytes:
    return COSE.new().decode(message, _peer(rs, ES), context=CONTEXT)  # type: ignore[no-any-return]


@pytest.mark.parametrize("curve", sorted(RS_KEYS))
def test_python_cwt_decrypts_ours(curve: str) -> None:
    rs = RS_KEYS[curve]
    assert _peer_decrypt(encrypt_to(b"to the RS", Recipient(rs.public())), rs) == b"to the RS"


def test_we_decrypt_python_cwt() -> None:
    rs = RS_KEYS["P-256"]
    message = _peer_encrypt(b"from python-cwt", rs)
    assert cbor2.loads(message).tag == 96
    assert decrypt(message, KeyRing([rs])) == b"from python-cwt"


def test_python_cwt_cannot_encrypt_to_x25519() -> None:
    with pytest.raises(ValueError, match="body of the key"):
        _peer_encrypt(b"x", RS_KEYS["X25519"])


@pytest.mark.parametrize("curve", sorted(RS_KEYS))
def test_python_cwt_decodes_our_nested_token(curve: str) -> None:
    rs = RS_KEYS[curve]
    token = issue_token(CLAIMS, AS_KEY, kind=Kind.SIGN, encrypt_to=Recipient(rs.public()), tagged=True)
    inner = _peer_decrypt(token, rs)
    assert cwt.decode(inner, _peer(AS_KEY.public(), int(Alg.ES256))) == cbor2.loads(CLAIMS.encode())


def test_we_verify_a_python_cwt_nested_token() -> None:
    rs = RS_KEYS["P-256"]
    inner = cwt.encode(cbor2.loads(CLAIMS.encode()), _peer(AS_KEY, int(Alg.ES256)), tagged=True)
    token = _peer_encrypt(inner, rs)
    assert verify_token(token, KeyRing([rs, AS_KEY.public()]), audience=AUDIENCE, clock=lambda: NOW) == CLAIMS


def _claims_with(cnf: EncryptedCoseKeyCnf) -> AccessTokenClaims:
    return AccessTokenClaims(iss="as.example", aud=AUDIENCE, exp=4_000_000_000, nbf=1_700_000_000, iat=1_700_000_000,
                             cti=b"\x01\x02", scope="r_temp", cnf=cnf)


@pytest.mark.parametrize("to", ["P-256", "X25519", "shared"])
def test_python_cwt_opens_our_encrypted_cose_key(to: str) -> None:
    key = SHARED if to == "shared" else RS_KEYS[to]
    cnf = encrypted_cnf(POP, Recipient(key if key.is_symmetric else key.public()))
    token = issue_token(_claims_with(cnf), AS_KEY, kind=Kind.SIGN, tagged=True)
    claims = cwt.decode(token, _peer(AS_KEY.public(), int(Alg.ES256)))
    member = claims[8][2]
    if key.is_symmetric:
        opened = EncryptedCOSEKey.to_cose_key(member, _peer(SHARED, CCM))
        assert opened.key == POP.k
    else:
        plaintext = _peer_decrypt(cbor2.dumps(cbor2.CBORTag(96, member)), key)
        assert CoseKey.decode(plaintext) == POP


@pytest.mark.parametrize("to", ["P-256", "shared"])
def test_we_open_a_python_cwt_encrypted_cose_key(to: str) -> None:
    if to == "shared":
        member = EncryptedCOSEKey.from_cose_key(_peer(POP, CCM), _peer(SHARED, CCM))
        keys = KeyRing([SHARED, AS_KEY.public()])
    else:
        member = _peer_encrypt(POP.encode(), RS_KEYS[to], out="cbor2/CBORTag").value
        keys = KeyRing([RS_KEYS[to], AS_KEY.public()])
    claims = {**cbor2.loads(_claims_with(encrypted_cnf(POP, Recipient(SHARED))).encode()), 8: {2: member}}
    token = cwt.encode(claims, _peer(AS_KEY, int(Alg.ES256)), tagged=True)
    ours = verify_token(token, keys, audience=AUDIENCE, clock=lambda: NOW)
    assert isinstance(ours.cnf, EncryptedCoseKeyCnf)
    opened = ours.cnf.decrypt(keys)
    assert opened.k == POP.k and opened.kid == POP.kid
