"""The client's flow (RFC 9200 §4, RFC 9203 §4) driven by hand with scripted responses."""

from __future__ import annotations

import random

import pytest
from flow_support import AS_URI, CF, HINTS, REQ, RS
from support import NOW

from ace.cbor.labels import AceProfile
from ace.client.flow import (
    Action,
    ClientConfig,
    ClientFlow,
    Done,
    Failed,
    ResourceRequest,
    Response,
    SendAuthzInfo,
    SendResource,
    SendTokenRequest,
    Session,
)
from ace.errors import ErrorCode
from ace.messages import (
    AccessTokenRequest,
    AccessTokenResponse,
    AuthzInfoRequest,
    AuthzInfoResponse,
    CreationHints,
    ErrorResponse,
)
from ace.profiles import oscore
from ace.tokens.cnf import KidCnf, OscoreCnf, OscoreInputMaterial

MATERIAL = OscoreInputMaterial(id=b"\x01", ms=bytes(range(16)))
SERVER_RID = b"\x42\x42"  # 2 bytes: never equal to the 1-byte IDs the client's pool hands out
NONCE2 = bytes.fromhex("25a8991cd700ac01")


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_flow(clock: Clock | None = None, **config: object) -> ClientFlow:
    return ClientFlow(ClientConfig(**config), clock=clock or Clock(), rng=random.Random(3).randbytes)  # type: ignore[arg-type]


def hints_401(hints: CreationHints | None = HINTS) -> Response:
    return Response((4, 1), hints.encode() if hints else b"", CF if hints else None)


def token_ok(*, token: bytes = b"token-1", expires_in: int | None = 3600, profile: int | None = 2,
             scope: str | None = None, cnf: object = None) -> Response:
    body = AccessTokenResponse(access_token=token, expires_in=expires_in, ace_profile=profile, scope=scope,
                               cnf=cnf if cnf is not None else OscoreCnf(MATERIAL))  # type: ignore[arg-type]
    return Response((2, 1), body.encode(), CF)


def authz_ok(server_rid: bytes = SERVER_RID, nonce2: bytes = NONCE2) -> Response:
    return Response((2, 1), AuthzInfoResponse(nonce2=nonce2, ace_server_recipientid=server_rid).encode(), CF)


def content() -> Response:
    return Response((2, 5), b"22.5 C")


def run_to_session(flow: ClientFlow, hints: CreationHints | None = HINTS) -> tuple[SendAuthzInfo, SendResource]:
    """start → 4.01 → token → authz-info; returns the authz-info action and the protected request."""
    probe = flow.start(REQ)
    assert probe == SendResource(REQ, None)
    tr = flow.on_response(hints_401(hints))
    assert isinstance(tr, SendTokenRequest)
    authz = flow.on_response(token_ok())
    assert isinstance(authz, SendAuthzInfo)
    protected = flow.on_response(authz_ok())
    assert isinstance(protected, SendResource)
    return authz, protected


def test_full_flow() -> None:
    flow = make_flow(scope="rw_config", client_id="c1")
    assert flow.start(REQ) == SendResource(REQ, None)  # probe, unprotected
    tr = flow.on_response(hints_401())
    assert isinstance(tr, SendTokenRequest)
    assert tr.as_uri == AS_URI
    request = AccessTokenRequest.decode(tr.payload)
    assert request.audience == "rs1"  # from the hints
    assert request.scope == "rw_config"  # configured scope overrides the hints'
    assert request.client_id == "c1" and request.req_cnf is None

    authz = flow.on_response(token_ok())
    assert isinstance(authz, SendAuthzInfo)
    assert authz.uri == RS + "/authz-info"
    posted = AuthzInfoRequest.decode(authz.payload)
    assert posted.access_token == b"token-1"
    assert len(posted.nonce1) == oscore.NONCE_LEN
    assert len(posted.ace_client_recipientid) == 1

    protected = flow.on_response(authz_ok())
    assert isinstance(protected, SendResource) and protected.request == REQ
    session = protected.session
    assert isinstance(session, Session)
    assert session.origin == RS and session.token == b"token-1"
    assert session.expires_at == NOW + 3600 and session.scope == "rw_config"
    ctx = session.context
    assert ctx.sender_id == SERVER_RID
    assert ctx.recipient_id == posted.ace_client_recipientid
    assert ctx.master_secret == MATERIAL.ms
    assert ctx.master_salt == oscore.master_salt(None, posted.nonce1, NONCE2)
    assert flow.sessions == {RS: session}

    done = flow.on_response(content())
    assert done == Done(content(), session)


def test_scope_from_hints_when_not_configured() -> None:
    flow = make_flow()
    flow.start(REQ)
    tr = flow.on_response(hints_401(CreationHints(as_uri=AS_URI, audience="rs1", scope="r_temp",
                                                  cnonce=b"\xcc" * 8)))
    assert isinstance(tr, SendTokenRequest)
    request = AccessTokenRequest.decode(tr.payload)
    assert (request.audience, request.scope, request.cnonce) == ("rs1", "r_temp", b"\xcc" * 8)
    assert request.client_id is None and not request.ask_ace_profile


def test_configured_audience_overrides_and_ask_profile() -> None:
    flow = make_flow(audience="rs-other", ask_profile=True)
    flow.start(REQ)
    tr = flow.on_response(hints_401())
    assert isinstance(tr, SendTokenRequest)
    request = AccessTokenRequest.decode(tr.payload)
    assert request.audience == "rs-other" and request.ask_ace_profile and request.ace_profile is None


def test_no_hints_uses_configuration() -> None:
    flow = make_flow(as_uri="coap://as2/token", audience="rs1", scope="r_temp")
    flow.start(REQ)
    tr = flow.on_response(hints_401(None))
    assert tr == SendTokenRequest("coap://as2/token", AccessTokenRequest(audience="rs1", scope="r_temp").encode())


def test_no_hints_and_nothing_configured_fails() -> None:
    flow = make_flow()
    flow.start(REQ)
    failed = flow.on_response(hints_401(None))
    assert isinstance(failed, Failed) and failed.step == "probe"


def test_unprotected_resource_is_done_at_the_probe() -> None:
    flow = make_flow()
    flow.start(REQ)
    assert flow.on_response(content()) == Done(content(), None)
    assert flow.sessions == {}


def test_session_is_reused() -> None:
    flow = make_flow()
    _, protected = run_to_session(flow)
    session = protected.session
    assert flow.on_response(content()) == Done(content(), session)
    again = flow.start(REQ)
    assert again == SendResource(REQ, session)  # no probe
    other_path = ResourceRequest(method="PUT", uri=RS + "/config", payload=b"1")
    assert flow.start(other_path) == SendResource(other_path, session)
    assert flow.on_response(content()) == Done(content(), session)


def test_401_on_protected_request_gets_a_new_token_once() -> None:
    flow = make_flow()
    run_to_session(flow)
    flow.on_response(content())
    reuse = flow.start(REQ)
    assert isinstance(reuse, SendResource) and isinstance(reuse.session, Session)
    retry = flow.on_response(hints_401())
    assert isinstance(retry, SendTokenRequest)  # session dropped, new token
    assert flow.sessions == {}
    authz = flow.on_response(token_ok(token=b"token-2"))
    assert isinstance(authz, SendAuthzInfo)
    protected = flow.on_response(authz_ok())
    assert isinstance(protected, SendResource) and protected.session is not None
    assert protected.session.token == b"token-2" and protected.session.id == 2
    final = flow.on_response(hints_401())  # a second 4.01: give up
    assert isinstance(final, Done) and final.response.code == (4, 1)


def test_401_without_hints_on_protected_request_uses_configuration() -> None:
    flow = make_flow(as_uri=AS_URI, audience="rs1")
    run_to_session(flow)
    flow.on_response(content())
    flow.start(REQ)
    retry = flow.on_response(Response((4, 1)))
    assert isinstance(retry, SendTokenRequest) and retry.as_uri == AS_URI


def test_other_errors_on_protected_request_are_final() -> None:
    flow = make_flow()
    _, protected = run_to_session(flow)
    done = flow.on_response(Response((4, 3)))
    assert done == Done(Response((4, 3)), protected.session)
    assert RS in flow.sessions


def test_as_error_response_fails_with_the_error_map() -> None:
    flow = make_flow()
    flow.start(REQ)
    flow.on_response(hints_401())
    err = ErrorResponse(error=ErrorCode.INVALID_SCOPE, error_description="requested scope not granted")
    failed = flow.on_response(Response((4, 0), err.encode(), CF))
    assert isinstance(failed, Failed)
    assert failed.step == "token" and failed.error_response == err
    assert failed.response is not None and failed.response.code == (4, 0)
    assert flow.sessions == {}


def test_as_error_without_map() -> None:
    flow = make_flow()
    flow.start(REQ)
    flow.on_response(hints_401())
    failed = flow.on_response(Response((4, 1), b"client not authenticated"))
    assert isinstance(failed, Failed) and failed.step == "token" and failed.error_response is None


def test_ace_java_style_token_response() -> None:
    # no ace_profile, no expires_in: both optional (RFC 9200 §5.8.2)
    flow = make_flow(scope="r_temp")
    flow.start(REQ)
    flow.on_response(hints_401())
    authz = flow.on_response(token_ok(expires_in=None, profile=None))
    assert isinstance(authz, SendAuthzInfo)
    protected = flow.on_response(authz_ok())
    assert isinstance(protected, SendResource) and protected.session is not None
    assert protected.session.expires_at is None and protected.session.scope == "r_temp"


def test_narrowed_scope_is_kept_in_the_session() -> None:
    flow = make_flow(scope="r_temp rw_config foobar")
    flow.start(REQ)
    flow.on_response(hints_401())
    flow.on_response(token_ok(scope="r_temp rw_config"))
    protected = flow.on_response(authz_ok())
    assert isinstance(protected, SendResource) and protected.session is not None
    assert protected.session.scope == "r_temp rw_config"


@pytest.mark.parametrize("response", [
    token_ok(profile=int(AceProfile.COAP_DTLS)),
    token_ok(cnf=KidCnf(b"\x01")),
    token_ok(cnf=OscoreCnf(OscoreInputMaterial(id=b"\x01", ms=bytes(16), alg=99))),
    Response((2, 1), b"\xff", CF),
    Response((2, 1), AccessTokenResponse(access_token=b"t").encode(), CF),  # no cnf at all
], ids=["dtls-profile", "kid-cnf", "bad-alg", "garbage", "no-cnf"])
def test_unusable_token_response_fails(response: Response) -> None:
    flow = make_flow()
    flow.start(REQ)
    flow.on_response(hints_401())
    failed = flow.on_response(response)
    assert isinstance(failed, Failed) and failed.step == "token"
    assert flow.sessions == {}


def test_equal_recipient_ids_fail_without_session() -> None:
    flow = make_flow()
    flow.start(REQ)
    flow.on_response(hints_401())
    authz = flow.on_response(token_ok())
    assert isinstance(authz, SendAuthzInfo)
    mine = AuthzInfoRequest.decode(authz.payload).ace_client_recipientid
    failed = flow.on_response(authz_ok(server_rid=mine))  # RFC 9203 §4.2: MUST NOT derive
    assert isinstance(failed, Failed) and failed.step == "authz-info"
    assert flow.sessions == {}
    assert mine not in flow._ids  # the ID is free again


@pytest.mark.parametrize("nonce2", [bytes(7), bytes(33)], ids=["short", "long"])
def test_bad_nonce2_fails_without_session(nonce2: bytes) -> None:
    flow = make_flow()
    flow.start(REQ)
    flow.on_response(hints_401())
    flow.on_response(token_ok())
    failed = flow.on_response(authz_ok(nonce2=nonce2))
    assert isinstance(failed, Failed) and flow.sessions == {}
    assert len(flow._ids) == 0


def test_authz_info_refused() -> None:
    flow = make_flow()
    flow.start(REQ)
    flow.on_response(hints_401())
    flow.on_response(token_ok())
    failed = flow.on_response(Response((4, 1), b"token expired"))
    assert isinstance(failed, Failed) and failed.step == "authz-info"
    assert failed.response == Response((4, 1), b"token expired")
    assert flow.sessions == {} and len(flow._ids) == 0


def test_malformed_authz_info_answer_releases_the_id() -> None:
    # regression: the 2.01 payload was decoded outside the try that releases the ID
    flow = make_flow()
    flow.start(REQ)
    flow.on_response(hints_401())
    flow.on_response(token_ok())
    failed = flow.on_response(Response((2, 1), b"\xff", CF))
    assert isinstance(failed, Failed)
    assert len(flow._ids) == 0


def test_expired_session_means_a_new_probe() -> None:
    clock = Clock()
    flow = make_flow(clock)
    _, protected = run_to_session(flow)
    flow.on_response(content())
    assert protected.session is not None
    clock.t = NOW + 3599
    assert flow.start(REQ) == SendResource(REQ, protected.session)
    flow.on_response(content())
    clock.t = NOW + 3600
    assert flow.start(REQ) == SendResource(REQ, None)
    assert flow.sessions == {}
    assert len(flow._ids) == 0  # its Recipient ID went with it


def test_sessions_per_origin() -> None:
    flow = make_flow()
    run_to_session(flow)
    flow.on_response(content())
    other = ResourceRequest(method="GET", uri="coap://rs2.example/hum")
    assert flow.start(other) == SendResource(other, None)
    assert flow.valid_session(RS) is not None and flow.valid_session("coap://rs2.example") is None


def test_response_without_request_in_flight() -> None:
    flow = make_flow()
    with pytest.raises(RuntimeError):
        flow.on_response(content())
    run_to_session(flow)
    flow.on_response(content())
    with pytest.raises(RuntimeError):  # idle again after Done
        flow.on_response(content())


def test_action_types_are_exhaustive() -> None:
    action: Action = make_flow().start(REQ)
    assert isinstance(action, SendResource | SendTokenRequest | SendAuthzInfo | Done | Failed)
