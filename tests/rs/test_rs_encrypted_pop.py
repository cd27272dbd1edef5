"""An RS that holds only the AS's public key and its own key pair (issue 16): Sign1 tokens whose
symmetric PoP key travels as Encrypted_COSE_Key (RFC 8747 §3.3; COSE_Encrypt with ECDH-ES, RFC 9053
§6.3, or COSE_Encrypt0 with a shared key) bind a DTLS channel; OSCORE material comes in a Sign1
nested in an encryption to the RS (RFC 9203 §3.2). Refused, with nothing changed: a secret in the
clear of a readable token, an encrypted key not for this RS or that does not open, a plaintext that
is not a symmetric key, and keys used for what they are not (alg confusion)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from rs_support import AS_URI, MEANING, N1, Clock, material, post
from support import NOW

from ace.cbor.labels import AceProfile, Alg, Curve
from ace.errors import (
    DecodeError,
    ErrorCode,
    RemoteError,
    TokenRefused,
    UnknownKeyError,
    UnsupportedPopKey,
    VerificationError,
)
from ace.profiles.dtls import DtlsChannel
from ace.rs.server import ResourceServer, RsConfig
from ace.tokens import cose
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import Cnf, CoseKeyCnf, EncryptedCoseKeyCnf, OscoreCnf, encrypted_cnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token
from ace.tokens.encrypt import Recipient
from ace.tokens.keys import CoseKey, symmetric_key

AS_KEY = generate(Curve.P_256, kid=b"as", alg=int(Alg.ES256))  # the AS's signing pair (RS: public part)
RS_PAIR = generate(Curve.P_256, kid=b"rs-ecdh")  # the RS's own pair (ECDH-ES)
RS_PUBLIC = RS_PAIR.public()
SHARED = symmetric_key(bytes(range(16)), kid=b"rs-shared")
STRANGER = generate(Curve.P_256, kid=b"other-rs")  # another RS's pair
PSK = symmetric_key(bytes(range(100, 116)), kid=b"psk-kid1")
DTLS, OSCORE = int(AceProfile.COAP_DTLS), int(AceProfile.COAP_OSCORE)
RNG = random.Random(7).randbytes


def make_rs() -> ResourceServer:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, profiles=(OSCORE, DTLS))
    keys = KeyRing([AS_KEY.public(), RS_PAIR, SHARED])
    return ResourceServer(config, keys, clock=Clock(), rng=random.Random(1).randbytes)


def signed(cnf: Cnf, *, key: CoseKey = AS_KEY, kind: Kind = Kind.SIGN, to: Recipient | None = None,
           cti: bytes = b"\x05") -> bytes:
    claims = AccessTokenClaims(aud="rs1", exp=NOW + 600, cti=cti, scope="r_temp", cnf=cnf)
    return issue_token(claims, key, kind=kind, rng=RNG, encrypt_to=to)


def sealed(key: CoseKey = PSK, to: CoseKey = RS_PUBLIC) -> EncryptedCoseKeyCnf:
    return encrypted_cnf(key, Recipient(to), rng=RNG)


def raw_encrypt0(plaintext: bytes, key: CoseKey, kid: bytes) -> EncryptedCoseKeyCnf:
    return EncryptedCoseKeyCnf(cose.build(Kind.AEAD, plaintext, key, kid=kid, tagged=False, rng=RNG))


# -- accepted ------------------------------------------------------------------------------


@pytest.mark.parametrize("to", [RS_PAIR.public(), SHARED], ids=["rs_public", "shared"])
def test_encrypted_psk_binds_a_dtls_channel(to: CoseKey) -> None:
    rs = make_rs()
    outcome = rs.authz_info(signed(sealed(to=to)), 61)
    assert outcome.binding.context == DtlsChannel(PSK.kid or b"", PSK.k or b"")
    assert outcome.binding.claims.cnf is None  # (the key lives in the channel only)


def test_nested_token_carries_oscore_material() -> None:
    rs = make_rs()
    token = signed(OscoreCnf(material()), to=Recipient(RS_PAIR.public()))
    outcome = rs.authz_info(post(token, N1), 19)
    assert outcome.new and outcome.binding.pop_id == material().id


# -- refused -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    id: str
    token: bytes
    exc: type[RemoteError]
    error: ErrorCode | None
    coap: tuple[int, int]
    oscore: bool = False  # posted as the RFC 9203 §4.1 map, else bare (DTLS)


BAD = [
    Bad("sign1-psk-in-the-clear", signed(CoseKeyCnf(PSK)), TokenRefused, None, (4, 1)),  # RFC 8747 §3.3
    Bad("sign1-oscore-material-in-the-clear", signed(OscoreCnf(material())), TokenRefused, None, (4, 1), True),
    Bad("mac0-psk-in-the-clear-under-the-shared-key", signed(CoseKeyCnf(PSK), key=SHARED, kind=Kind.MAC),
        VerificationError, None, (4, 1)),  # Mac0 is not taken (RsConfig.token_kinds): the key is for encryption
    Bad("encrypted-to-another-rs", signed(sealed(to=STRANGER.public())), UnknownKeyError, None, (4, 1)),
    Bad("encrypted-to-another-key-with-our-kid",
        signed(sealed(to=generate(Curve.P_256, kid=b"rs-ecdh").public())), VerificationError, None, (4, 1)),
    Bad("encrypted-under-a-wrong-shared-key", signed(sealed(to=symmetric_key(bytes(16), kid=b"rs-shared"))),
        VerificationError, None, (4, 1)),
    Bad("encrypted-naming-the-as-signing-key", signed(raw_encrypt0(PSK.encode(), symmetric_key(bytes(16)), b"as")),
        VerificationError, None, (4, 1)),  # alg confusion: a signature key cannot decrypt
    Bad("plaintext-is-a-public-key", signed(sealed(key=generate(Curve.P_256, kid=b"k").public())),
        UnsupportedPopKey, ErrorCode.UNSUPPORTED_POP_KEY, (4, 0)),
    Bad("plaintext-is-a-private-ec-key", signed(sealed(key=generate(Curve.P_256, kid=b"k"))),
        UnsupportedPopKey, ErrorCode.UNSUPPORTED_POP_KEY, (4, 0)),
    Bad("plaintext-is-not-a-cose-key", signed(raw_encrypt0(b"\x43abc", SHARED, b"rs-shared")),
        DecodeError, ErrorCode.INVALID_REQUEST, (4, 0)),
    Bad("sign1-naming-the-rs-ecdh-key", signed(sealed(), key=generate(Curve.P_256, kid=b"rs-ecdh")),
        VerificationError, None, (4, 1)),  # alg confusion: the RS's key agreement key verifies nothing
    Bad("sign1-under-the-shared-key-kid", signed(sealed(), key=generate(Curve.P_256, kid=b"rs-shared")),
        VerificationError, None, (4, 1)),
]


@pytest.mark.parametrize("bad", BAD, ids=lambda b: b.id)
def test_refused_and_nothing_changes(bad: Bad) -> None:
    rs = make_rs()
    existing = rs.authz_info(signed(sealed(key=symmetric_key(bytes(16), kid=b"live-kid")), cti=b"\x01"), 61).binding
    before = (list(rs.bindings), len(rs.ids))
    with pytest.raises(RemoteError) as info:
        rs.authz_info(post(bad.token, N1, rid=b"\x02") if bad.oscore else bad.token, 19 if bad.oscore else 61)
    exc = info.value
    assert type(exc) is bad.exc, repr(exc)
    assert exc.error_code == bad.error and exc.coap_code == bad.coap, repr(exc)
    assert (list(rs.bindings), len(rs.ids)) == before
    assert rs.authorize(existing.label, "/temp", "GET").binding is existing
    assert PSK.k is not None and PSK.k.hex() not in str(exc)
