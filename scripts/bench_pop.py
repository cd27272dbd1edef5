"""``scripts/bench tokens``, second table (issue 16): signed tokens whose secret PoP key travels
encrypted to the RS, next to the Encrypt0 token that carries it in the clear inside.

Per profile (DTLS: cnf = Encrypted_COSE_Key, RFC 8747 §3.3; OSCORE: the Sign1 nested in an
encryption to the RS, RFC 9203 §3.2) and per way of encrypting to the RS (its P-256 or X25519 public
key, ECDH-ES + HKDF-256; a shared AES-CCM-16-64-128 key): issue/s as the AS does it (the key
sealed, then the token made), verify/s as the RS does it (the token verified, the key opened),
token bytes and the POST /authz-info payload (DTLS: the token; OSCORE: the RFC 9203 §4.1 map with
an 8-byte nonce1 and a 1-byte Recipient ID). ``budget_bytes``: the Encrypt0 payload of the same
profile plus a 64-byte signature, the target the issue set; ``within_budget`` says whether it holds.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench import rate

from ace.cbor.labels import AceProfile, Alg, Curve
from ace.messages import AuthzInfoRequest
from ace.profiles import PROFILES
from ace.rs.tokens import confidential, open_cnf
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import Cnf, CoseKeyCnf, OscoreCnf, OscoreInputMaterial
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token, verify_token
from ace.tokens.encrypt import Recipient
from ace.tokens.keys import CoseKey, symmetric_key

SIGNATURE = 64  # bytes of an ES256 or EdDSA signature: what signing may add to the payload


def _claims(cnf: Cnf) -> AccessTokenClaims:
    return AccessTokenClaims(iss="as", aud="rs1", exp=int(time.time()) + 3600, iat=int(time.time()),
                             cti=b"\x00\x00\x00\x01", scope="r_temp", cnf=cnf)


def _payload(profile: int, token: bytes) -> bytes:
    if profile == AceProfile.COAP_DTLS:
        return token  # RFC 9202 §3.3: the token itself
    return AuthzInfoRequest(access_token=token, nonce1=os.urandom(8), ace_client_recipientid=b"\x01").encode()


def _case(profile: int, cnf: Cnf, signer: CoseKey | None, rs_key: CoseKey, seconds: float) -> dict[str, Any]:
    """One row: ``signer`` None is the Encrypt0 baseline under ``rs_key`` (shared with the RS)."""
    plugin = PROFILES[profile]
    if signer is None:
        def make() -> bytes:
            return issue_token(_claims(cnf), rs_key, kind=Kind.AEAD)
        ring = KeyRing([rs_key])
    else:
        to = Recipient(rs_key if rs_key.is_symmetric else rs_key.public())

        def make() -> bytes:
            sealed = plugin.seal_cnf(cnf, to, os.urandom)
            claims = _claims(cnf if sealed is None else sealed)
            return issue_token(claims, signer, kind=Kind.SIGN, encrypt_to=to if sealed is None else None)
        ring = KeyRing([signer.public(), rs_key])
    token = make()

    def verify() -> object:
        claims = verify_token(token, ring, audience="rs1", clock=time.time)
        return open_cnf(claims.cnf, ring, confidential=confidential(token))
    assert verify() == cnf
    return {"token_bytes": len(token), "authz_info_bytes": len(_payload(profile, token)),
            "issue_ops_s": round(rate(make, seconds)), "verify_ops_s": round(rate(verify, seconds))}


def bench_encrypted_pop(seconds: float) -> list[dict[str, Any]]:
    shared = symmetric_key(os.urandom(16), kid=b"rs-shared")
    es = generate(Curve.P_256, kid=b"as", alg=int(Alg.ES256))
    ed = generate(Curve.ED25519, kid=b"as", alg=int(Alg.EDDSA))
    p256, x25519 = generate(Curve.P_256, kid=b"rs-ecdh"), generate(Curve.X25519, kid=b"rs-x")
    cnfs: dict[int, Cnf] = {
        int(AceProfile.COAP_DTLS): CoseKeyCnf(symmetric_key(os.urandom(16), kid=os.urandom(8))),
        int(AceProfile.COAP_OSCORE): OscoreCnf(OscoreInputMaterial(id=b"\x00\x00\x00\x01", ms=os.urandom(16))),
    }
    rows = []
    for profile, cnf in cnfs.items():
        name = PROFILES[profile].name
        base = _case(profile, cnf, None, shared, seconds)
        rows.append({"profile": name, "token": "Encrypt0 AES-CCM-16-64-128 (shared key)", **base})
        budget = base["authz_info_bytes"] + SIGNATURE
        for label, signer, rs_key in (("Sign1 ES256, key to RS P-256 (ECDH-ES)", es, p256),
                                      ("Sign1 EdDSA, key to RS X25519 (ECDH-ES)", ed, x25519),
                                      ("Sign1 ES256, key under shared AES-CCM-16-64-128", es, shared)):
            row = _case(profile, cnf, signer, rs_key, seconds)
            rows.append({"profile": name, "token": label, **row, "budget_bytes": budget,
                         "within_budget": row["authz_info_bytes"] <= budget})
    return rows
