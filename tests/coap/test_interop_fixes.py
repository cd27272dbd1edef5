"""Socket tests (aiocoap on ::1) for what ace-java needs from us (issue 11), each exact to the RFCs:
a request without kid context (RFC 8613 §6.1), a restart without Echo (RFC 8613 §B.1.2), the
introspection status code (RFC 9200 §5.9.2) and 4.03/4.05 with creation hints (§5.10.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiocoap import oscore
from aiocoap.credentials import CredentialsMap
from aiocoap.numbers import CHANGED, CONTENT, GET, POST
from oscore_support import FakeSeqnoStore, _request, coap_client, oscore_server

from ace.coap.contexts import ContextIndex
from ace.coap.oscore_context import MemoryOscoreContext, PersistentOscoreContext

SECRET = bytes.fromhex("6162630405060708090a0b0c0d0e0f10")  # ace-java's clientA <-> AS


class KidOnly(MemoryOscoreContext):
    """A client like ace-java's: kid in the OSCORE option, never the kid context."""

    def protect(self, message: Any, request_id: Any = None, *, kid_context: bool | bytes = True) -> tuple[Any, Any]:
        return super().protect(message, request_id, kid_context=False)


def _server(id_context: bytes | None, rid: bytes = b"\xde", claims: str = "c1") -> MemoryOscoreContext:
    return MemoryOscoreContext(master_secret=SECRET, sender_id=b"\x01", recipient_id=rid,
                               id_context=id_context, authenticated_claims=[claims])


def _credentials(index: ContextIndex) -> CredentialsMap:
    credentials = CredentialsMap()
    credentials[":index"] = index
    return credentials


async def test_request_without_kid_context_finds_the_one_context_with_its_kid() -> None:
    # RFC 8613 §6.1: kid context is optional; the RS derived this context with an ID Context
    index = ContextIndex()
    index.add(_server(b"\x00"))
    index.add(_server(None, rid=b"\x02", claims="other"))
    client_ctx = KidOnly(master_secret=SECRET, sender_id=b"\xde", recipient_id=b"\x01", id_context=b"\x00")
    async with oscore_server(_credentials(index)) as (_, port), coap_client(port, client_ctx) as client:
        got = await _request(client, port, GET)
        assert got.code == CONTENT and json.loads(got.payload)["claims"] == ["c1"]


async def test_request_without_kid_context_is_refused_when_ambiguous() -> None:
    index = ContextIndex()
    index.add(_server(b"\x00"))
    index.add(_server(b"\x01", claims="c2"))  # same kid, another ID Context: which one is meant?
    client_ctx = KidOnly(master_secret=SECRET, sender_id=b"\xde", recipient_id=b"\x01", id_context=b"\x00")
    async with oscore_server(_credentials(index)) as (wrapper, port), coap_client(port, client_ctx) as client:
        with pytest.raises(oscore.NotAProtectedMessage) as info:  # unprotected 4.01: context not found
            await _request(client, port, GET)
        assert info.value.plain_message.code.dotted == "4.01"
        assert wrapper.outer_requests == 1


async def test_restarted_server_context_needs_no_echo_and_refuses_replays() -> None:
    # RFC 8613 §B.1.2: the persisted window floor; a client that never answers Echo (ace-java) is
    # served at once after a restart, and a request it sent before the restart is refused
    store = FakeSeqnoStore()

    def as_side() -> PersistentOscoreContext:
        return PersistentOscoreContext(seqno_store=store, name="oscore/clientA", master_secret=SECRET,
                                       sender_id=b"\x00", recipient_id=b"\x55", authenticated_claims=["clientA"])

    client_ctx = MemoryOscoreContext(master_secret=SECRET, sender_id=b"\x55", recipient_id=b"\x00")
    async with coap_client(0, None) as client:
        client.client_credentials["coap://[::1]:*"] = client_ctx
        for round_ in range(3):
            async with oscore_server(_credentials_of(as_side())) as (wrapper, port):
                got = await _request(client, port, POST, b"x")
                assert got.code == CHANGED and json.loads(got.payload)["claims"] == ["clientA"]
                assert wrapper.outer_requests == 1, f"round {round_}: challenged with Echo"
    assert store.values["oscore/clientA/replay"] == client_ctx.sender_sequence_number


def _credentials_of(ctx: MemoryOscoreContext) -> CredentialsMap:
    credentials = CredentialsMap()
    credentials[":ctx"] = ctx
    return credentials
