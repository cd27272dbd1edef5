"""Update of access rights over the existing OSCORE context (RFC 9203 §4.1), real loopback sockets.

After a flow with scope r_temp the Resource Owner grants rw_led. The client asks the AS for a
token for the same PoP key: req_cnf {3: kid}, kid the id of the OSCORE_Input_Material of its
current token (the AS logs it as pop_kid); the AS answers without cnf (RFC 9203 §3.2). The
client POSTs {1: token} (application/ace+cbor) to /authz-info protected with its current
OSCORE context; the RS answers 2.01, protected, without payload, and the same context now
carries the new rights: PUT /led works with no new POST /authz-info and no new context. A
token bound to another material id, sent over the context, gets 4.01 and changes nothing.
(DTLS: tests/coap/test_flow_dtls.py covers the same over the DTLS session, RFC 9202 §3.4.)
"""

from __future__ import annotations

import dataclasses
import secrets
import time

import aiocoap
from deployment import Flow, send, store_of
from support import ACE_CBOR, Reply, bounded

from ace.cbor import codec
from ace.cbor.labels import AceProfile, Param
from ace.cli import roles
from ace.client.flow import Done, ResourceRequest
from ace.coap.client import ClientRunner
from ace.coap.oscore_context import MemoryOscoreContext
from ace.messages import AccessTokenRequest, AccessTokenResponse, AuthzInfoRequest
from ace.store.base import Grant
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import KidCnf, OscoreCnf
from ace.tokens.cwt import KeyRing, issue_token, verify_token

FULL = ["resource", "token", "authz-info", "resource (protected)"]
REUSED = ["resource (protected)"]


def req(flow: Flow, method: str, path: str, payload: bytes = b"") -> ResourceRequest:
    return ResourceRequest(method=method, uri=flow.rs_uri + path, payload=payload)


async def run(client: ClientRunner, flow: Flow, method: str = "GET", path: str = "/temp",
              payload: bytes = b"") -> Done:
    got = await bounded(client.request(req(flow, method, path, payload)), 20)
    assert isinstance(got, Done), got
    return got


def rs_context(client: ClientRunner, flow: Flow) -> MemoryOscoreContext:
    """The OSCORE context the runner derived for its session with the RS."""
    (_, ctx), = client.channels[AceProfile.COAP_OSCORE].live.values()
    return ctx


async def post_over_context(client: ClientRunner, flow: Flow, token: bytes) -> Reply:
    """POST {1: token} to /authz-info protected with the client's current OSCORE context (RFC 9203
    §4.1), through the runner's own aiocoap context."""
    msg = aiocoap.Message(code=aiocoap.POST, uri=flow.authz_info_uri, content_format=ACE_CBOR,
                          payload=codec.dumps({int(Param.ACCESS_TOKEN): token}))
    # the runner marks /authz-info "unprotected" (its first POST); this one goes over the context
    client.context.client_credentials[msg.get_request_uri()] = rs_context(client, flow)
    return await send(client.context, msg)


async def first_flow(flow: Flow) -> tuple[ClientRunner, Done, bytes]:
    """A flow with scope r_temp; returns the client, its result and its material id (pop kid)."""
    client = await flow.client()
    got = await run(client, flow)
    assert got.response.code == (2, 5) and flow.steps() == FULL
    answer = AccessTokenResponse.decode(flow.exchanges[1].response.payload)
    assert isinstance(answer.cnf, OscoreCnf)
    kid = answer.cnf.material.id
    (logged,) = store_of(flow).issued_tokens()
    assert logged.pop_kid == kid
    return client, got, kid


async def ask_update(flow: Flow, client: ClientRunner, kid: bytes, scope: str = "r_temp rw_led") -> bytes:
    """C/D again: a token for the same PoP key (req_cnf kid), more scope; no cnf in the answer."""
    ask = AccessTokenRequest(audience="rs1", scope=scope, req_cnf=KidCnf(kid)).encode()
    reply = await flow.post_to_as(client, ask)
    assert reply.code == (2, 1) and reply.protected, reply
    answer = AccessTokenResponse.decode(reply.payload)
    assert answer.cnf is None  # RFC 9203 §3.2: the client keeps the key it has
    claims = verify_token(answer.access_token, KeyRing([flow.token_key]), audience="rs1", clock=time.time)
    assert claims.cnf == KidCnf(kid) and claims.scope == scope and claims.sub == "clientA"
    assert store_of(flow).issued_tokens()[0].pop_kid == kid  # logged for the same key
    return answer.access_token


# -- 1. update over the context, then use it ------------------------------------------------------


async def test_update_of_access_rights_over_the_oscore_context(flow: Flow) -> None:
    client, got, kid = await first_flow(flow)
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="rw_led"))  # A/B: more rights
    flow.exchanges.clear()
    refused = await run(client, flow, "PUT", "/led", b"on")
    assert refused.response.code == (4, 3) and flow.steps() == REUSED
    ctx = rs_context(client, flow)
    core = flow.rs_server.core
    (before,) = list(core.bindings)

    token = await ask_update(flow, client, kid)
    posted = await post_over_context(client, flow, token)
    assert posted.code == (2, 1) and posted.protected, posted
    assert posted.payload == b""  # RFC 9203 §4.1: no nonce, no IDs: the context stays as it is
    (after,) = list(core.bindings)
    assert after.label == before.label and after.pop_id == kid and after.claims.scope == "r_temp rw_led"
    assert len(flow.rs_server.index) == 1

    flow.exchanges.clear()
    put = await run(client, flow, "PUT", "/led", b"on")
    assert put.response.code == (2, 4), put
    led = await run(client, flow, "GET", "/led")
    assert led.response.code == (2, 5) and led.response.payload == b"on"
    temp = await run(client, flow)
    assert temp.response.code == (2, 5)
    assert flow.steps() == REUSED * 3  # no new token, no POST /authz-info, no new context
    assert rs_context(client, flow) is ctx
    assert put.session is not None and got.session is not None and put.session.id == got.session.id


async def test_token_for_another_material_over_the_context_is_401(flow: Flow) -> None:
    client, _, kid = await first_flow(flow)
    core = flow.rs_server.core
    (before,) = list(core.bindings)
    other_kid = bytes(b ^ 0xFF for b in kid) + b"\x01"
    for cnf in (KidCnf(other_kid), KidCnf(kid + b"\x00")):
        claims = AccessTokenClaims(sub="clientA", aud="rs1", exp=int(time.time()) + 600,
                                   cti=secrets.token_bytes(4), scope="r_temp rw_led", cnf=cnf)
        reply = await post_over_context(client, flow, issue_token(claims, flow.token_key))
        assert reply.code == (4, 1), reply  # RFC 9203 §4.1: not this context's key
    # a whole new OSCORE_Input_Material over the context is not an update of it either
    fresh, _ = flow.token(scope="r_temp rw_led")
    assert (await post_over_context(client, flow, fresh)).code == (4, 1)
    (after,) = list(core.bindings)
    assert after == before  # nothing changed
    flow.exchanges.clear()
    assert (await run(client, flow, "PUT", "/led", b"on")).response.code == (4, 3)
    assert (await run(client, flow)).response.code == (2, 5)
    assert flow.steps() == REUSED * 2


async def test_update_token_posted_unprotected_is_refused(flow: Flow) -> None:
    """A kid-only token cannot set up a context: without the context it is no update."""
    client, _, kid = await first_flow(flow)
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="rw_led"))
    token = await ask_update(flow, client, kid)
    ctx = await flow.plain()
    bare = await flow.post_authz_info(ctx, codec.dumps({int(Param.ACCESS_TOKEN): token}))
    assert bare.code == (4, 0), bare  # no nonce1, no ace_client_recipientid
    full = AuthzInfoRequest(access_token=token, nonce1=secrets.token_bytes(8), ace_client_recipientid=b"\x09")
    assert (await flow.post_authz_info(ctx, full.encode())).code == (4, 0)  # cnf is not an OSCORE material
    flow.exchanges.clear()
    assert (await run(client, flow, "PUT", "/led", b"on")).response.code == (4, 3)  # rights unchanged
    assert flow.steps() == REUSED


# -- 2. an updated binding is still in use: a flood must not displace it ---------------------------


async def test_updated_binding_stays_in_use_through_a_flood(flow: Flow) -> None:
    await bounded(flow.rs_server.stop())  # an RS keeping 4 tokens
    flow._rs_cfg = dataclasses.replace(flow._rs_cfg, max_tokens=4)
    flow.rs_server = roles.build_rs(flow._rs_cfg)
    await bounded(flow.rs_server.start())
    client, _, kid = await first_flow(flow)
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="rw_led"))
    token = await ask_update(flow, client, kid)
    assert (await post_over_context(client, flow, token)).code == (2, 1)
    (label,) = [b.label for b in flow.rs_server.core.bindings]
    ctx = await flow.plain()
    for _ in range(8):  # unauthenticated POSTs of valid tokens: may only displace never-used bindings
        flood, _material = flow.token()
        payload = AuthzInfoRequest(access_token=flood, nonce1=secrets.token_bytes(8), ace_client_recipientid=b"\x66")
        assert (await flow.post_authz_info(ctx, payload.encode())).code in {(2, 1), (5, 3)}
    assert flow.rs_server.core.bindings.get(label) is not None, "the updated binding was displaced"
    flow.exchanges.clear()
    put = await run(client, flow, "PUT", "/led", b"on")
    assert put.response.code == (2, 4), put
    assert flow.steps() == REUSED
