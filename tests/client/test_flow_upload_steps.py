"""The client's flow asking for token upload (draft-ietf-ace-workflow-and-params-08 §3.1, §9),
driven by hand: token_upload goes in the token request; an EDHOC-profile response saying the
upload succeeded (token_upload 0, no token) makes a session named by its session_id; a failed
upload (token_upload 1 with the token) makes an ordinary one; a non-EDHOC upload fails."""

from __future__ import annotations

from flow_support import AS_URI, CF, EDHOC, RS, RS_CCS, SESSION_ID, edhoc_flow, token_request
from support import NOW

from ace.cbor.labels import AceProfile
from ace.client.flow import ClientConfig, ClientFlow, Failed, Response, SendResource
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial
from ace.tokens.edhoc_info import EdhocInfo

HASH = b"\x01" + bytes(32)


def asked(flow: ClientFlow) -> AccessTokenRequest:
    return AccessTokenRequest.decode(token_request(flow).payload)


def edhoc_response(token: bytes, upload: int, token_hash: bytes | None = None) -> Response:
    body = AccessTokenResponse(access_token=token, ace_profile=EDHOC, rs_cnf=RS_CCS, token_upload=upload,
                               token_hash=token_hash, edhoc_info=EdhocInfo(session_id=SESSION_ID), from_rs=b"")
    return Response((2, 1), body.encode(), CF)


def test_no_token_upload_unless_configured() -> None:
    assert asked(edhoc_flow(None)).token_upload is None


def test_uploaded_token_makes_a_session_named_by_session_id() -> None:
    flow = edhoc_flow(1)
    assert asked(flow).token_upload == 1  # WF §3.1
    protected = flow.on_response(edhoc_response(b"", 0, HASH))
    assert isinstance(protected, SendResource) and protected.session is not None
    session = protected.session
    assert session.edhoc is not None and session.edhoc.uploaded and session.session_id == SESSION_ID
    assert session.token == b"" and session.token_hash == HASH
    assert flow.drop_revoked([HASH]) == [RS]  # RFC 9770: the hash the AS gave names it in the TRL


def test_failed_upload_carries_the_token_as_usual() -> None:
    flow = edhoc_flow(0)
    asked(flow)
    protected = flow.on_response(edhoc_response(b"token-1", 1))  # WF §3.1: 1, the upload failed
    assert isinstance(protected, SendResource) and protected.session is not None
    assert protected.session.edhoc is not None and not protected.session.edhoc.uploaded
    assert protected.session.token == b"token-1"


def test_an_upload_outside_the_edhoc_profile_fails() -> None:
    flow = ClientFlow(ClientConfig(as_uri=AS_URI, token_upload=0), clock=lambda: NOW)
    asked(flow)
    material = OscoreInputMaterial(ms=bytes(16), id=b"\x01")
    body = AccessTokenResponse(access_token=b"", ace_profile=int(AceProfile.COAP_OSCORE), cnf=OscoreCnf(material),
                               token_upload=0)
    failed = flow.on_response(Response((2, 1), body.encode(), CF))
    assert isinstance(failed, Failed) and failed.step == "token" and "uploaded" in failed.error
