"""Token upload (draft-ietf-ace-workflow-and-params-08 §3.1) over real sockets on ::1: the client
asks the AS with token_upload and to_rs (its OSCORE-profile nonce1 and id1); the AS POSTs the
token to the RS's /authz-info over its OSCORE context with the RS; the RS takes it as if the client
had sent it; the response carries token_upload 0, the RFC 9770 token hash (or the token) and
from_rs (the RS's nonce2 and id2), and the client then reaches the resource with the OSCORE
context it derives. A failed upload gives token_upload 1 and the token. Every await is bounded."""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

import cbor2
from deployment import Flow, running_deployment, store_of
from support import TIMEOUT

from ace.cbor.labels import AceProfile
from ace.cli.demo_cmd import free_port
from ace.coap import contexts
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.profiles import oscore as oscore_profile
from ace.tokens.cnf import OscoreCnf
from ace.tokens.hashing import token_hash

ID1 = b"\x21"


async def ask(flow: Flow, token_upload: int, nonce1: bytes) -> AccessTokenResponse:
    runner = await flow.client()
    to_rs = cbor2.dumps({40: nonce1, 43: ID1})
    payload = AccessTokenRequest(audience="rs1", scope="r_temp", ace_profile=AceProfile.COAP_OSCORE,
                                 token_upload=token_upload, to_rs=to_rs).encode()
    reply = await flow.post_to_as(runner, payload)
    assert reply.code == (2, 1), reply
    return AccessTokenResponse.decode(reply.payload)


def set_upload_uri(flow: Flow, uri: str) -> None:
    store = store_of(flow)
    rs = store.get_rs("rs1")
    assert rs is not None and rs.oscore is not None  # ace init: the AS and the RS share a context
    store.put_rs(replace(rs, upload_uri=uri))


async def use(flow: Flow, response: AccessTokenResponse, nonce1: bytes) -> None:
    assert response.from_rs is not None and isinstance(response.cnf, OscoreCnf)
    answer = cbor2.loads(response.from_rs)  # the RS's 2.01 payload: {42: nonce2, 44: id2}
    params = oscore_profile.derive(response.cnf.material, nonce1=nonce1, nonce2=answer[42], sender_id=answer[44],
                                   recipient_id=ID1)
    reply = await flow.get_with(contexts.from_params(params, claims=["rs"]))
    assert reply.code == (2, 5), reply


async def test_upload_then_use_with_the_token_hash(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as flow:
        set_upload_uri(flow, flow.authz_info_uri)
        nonce1 = secrets.token_bytes(8)
        response = await ask(flow, 1, nonce1)
        assert response.token_upload == 0 and not response.access_token
        [logged] = store_of(flow).issued_tokens(limit=1)
        assert response.token_hash == logged.token_hash and len(response.token_hash) == 33  # RFC 9770 §4
        await use(flow, response, nonce1)


async def test_upload_asking_for_the_token(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as flow:
        set_upload_uri(flow, flow.authz_info_uri)
        nonce1 = secrets.token_bytes(8)
        response = await ask(flow, 2, nonce1)
        assert response.token_upload == 0 and response.token_hash is None
        assert response.access_token
        assert store_of(flow).issued_tokens(limit=1)[0].token_hash == token_hash(response.access_token)
        await use(flow, response, nonce1)


async def test_failed_upload_returns_the_token(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as flow:
        set_upload_uri(flow, f"coap://[::1]:{free_port()}/authz-info")  # nobody there
        flow.as_server.upload_timeout = TIMEOUT / 4
        response = await ask(flow, 0, secrets.token_bytes(8))
        assert response.token_upload == 1 and response.access_token and response.from_rs is None


async def test_edhoc_token_uploaded_by_the_as_then_named_by_session_id(tmp_path: Path) -> None:
    """The EDHOC profile (EP-11 with WF §3.1, §9): the AS uploads the token (application/cwt) over its
    OSCORE context with the RS; the client then names it in EAD_3 by session_id and gets the resource."""
    import lakers
    from lakers_peer import LakersInitiator

    from ace.tokens.cnf import KccsCnf

    async with running_deployment(tmp_path) as flow:
        set_upload_uri(flow, flow.authz_info_uri)
        runner = await flow.client()
        peer = LakersInitiator(await flow.plain(), flow.rs_uri, b"", kid=b"\x2b")
        payload = AccessTokenRequest(audience="rs1", scope="r_temp", ace_profile=AceProfile.COAP_EDHOC_OSCORE,
                                     token_upload=1, req_cnf=KccsCnf(peer.cred_i)).encode()
        reply = await flow.post_to_as(runner, payload)
        assert reply.code == (2, 1), reply
        response = AccessTokenResponse.decode(reply.payload)
        assert response.token_upload == 0 and not response.access_token and response.from_rs == b""
        assert response.edhoc_info is not None and isinstance(response.rs_cnf, KccsCnf)
        assert response.token_hash == store_of(flow).issued_tokens(limit=1)[0].token_hash
        peer.cred_r = response.rs_cnf.cred
        assert (await peer.message_1()).code == (2, 4)
        m3 = peer.message_3([lakers.EADItem(2, True, response.edhoc_info.session_id)])  # WF §9, draft-11
        assert (await peer.send_message_3(m3)).code == (2, 4)
        got = await peer.get(peer.oscore_context(), "/temp")
        assert (got.code, got.protected) == ((2, 5), True)
