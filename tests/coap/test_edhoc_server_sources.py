"""Unauthenticated peers against the RS's half-done EDHOC handshakes, over loopback (review M1, M2):
a message_3 from another source than its message_1 never reaches lakers, C_R and C_I are random,
and the reverse flow's triggers are admitted like message_1 (per source and globally)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiocoap
import aiocoap.resource
import cbor2
import lakers
import pytest
from lakers_peer import CombinedContext, LakersInitiator, edhoc_error, party, send
from support import bounded
from test_edhoc_server import LABEL, FakeGate, initiator, running, token_item

from ace.cbor.labels import Curve
from ace.cli.demo_cmd import free_port
from ace.coap import edhoc, edhoc_reverse, edhoc_server
from ace.coap.edhoc_responders import CANDIDATE_IDS, DEFAULT_MAX_INCOMPLETE_PER_SOURCE
from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.ratelog import PER_WINDOW
from ace.errors import ServiceUnavailable
from ace.tokens.crypto import generate


async def test_message_3_from_another_source_leaves_the_handshake_alone() -> None:
    async with running(FakeGate()) as (rs, client):
        attacker = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
        try:
            peer = initiator(rs, client)
            await peer.message_1()
            uri = rs.origin + "/.well-known/edhoc"
            for c_r in CANDIDATE_IDS:  # every C_R, stand-alone and in the combined request
                junk = await send(attacker, aiocoap.Message(code=aiocoap.POST, uri=uri,
                                                            payload=c_r + b"\x58\x20" + bytes(32)))
                assert junk.code == (4, 0) and not junk.payload
                fake = CombinedContext(master_secret=bytes(16), master_salt=b"", sender_id=c_r,
                                       recipient_id=b"\x01\x02", alg=10, hkdf="sha256")
                fake.message_3 = b"\x58\x20" + bytes(32)
                attacker.client_credentials[rs.origin + "/*"] = fake
                got = await send(attacker, aiocoap.Message(code=aiocoap.GET, uri=rs.origin + "/whoami"))
                assert got.code in ((4, 0), (4, 1))
            assert rs.gate.seen == []  # nothing reached the token gate (nor lakers)
            reply = await peer.send_message_3(peer.message_3([token_item()]))
            assert (reply.code, rs.gate.installed) == ((2, 4), [LABEL])
            got = await peer.get(peer.oscore_context(), "/whoami")
            assert (got.code, cbor2.loads(got.payload)) == ((2, 5), [LABEL])
        finally:
            await bounded(attacker.shutdown())


async def test_c_r_is_drawn_at_random(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[Sequence[bytes]] = []

    def last(free: Sequence[bytes]) -> bytes:
        drawn.append(free)
        return free[-1]

    monkeypatch.setattr(edhoc_server, "choose_id", last)
    async with running(FakeGate()) as (rs, client):
        peer = LakersInitiator(client, rs.origin, rs.cred_r, c_i=b"\x2d")
        rs.gate.cred = peer.cred_i
        await peer.message_1()
        assert drawn and peer.c_r == drawn[0][-1] and len(drawn[0]) > 40


@asynccontextmanager
async def dual_stack(gate: FakeGate) -> AsyncIterator[tuple[str, int, Any, Any]]:
    """The RS on [::] (IPv4 too), its identity for [::1]; (origin, port, credentials, client)."""
    port = free_port()
    creds = edhoc.EdhocCredentialsMap()
    creds.gate = gate
    edhoc.install_server_identity(creds, generate(Curve.P_256, kid=b"\x0a"), [edhoc.edhoc_origin("::1", port)])
    server = await bounded(aiocoap.Context.create_server_context(
        edhoc_server.AceEdhocSite(aiocoap.resource.Site(), creds), bind=("::", port),
        transports=["oscore", "udp6"], server_credentials=creds))
    client = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
    try:
        yield f"coap://[::1]:{port}", port, creds, client
    finally:
        await bounded(client.shutdown())
        await bounded(server.shutdown())


async def test_reverse_triggers_and_guessed_c_i_from_elsewhere_leave_a_pending_handshake_alone() -> None:
    gate = FakeGate()
    async with dual_stack(gate) as (origin, port, creds, client):
        attacker = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
        try:
            d_c, gate.cred, _ = party(b"\x2b", "client")
            uri = origin + "/.well-known/edhoc"
            trigger = await send(client, aiocoap.Message(code=aiocoap.POST, uri=uri))
            responder = lakers.EdhocResponder(d_c, gate.cred)
            c_i = bytes(responder.process_message_1(trigger.payload)[0])
            for _ in range(8):  # another host (IPv4 loopback) floods triggers
                flood = await send(client, aiocoap.Message(code=aiocoap.POST, uri=f"coap://127.0.0.1:{port}/.well-known/edhoc"))
                assert flood.code in ((2, 4), (5, 3))
            for c in CANDIDATE_IDS:  # another port of the victim's host: C_I || junk for every C_I
                junk = await send(attacker, aiocoap.Message(code=aiocoap.POST, uri=uri, payload=c + b"\x00"))
                assert junk.code == (4, 0)
            c_r = b"\x05" if c_i != b"\x05" else b"\x06"
            m2 = responder.prepare_message_2(lakers.CredentialTransfer.ByValue, c_r, [])
            reply = await send(client, aiocoap.Message(code=aiocoap.POST, uri=uri, payload=c_i + bytes(m2),
                                                       content_format=65))
            assert reply.code == (2, 4)
            responder.parse_message_3(reply.payload)
            responder.verify_message_3(creds_rs_cred(creds, origin))
            m4 = responder.prepare_message_4([token_item()])
            done = await send(client, aiocoap.Message(code=aiocoap.POST, uri=uri, payload=c_i + bytes(m4),
                                                      content_format=65))
            assert (done.code, gate.installed) == ((2, 4), [LABEL])
        finally:
            await bounded(attacker.shutdown())


def creds_rs_cred(creds: Any, origin: str) -> bytes:
    identity = creds[origin + "/*"]
    encoded: bytes = cbor2.dumps(identity.own_cred[14], canonical=True)
    return encoded


@dataclass(frozen=True)
class Remote:
    sockaddr: tuple[str, int]


def test_reverse_triggers_are_admitted_per_source_and_c_i_is_random(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edhoc_reverse, "choose_id", lambda free: free[len(free) // 2])
    credentials = edhoc.EdhocCredentialsMap()
    reverse = edhoc_reverse.ReverseFlow(credentials)
    victim = Remote(("192.0.2.1", 40000))
    reverse.trigger(victim)
    mine = [p for p in credentials.values() if isinstance(p, edhoc_reverse.Pending)]
    assert len(mine) == 1 and mine[0].c_i == CANDIDATE_IDS[len(CANDIDATE_IDS) // 2]
    for port in range(20):
        reverse.trigger(Remote(("198.51.100.7", port)))
    assert reverse.pending(mine[0].c_i, victim) is mine[0]  # the flooding source's own went first
    assert reverse.pending(mine[0].c_i, Remote(("192.0.2.1", 40001))) is None  # found only from its source
    flooding = [p for p in credentials.values() if isinstance(p, edhoc_reverse.Pending) and p is not mine[0]]
    assert len(flooding) <= DEFAULT_MAX_INCOMPLETE_PER_SOURCE


def test_reverse_sessions_count_against_max_responders() -> None:
    credentials = edhoc.EdhocCredentialsMap(max_responders=1)
    for rid, label in ((b"\x01", b"a"), (b"\x02", b"b")):
        credentials[edhoc_reverse.KEY_PREFIX + rid.hex()] = MemoryOscoreContext(
            master_secret=bytes(16), sender_id=b"\x05", recipient_id=rid, authenticated_claims=[label])
    kept = [k for k in credentials if k.startswith(edhoc_reverse.KEY_PREFIX)]
    assert kept == [edhoc_reverse.KEY_PREFIX + "02"]  # the least recently used went


@dataclass
class FullGate(FakeGate):
    """Binds once; then the binding store is full (``commit_edhoc`` raises 5.03)."""

    def bound(self, admission: edhoc_server.Admission) -> None:
        if self.installed:
            raise ServiceUnavailable("no room for another binding")
        super().bound(admission)


async def test_a_refused_binding_keeps_the_previous_session() -> None:
    async with running(FullGate()) as (rs, client):
        first = initiator(rs, client)
        await first.message_1()
        await first.send_message_3(first.message_3([token_item()]))
        old = first.oscore_context()
        second = LakersInitiator(client, rs.origin, rs.cred_r, c_i=b"\x2d")
        second.d, second.cred_i = first.d, first.cred_i
        await second.message_1()
        reply = await second.send_message_3(second.message_3([token_item()]))
        assert (reply.code, reply.payload) == ((4, 0), edhoc_error("access token refused"))
        got = await first.get(old, "/whoami")  # EP §4.2 drops the old session only for a stored new one
        assert (got.code, cbor2.loads(got.payload)) == ((2, 5), [LABEL])


async def test_a_flood_of_bad_edhoc_messages_is_a_bounded_number_of_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    async with running(FakeGate()) as (rs, client):
        caplog.set_level(logging.INFO, logger="ace.coap")
        for n in range(3 * PER_WINDOW):  # message_1 that lakers refuses, each a log line without the limiter
            bad = await send(client, aiocoap.Message(code=aiocoap.POST, uri=rs.origin + "/.well-known/edhoc",
                                                     payload=b"\xf5" + bytes([n]) * 8))
            assert bad.code == (4, 0)
        lines = [r for r in caplog.records if r.name.startswith("ace.coap.edhoc")]
        assert len(lines) <= PER_WINDOW + 1  # the rest counted in one summary line
