"""The client's flow with the EDHOC profile at draft -11, driven by hand with scripted responses:
the token rides in EDHOC (no POST /authz-info), req_cnf is a kccs, edhoc_info and rs_cnf make the
session, an access-rights update names the session_id and goes to /authz-info protected
(draft-ietf-ace-edhoc-oscore-profile-11 §3.1, §3.3, §4.3, §4.6)."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest
from flow_support import AS_URI, CF, EDHOC, OWN, RS, RS_CCS, SESSION_ID, edhoc_flow, token_request

from ace.cbor.labels import ContentFormat, Param
from ace.cli.config import load_client
from ace.client.flow import (
    ClientFlow,
    Done,
    Failed,
    Response,
    SendAuthzInfo,
    SendResource,
    SendTokenRequest,
)
from ace.errors import ConfigError
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.tokens.cnf import KccsCnf
from ace.tokens.edhoc_info import EdhocInfo


def token_ok(token: bytes = b"token-1", **info: object) -> Response:
    body = AccessTokenResponse(access_token=token, expires_in=3600, ace_profile=EDHOC, rs_cnf=RS_CCS,
                               edhoc_info=EdhocInfo(session_id=SESSION_ID, **info))  # type: ignore[arg-type]
    return Response((2, 1), body.encode(), CF)


def to_session(flow: ClientFlow) -> tuple[SendTokenRequest, SendResource]:
    ask = token_request(flow)
    protected = flow.on_response(token_ok())
    assert isinstance(protected, SendResource) and protected.session is not None
    return ask, protected


def test_token_rides_in_edhoc_with_a_kccs_req_cnf() -> None:
    flow = edhoc_flow()
    ask, protected = to_session(flow)  # EP §4.3: straight to the protected request, no /authz-info
    raw = cbor2.loads(ask.payload)[int(Param.REQ_CNF)]
    assert list(raw) == [11]  # §3.1: kccs, never a bare COSE_Key (placeholder 11 of the draft-11 preset)
    request = AccessTokenRequest.decode(ask.payload)
    assert isinstance(request.req_cnf, KccsCnf) and request.req_cnf.key == OWN.public()
    session = protected.session
    assert session is not None and session.edhoc is not None
    assert session.session_id == SESSION_ID and session.token == b"token-1"
    assert session.edhoc.own_credential == request.req_cnf.cred  # CRED_I: the bytes req_cnf carried
    assert session.edhoc.rs_credential == RS_CCS.cred  # CRED_R: rs_cnf's
    done = flow.on_response(Response((2, 5), b"21"))
    assert isinstance(done, Done) and done.response.payload == b"21"


def test_an_edhoc_error_fails_the_flow_with_the_rs_reason() -> None:
    flow = edhoc_flow()
    to_session(flow)
    error = Response((4, 0), cbor2.dumps(1) + cbor2.dumps("Access token refused"), 64)
    failed = flow.on_response(error)
    assert isinstance(failed, Failed) and failed.step == "edhoc"
    assert "ERR_CODE 1" in failed.error and "Access token refused" in failed.error
    assert flow.sessions == {}  # the token was refused: no session left


def test_update_names_the_session_and_posts_the_token_protected() -> None:
    flow = edhoc_flow()
    to_session(flow)
    flow.on_response(Response((2, 5), b"21"))
    ask = flow.update(RS, "rw_temp")
    assert isinstance(ask, SendTokenRequest)
    request = AccessTokenRequest.decode(ask.payload)
    assert request.req_cnf is None and request.edhoc_info == EdhocInfo(session_id=SESSION_ID)  # EP §3.1
    assert request.audience == "rs1" and request.scope == "rw_temp"
    body = AccessTokenResponse(access_token=b"token-2", expires_in=3600, scope="rw_temp")
    post = flow.on_response(Response((2, 1), body.encode(), CF))
    assert isinstance(post, SendAuthzInfo)  # EP §4.6.1: application/cwt, the token bytes, protected
    assert (post.uri, post.payload, post.content_format) == (RS + "/authz-info", b"token-2", ContentFormat.CWT)
    assert post.session is flow.sessions[RS]
    done = flow.on_response(Response((2, 1)))
    assert isinstance(done, Done)
    session = flow.sessions[RS]
    assert (session.token, session.scope, session.session_id) == (b"token-2", "rw_temp", SESSION_ID)


def test_update_refused_by_the_rs_keeps_the_old_rights() -> None:
    flow = edhoc_flow()
    to_session(flow)
    flow.on_response(Response((2, 5), b"21"))
    flow.update(RS, "rw_temp")
    flow.on_response(Response((2, 1), AccessTokenResponse(access_token=b"token-2").encode(), CF))
    failed = flow.on_response(Response((4, 1)))
    assert isinstance(failed, Failed) and failed.step == "update"
    assert flow.sessions[RS].token == b"token-1"


def test_update_without_an_edhoc_session_fails() -> None:
    failed = edhoc_flow().update(RS, "rw_temp")
    assert isinstance(failed, Failed) and failed.step == "update"


@pytest.mark.parametrize("preset", ["draft-11", "ariel-os", "aiocoap"])
def test_client_toml_names_the_edhoc_preset(tmp_path: Path, preset: str) -> None:
    path = tmp_path / "client.toml"
    path.write_text(f'[client]\nas_uri = "{AS_URI}"\nas_context = "c.toml"\nedhoc_preset = "{preset}"\n')
    assert load_client(path).edhoc_preset == preset
    path.write_text(f'[client]\nas_uri = "{AS_URI}"\nas_context = "c.toml"\n')
    assert load_client(path).edhoc_preset == "draft-11"  # the default


def test_client_toml_refuses_an_unknown_preset(tmp_path: Path) -> None:
    path = tmp_path / "client.toml"
    path.write_text(f'[client]\nas_uri = "{AS_URI}"\nas_context = "c.toml"\nedhoc_preset = "draft-07"\n')
    with pytest.raises(ConfigError, match="edhoc_preset"):
        load_client(path)
