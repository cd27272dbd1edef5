"""The A–F flow with the OSCORE profile over real loopback sockets (RFC 9200, RFC 9203).

An AS and an RS from an ``ace init`` deployment run in-process on ::1 (``tests/deployment.py``);
clients are the real ``ClientRunner`` or plain aiocoap contexts posting hand-built payloads.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path

import aiocoap
import pytest
from deployment import Flow, running_deployment, send, store_of
from support import ACE_CBOR, Reply, bounded

from ace.client.flow import Done, Failed, ResourceRequest
from ace.errors import ErrorCode
from ace.messages import (
    AccessTokenRequest,
    AccessTokenResponse,
    AuthzInfoRequest,
    CreationHints,
    ErrorResponse,
)
from ace.store.base import Grant
from ace.tokens.cwt import KeyRing, verify_token

FULL = ["resource", "token", "authz-info", "resource (protected)"]
REUSED = ["resource (protected)"]


def req(flow: Flow, method: str, path: str, payload: bytes = b"") -> ResourceRequest:
    return ResourceRequest(method=method, uri=flow.rs_uri + path, payload=payload)


def error_map(reply: Reply) -> ErrorResponse:
    assert reply.content_format == ACE_CBOR, reply
    return ErrorResponse.decode(reply.payload)


async def assert_still_serves(flow: Flow) -> None:
    """A fresh client gets /temp through the whole A–F flow."""
    flow.exchanges.clear()
    result = await flow.full_flow()
    assert isinstance(result, Done), result
    assert result.response.code == (2, 5)
    assert flow.steps() == FULL


# -- 1. the full flow, scope, grants, session reuse --------------------------------------------


async def test_full_flow_then_grant_widens_scope(flow: Flow) -> None:
    c1 = await flow.client()
    got = await bounded(c1.request(req(flow, "GET", "/temp")), 20)
    assert isinstance(got, Done) and got.response.code == (2, 5)
    assert 15.0 < float(got.response.payload.decode()) < 30.0
    assert flow.steps() == FULL
    first_session = got.session
    assert first_session is not None

    flow.exchanges.clear()  # PUT /led with the r_temp token: the session is reused and refused
    refused = await bounded(c1.request(req(flow, "PUT", "/led", b"on")), 20)
    assert isinstance(refused, Done) and refused.response.code == (4, 3)
    assert flow.steps() == REUSED

    flow.exchanges.clear()  # refusals do not end the session
    again = await bounded(c1.request(req(flow, "GET", "/temp")), 20)
    assert isinstance(again, Done) and again.response.code == (2, 5)
    assert again.session is not None and again.session.id == first_session.id
    assert flow.steps() == REUSED
    await bounded(c1.stop())

    # A/B: the Resource Owner grants more (what `ace policy grant clientA rs1 rw_led` does)
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="rw_led"))
    flow.exchanges.clear()
    c2 = await flow.client(scope="r_temp rw_led")
    put = await bounded(c2.request(req(flow, "PUT", "/led", b"on")), 20)
    assert isinstance(put, Done) and put.response.code == (2, 4), put
    assert flow.steps() == FULL
    token_request = AccessTokenRequest.decode(flow.exchanges[1].request_payload)
    assert token_request.scope == "r_temp rw_led" and token_request.audience == "rs1"
    assert AccessTokenResponse.decode(flow.exchanges[1].response.payload).scope is None  # granted as asked

    flow.exchanges.clear()
    for _ in range(2):
        led = await bounded(c2.request(req(flow, "GET", "/led")), 20)
        assert isinstance(led, Done) and led.response.code == (2, 5)
        assert led.response.payload == b"on"
        assert led.session is not None and put.session is not None and led.session.id == put.session.id
    assert flow.steps() == REUSED * 2  # no new token
    assert all(e.protected for e in flow.exchanges)


# -- 2. AS Request Creation Hints ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/temp", "/led"])
async def test_unprotected_request_gets_creation_hints(flow: Flow, path: str) -> None:
    ctx = await flow.plain()
    reply = await send(ctx, aiocoap.Message(code=aiocoap.GET, uri=flow.rs_uri + path))
    assert reply.code == (4, 1)
    assert reply.content_format == ACE_CBOR == 19
    hints = CreationHints.decode(reply.payload)
    assert hints.as_uri == flow.d.as_uri
    assert hints.audience == "rs1"
    assert hints.scope == "r_temp"  # hint_scope of rs.toml


# -- 3. method not in scope: 4.05 (RFC 9200 §5.10.2) --------------------------------------------


async def test_method_not_in_scope_is_405(tmp_path: Path) -> None:
    async with running_deployment(tmp_path / "d", rs_scopes={"r_led": [("/led", ["GET"])]}) as flow:
        store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="r_led"))
        client = await flow.client(scope="r_led")
        put = await bounded(client.request(req(flow, "PUT", "/led", b"on")), 20)
        assert isinstance(put, Done) and put.response.code == (4, 5)  # path in scope, method not
        assert flow.steps() == FULL
        get = await bounded(client.request(req(flow, "GET", "/led")), 20)
        assert isinstance(get, Done) and get.response.code == (2, 5) and get.response.payload == b"off"
        temp = await bounded(client.request(req(flow, "GET", "/temp")), 20)
        assert isinstance(temp, Done) and temp.response.code == (4, 3)  # path not in scope
        assert flow.steps() == [*FULL, *REUSED, *REUSED]


# -- 4. bad tokens at /authz-info ---------------------------------------------------------------


def _bad_payload(flow: Flow, case: str) -> bytes:
    if case == "garbage":
        return b"\xff\x00 not cbor at all"
    if case == "expired":
        token, _ = flow.token(exp=int(time.time()) - 3600)
    elif case == "wrong_audience":
        token, _ = flow.token(aud="rs2")
    elif case == "tampered":
        good, _ = flow.token()
        token = good[:-1] + bytes([good[-1] ^ 0x01])  # last byte: the AEAD tag
    elif case == "unknown_kid":
        token, _ = flow.token(kid=b"\x77")
    else:  # pragma: no cover
        raise AssertionError(case)
    return AuthzInfoRequest(access_token=token, nonce1=secrets.token_bytes(8), ace_client_recipientid=b"\x05").encode()


@pytest.mark.parametrize(("case", "code"), [
    ("expired", (4, 1)),
    ("wrong_audience", (4, 3)),
    ("tampered", (4, 1)),
    ("unknown_kid", (4, 1)),
    ("garbage", (4, 0)),
])
async def test_authz_info_rejects_bad_tokens(flow: Flow, case: str, code: tuple[int, int]) -> None:
    ctx = await flow.plain()
    reply = await flow.post_authz_info(ctx, _bad_payload(flow, case))
    assert reply.code == code, reply
    if case == "garbage":
        assert error_map(reply).error == ErrorCode.INVALID_REQUEST == 1
    assert len(flow.rs_server.core.bindings) == 0 and len(flow.rs_server.index) == 0
    await assert_still_serves(flow)


async def test_hand_built_token_is_accepted(flow: Flow) -> None:
    """The control for the test above: a token built the same way, unspoiled, works."""
    ctx = await flow.plain()
    token, material = flow.token()
    session = await flow.post_token(ctx, token, material)
    assert session.response.code == (2, 1) and session.context is not None
    reply = await flow.get_with(session.context)
    assert reply.code == (2, 5) and reply.protected


# -- 5. unregistered client at /token -----------------------------------------------------------


async def test_unregistered_client_is_refused_at_token(flow: Flow, tmp_path: Path) -> None:
    stranger = await flow.stranger(tmp_path)
    result = await bounded(stranger.request(req(flow, "GET", "/temp")), 20)
    assert isinstance(result, Failed), result
    assert result.step == "token"
    assert result.response is not None and result.response.code == (4, 1)
    assert flow.steps() == ["resource", "token"]

    ctx = await flow.plain()  # no OSCORE at all
    payload = AccessTokenRequest(audience="rs1", scope="r_temp").encode()
    reply = await send(ctx, aiocoap.Message(code=aiocoap.POST, uri=flow.d.as_uri, payload=payload,
                                            content_format=ACE_CBOR))
    assert reply.code == (4, 1)
    assert error_map(reply).error == ErrorCode.INVALID_CLIENT == 2
    assert store_of(flow).issued_tokens() == []
    await assert_still_serves(flow)


# -- 6. a retransmitted POST /authz-info ---------------------------------------------------------


async def test_replayed_authz_info_gets_the_same_answer(flow: Flow) -> None:
    ctx = await flow.plain()
    token, material = flow.token()
    session = await flow.post_token(ctx, token, material)
    assert session.response.code == (2, 1) and session.context is not None
    assert (await flow.get_with(session.context)).code == (2, 5)

    again = await flow.post_authz_info(ctx, session.payload)  # a new CoAP message, same payload
    assert again.code == (2, 1)
    assert again.payload == session.response.payload
    assert len(flow.rs_server.core.bindings) == 1
    reply = await flow.get_with(session.context)  # the context derived the first time still works
    assert reply.code == (2, 5) and reply.protected


# -- 7. supersession: same token, new nonce1 ---------------------------------------------------


def _sequential_ids(start: int = 0x30) -> Callable[[int], bytes]:
    counter = iter(range(start, 1 << 16))
    return lambda n: next(counter).to_bytes(2, "big")[-n:]


async def test_reposted_token_with_new_nonce_supersedes_context(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    # distinct RS Recipient IDs (random 1-byte IDs may repeat once the old one is released)
    monkeypatch.setattr(flow.rs_server.core.ids, "_rng", _sequential_ids())
    ctx = await flow.plain()
    token, material = flow.token()
    old = await flow.post_token(ctx, token, material)
    assert old.context is not None and (await flow.get_with(old.context)).code == (2, 5)

    new = await flow.post_token(ctx, token, material, nonce1=secrets.token_bytes(8))
    assert new.response.code == (2, 1) and new.context is not None
    assert new.server_rid != old.server_rid
    # the old context, in use, stays until the new one protects a request: an unprotected
    # replay of the token must not cut the client off (RFC 9200 §6)
    assert len(flow.rs_server.core.bindings) == 2
    assert (await flow.get_with(old.context)).code == (2, 5)
    fresh = await flow.get_with(new.context)
    assert fresh.code == (2, 5) and fresh.protected
    assert len(flow.rs_server.core.bindings) == 1
    stale = await flow.get_with(old.context)  # now the old one is gone (its OSCORE context is swept)
    assert stale.code == (4, 1)


async def test_superseded_context_with_reused_recipient_id_fails_to_decrypt(
        flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    """The RS may give the new context the old ID (new keys): the old context then gets 4.00."""
    monkeypatch.setattr(flow.rs_server.core.ids, "_rng", lambda n: b"\x33" * n)
    ctx = await flow.plain()
    token, material = flow.token()
    old = await flow.post_token(ctx, token, material)
    new = await flow.post_token(ctx, token, material, nonce1=secrets.token_bytes(8))
    assert old.context is not None and new.context is not None and new.server_rid == old.server_rid
    stale = await flow.get_with(old.context)
    assert stale.code == (4, 0) and not stale.protected  # RFC 8613 §8.2: decryption failed
    assert (await flow.get_with(new.context)).code == (2, 5)


# -- 8. AS restart: grants persist, cti never repeats, Echo recovery --------------------------


def _cti(flow: Flow, reply: Reply) -> int:
    assert reply.code == (2, 1), reply
    token = AccessTokenResponse.decode(reply.payload).access_token
    claims = verify_token(token, KeyRing([flow.token_key]), audience="rs1", clock=time.time)
    assert claims.cti is not None
    return int.from_bytes(claims.cti, "big")


async def test_as_restart_keeps_grants_and_never_repeats_cti(flow: Flow) -> None:
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="rw_led"))
    runner = await flow.client(scope="r_temp rw_led")
    ask = AccessTokenRequest(audience="rs1", scope="r_temp rw_led").encode()
    ctis = [_cti(flow, await flow.post_to_as(runner, ask)) for _ in range(3)]
    got = await bounded(runner.request(req(flow, "GET", "/temp")), 20)
    assert isinstance(got, Done) and got.response.code == (2, 5)
    assert flow.steps() == FULL
    ctis.append(_cti(flow, Reply((2, 1), flow.exchanges[1].response.payload, ACE_CBOR, True)))

    await flow.restart_as()  # new AsServer, new SqliteAsStore on the same as.db and port
    grants = {(g.client_id, g.audience, g.scope) for g in store_of(flow).list_grants()}
    assert grants == {("clientA", "rs1", "r_temp"), ("clientA", "rs1", "rw_led")}

    # the client keeps its context with the AS; the new AS has its persisted replay window (no Echo)
    (as_ctx,) = [c for c in flow.as_server.index if "clientA" in c.authenticated_claims]  # not the RS's
    assert as_ctx.recipient_replay_window.is_initialized()  # RFC 8613 §B.1.2: the persisted floor
    ctis += [_cti(flow, await flow.post_to_as(runner, ask)) for _ in range(3)]
    runner.flow.drop_session(flow.rs_uri)
    flow.exchanges.clear()
    got = await bounded(runner.request(req(flow, "PUT", "/led", b"on")), 20)
    assert isinstance(got, Done) and got.response.code == (2, 4)
    assert flow.steps() == FULL
    ctis.append(_cti(flow, Reply((2, 1), flow.exchanges[1].response.payload, ACE_CBOR, True)))

    assert ctis == sorted(ctis) and len(set(ctis)) == len(ctis) == 8
    logged = store_of(flow).issued_tokens()
    assert sorted(int.from_bytes(t.cti, "big") for t in logged) == ctis


# -- 9. garbage at /token and /authz-info ------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"\xff\xfe\xfd", b"\x83\x01\x02\x03", b"\xa1\x05\x01", b""])
async def test_garbage_at_token_is_400_and_as_keeps_serving(flow: Flow, garbage: bytes) -> None:
    runner = await flow.client()
    reply = await flow.post_to_as(runner, garbage)
    assert reply.code == (4, 0) and reply.protected
    assert error_map(reply).error == ErrorCode.INVALID_REQUEST
    ok = await flow.post_to_as(runner, AccessTokenRequest(audience="rs1", scope="r_temp").encode())
    assert ok.code == (2, 1) and ok.protected
    got = await bounded(runner.request(req(flow, "GET", "/temp")), 20)
    assert isinstance(got, Done) and got.response.code == (2, 5)


@pytest.mark.parametrize("garbage", [b"\xff\xfe\xfd", b"\x83\x01\x02\x03", b"\xa1\x01\x41\x00", b""])
async def test_garbage_at_authz_info_is_400_and_rs_keeps_serving(flow: Flow, garbage: bytes) -> None:
    ctx = await flow.plain()
    reply = await flow.post_authz_info(ctx, garbage)
    assert reply.code == (4, 0)
    assert error_map(reply).error == ErrorCode.INVALID_REQUEST
    await assert_still_serves(flow)


# -- regressions: recovery after the RS lost a context; skew bounds use as well as admission -------


async def test_client_recovers_after_rs_restart(flow: Flow) -> None:
    """The RS's unprotected 4.01 "Security context not found" carries no hints: the client
    must fall back on what it knows (the RS's earlier hints) and get a new token."""
    client = await flow.client()
    first = await bounded(client.request(req(flow, "GET", "/temp")), 20)
    assert isinstance(first, Done) and first.response.code == (2, 5)
    await flow.restart_rs()  # all bindings and contexts gone
    flow.exchanges.clear()
    again = await bounded(client.request(req(flow, "GET", "/temp")), 20)
    assert isinstance(again, Done), again
    assert again.response.code == (2, 5)
    assert flow.steps() == ["resource (protected)", "token", "authz-info", "resource (protected)"]
    assert flow.exchanges[0].response.code == (4, 1)


async def test_newer_token_of_the_same_client_supersedes_the_older(flow: Flow) -> None:
    """RFC 9203 §6: one token per client (sub) at the RS; the older context goes."""
    c1 = await flow.client()
    got = await bounded(c1.request(req(flow, "GET", "/temp")), 20)
    assert isinstance(got, Done) and got.response.code == (2, 5) and got.session is not None
    old_label = got.session.context.sender_id  # the RS's Recipient ID of the first context
    # the same client (one process: two would share its OSCORE context with the AS) forgets its
    # session and gets a new token, as after a restart
    c1.flow.drop_session(got.session.origin)
    flow.exchanges.clear()
    again = await bounded(c1.request(req(flow, "GET", "/temp")), 20)
    assert isinstance(again, Done) and again.response.code == (2, 5)
    assert flow.steps() == ["resource", "token", "authz-info", "resource (protected)"]
    assert len(flow.rs_server.core.bindings) == 1 and len(flow.rs_server.index) == 1
    assert again.session is not None
    live = {b.label for b in flow.rs_server.core.bindings}
    assert live == {again.session.context.sender_id}  # only the new context (its ID may equal old_label)
    assert old_label in live or flow.rs_server.core.bindings.get(old_label) is None


async def test_token_accepted_at_authz_info_is_usable(flow: Flow) -> None:
    """A token let in by the skew must not be bound to an already expired context."""
    ctx = await flow.plain()
    token, material = flow.token(exp=int(time.time()) - 10)  # within DEFAULT_SKEW (30 s)
    session = await flow.post_token(ctx, token, material)
    if session.response.code != (2, 1):
        assert session.response.code == (4, 1)  # refusing it is fine too
        return
    assert session.context is not None
    assert (await flow.get_with(session.context)).code == (2, 5)
