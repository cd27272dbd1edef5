"""The A–F flow over real loopback sockets with signed tokens (COSE_Sign1, ES256 and EdDSA) whose
secret PoP key travels encrypted to the RS (issue 16), for the DTLS profile (RFC 9202: cnf is an
Encrypted_COSE_Key, RFC 8747 §3.3) and the OSCORE profile (RFC 9203 §3.2: the signed token nested
in an encryption to the RS). The RS holds only the AS's public key and its own key pair (ECDH-ES,
RFC 9053 §6.3); one flow per profile with a key the AS and the RS share instead (COSE_Encrypt0).
The deployment is ``ace init``'s, re-registered at the AS (``ace policy add-rs``'s record) and the
RS restarted with ``token_keys`` = [the AS's public key, its own key]."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from deployment import Flow, replace_rs, store_of
from support import bounded

from ace.cbor.labels import AceProfile, Alg, Curve
from ace.cli.keyfiles import save_key
from ace.client.flow import Done, ResourceRequest
from ace.errors import UnknownKeyError
from ace.messages import AccessTokenResponse
from ace.tokens.cnf import CoseKeyCnf, EncryptedCoseKeyCnf, OscoreCnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, open_envelope, verify_token
from ace.tokens.keys import CoseKey, generate_symmetric

pytestmark = pytest.mark.filterwarnings("ignore:DTLS module did not shut down:UserWarning")

DTLS, OSCORE = int(AceProfile.COAP_DTLS), int(AceProfile.COAP_OSCORE)
SIGNERS = {"es256": (Curve.P_256, Alg.ES256), "eddsa": (Curve.ED25519, Alg.EDDSA)}


async def signed_rs(flow: Flow, signer: str, how: str, ecdh: Curve = Curve.P_256) -> tuple[CoseKey, CoseKey]:
    """rs1 gets Sign1 tokens from now on: the AS signs with a new key pair, a secret PoP key is
    encrypted to the RS (``how``: rs_public or shared); the RS restarts knowing only the AS's public
    key and its own key (pair). Returns (the AS's signing key, the RS's key)."""
    curve, alg = SIGNERS[signer]
    as_key = generate(curve, kid=b"as-sign", alg=int(alg))
    rs_key = generate(ecdh, kid=b"rs1-ecdh") if how == "rs_public" else generate_symmetric(16, kid=b"rs1-shared")
    d = flow.d.directory
    save_key(d / "as-sign.pub", as_key.public())
    save_key(d / "rs1-own.key", rs_key)
    store = store_of(flow)
    rs = store.get_rs("rs1")
    assert rs is not None
    store.put_rs(replace(rs, token_key=as_key, token_kind="sign1", token_alg=int(alg), pop_key_encryption=how,
                         encryption_key=rs_key if rs_key.is_symmetric else rs_key.public()))
    await replace_rs(flow, token_keys=(d / "as-sign.pub", d / "rs1-own.key"))
    return as_key, rs_key


def token_response(flow: Flow) -> AccessTokenResponse:
    (x,) = [e for e in flow.exchanges if e.step == "token"]
    assert x.response.code == (2, 1), x.response
    return AccessTokenResponse.decode(x.response.payload)


async def get_temp(flow: Flow, profile: int) -> Done:
    runner = await flow.client(profile=profile, timeout=3.0)
    got = await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")), 12.0)
    assert isinstance(got, Done) and got.response.code == (2, 5), got
    return got


@pytest.mark.parametrize("signer", sorted(SIGNERS))
async def test_dtls_flow_with_a_signed_token_and_the_psk_encrypted_to_the_rs(flow: Flow, signer: str) -> None:
    as_key, rs_key = await signed_rs(flow, signer, "rs_public")
    await get_temp(flow, DTLS)
    answer = token_response(flow)
    assert isinstance(answer.cnf, CoseKeyCnf) and answer.cnf.key.is_symmetric  # the client's copy: unchanged
    token = answer.access_token
    assert open_envelope(token).message.kind is Kind.SIGN  # the token itself: readable, signed
    claims = verify_token(token, KeyRing([as_key.public()]), audience="rs1", clock=time.time)
    assert isinstance(claims.cnf, EncryptedCoseKeyCnf)  # RFC 8747 §3.3: the PSK only encrypted
    assert answer.cnf.key.k is not None and answer.cnf.key.k not in token
    assert claims.cnf.decrypt(KeyRing([rs_key])) == answer.cnf.key  # the RS's private key opens it
    assert answer.cnf.key.kid in flow.rs_server.psks


@pytest.mark.parametrize("signer", sorted(SIGNERS))
async def test_oscore_flow_with_a_signed_token_encrypted_to_the_rs(flow: Flow, signer: str) -> None:
    as_key, rs_key = await signed_rs(flow, signer, "rs_public")
    await get_temp(flow, OSCORE)
    answer = token_response(flow)
    assert isinstance(answer.cnf, OscoreCnf)
    token = answer.access_token
    assert open_envelope(token).message.kind is Kind.AEAD  # RFC 9203 §3.2: the ms readable by the RS only
    assert answer.cnf.material.ms not in token
    claims = verify_token(token, KeyRing([as_key.public(), rs_key]), audience="rs1", clock=time.time)
    assert claims.cnf == answer.cnf
    with pytest.raises(UnknownKeyError):  # without the AS's public key the inner Sign1 does not verify
        verify_token(token, KeyRing([rs_key]), audience="rs1", clock=time.time)


@pytest.mark.parametrize("profile", [DTLS, OSCORE], ids=["dtls", "oscore"])
async def test_flow_with_a_key_shared_with_the_rs(flow: Flow, profile: int) -> None:
    as_key, shared = await signed_rs(flow, "es256", "shared")
    await get_temp(flow, profile)
    token = token_response(flow).access_token
    claims = verify_token(token, KeyRing([as_key.public(), shared]), audience="rs1", clock=time.time)
    assert isinstance(claims.cnf, EncryptedCoseKeyCnf if profile == DTLS else OscoreCnf)


async def test_dtls_flow_with_x25519(flow: Flow) -> None:
    await signed_rs(flow, "eddsa", "rs_public", ecdh=Curve.X25519)
    await get_temp(flow, DTLS)
