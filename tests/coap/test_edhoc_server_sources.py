"""Unauthenticated peers against the RS's half-done EDHOC handshakes, over loopback (review M1, M2):
a message_3 from another source than its message_1 never reaches lakers, C_R and C_I are random,
and the reverse flow's triggers are admitted like message_1 (per source and globally)."""

from __future__ import annotations

from collections.abc import Sequence

import aiocoap
import cbor2
import pytest
from lakers_peer import CombinedContext, LakersInitiator, send
from support import bounded
from test_edhoc_server import LABEL, FakeGate, initiator, running, token_item

from ace.coap import edhoc_server
from ace.coap.edhoc_responders import CANDIDATE_IDS


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
