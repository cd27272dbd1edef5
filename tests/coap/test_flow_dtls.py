"""The A–F flow with the DTLS profile over real loopback sockets (RFC 9200, RFC 9202).

An AS and an RS from an ``ace init`` deployment run in-process on ::1 (``tests/deployment.py``);
the client is the real ``ClientRunner`` asking for ``coap_dtls`` (profile 1), which posts the
token unprotected to the RS's coap port (application/cwt) and then talks DTLS-PSK to the RS's
coaps port (coap port + 1; aiocoap's tinydtls). Also: the token POSTed as application/ace+cbor
(ace-java's client) and an AS serving DTLS on a port of its own (``dtls_port``). Other clients
are ``ClientRunner``s with a hand-made session or bare aiocoap contexts, each a fresh context
(aiocoap reuses a stuck session per (host, port, identity)). A wrong PSK shows only as silence, so those attempts are
bounded by WRONG_KEY_WAIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiocoap
import pytest
from aiocoap.numbers.constants import TransportTuning
from deployment import Flow, replace_as, replace_rs, send, store_of
from support import ACE_CBOR, Reply, bounded

from ace.cbor.labels import AceProfile, ContentFormat
from ace.cli import roles
from ace.cli.config import load_as, load_client, load_psk
from ace.cli.demo_cmd import free_port
from ace.client.flow import ClientConfig, ClientFlow, Done, Failed, ResourceRequest, Session
from ace.coap import dtls
from ace.coap import rs_server as rs_server_module
from ace.coap.client import ClientRunner
from ace.errors import ConfigError, ErrorCode
from ace.messages import AccessTokenRequest, AccessTokenResponse, ErrorResponse
from ace.profiles.dtls import DtlsChannel, label_for
from ace.store.base import Grant
from ace.store.seqno import FileSequenceStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, KidCnf
from ace.tokens.cwt import DEFAULT_SKEW, KeyRing, issue_token, verify_token
from ace.tokens.keys import symmetric_key

# aiocoap's client warns when tinydtls calls back into a connection already collected.
pytestmark = pytest.mark.filterwarnings("ignore:DTLS module did not shut down:UserWarning")

CWT = int(ContentFormat.CWT)  # 61
FULL = ["resource", "token", "authz-info", "resource (DTLS)"]
REUSED = ["resource (DTLS)"]
RUNNER_TIMEOUT = 3.0  # per CoAP request of a runner
WRONG_KEY_WAIT = 1.0  # how long a client with a wrong PSK is given (loopback handshakes take ms)


class QuickRetransmit(TransportTuning):  # type: ignore[misc]
    """CoAP retransmission after 0.2 s (not 2–3 s): a request lost to a closed session is retried
    (on a new handshake) within the bounds above."""

    ACK_TIMEOUT = 0.2


def get_msg(uri: str) -> aiocoap.Message:
    return aiocoap.Message(code=aiocoap.GET, uri=uri, transport_tuning=QuickRetransmit())


# -- fixtures and helpers ---------------------------------------------------------------------


class Clock:
    """The AS's and the RS's clock: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def req(flow: Flow, method: str, path: str, payload: bytes = b"") -> ResourceRequest:
    return ResourceRequest(method=method, uri=flow.rs_uri + path, payload=payload)


def coaps_uri(flow: Flow, path: str) -> str:
    assert flow.rs_server.coaps_port is not None
    return f"coaps://[::1]:{flow.rs_server.coaps_port}{path}"


async def dtls_client(flow: Flow, scope: str | None = None) -> ClientRunner:
    """The deployment's client (client.toml) asking for coap_dtls; stopped by the fixture."""
    runner = roles.build_client(load_client(flow.d.client_config), scope=scope, observer=flow.exchanges.append,
                                profile=AceProfile.COAP_DTLS)
    runner.timeout = RUNNER_TIMEOUT
    flow._runners.append(runner)
    await bounded(runner.start())
    return runner


async def impostor(flow: Flow, tmp_path: Path, identity: bytes, psk: bytes, *,
                   timeout: float = WRONG_KEY_WAIT) -> ClientRunner:
    """A runner (fresh aiocoap context, no AS) that believes it holds a DTLS session with the RS."""
    name = f"impostor-{secrets.token_hex(4)}"
    runner = ClientRunner(ClientFlow(ClientConfig(client_id=name), clock=time.time), as_secret=None, as_uri=None,
                          seqno_store=FileSequenceStore(tmp_path / f"{name}.json"),
                          observer=flow.exchanges.append, timeout=timeout)
    origin = req(flow, "GET", "/temp").origin
    runner.flow.sessions[origin] = Session(origin=origin, token=b"", context=DtlsChannel(identity, psk),
                                           expires_at=None, scope="r_temp", id=99)
    flow._runners.append(runner)
    await bounded(runner.start())
    return runner


async def dtls_get(flow: Flow, identity: bytes, psk: bytes, path: str = "/temp", *,
                   timeout: float = RUNNER_TIMEOUT) -> aiocoap.Message:
    """GET over a new DTLS session (a new aiocoap context, so a new handshake)."""
    ctx = await bounded(aiocoap.Context.create_client_context(transports=["tinydtls", "udp6"]))
    try:
        dtls.install_client_credentials(ctx, "::1", flow.rs_server.coaps_port, psk, identity)
        return await bounded(ctx.request(get_msg(coaps_uri(flow, path))).response, timeout)
    finally:
        await bounded(ctx.shutdown())


async def refused_handshake(flow: Flow, identity: bytes, psk: bytes) -> BaseException:
    with pytest.raises((aiocoap.error.NetworkError, TimeoutError)) as info:
        await dtls_get(flow, identity, psk, timeout=WRONG_KEY_WAIT)
    exc: BaseException = info.value
    return exc


async def post_over_session(runner: ClientRunner, flow: Flow, token: bytes) -> Reply:
    """POST /authz-info through the runner's live DTLS session with the RS (RFC 9202 §3.4)."""
    msg = aiocoap.Message(code=aiocoap.POST, uri=coaps_uri(flow, "/authz-info"), payload=token, content_format=CWT)
    return await send(runner.context, msg)


def token_response(flow: Flow) -> AccessTokenResponse:
    (token_exchange,) = [e for e in flow.exchanges if e.step == "token"]
    assert token_exchange.response.code == (2, 1)
    return AccessTokenResponse.decode(token_exchange.response.payload)


def dtls_token(flow: Flow, *, k: bytes | None = None, kid: bytes | None = None, scope: str = "r_temp",
               cnf: Any = None, later: int = 0) -> bytes:
    """A token as the AS would issue it for this RS, with a COSE_Key (or the given) cnf."""
    if cnf is None:
        cnf = CoseKeyCnf(symmetric_key(k if k is not None else secrets.token_bytes(16),
                                       kid=kid if kid is not None else b"hand-kid"))
    claims = AccessTokenClaims(aud="rs1", exp=int(time.time()) + 600 + later, cti=secrets.token_bytes(4),
                               scope=scope, cnf=cnf)
    return issue_token(claims, flow.token_key)


async def post_token_plain(flow: Flow, token: bytes) -> Reply:
    ctx = await flow.plain()
    msg = aiocoap.Message(code=aiocoap.POST, uri=flow.authz_info_uri, payload=token, content_format=CWT)
    return await send(ctx, msg)


def count_psk_lookups(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every identity the RS's handshakes look up (tinydtls asks up to 3 times per handshake)."""
    calls: list[bytes] = []
    find: Callable[[bytes], tuple[bytes, object]] = flow.rs_server.psks.find_dtls_psk

    def counting(identity: bytes) -> tuple[bytes, object]:
        calls.append(bytes(identity))
        return find(identity)

    monkeypatch.setattr(flow.rs_server.psks, "find_dtls_psk", counting)
    return calls


def installed_psk(flow: Flow, identity: bytes) -> bytes | None:
    """The PSK the RS's handshakes would use for ``identity`` (bypassing count_psk_lookups)."""
    try:
        return dtls.PskIndex.find_dtls_psk(flow.rs_server.psks, identity)[0]
    except KeyError:
        return None


async def get_temp(runner: ClientRunner, flow: Flow) -> Done:
    got = await bounded(runner.request(req(flow, "GET", "/temp")), 4 * RUNNER_TIMEOUT)
    assert isinstance(got, Done), got
    assert got.response.code == (2, 5), got
    assert 15.0 < float(got.response.payload.decode()) < 30.0
    return got


def kid_of(session: Session | None) -> tuple[bytes, bytes]:
    assert session is not None and isinstance(session.context, DtlsChannel)
    return session.context.identity, session.context.key


# -- 1. the full flow, scope, session reuse ------------------------------------------------------


async def test_full_dtls_flow_and_session_reuse(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = count_psk_lookups(flow, monkeypatch)
    client = await dtls_client(flow)
    got = await get_temp(client, flow)
    assert flow.steps() == FULL
    probe, token_x, authz_x, resource_x = flow.exchanges
    assert probe.response.code == (4, 1) and not probe.protected
    assert AccessTokenRequest.decode(token_x.request_payload).ace_profile == AceProfile.COAP_DTLS
    # C/D: profile 1 and a symmetric PoP key (RFC 9202 §3.2): 16-byte k, 8-byte kid without 0x00
    answer = token_response(flow)
    assert answer.ace_profile == 1  # coap_dtls
    assert isinstance(answer.cnf, CoseKeyCnf)
    key = answer.cnf.key
    assert key.is_symmetric and key.k is not None and len(key.k) == 16
    assert key.kid is not None and len(key.kid) == 8 and 0 not in key.kid
    # E: the token itself, unprotected, to the coap port; 2.01 with no payload (RFC 9202 §3.3)
    assert authz_x.request_payload == answer.access_token and not authz_x.protected
    assert authz_x.uri.startswith("coap://") and authz_x.response.code == (2, 1) and authz_x.response.payload == b""
    claims = verify_token(answer.access_token, KeyRing([flow.token_key]), audience="rs1", clock=time.time)
    assert claims.cnf == answer.cnf and claims.scope == "r_temp"
    # F: over DTLS on the coaps port, the kid as psk_identity
    assert resource_x.uri == coaps_uri(flow, "/temp") and resource_x.protected
    assert got.session is not None and got.session.context == DtlsChannel(key.kid, key.k)
    assert set(lookups) == {key.kid}
    assert key.kid in flow.rs_server.psks and len(flow.rs_server.core.bindings) == 1
    live = [addr for addr, claims in dtls.sessions(flow.rs_server.context) if claims == label_for(key.kid)]
    assert len(live) == 1
    handshakes = len(lookups)

    flow.exchanges.clear()  # PUT /led with the r_temp token: refused over the same session
    refused = await bounded(client.request(req(flow, "PUT", "/led", b"on")), 4 * RUNNER_TIMEOUT)
    assert isinstance(refused, Done) and refused.response.code == (4, 3), refused
    assert flow.steps() == REUSED

    flow.exchanges.clear()  # refusals do not end the session: one exchange, no new token
    again = await get_temp(client, flow)
    assert flow.steps() == REUSED
    assert again.session is not None and again.session.id == got.session.id
    assert len(lookups) == handshakes  # no new handshake either
    assert len(store_of(flow).issued_tokens()) == 1


# -- 2./3. wrong PSK, unknown identity -----------------------------------------------------------


async def test_wrong_psk_gets_nothing_and_rs_keeps_serving(flow: Flow, tmp_path: Path) -> None:
    client = await dtls_client(flow)
    kid, key = kid_of((await get_temp(client, flow)).session)
    wrong = bytes(b ^ 0x5A for b in key)

    flow.exchanges.clear()
    mallory = await impostor(flow, tmp_path, kid, wrong)
    started = time.monotonic()
    got = await bounded(mallory.request(req(flow, "GET", "/temp")), 2 * WRONG_KEY_WAIT + 2)
    assert isinstance(got, Done) and got.response.code == (5, 4), got  # the runner's "no answer"
    assert time.monotonic() - started >= WRONG_KEY_WAIT * 0.9  # silence, not an alert it could read
    assert flow.steps() == REUSED

    flow.exchanges.clear()  # the legit client: its session still works, and so does a new handshake
    await get_temp(client, flow)
    assert flow.steps() == REUSED
    fresh = await dtls_get(flow, kid, key)
    assert fresh.code == aiocoap.CONTENT
    assert len(flow.rs_server.core.bindings) == 1 and kid in flow.rs_server.psks


async def test_unknown_identity_fails_fast_and_rs_keeps_serving(flow: Flow, tmp_path: Path) -> None:
    client = await dtls_client(flow)
    kid, key = kid_of((await get_temp(client, flow)).session)

    flow.exchanges.clear()
    stranger = await impostor(flow, tmp_path, b"never-seen-kid", key, timeout=RUNNER_TIMEOUT)
    started = time.monotonic()
    got = await bounded(stranger.request(req(flow, "GET", "/temp")), 2 * RUNNER_TIMEOUT)
    elapsed = time.monotonic() - started
    assert isinstance(got, Done) and got.response.code == (5, 4), got
    assert elapsed < RUNNER_TIMEOUT  # tinydtls' fatal internal_error alert (80) arrives at once
    assert flow.steps() == REUSED
    exc = await refused_handshake(flow, b"never-seen-kid", key)
    assert isinstance(exc, aiocoap.error.NetworkError) and exc.args == ("80",)

    flow.exchanges.clear()
    await get_temp(client, flow)
    assert flow.steps() == REUSED
    assert (await dtls_get(flow, kid, key)).code == aiocoap.CONTENT


# -- 4. expiry -------------------------------------------------------------------------------------

async def _expiring_setup(flow: Flow, monkeypatch: pytest.MonkeyPatch, sweep: float) -> tuple[Clock, ClientRunner]:
    """A 2 s token lifetime; the AS and the RS on one clock the test moves (the client's is real,
    so it still believes in its session); sweeps every ``sweep`` seconds."""
    store = store_of(flow)
    rs = store.get_rs("rs1")
    assert rs is not None
    store.put_rs(dataclasses.replace(rs, token_lifetime=2))
    monkeypatch.setattr(rs_server_module, "SWEEP_SECONDS", sweep)
    clock = Clock()
    await replace_as(flow, clock)
    await replace_rs(flow, clock=clock)
    client = await dtls_client(flow)
    return clock, client


def past_expiry(lifetime: float = 2) -> float:
    """A clock offset beyond exp + the skew the RS allows (where its binding ends)."""
    return lifetime + DEFAULT_SKEW + 1


async def get_over(runner: ClientRunner, flow: Flow, timeout: float = RUNNER_TIMEOUT) -> Reply:
    """GET /temp through the runner's aiocoap context (its live DTLS session), not its flow."""
    return await send(runner.context, get_msg(coaps_uri(flow, "/temp")), timeout)


async def assert_session_closed(runner: ClientRunner, flow: Flow) -> None:
    """The RS closes the runner's DTLS session (at once or soon after): requests over it fail;
    until then they get 4.01, never the resource."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            reply = await get_over(runner, flow, WRONG_KEY_WAIT)
        except (aiocoap.error.NetworkError, TimeoutError):
            return
        assert reply.code == (4, 1), reply
        await asyncio.sleep(0.05)
    raise AssertionError("the RS kept the DTLS session of an expired token open")


async def test_expired_token_ends_access_and_key(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, client = await _expiring_setup(flow, monkeypatch, sweep=3600)  # no sweep during the test
    kid, key = kid_of((await get_temp(client, flow)).session)
    assert token_response(flow).expires_in == 2
    assert (await get_over(client, flow)).code == (2, 5)

    clock.offset = past_expiry()
    try:  # over the existing DTLS session: 4.01, or the session closed after it; never 2.05
        code: object = (await get_over(client, flow)).code
    except aiocoap.error.NetworkError as lost:
        code = lost
    assert code == (4, 1) or isinstance(code, aiocoap.error.NetworkError), code
    assert len(flow.rs_server.core.bindings) == 0
    assert installed_psk(flow, kid) is None  # the PSK went at once, without waiting for a sweep
    exc = await refused_handshake(flow, kid, key)  # so a new handshake with the old key fails
    assert isinstance(exc, aiocoap.error.NetworkError) and exc.args == ("80",)
    await assert_session_closed(client, flow)  # and the old session is closed


async def test_expired_token_gets_401_over_the_live_session(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, client = await _expiring_setup(flow, monkeypatch, sweep=3600)
    kid, key = kid_of((await get_temp(client, flow)).session)
    clock.offset = past_expiry()
    reply = await get_over(client, flow)  # today: NetworkError (close_notify came first)
    assert reply.code == (4, 1)
    assert reply.content_format == ACE_CBOR  # with AS Request Creation Hints (RFC 9200 §5.3)
    assert installed_psk(flow, kid) is None
    assert isinstance(await refused_handshake(flow, kid, key), aiocoap.error.NetworkError)


async def test_client_gets_a_new_token_after_expiry(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, client = await _expiring_setup(flow, monkeypatch, sweep=3600)
    first = await get_temp(client, flow)
    client.timeout = WRONG_KEY_WAIT  # today the request gets no answer; fixed, all of it takes ms
    clock.offset = past_expiry()  # the client's own clock says its session is still valid
    flow.exchanges.clear()
    got = await bounded(client.request(req(flow, "GET", "/temp")), 4 * RUNNER_TIMEOUT)
    assert [(e.step, e.response.code) for e in flow.exchanges][:1] == [("resource (DTLS)", (4, 1))]  # today: 5.04
    assert flow.steps() == ["resource (DTLS)", "token", "authz-info", "resource (DTLS)"]
    assert isinstance(got, Done) and got.response.code == (2, 5)
    assert got.session is not None and first.session is not None and got.session.id != first.session.id


async def test_sweeper_drops_psk_and_session_of_expired_token(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, client = await _expiring_setup(flow, monkeypatch, sweep=0.05)
    kid, key = kid_of((await get_temp(client, flow)).session)
    assert installed_psk(flow, kid) == key

    clock.offset = past_expiry()  # no request at all: the sweeper alone must end the access
    deadline = time.monotonic() + 2
    while installed_psk(flow, kid) is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert installed_psk(flow, kid) is None and len(flow.rs_server.core.bindings) == 0
    await assert_session_closed(client, flow)  # close_notify
    exc = await refused_handshake(flow, kid, key)
    assert isinstance(exc, aiocoap.error.NetworkError) and exc.args == ("80",)


async def test_new_key_for_a_kid_that_expired_replaces_the_old(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    """Token 1 (kid K, key A) expires, noticed by a request; token 2 (kid K, key B) comes before
    any sweep: K's PSK must be B (an RS that kept A would let A's holder in with token 2's rights)."""
    clock, _ = await _expiring_setup(flow, monkeypatch, sweep=3600)
    kid, key_a, key_b = b"reused-kid", secrets.token_bytes(16), secrets.token_bytes(16)
    assert (await post_token_plain(flow, dtls_token(flow, k=key_a, kid=kid))).code == (2, 1)
    assert (await dtls_get(flow, kid, key_a)).code == aiocoap.CONTENT
    clock.offset = 3600.0
    with contextlib.suppress(aiocoap.error.NetworkError):  # 4.01, or the session closed after it
        assert (await dtls_get(flow, kid, key_a)).code == aiocoap.UNAUTHORIZED
    claims = AccessTokenClaims(aud="rs1", exp=int(clock()) + 600, cti=secrets.token_bytes(4), scope="r_temp",
                               cnf=CoseKeyCnf(symmetric_key(key_b, kid=kid)))
    assert (await post_token_plain(flow, issue_token(claims, flow.token_key))).code == (2, 1)
    flow.rs_server.reconcile()
    assert installed_psk(flow, kid) == key_b
    assert (await dtls_get(flow, kid, key_b)).code == aiocoap.CONTENT
    assert isinstance(await refused_handshake(flow, kid, key_a), TimeoutError)


# -- 5. update of access rights over the session (RFC 9202 §3.4) ---------------------------------


async def test_token_update_over_the_dtls_session(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="rw_led"))  # A/B: more rights
    lookups = count_psk_lookups(flow, monkeypatch)
    client = await dtls_client(flow)
    got = await get_temp(client, flow)
    kid, key = kid_of(got.session)
    refused = await bounded(client.request(req(flow, "PUT", "/led", b"on")), 4 * RUNNER_TIMEOUT)
    assert isinstance(refused, Done) and refused.response.code == (4, 3)
    handshakes = len(lookups)

    # C/D again: same PoP key (req_cnf kid), more scope; RFC 9202 §3.4: no cnf in the response
    ask = AccessTokenRequest(audience="rs1", scope="r_temp rw_led", req_cnf=KidCnf(kid),
                             ace_profile=AceProfile.COAP_DTLS).encode()
    answer_reply = await flow.post_to_as(client, ask)
    assert answer_reply.code == (2, 1), answer_reply
    answer = AccessTokenResponse.decode(answer_reply.payload)
    assert answer.cnf is None
    new_claims = verify_token(answer.access_token, KeyRing([flow.token_key]), audience="rs1", clock=time.time)
    assert new_claims.cnf == KidCnf(kid) and new_claims.scope == "r_temp rw_led"

    posted = await post_over_session(client, flow, answer.access_token)  # E over the DTLS session
    assert posted.code == (2, 1), posted
    assert len(flow.rs_server.core.bindings) == 1

    flow.exchanges.clear()
    put = await bounded(client.request(req(flow, "PUT", "/led", b"on")), 4 * RUNNER_TIMEOUT)
    assert isinstance(put, Done) and put.response.code == (2, 4), put
    led = await bounded(client.request(req(flow, "GET", "/led")), 4 * RUNNER_TIMEOUT)
    assert isinstance(led, Done) and led.response.payload == b"on"
    await get_temp(client, flow)
    assert flow.steps() == REUSED * 3
    assert len(lookups) == handshakes  # all over the session the first handshake made
    assert installed_psk(flow, kid) == key

    # a token for another kid over this session: not this channel's key (RFC 9202 §3.4) → 4.01
    other = dtls_token(flow, scope="r_temp rw_led", cnf=KidCnf(b"other-kid"))
    assert (await post_over_session(client, flow, other)).code == (4, 1)
    other_key = dtls_token(flow, scope="r_temp rw_led", kid=b"other-kid")  # a whole other COSE_Key
    assert (await post_over_session(client, flow, other_key)).code == (4, 1)
    same_kid_other_k = dtls_token(flow, scope="r_temp", kid=kid, k=bytes(b ^ 1 for b in key))
    assert (await post_over_session(client, flow, same_kid_other_k)).code == (4, 1)
    flow.exchanges.clear()  # the refused updates changed nothing
    put = await bounded(client.request(req(flow, "PUT", "/led", b"off")), 4 * RUNNER_TIMEOUT)
    assert isinstance(put, Done) and put.response.code == (2, 4)
    assert flow.steps() == REUSED and len(lookups) == handshakes


async def test_update_token_posted_unprotected_is_refused(flow: Flow) -> None:
    """A kid-only token cannot open a DTLS channel: without a session it is not an update."""
    reply = await post_token_plain(flow, dtls_token(flow, cnf=KidCnf(b"some-kid")))
    assert reply.code == (4, 0)
    assert ErrorResponse.decode(reply.payload).error == ErrorCode.UNSUPPORTED_POP_KEY
    assert len(flow.rs_server.psks) == 0


# -- 6. limits of the stack: refused at /authz-info, never handed to tinydtls ---------------------


@pytest.mark.parametrize(("k_len", "kid"), [(32, b"kid-32-byte-key"), (17, b"kid-17-byte-key"), (16, b"k" * 33)],
                         ids=["k-32", "k-17", "kid-33"])
async def test_oversized_pop_key_refused_at_authz_info(flow: Flow, k_len: int, kid: bytes) -> None:
    token = dtls_token(flow, k=secrets.token_bytes(k_len), kid=kid)
    reply = await post_token_plain(flow, token)
    assert reply.code == (4, 0), reply
    assert reply.content_format == ACE_CBOR
    assert ErrorResponse.decode(reply.payload).error == ErrorCode.UNSUPPORTED_POP_KEY
    assert len(flow.rs_server.psks) == 0 and len(flow.rs_server.core.bindings) == 0
    client = await dtls_client(flow)  # the RS keeps serving
    await get_temp(client, flow)
    assert flow.steps() == FULL


async def test_pop_key_at_the_limits_is_usable(flow: Flow) -> None:
    """The control for the test above: a 16-byte k and a 32-byte kid (tinydtls' maxima) work."""
    kid, key = b"K" * 32, secrets.token_bytes(16)
    reply = await post_token_plain(flow, dtls_token(flow, k=key, kid=kid))
    assert reply.code == (2, 1) and reply.payload == b""
    got = await dtls_get(flow, kid, key)
    assert got.code == aiocoap.CONTENT and 15.0 < float(got.payload.decode()) < 30.0
    # the same key, a newer token (a later exp: these hand-made tokens carry no iat): superseded
    again = await post_token_plain(flow, dtls_token(flow, k=key, kid=kid, scope="rw_led", later=1))
    assert again.code == (2, 1)
    assert len(flow.rs_server.core.bindings) == 1 and len(flow.rs_server.psks) == 1


# -- 7. an RS that offers OSCORE only ------------------------------------------------------------


async def test_oscore_only_rs_refuses_dtls_tokens(flow: Flow) -> None:
    await replace_rs(flow, profiles=(AceProfile.COAP_OSCORE,))
    assert flow.rs_server.coaps_port is None and AceProfile.COAP_DTLS not in flow.rs_server.core.config.profiles
    reply = await post_token_plain(flow, dtls_token(flow))
    assert reply.code == (4, 0), reply
    assert ErrorResponse.decode(reply.payload).error == ErrorCode.INVALID_REQUEST
    assert len(flow.rs_server.core.bindings) == 0

    client = await dtls_client(flow)  # the AS still issues coap_dtls for rs1: the RS refuses it at E
    got = await bounded(client.request(req(flow, "GET", "/temp")), 4 * RUNNER_TIMEOUT)
    assert isinstance(got, Failed), got
    assert got.step == "authz-info" and got.response is not None and got.response.code == (4, 0)
    assert flow.steps() == ["resource", "token", "authz-info"]
    assert len(flow.rs_server.core.bindings) == 0


# -- 8. the forms of the token at /authz-info (issue 11: ace-java's DTLS client) -------------------


@pytest.mark.parametrize("form", ["ace+cbor bare token (ace-java)", "ace+cbor map (RFC 9594)"])
async def test_token_posted_as_ace_cbor_opens_the_dtls_channel(flow: Flow, form: str) -> None:
    """ace-java's DTLS client POSTs the token itself with Content-Format application/ace+cbor (19);
    RFC 9594 §3.3 posts an ace+cbor map holding access_token. Both get 2.01 and a usable PSK."""
    kid, key = b"rs10", secrets.token_bytes(16)
    token = dtls_token(flow, k=key, kid=kid)
    payload = token if form.startswith("ace+cbor bare") else b"\xa1\x01" + _bstr(token)
    ctx = await flow.plain()
    reply = await send(ctx, aiocoap.Message(code=aiocoap.POST, uri=flow.authz_info_uri, payload=payload,
                                            content_format=ACE_CBOR))
    assert reply.code == (2, 1) and reply.payload == b"", reply
    got = await dtls_get(flow, kid, key)
    assert got.code == aiocoap.CONTENT and 15.0 < float(got.payload.decode()) < 30.0


def _bstr(data: bytes) -> bytes:
    assert len(data) < 65536
    return (b"\x58" + bytes([len(data)]) if len(data) < 256 else b"\x59" + len(data).to_bytes(2, "big")) + data


# -- 9. the AS's DTLS port (as.toml dtls_port; ace-java's client wants coaps on 5689) -------------


async def test_as_serves_dtls_on_the_configured_port(flow: Flow, tmp_path: Path) -> None:
    """``dtls_port`` other than port + 1: tokens over DTLS there, the plain port still serves."""
    port, coaps = free_port(), free_port()
    while coaps in (port, port + 1):
        coaps = free_port()
    text = flow.d.as_config.read_text()
    assert "dtls = false" in text
    config = flow.d.as_config.with_name("as-dtls.toml")  # beside as.toml: the same store
    config.write_text(text.replace("dtls = false", f"dtls = true\ndtls_port = {coaps}")
                      .replace(f"port = {load_as(flow.d.as_config).port}\n", f"port = {port}\n"))
    config.chmod(0o600)
    cfg = load_as(config)
    assert (cfg.port, cfg.dtls_port) == (port, coaps)
    await bounded(flow.as_server.stop())
    flow.as_server.store.close()
    flow.as_server = roles.build_as(cfg)
    await bounded(flow.as_server.start())
    assert flow.as_server.coaps_port == coaps and dtls.coap_port(flow.as_server.context) == port

    psk = load_psk(flow.d.directory / "client-as.psk.toml")  # clientA's DTLS key with the AS
    as_uri = f"coaps://[::1]:{coaps}/token"
    runner = ClientRunner(ClientFlow(ClientConfig(client_id="clientA", as_uri=as_uri), clock=time.time),
                          as_secret=None, as_uri=as_uri, as_psk=psk, observer=flow.exchanges.append,
                          seqno_store=FileSequenceStore(tmp_path / "state.json"), timeout=RUNNER_TIMEOUT)
    flow._runners.append(runner)
    await bounded(runner.start())
    got = await bounded(runner.request(req(flow, "GET", "/temp")), 4 * RUNNER_TIMEOUT)
    assert isinstance(got, Done) and got.response.code == (2, 5), got
    plain = await send(await flow.plain(), aiocoap.Message(code=aiocoap.POST, uri=f"coap://[::1]:{port}/token",
                                                            payload=b"\xa0", content_format=ACE_CBOR))
    assert plain.code == (4, 1)  # the plain port answers too: unprotected, no client (RFC 9200 §5.8.3)


@pytest.mark.parametrize("value", ["0x10000", "5689"])
def test_as_dtls_port_must_be_a_port_of_its_own(tmp_path: Path, value: str) -> None:
    config = tmp_path / "as.toml"
    config.write_text(f"[as]\nport = 5689\ndtls = true\ndtls_port = {value}\n")
    with pytest.raises(ConfigError, match="dtls_port"):
        load_as(config)
    config.write_text("[as]\nport = 5689\ndtls = true\n")
    assert load_as(config).dtls_port is None  # port + 1, aiocoap's layout
