"""Attacks on the RS's EDHOC state and its identifier space (issue 17 items 3 and 7), replayed
over real sockets on ::1 against an in-process AS + RS from an ``ace init`` deployment. Each
socket test failed on the code before the fix; the comment says how.

- 3: unauthenticated message_1s (38 B each) made the RS evict completed EDHOC contexts (the
  oldest beyond 40); the next message_1 got the victim's C_R, so the victim's next request met
  a half-done context (4.00 "EDHOC incomplete") and the client gave up.
- 7: re-POSTing one sniffed OSCORE token with fresh N1 until the RS's Recipient ID equalled a
  live EDHOC C_R shadowed the victim's EDHOC context (its requests then failed to decrypt).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import aiocoap
import cbor2
import lakers
import pytest
from aiocoap.edhoc import EdhocResponderContext
from deployment import Flow, send
from support import Reply, bounded

from ace.cbor.labels import AceProfile
from ace.cli.config import load_oscore_secret
from ace.cli.keyfiles import load_key
from ace.client.flow import ClientConfig, ClientFlow, Done, ResourceRequest
from ace.coap import edhoc
from ace.coap.client import ClientRunner
from ace.profiles.ids import RecipientIdPool
from ace.store.seqno import FileSequenceStore

RUNNER_TIMEOUT = 3.0
FLOOD = 60  # message_1s: more than the 48 connection ids aiocoap has
CANDIDATES = [cbor2.dumps(i) for i in range(-24, 24)]  # EDHOC C_Rs as aiocoap 0.4.17 picks them, in order


async def edhoc_client(flow: Flow) -> ClientRunner:
    """The deployment's client (clientA) asking for coap_edhoc_oscore; stopped by the fixture."""
    config = ClientConfig(client_id="clientA", as_uri=flow.d.as_uri, profile=AceProfile.COAP_EDHOC_OSCORE,
                          edhoc_key=load_key(flow.d.directory / "client-edhoc.key"))
    runner = ClientRunner(ClientFlow(config, clock=time.time),
                          as_secret=load_oscore_secret(flow.d.directory / "client-as.oscore.toml"),
                          as_uri=flow.d.as_uri, seqno_store=FileSequenceStore(flow.d.directory / "client-state.json"),
                          observer=flow.exchanges.append, timeout=RUNNER_TIMEOUT)
    flow._runners.append(runner)
    await bounded(runner.start())
    return runner


async def get_temp(runner: ClientRunner, flow: Flow) -> Done:
    got = await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")), 4 * RUNNER_TIMEOUT)
    assert isinstance(got, Done) and got.response.code == (2, 5), got
    return got


def session_of(runner: ClientRunner, flow: Flow) -> edhoc.ClientEdhoc:
    return runner.channels[AceProfile.COAP_EDHOC_OSCORE].live[flow.rs_uri][1]


def responders(flow: Flow) -> list[edhoc.ResponderEntry]:
    return edhoc.responder_contexts(flow.rs_server.credentials)


def live_c_rs(flow: Flow) -> set[bytes]:
    return {bytes(e.context.recipient_id) for e in responders(flow)}


async def message_1(flow: Flow, ctx: Any, c_i: bytes | None = None) -> Reply:
    """An unauthenticated EDHOC message_1 (method 3, suite 2: 37 B, plus CBOR true over CoAP)."""
    msg = lakers.EdhocInitiator().prepare_message_1(c_i or bytes([secrets.randbelow(24)]), [])
    request = aiocoap.Message(code=aiocoap.POST, uri=flow.rs_uri + "/.well-known/edhoc", payload=b"\xf5" + msg)
    return await send(ctx, request)


def steps(flow: Flow) -> list[tuple[str, tuple[int, int]]]:
    return [(e.step, e.response.code) for e in flow.exchanges]


# -- 3: EDHOC connection-id exhaustion -------------------------------------------------------------


async def test_message_1_flood_leaves_a_live_edhoc_session_alone(flow: Flow) -> None:
    client = await edhoc_client(flow)
    await get_temp(client, flow)
    assert session_of(client, flow).pinned
    creds = flow.rs_server.credentials
    (victim,) = responders(flow)
    entries_before = len(creds)

    attacker = await flow.plain()
    codes = [(await message_1(flow, attacker)).code for _ in range(FLOOD)]

    # before the fix: 4.00 "EDHOC incomplete" (an attacker's half-done context had the victim's C_R)
    flow.exchanges.clear()
    await get_temp(client, flow)
    assert steps(flow) == [("resource (EDHOC)", (2, 5))]  # over the pinned context: no token, no handshake
    assert [e.key for e in responders(flow) if e.complete] == [victim.key]
    assert (5, 0) not in codes, codes  # never "Too many contexts"
    half_done = [e for e in responders(flow) if not e.complete]
    assert len(half_done) <= creds.max_incomplete_per_source  # one source (::1): bounded per source
    assert len(creds) <= entries_before + creds.max_incomplete  # RS state stays bounded

    # a new handshake still gets in after the flood (a half-done one of the flood gives way)
    session_of(client, flow).reset()
    flow.exchanges.clear()
    await get_temp(client, flow)
    assert steps(flow) == [("resource (EDHOC)", (2, 5))] and session_of(client, flow).pinned
    assert len([e for e in responders(flow) if not e.complete]) <= creds.max_incomplete_per_source


async def test_client_reruns_edhoc_once_when_its_c_r_names_another_context(
        flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state item 3 left behind: the RS forgot the victim's context and a stranger's half-done
    handshake got its C_R. The client's pinned context then gets an unprotected 4.00."""
    client = await edhoc_client(flow)
    await get_temp(client, flow)
    creds = flow.rs_server.credentials
    (victim,) = responders(flow)
    c_r = bytes(victim.context.recipient_id)
    assert creds.forget_label(victim.claims[0]) == 1
    every_other = {bytes([i]) for i in [*range(0x18), *range(0x20, 0x38)]} - {c_r}
    monkeypatch.setattr(creds, "find_all_used_contextless_oscore_kid", lambda: set(every_other))
    # a C_I other than c_r: C_R must differ from C_I (RFC 9528 §3.3.3), and c_r is the one id left
    assert (await message_1(flow, await flow.plain(), c_i=min(every_other))).code == (2, 4)
    monkeypatch.undo()
    assert [(bytes(e.context.recipient_id), e.complete) for e in responders(flow)] == [(c_r, False)]

    flow.exchanges.clear()
    await get_temp(client, flow)  # before the fix: Failed, with the 4.00
    assert steps(flow) == [("resource (EDHOC)", (4, 0)), ("resource (EDHOC)", (2, 5))]  # one new EDHOC run
    assert session_of(client, flow).pinned
    flow.exchanges.clear()
    await get_temp(client, flow)
    assert steps(flow) == [("resource (EDHOC)", (2, 5))]


# -- 7: one identifier space for every profile -------------------------------------------------------


def walking_ids(start: int = 0x20) -> Callable[[int], bytes]:
    """The RS's random ids, made to walk the one-byte space: the attacker's luck, deterministic."""
    counter = iter(range(start, start + (1 << 16)))
    return lambda n: next(counter).to_bytes(4, "big")[-n:]


async def test_reposted_oscore_token_never_takes_a_live_edhoc_c_r(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await edhoc_client(flow)
    await get_temp(client, flow)
    taken = live_c_rs(flow)
    assert len(taken) == 1
    monkeypatch.setattr(flow.rs_server.core.ids, "_rng", walking_ids())
    attacker = await flow.plain()
    token, material = flow.token()  # one sniffed OSCORE-profile token, re-POSTed with fresh N1
    rids = []
    for _ in range(32):  # before the fix the 24th got h'37', the victim's C_R
        posted = await flow.post_token(attacker, token, material, nonce1=secrets.token_bytes(8))
        assert posted.response.code == (2, 1) and posted.server_rid is not None, posted.response
        rids.append(posted.server_rid)
        assert posted.server_rid not in taken, (len(rids), posted.server_rid)
    assert not set(rids) & set(CANDIDATES)  # the pool leaves EDHOC's 48 one-byte C_Rs alone

    flow.exchanges.clear()  # before the fix: 4.00 (the OSCORE-profile context shadowed the EDHOC one)
    await get_temp(client, flow)
    assert steps(flow) == [("resource (EDHOC)", (2, 5))]
    # and a new EDHOC run never picks an id the pool handed out
    live = set(flow.rs_server.core.live_labels())
    session_of(client, flow).reset()
    await get_temp(client, flow)
    assert not live_c_rs(flow) & live
    assert posted.context is not None and (await flow.get_with(posted.context)).code == (2, 5)


# -- the mechanisms, without sockets ------------------------------------------------------------------


def half_done(creds: edhoc.EdhocCredentialsMap, key: str, c_r: bytes) -> EdhocResponderContext:
    ctx = EdhocResponderContext(None, b"\x01" if c_r != b"\x01" else b"\x02", c_r, creds, logging.getLogger("test"))
    creds[key] = ctx
    return ctx


def completed(ctx: EdhocResponderContext, label: bytes) -> None:
    """What a verified message_3 does (aiocoap's ``_offer_message_3``), without the crypto."""
    ctx._incomplete = False
    ctx.authenticated_claims = [label]


def test_half_done_handshakes_are_bounded_per_source_and_globally() -> None:
    creds = edhoc.EdhocCredentialsMap(max_responders=4, max_incomplete=4, max_incomplete_per_source=2)
    ids = iter(CANDIDATES)
    victim = half_done(creds, ":victim", next(ids))
    completed(victim, b"v")
    creds._completed(":victim")
    for n in range(10):  # one source floods: it only ever displaces its own
        with creds.admitting("2001:db8::/64"):
            half_done(creds, f":a{n}", next(ids))
    pending = [e.key for e in edhoc.responder_contexts(creds) if not e.complete]
    assert pending == [":a8", ":a9"]
    with creds.admitting("192.0.2.1"):
        half_done(creds, ":b", next(ids))
    with creds.admitting("192.0.2.2"):
        half_done(creds, ":c", next(ids))
    with creds.admitting("192.0.2.3"):  # global limit: the most crowded source gives way
        half_done(creds, ":d", next(ids))
    pending = [e.key for e in edhoc.responder_contexts(creds) if not e.complete]
    assert pending == [":a9", ":b", ":c", ":d"]
    assert ":victim" in creds  # never displaced by a half-done handshake


def test_only_a_completed_handshake_displaces_a_completed_one() -> None:
    live = {b"l0", b"l1", b"l2"}
    creds = edhoc.EdhocCredentialsMap(max_responders=3, max_incomplete=2)
    creds.share_ids(RecipientIdPool(secrets.token_bytes), live=lambda label: label in live)
    ids = iter(CANDIDATES)
    for n, label in enumerate([b"l0", b"gone", b"l1"]):
        ctx = half_done(creds, f":{n}", next(ids))
        completed(ctx, label)
        creds._completed(f":{n}")
    ctx = half_done(creds, ":3", next(ids))
    assert {e.key for e in edhoc.responder_contexts(creds)} == {":0", ":1", ":2", ":3"}  # at message_1: nothing
    completed(ctx, b"l2")
    creds._completed(":3")
    assert [e.key for e in edhoc.responder_contexts(creds)] == [":0", ":2", ":3"]  # the one whose token is gone
    ctx = half_done(creds, ":4", next(ids))
    completed(ctx, b"l1")
    creds._completed(":4")  # a newer context of the same token: the older one goes
    assert [e.key for e in edhoc.responder_contexts(creds)] == [":0", ":3", ":4"]


def test_no_connection_id_left_is_a_clean_5_03() -> None:
    creds = edhoc.EdhocCredentialsMap(max_responders=40, max_incomplete=6)
    pool = RecipientIdPool(secrets.token_bytes)
    creds.share_ids(pool, live=lambda label: True)
    ids = iter(CANDIDATES)
    for n in range(40):
        ctx = half_done(creds, f":{n}", next(ids))
        completed(ctx, b"%d" % n)
        creds._completed(f":{n}")
    for c_r in [next(ids) for _ in range(7)]:  # ids taken by someone else (claimed in the shared pool)
        assert pool.claim(c_r)
    with pytest.raises(edhoc.HandshakeRefused) as refused, creds.admitting("::/64"):
        pass
    message = refused.value.to_message()
    assert message.code == aiocoap.SERVICE_UNAVAILABLE and message.opt.max_age
    assert len(edhoc.responder_contexts(creds)) == 40


def test_pool_and_c_r_share_one_identifier_space() -> None:
    pool = RecipientIdPool(lambda n: b"\x37" * n)  # the rng insists on a C_R candidate
    creds = edhoc.EdhocCredentialsMap()
    creds.share_ids(pool, live=lambda label: True)
    rid = pool.allocate()
    assert rid not in CANDIDATES and len(rid) == 1
    half_done(creds, ":x", b"\x37")
    assert b"\x37" in pool.reserved
    other = RecipientIdPool(lambda n: b"\x05" * n)  # an externally chosen id is never handed out
    assert other.reserve(b"\x05") and other.allocate() != b"\x05"
    assert not other.claim(b"\x05") and b"\x05" not in other
    del creds[":x"]
    assert b"\x37" not in pool.reserved
    # the C_R freed last is the last one aiocoap may pick again
    used = creds.find_all_used_contextless_oscore_kid()
    assert b"\x37" in used and len(set(CANDIDATES) - used) == edhoc.CONNECTION_IDS - 1
