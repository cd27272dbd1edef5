"""Who a CoAP request's peer is (ace.coap.peers): the AS finds the client's or RS's current record
once per request and hands it to the core; a context no longer registered is refused and dropped."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import aiocoap
from support import counter_rng, fixed_clock

from ace.authz_server.token import TokenEndpoint
from ace.cbor.labels import ContentFormat
from ace.coap import contexts, peers
from ace.coap.as_server import TokenResource
from ace.messages import AccessTokenRequest
from ace.requester import RsPeer
from ace.store.base import ClientRecord, DtlsPsk, Grant, RsRecord
from ace.store.memory import MemoryAsStore
from ace.tokens.keys import symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

C1 = OscoreContextParams(master_secret=bytes(16), sender_id=b"\x00", recipient_id=b"\x01")
RS1 = OscoreContextParams(master_secret=bytes(range(16)), sender_id=b"\x00", recipient_id=b"\x02")


class CountingStore(MemoryAsStore):
    def __init__(self) -> None:
        super().__init__()
        self.client_lookups = 0

    def get_client(self, client_id: str) -> ClientRecord | None:
        self.client_lookups += 1
        return super().get_client(client_id)


def make_store() -> CountingStore:
    s = CountingStore()
    s.put_client(ClientRecord(client_id="c1", oscore=C1))
    s.put_client(ClientRecord(client_id="c_dtls", psk=DtlsPsk(identity=b"id", key=bytes(16)), profiles=(1, 2)))
    s.put_rs(RsRecord(audience="rs1", rs_id="rs1", token_key=symmetric_key(bytes(16), kid=b"k"), oscore=RS1))
    s.add_grant(Grant(client_id="c1", audience="rs1", scope="r", default=True))
    return s


def request(*claims: Any, ctx: Any = None, payload: bytes = b"") -> Any:
    remote = SimpleNamespace(authenticated_claims=list(claims), security_context=ctx)
    return SimpleNamespace(remote=remote, payload=payload, opt=SimpleNamespace(content_format=None))


def indexed(store: MemoryAsStore, secret: OscoreContextParams, claim: Any) -> tuple[contexts.ContextIndex, Any]:
    index = contexts.ContextIndex()
    ctx = contexts.from_secret(secret, store=store, claims=[claim])
    index.add(ctx)
    return index, ctx


def test_a_client_over_its_current_oscore_context() -> None:
    store = make_store()
    index, ctx = indexed(store, C1, "c1")
    found = peers.AsPeers(store, index)
    assert found.client(request("c1", ctx=ctx)) == store.get_client("c1")
    assert found.requester(request("c1", ctx=ctx)) == "c1"
    store.put_client(ClientRecord(client_id="c1", oscore=replace(C1, master_secret=b"\x01" * 16)))  # re-keyed
    assert found.client(request("c1", ctx=ctx)) is None
    assert index.exact(ctx.recipient_id, ctx.id_context) is None  # its old context is gone


def test_a_client_over_dtls_and_the_unauthenticated() -> None:
    store = make_store()
    found = peers.AsPeers(store, contexts.ContextIndex())
    assert found.client(request("c_dtls")) == store.get_client("c_dtls")
    assert found.client(request("c1")) is None  # no PSK registered
    assert found.client(request("nobody")) is None
    assert found.client(request()) is None and found.peer(request(b"label")) is None
    assert peers.name_of(None) == "unauthenticated peer"


def test_an_rs_over_its_current_context() -> None:
    store = make_store()
    index, ctx = indexed(store, RS1, RsPeer("rs1"))
    found = peers.AsPeers(store, index)
    assert found.peer(request(RsPeer("rs1"), ctx=ctx)) == store.get_rs("rs1")
    assert found.requester(request(RsPeer("rs1"), ctx=ctx)) == RsPeer("rs1")
    assert found.client(request(RsPeer("rs1"), ctx=ctx)) is None  # an RS is no client
    assert found.peer(request(RsPeer("rs1"))) is None  # an RS comes over OSCORE only
    store.remove_rs("rs1")
    assert found.peer(request(RsPeer("rs1"), ctx=ctx)) is None
    assert index.exact(ctx.recipient_id, ctx.id_context) is None


def test_the_binding_label_at_the_rs() -> None:
    assert peers.label_of(request("c1", b"\x07")) == b"\x07"
    assert peers.label_of(request("c1")) is None


def test_source_addresses() -> None:
    v6 = SimpleNamespace(sockaddr=("2001:db8::1:2:3:4", 5683, 0, 0))
    assert peers.address_of(v6) == "2001:db8::1:2:3:4"
    assert peers.source_of(v6) == "2001:db8::/64"
    assert peers.source_of(SimpleNamespace(sockaddr=("::ffff:192.0.2.1", 5683, 0, 0))) == "192.0.2.1"
    assert peers.source_of(SimpleNamespace(hostinfo="192.0.2.1:5683")) == "192.0.2.1"


async def test_one_client_lookup_per_token_request() -> None:
    store = make_store()
    index, ctx = indexed(store, C1, "c1")
    resource = TokenResource(TokenEndpoint(store, clock=fixed_clock(), rng=counter_rng()), peers.AsPeers(store, index))
    ask = request("c1", ctx=ctx, payload=AccessTokenRequest(audience="rs1").encode())
    ask.opt.content_format = int(ContentFormat.ACE_CBOR)
    store.client_lookups = 0
    response = await resource.render_post(ask)
    assert response.code == aiocoap.CREATED and store.client_lookups == 1
