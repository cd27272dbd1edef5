"""Token introspection (RFC 9200 §5.9) and reference tokens over real sockets on ::1.

The AS serves POST /introspect to registered RSs over their OSCORE context with it; the RS
introspects reference tokens (and, with ``introspect = true``, every token) posted to its
/authz-info over that context. Every await is bounded."""

from __future__ import annotations

import secrets
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiocoap
import aiocoap.resource
import cbor2
from deployment import Flow, running_deployment, send, store_of
from support import ACE_CBOR, TIMEOUT, bounded, until

from ace.authz_server import trl
from ace.cbor.labels import AceProfile
from ace.cli import roles
from ace.cli.config import load_client
from ace.cli.demo_cmd import free_port
from ace.client.flow import Done, ResourceRequest
from ace.coap.client import ClientRunner
from ace.coap.introspect_client import IntrospectionClient
from ace.coap.trl_client import trl_uri
from ace.messages import AccessTokenResponse, AuthzInfoRequest, IntrospectionRequest, IntrospectionResponse
from ace.store.base import Grant, IssuedToken, RsRecord
from ace.store.seqno import FileSequenceStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial
from ace.tokens.cwt import issue_token
from ace.tokens.keys import symmetric_key
from ace.tokens.oscore_params import OscoreContextParams
from ace.tokens.reference import REFERENCE_LEN, is_reference

INACTIVE = b"\xa1\x0a\xf4"  # {10: false}


def deployment(directory: Path, *, reference: bool = False, introspect: bool = False,
               observe_trl: bool = False) -> AbstractAsyncContextManager[Flow]:
    """The shared running deployment, with reference tokens for rs1, an introspecting or
    TRL-observing RS, and the AS polling its store for revocations every 50 ms."""
    return running_deployment(directory, as_changes={"reference_audiences": ("rs1",)} if reference else None,
                              rs_changes={"introspect": introspect, "observe_trl": observe_trl}, trl_poll=0.05)


def introspector(flow: Flow) -> IntrospectionClient:
    client = flow.rs_server.introspector
    assert client is not None
    return client


async def introspect(flow: Flow, token: bytes) -> IntrospectionResponse:
    """Ask the AS as the RS does, over the RS's own context with the AS."""
    code, payload = await bounded(introspector(flow).introspect(IntrospectionRequest(token=token).encode()))
    assert code == (2, 1), (code, payload)  # RFC 9200 §5.9.2
    return IntrospectionResponse.decode(payload)


async def client(flow: Flow, profile: int | None = None) -> ClientRunner:
    runner = roles.build_client(load_client(flow.d.client_config), profile=profile, observer=flow.exchanges.append)
    flow._runners.append(runner)
    await bounded(runner.start())
    return runner


async def get_temp(flow: Flow, runner: ClientRunner) -> Done:
    result = await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")), 4 * TIMEOUT)
    assert isinstance(result, Done) and result.response.code == (2, 5), result
    return result


def logged_token(flow: Flow, *, exp: float | None = None) -> tuple[bytes, OscoreInputMaterial]:
    """A token made by hand (``Flow.token``) and logged as if the AS had issued it: the AS's
    introspection knows a self-contained token only by its cti in the token log."""
    material = OscoreInputMaterial(id=secrets.token_bytes(2), ms=secrets.token_bytes(16))
    expires = int(time.time() + 600 if exp is None else exp)
    cti = secrets.token_bytes(4)
    claims = AccessTokenClaims(aud="rs1", exp=expires, cti=cti, scope="r_temp", cnf=OscoreCnf(material))
    token = issue_token(claims, flow.token_key)
    store_of(flow).log_token(IssuedToken(cti=cti, client_id="clientA", audience="rs1", scope="r_temp",
                                         issued_at=int(time.time()), expires_at=expires,
                                         token_hash=trl.token_hash(token)))
    return token, material


def issued_token(flow: Flow) -> AccessTokenResponse:
    [exchange] = [e for e in flow.exchanges if e.step == "token"][-1:]
    return AccessTokenResponse.decode(exchange.response.payload)


# --- the AS's /introspect -------------------------------------------------------------------


async def test_introspection_of_active_expired_revoked_and_unknown_tokens(tmp_path: Path) -> None:
    async with deployment(tmp_path) as flow:
        token, material = logged_token(flow)
        r = await introspect(flow, token)
        assert r.active and r.aud == "rs1" and r.scope == "r_temp" and r.cnf == OscoreCnf(material)
        assert r.ace_profile == AceProfile.COAP_OSCORE and r.exp is not None and r.cti is not None
        expired, _ = logged_token(flow, exp=time.time() - 1)
        assert (await introspect(flow, expired)).encode() == INACTIVE
        revoked, _ = logged_token(flow)
        store_of(flow).revoke_token(trl.token_hash(revoked), revoked_at=int(time.time()), expires_at=None)
        assert (await introspect(flow, revoked)).encode() == INACTIVE
        never_issued = flow.token()[0]  # the RS's key, but not in the AS's token log
        for unknown in (secrets.token_bytes(16), b"\x83\x40\xa0\x40", flow.token(key=symmetric_key(bytes(16)))[0],
                        never_issued):
            assert (await introspect(flow, unknown)).encode() == INACTIVE
        assert (await introspect(flow, token)).active  # the others did not disturb it


async def test_unauthenticated_peer_and_client_are_refused(tmp_path: Path) -> None:
    async with deployment(tmp_path) as flow:
        token, _ = flow.token()
        uri = trl_uri(flow.d.as_uri, "/introspect")
        payload = IntrospectionRequest(token=token).encode()
        ctx = await flow.plain()
        reply = await send(ctx, aiocoap.Message(code=aiocoap.POST, uri=uri, payload=payload, content_format=ACE_CBOR))
        assert reply.code == (4, 1) and cbor2.loads(reply.payload)[30] == 2  # invalid_client
        runner = await flow.client()  # a registered client, over its OSCORE context with the AS
        reply = await send(runner.context, aiocoap.Message(code=aiocoap.POST, uri=uri, payload=payload,
                                                           content_format=ACE_CBOR))
        assert reply.protected and reply.code == (4, 1) and cbor2.loads(reply.payload)[30] == 2
        assert "active" not in reply.payload.decode(errors="replace")


async def test_rs_cannot_introspect_another_rss_token(tmp_path: Path) -> None:
    async with deployment(tmp_path) as flow:
        store = store_of(flow)
        ms = secrets.token_bytes(16)  # rs2 registered while the AS runs, with its own context and key
        store.put_rs(RsRecord(audience="rs2", rs_id="rs2", token_key=symmetric_key(secrets.token_bytes(16), kid=b"2"),
                              oscore=OscoreContextParams(master_secret=ms, sender_id=b"as", recipient_id=b"rs2")))
        store.add_grant(Grant(client_id="clientA", audience="rs2", scope="r_temp", default=True))
        rs2 = IntrospectionClient(trl_uri(flow.d.as_uri, "/introspect"),
                                  OscoreContextParams(master_secret=ms, sender_id=b"rs2", recipient_id=b"as"),
                                  FileSequenceStore(tmp_path / "rs2-state.json"))
        try:
            token, _ = logged_token(flow)  # for rs1
            code, payload = await bounded(rs2.introspect(IntrospectionRequest(token=token).encode()))
            assert code == (2, 1) and payload == INACTIVE
            assert (await introspect(flow, token)).active  # rs1 itself may
        finally:
            await bounded(rs2.stop())


# --- reference tokens end to end --------------------------------------------------------------


async def test_reference_token_flow_oscore(tmp_path: Path) -> None:
    async with deployment(tmp_path, reference=True) as flow:
        runner = await client(flow)
        result = await get_temp(flow, runner)
        issued = issued_token(flow)
        token = issued.access_token
        assert len(token) == REFERENCE_LEN and is_reference(token) and isinstance(issued.cnf, OscoreCnf)
        assert result.session is not None and result.session.token == token
        assert introspector(flow).requests == 1
        [binding] = list(flow.rs_server.core.bindings)
        assert binding.token_hash == trl.token_hash(token) and binding.claims.scope == "r_temp"
        await get_temp(flow, runner)  # the session goes on, nothing asked again
        assert introspector(flow).requests == 1

        added = trl.revoke_token(store_of(flow), token, clock=time.time)  # what `ace revoke` runs
        assert added == trl.token_hash(token)
        assert (await introspect(flow, token)).encode() == INACTIVE  # a fresh introspection says so
        flow.rs_server.core.introspection.forget(trl.token_hash(token))  # the RS's cached answer gone
        ctx = await flow.plain()
        payload = AuthzInfoRequest(access_token=token, nonce1=secrets.token_bytes(8),
                                   ace_client_recipientid=b"\x33").encode()
        reply = await flow.post_authz_info(ctx, payload)
        assert reply.code == (4, 1) and b"not active" in reply.payload


async def test_reference_token_flow_dtls(tmp_path: Path) -> None:
    async with deployment(tmp_path, reference=True) as flow:
        runner = await client(flow, profile=AceProfile.COAP_DTLS)
        await get_temp(flow, runner)
        issued = issued_token(flow)
        assert issued.ace_profile == AceProfile.COAP_DTLS and is_reference(issued.access_token)
        assert introspector(flow).requests == 1 and "resource (DTLS)" in flow.steps()


async def test_garbage_reference_is_refused_after_one_question(tmp_path: Path) -> None:
    async with deployment(tmp_path, reference=True) as flow:
        ctx = await flow.plain()
        junk = b"\x01" + secrets.token_bytes(15)
        payload = AuthzInfoRequest(access_token=junk, nonce1=secrets.token_bytes(8),
                                   ace_client_recipientid=b"\x33").encode()
        for _ in range(3):
            assert (await flow.post_authz_info(ctx, payload)).code == (4, 1)
        assert introspector(flow).requests == 1  # the inactive answer is cached a while


async def test_revocation_over_the_trl_reaches_introspected_tokens(tmp_path: Path) -> None:
    """The RS observes the TRL and introspects over one shared context with the AS."""
    async with deployment(tmp_path, reference=True, observe_trl=True) as flow:
        link = flow.rs_server.trl
        assert link is not None and introspector(flow).context is link.context
        await until(lambda: link.observer.notifications >= 1)
        runner = await client(flow)
        await get_temp(flow, runner)
        token = issued_token(flow).access_token
        before = link.observer.notifications
        trl.revoke_token(store_of(flow), token, clock=time.time)
        await until(lambda: link.observer.notifications > before)
        assert not flow.rs_server.core.live_labels() and len(flow.rs_server.core.introspection) == 0
        again = await get_temp(flow, runner)  # a new reference token, introspected over the same context
        assert again.session is not None and again.session.token != token
        assert introspector(flow).requests == 2


async def test_rs_configured_to_introspect_every_token(tmp_path: Path) -> None:
    async with deployment(tmp_path, introspect=True) as flow:
        result: Any = await flow.full_flow()
        assert isinstance(result, Done) and result.response.code == (2, 5)
        assert introspector(flow).requests == 1
        assert not is_reference(issued_token(flow).access_token)  # a self-contained token, asked about anyway


class _Impostor(aiocoap.resource.Resource):  # type: ignore[misc]
    """Answers every POST with an unprotected 2.05 'active' for a key of the attacker's choosing."""

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        forged = IntrospectionResponse(active=True, aud="rs1", scope="r_temp", exp=2_000_000_000,
                                       cnf=OscoreCnf(OscoreInputMaterial(id=b"evil", ms=b"A" * 16)))
        return aiocoap.Message(code=aiocoap.CONTENT, payload=forged.encode())


async def test_an_unprotected_introspection_answer_is_never_taken(tmp_path: Path) -> None:
    # anyone on the path can answer in plain CoAP: only an OSCORE-protected answer is the AS's
    port = free_port()
    site = aiocoap.resource.Site()
    site.add_resource([], _Impostor())  # OSCORE hides the Uri-Path: the outer request is for /
    server = await aiocoap.Context.create_server_context(site, bind=("::1", port), transports=["udp6"])
    secret = OscoreContextParams(master_secret=secrets.token_bytes(16), sender_id=b"\x01", recipient_id=b"\x02")
    asker = IntrospectionClient(f"coap://[::1]:{port}/introspect", secret, FileSequenceStore(tmp_path / "s.json"))
    try:
        request = IntrospectionRequest(token=b"\x01opaque-reference").encode()
        assert await bounded(asker.introspect(request)) == (None, b"")
    finally:
        await bounded(asker.stop())
        await bounded(server.shutdown())


class _PlainResource(aiocoap.resource.Resource):  # type: ignore[misc]
    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:  # OSCORE's outer code
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"forged reading")


async def test_the_client_never_takes_an_unprotected_success(tmp_path: Path) -> None:
    # a protected request answered in plain CoAP: an error may come so (OSCORE errors do), a 2.xx not
    from ace.coap import contexts
    port = free_port()
    site = aiocoap.resource.Site()
    site.add_resource([], _PlainResource())  # OSCORE hides the Uri-Path
    server = await aiocoap.Context.create_server_context(site, bind=("::1", port), transports=["udp6"])
    runner = ClientRunner(None, as_secret=None, as_uri=None,  # type: ignore[arg-type]  (no flow needed)
                          seqno_store=FileSequenceStore(tmp_path / "s.json"))
    await bounded(runner.start())
    secret = OscoreContextParams(master_secret=secrets.token_bytes(16), sender_id=b"\x01", recipient_id=b"\x02")
    security = contexts.from_secret(secret, store=runner.seqno_store, claims=["rs"])
    try:
        got = await bounded(runner._send("resource (protected)", "GET", f"coap://[::1]:{port}/temp", b"", None,
                                         security))
        assert got.code == (5, 2) and b"forged" not in got.payload
    finally:
        await bounded(runner.stop())
        await bounded(server.shutdown())


class _PlainTrl(aiocoap.resource.Resource):  # type: ignore[misc]
    async def render_fetch(self, request: aiocoap.Message) -> aiocoap.Message:  # OSCORE's outer code (Observe)
        return aiocoap.Message(code=aiocoap.CONTENT, content_format=262,
                               payload=cbor2.dumps({0: [trl.token_hash(b"someone else's token")]}))


async def test_an_unprotected_trl_answer_revokes_nothing(tmp_path: Path) -> None:
    from ace.coap import contexts
    from ace.coap.trl_client import TrlObserver
    port = free_port()
    site = aiocoap.resource.Site()
    site.add_resource([], _PlainTrl())  # OSCORE hides the Uri-Path
    server = await aiocoap.Context.create_server_context(site, bind=("::1", port), transports=["udp6"])
    ctx = await aiocoap.Context.create_client_context(transports=["oscore", "udp6"])
    secret = OscoreContextParams(master_secret=secrets.token_bytes(16), sender_id=b"\x01", recipient_id=b"\x02")
    ctx.client_credentials[f"coap://[::1]:{port}/*"] = contexts.from_secret(
        secret, store=FileSequenceStore(tmp_path / "s.json"), claims=["as"])
    revoked: list[list[bytes]] = []
    observer = TrlObserver(f"coap://[::1]:{port}/revoke/trl", revoked.append, timeout=TIMEOUT)
    observer.context = ctx
    try:
        assert await bounded(observer._observe_once()) is False
        assert revoked == [] and observer.notifications == 0
    finally:
        await bounded(ctx.shutdown())
        await bounded(server.shutdown())
