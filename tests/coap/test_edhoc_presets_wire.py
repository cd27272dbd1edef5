"""The EDHOC presets on the wire, one table (issue 15's code-point table; EP-11 App. C, §4.1,
§4.13, §4.14, §3.1, §3.3.1): for ``draft-11``, ``ariel-os`` and ``aiocoap``, the bytes our client
puts in its token request (req_cnf kccs 11, ace_profile 4), the token's cnf method the AS picks
(kccs 11, or COSE_Key 1 for ariel-os), and over loopback sockets against our RS: the EAD_3 token
item as the RS's lakers responder parses it from message_3 (critical: -24 / -20 / -26), EAD_1
Credential By Value 15 answered with ID_CRED_R by value, and the Request Creation Hints label
answered in EAD_2 (1 / none / 12). Every server is stopped by its context manager; every await is bounded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import aiocoap
import cbor2
import lakers
import pytest
from lakers_peer import LakersInitiator
from support import bounded

from ace.authz_server.token import TokenEndpoint
from ace.cbor.labels import AceProfile, Alg, ContentFormat, Curve, Param
from ace.cbor.scope import AifScope
from ace.cli.demo_cmd import free_port
from ace.client.flow import ClientConfig, ClientFlow, ResourceRequest, Response, SendResource, SendTokenRequest
from ace.coap import edhoc, edhoc_server
from ace.coap.client_channels import EdhocClient
from ace.coap.edhoc_client import TokenEdhoc
from ace.coap.rs_server import RsServer
from ace.rs.server import ResourceServer, RsConfig
from ace.rs.store import Binding
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.memory import MemoryAsStore
from ace.tokens import cwt
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing
from ace.tokens.keys import symmetric_key

EDHOC = int(AceProfile.COAP_EDHOC_OSCORE)
GET = 1
RS_KEY = generate(Curve.P_256, kid=b"\x0a")
CLIENT_KEY = generate(Curve.P_256, kid=b"\x2b")
KEYS = {"draft-11": symmetric_key(bytes(range(16)), kid=b"rs1"),
        "aiocoap": symmetric_key(bytes(range(16)), kid=b"rs1"),
        "ariel-os": symmetric_key(bytes(range(32)), kid=b"as", alg=int(Alg.AES_CCM_16_128_256))}

# preset: (critical token label bytes, Credential By Value, RCH label or None, token cnf method, profile)
TABLE = {
    "draft-11": (b"\x37", 15, 1, 11, 4),
    "ariel-os": (b"\x33", 15, None, 1, 4),
    "aiocoap": (b"\x38\x19", 15, 12, 11, 4),
}


async def temp(request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
    return aiocoap.Message(code=aiocoap.CONTENT, payload=b"21.5")


@asynccontextmanager
async def rs_of(name: str) -> AsyncIterator[str]:
    port = free_port()
    config = RsConfig(audience="rs1", as_uri="coap://as.example/token", profiles=(EDHOC,),
                      scope_meaning={"r_temp": [("/temp", GET)]}, edhoc_preset=name)
    core = ResourceServer(config, KeyRing([KEYS[name]]), clock=time.time)
    rs = RsServer(core, bind=("::1", port), resources={"/temp": {"GET": temp}}, edhoc_key=RS_KEY)
    await bounded(rs.start())
    try:
        yield f"coap://[::1]:{port}"
    finally:
        await bounded(rs.stop())


def as_of(name: str) -> TokenEndpoint:
    store = MemoryAsStore()
    store.put_client(ClientRecord(client_id="c", profiles=(EDHOC,)))
    store.put_rs(RsRecord(audience="rs1", rs_id="rs1", token_key=KEYS[name], profiles=(EDHOC,),
                          auth_key=RS_KEY.public(), edhoc_preset=name))
    scope = AifScope.of([("/temp", GET)]).encode() if name == "ariel-os" else "r_temp"
    store.add_grant(Grant(client_id="c", audience="rs1", scope=scope, default=True))
    return TokenEndpoint(store, clock=time.time)


def token_request(name: str, origin: str) -> tuple[ClientFlow, bytes]:
    """Our client's token request bytes (sans I/O), after the RS's 4.01."""
    flow = ClientFlow(ClientConfig(client_id="c", as_uri="coap://as.example/token", audience="rs1", profile=EDHOC,
                                   edhoc_key=CLIENT_KEY, edhoc_preset=name), clock=time.time)
    flow.start(ResourceRequest(method="GET", uri=origin + "/temp"))
    asked = flow.on_response(Response(code=(4, 1)))
    assert isinstance(asked, SendTokenRequest)
    return flow, asked.payload


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the RS's lakers responder parsed: EAD_3 items of message_3 as (label, critical, value)."""
    got: dict[str, Any] = {}
    real = edhoc_server.token_of

    def token_of(ead_3: list[Any], preset: Any) -> tuple[str, bytes]:
        got["ead_3"] = [(e.label(), e.is_critical(), bytes(e.value() or b"")) for e in ead_3]
        return real(ead_3, preset)

    monkeypatch.setattr(edhoc_server, "token_of", token_of)
    return got


@pytest.mark.parametrize("name", sorted(TABLE))
async def test_each_preset_puts_its_code_points_on_the_wire(name: str, seen: dict[str, Any]) -> None:
    critical_label, cred_by_value, rch, cnf_method, profile = TABLE[name]
    async with rs_of(name) as origin:
        flow, request = token_request(name, origin)
        raw = cbor2.loads(request)
        assert raw[int(Param.ACE_PROFILE)] == profile  # the token request names profile 4
        assert list(raw[int(Param.REQ_CNF)]) == [11]  # EP §3.1: kccs, never a bare COSE_Key, for every preset
        result = as_of(name).issue(request, as_of(name).store.get_client("c"), int(ContentFormat.ACE_CBOR))
        response = cbor2.loads(result.response.encode())
        token = response[int(Param.ACCESS_TOKEN)]
        assert response.get(int(Param.ACE_PROFILE), profile) == profile
        payload = cwt._open(cwt.open_envelope(token).message, KeyRing([KEYS[name]]), b"", frozenset(Kind))
        assert list(cbor2.loads(payload)[8]) == [cnf_method]  # the token's cnf method (ariel-os: COSE_Key)
        opened = flow.on_response(Response(code=(2, 1), payload=result.response.encode(),
                                           content_format=int(ContentFormat.ACE_CBOR)))
        assert isinstance(opened, SendResource) and opened.session is not None
        host = SimpleNamespace(flow=SimpleNamespace(config=flow.config))
        offer = EdhocClient(host)._offer(opened.session)  # type: ignore[arg-type]
        ctx = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
        try:
            ctx.client_credentials[origin + "/*"] = TokenEdhoc(offer)
            got = await bounded(ctx.request(aiocoap.Message(code=aiocoap.GET, uri=origin + "/temp")).response)
            assert (got.code, got.payload) == (aiocoap.CONTENT, b"21.5")
            # message_3's EAD_3 as the RS's lakers responder parsed it: one critical token item
            ((label, critical, value),) = seen["ead_3"]
            assert (cbor2.dumps(-label), critical, value) == (critical_label, True, token)
            # EAD_1 Credential By Value and Request Creation Hints, answered in message_2
            peer = LakersInitiator(ctx, origin, edhoc.ccs_bytes(RS_KEY.public()), kid=b"\x07", c_i=b"\x2d")
            asks = [lakers.EADItem(cred_by_value, False)] + [lakers.EADItem(x, False) for x in (1, 12)]
            assert (await peer.message_1(asks)).code == (2, 4)
            assert 14 in cbor2.loads(peer.id_cred_r)  # ID_CRED_R by value (EP §4.14)
            assert [e.label() for e in peer.ead_2] == ([] if rch is None else [rch])  # EP §4.13
            assert all(not e.is_critical() for e in peer.ead_2)
        finally:
            await bounded(ctx.shutdown())
