"""The RS's EDHOC responder layer (``ace.coap.edhoc_server``) over loopback, against lakers-python
driven directly (``lakers_peer``), with a stand-in token gate: which EAD items it takes and the
exact EDHOC error messages it answers (RFC 9528 §6, EP §4.3.3), Uri-Path-Abbrev (EP §4.2), EAD_1
Credential By Value and Request Creation Hints (EP §4.13, §4.14), message_4, the ``ariel-os``
transport limits, and the private aiocoap hooks it relies on (pinned to aiocoap 0.4.17).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.edhoc
import aiocoap.resource
import cbor2
import lakers
import pytest
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper
from lakers_peer import EDHOC_CT, LakersInitiator, edhoc_error, party, raw_exchange, send
from support import bounded

from ace.cbor.labels import Curve
from ace.cli.demo_cmd import free_port
from ace.coap import edhoc, edhoc_reverse, edhoc_server
from ace.coap.edhoc_responders import EDHOC_PATH
from ace.coap.oscore_context import MemoryOscoreContext
from ace.errors import TokenRefused
from ace.profiles.edhoc_presets import PRESETS, EdhocCodePoints
from ace.tokens.crypto import generate

TOKEN = b"\xd0" + bytes(range(100))  # the stand-in gate takes exactly this token
LABEL = b"binding-1"
DRAFT = PRESETS["draft-11"]


@dataclass
class FakeGate:
    """Takes ``TOKEN`` and names the initiator's credential ``cred`` (set by the test)."""

    preset: EdhocCodePoints = DRAFT
    message_4: bool = False
    reverse_flow: bool = True
    cred: bytes = b""
    seen: list[tuple[bytes, bytes]] = field(default_factory=list)
    installed: list[bytes] = field(default_factory=list)

    def admit(self, token: bytes, id_cred_i: bytes) -> edhoc_server.Admission:
        self.seen.append((token, id_cred_i))
        if token != TOKEN:
            raise TokenRefused("not the token")
        return edhoc_server.Admission(self.cred, LABEL)

    def admit_session(self, session_id: bytes, id_cred_i: bytes) -> edhoc_server.Admission:
        raise TokenRefused("no uploaded token")

    def bound(self, admission: edhoc_server.Admission) -> None:
        self.installed.append(admission.label)

    def hints(self) -> bytes | None:
        return cbor2.dumps({1: "coap://as.example/token"})


class WhoAmI(aiocoap.resource.Resource):  # type: ignore[misc]
    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        claims = [c for c in getattr(request.remote, "authenticated_claims", None) or [] if isinstance(c, bytes)]
        return aiocoap.Message(code=aiocoap.CONTENT, payload=cbor2.dumps(claims))


@dataclass
class Rs:
    origin: str
    cred_r: bytes
    gate: FakeGate
    credentials: Any


@asynccontextmanager
async def running(gate: FakeGate) -> AsyncIterator[tuple[Rs, Any]]:
    port = free_port()
    creds = edhoc.EdhocCredentialsMap()
    creds.gate = gate
    key = generate(Curve.P_256, kid=b"\x0a")
    edhoc.install_server_identity(creds, key, [edhoc.edhoc_origin("::1", port)], subject="rs")
    site = aiocoap.resource.Site()
    site.add_resource(["whoami"], WhoAmI())
    server = await bounded(aiocoap.Context.create_server_context(
        edhoc_server.AceEdhocSite(site, creds), bind=("::1", port), transports=["oscore", "udp6"],
        server_credentials=creds))
    client = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
    try:
        yield Rs(f"coap://[::1]:{port}", edhoc.ccs_bytes(key, subject="rs"), gate, creds), client
    finally:
        await bounded(client.shutdown())
        await bounded(server.shutdown())


def initiator(rs: Rs, client: Any) -> LakersInitiator:
    peer = LakersInitiator(client, rs.origin, rs.cred_r)
    rs.gate.cred = peer.cred_i
    return peer


def token_item(token: bytes = TOKEN, label: int = 24) -> Any:
    return lakers.EADItem(label, True, token)


async def test_token_in_ead_3_then_oscore_with_the_exported_context() -> None:
    async with running(FakeGate()) as (rs, client):
        peer = initiator(rs, client)
        assert (await peer.message_1()).code == (2, 4)
        assert 14 in cbor2.loads(peer.id_cred_r)  # EAD_1 Credential By Value honoured: ID_CRED_R by value
        reply = await peer.send_message_3(peer.message_3([token_item()]))
        assert (reply.code, reply.payload) == ((2, 4), b"")  # no message_4 unless edhoc_info asks
        assert rs.gate.seen == [(TOKEN, cbor2.dumps({4: peer.kid}))]
        assert rs.gate.installed == [LABEL]
        got = await peer.get(peer.oscore_context(), "/whoami")
        assert (got.code, got.protected, cbor2.loads(got.payload)) == ((2, 5), True, [LABEL])


async def test_combined_request_carries_message_3() -> None:
    async with running(FakeGate()) as (rs, client):
        peer = initiator(rs, client)
        await peer.message_1()
        m3 = peer.message_3([token_item()])
        got = await peer.get(peer.oscore_context(combined=m3), "/whoami")
        assert (got.code, got.protected, cbor2.loads(got.payload)) == ((2, 5), True, [LABEL])


async def test_credential_by_reference_without_ead_1() -> None:
    async with running(FakeGate()) as (rs, client):
        peer = initiator(rs, client)
        await peer.message_1([])
        assert cbor2.loads(peer.id_cred_r) == {4: b"\x0a"}


async def test_message_4_when_edhoc_info_asks() -> None:
    async with running(FakeGate(message_4=True)) as (rs, client):
        peer = initiator(rs, client)
        await peer.message_1()
        reply = await peer.send_message_3(peer.message_3([token_item()]))
        assert reply.code == (2, 4) and reply.payload
        got = await peer.get(peer.oscore_context(message_4=reply.payload), "/whoami")
        assert got.code == (2, 5)


@pytest.mark.parametrize(("ead_3", "reason"), [
    ([], "EAD_3 must carry exactly one access token item"),
    ([token_item(), token_item()], "EAD_3 must carry exactly one access token item"),
    ([token_item(label=26)], "EAD_3 must carry exactly one access token item"),  # another preset's label
    ([token_item(), lakers.EADItem(99, True, b"x")], "unsupported critical EAD_3 item"),
    ([token_item(b"\xd0not-the-token")], "access token refused"),
])
async def test_refusals_are_edhoc_error_messages(ead_3: list[Any], reason: str) -> None:
    async with running(FakeGate()) as (rs, client):
        peer = initiator(rs, client)
        await peer.message_1()
        reply = await peer.send_message_3(peer.message_3(ead_3))
        assert (reply.code, reply.content_format, reply.payload) == ((4, 0), EDHOC_CT, edhoc_error(reason))
        assert rs.gate.installed == []
        assert not [e for e in edhoc.responder_contexts(rs.credentials)]  # the half-done handshake went


async def test_refusal_in_the_combined_request() -> None:
    async with running(FakeGate()) as (rs, client):
        peer = initiator(rs, client)
        await peer.message_1()
        m3 = peer.message_3([token_item(b"\xd0bad")])
        got = await peer.get(peer.oscore_context(combined=m3), "/whoami")
        assert (got.code, got.content_format, got.payload, got.protected) == (
            (4, 0), EDHOC_CT, edhoc_error("access token refused"), False)


async def test_credential_mismatch_is_refused() -> None:
    async with running(FakeGate()) as (rs, client):
        peer = initiator(rs, client)
        await peer.message_1()
        rs.gate.cred = party(peer.kid, "client")[1]  # the token names another key with the same kid
        reply = await peer.send_message_3(peer.message_3([token_item()]))
        assert (reply.code, reply.payload) == ((4, 0), edhoc_error("message_3 verification failed"))
        assert rs.gate.installed == []


async def test_a_new_session_on_the_same_binding_replaces_the_old_context() -> None:
    async with running(FakeGate()) as (rs, client):
        first = initiator(rs, client)
        await first.message_1()
        await first.send_message_3(first.message_3([token_item()]))
        old = first.oscore_context()
        second = LakersInitiator(client, rs.origin, rs.cred_r, c_i=b"\x2d")
        second.d, second.cred_i = first.d, first.cred_i
        await second.message_1()
        await second.send_message_3(second.message_3([token_item()]))
        assert (await second.get(second.oscore_context(), "/whoami")).code == (2, 5)
        stale = await first.get(old, "/whoami")  # EP §4.2: the previous session's context is gone
        assert (stale.code, stale.protected) == ((4, 1), False)


async def test_request_creation_hints_in_ead_2_and_critical_ead_1() -> None:
    async with running(FakeGate()) as (rs, client):
        peer = initiator(rs, client)
        assert (await peer.message_1([lakers.EADItem(1, False)])).code == (2, 4)
        hints = [(e.label(), e.is_critical(), cbor2.loads(bytes(e.value()))) for e in peer.ead_2]
        assert hints == [(1, False, {1: "coap://as.example/token"})]  # no audience (EP §4.13)
        other = LakersInitiator(client, rs.origin, rs.cred_r)
        reply = await other.message_1([lakers.EADItem(77, True, b"")])
        assert (reply.code, reply.content_format, reply.payload) == (
            (4, 0), EDHOC_CT, edhoc_error("unsupported critical EAD_1 item"))


async def test_uri_path_abbrev() -> None:
    async with running(FakeGate()) as (rs, client):
        peer = initiator(rs, client)
        assert (await peer.message_1(abbrev=2, path=False)).code == (2, 4)  # 2: /.well-known/edhoc
        port = int(rs.origin.rsplit(":", 1)[1])
        for abbrev, path in ((7, ()), (2, EDHOC_PATH)):  # an unknown value; both options
            msg = aiocoap.Message(code=aiocoap.POST, payload=b"\xf5" + bytes(range(37)), uri_path=path)
            msg.opt.uri_path_abbrev = abbrev
            assert (await raw_exchange(port, msg)).code == aiocoap.BAD_OPTION
        reply = await send(client, aiocoap.Message(code=aiocoap.GET, uri=rs.origin))
        assert reply.code == (4, 4)  # no Uri-Path-Abbrev: as before


async def test_ariel_os_preset_transport_limits() -> None:
    async with running(FakeGate(preset=PRESETS["ariel-os"])) as (rs, client):
        peer = initiator(rs, client)
        await peer.message_1()
        ariel = PRESETS["ariel-os"].ead_token
        reply = await peer.send_message_3(peer.message_3([token_item(label=ariel)]))
        assert reply.code == (4, 0) and rs.gate.installed == []  # message_3 only in the combined request
        again = initiator(rs, client)
        await again.message_1()
        m3 = again.message_3([token_item(label=ariel), lakers.EADItem(1, False, b"")])
        got = await again.get(again.oscore_context(combined=m3), "/whoami")
        assert (got.code, got.payload) == ((4, 0), edhoc_error("EAD_3 must carry the access token item alone"))
        third = initiator(rs, client)
        await third.message_1()
        m3 = third.message_3([token_item(label=ariel)])
        got = await third.get(third.oscore_context(combined=m3), "/whoami")
        assert (got.code, cbor2.loads(got.payload)) == ((2, 5), [LABEL])


async def reverse(rs: Rs, client: Any, token: bytes, *, by_value: bool = True,
                  cred: bytes | None = None) -> tuple[list[Any], Any]:
    """C as the EDHOC Responder (EP §4.4), lakers driven directly: the replies, and C's OSCORE context."""
    d_c, cred_c, _ = party(b"\x2b", "client")
    rs.gate.cred = cred_c if cred is None else cred
    uri = rs.origin + "/.well-known/edhoc"
    trigger = await send(client, aiocoap.Message(code=aiocoap.POST, uri=uri))
    assert (trigger.code, trigger.content_format) == ((2, 4), EDHOC_CT)
    responder = lakers.EdhocResponder(d_c, cred_c)
    c_i, _ead_1 = responder.process_message_1(trigger.payload)
    how = lakers.CredentialTransfer.ByValue if by_value else lakers.CredentialTransfer.ByReference
    c_r = b"\x05" if bytes(c_i) != b"\x05" else b"\x06"  # RFC 9528 §3.3.3: C_R differs from C_I (drawn at random)
    m2 = responder.prepare_message_2(how, c_r, [])
    replies = [await send(client, aiocoap.Message(code=aiocoap.POST, uri=uri, payload=bytes(c_i) + bytes(m2),
                                                  content_format=65))]
    if replies[-1].code != (2, 4):
        return replies, None
    responder.parse_message_3(replies[-1].payload)
    responder.verify_message_3(rs.cred_r)
    m4 = responder.prepare_message_4([token_item(token)])
    replies.append(await send(client, aiocoap.Message(code=aiocoap.POST, uri=uri, payload=bytes(c_i) + bytes(m4),
                                                      content_format=65)))
    secret, salt = bytes(responder.edhoc_exporter(0, b"", 16)), bytes(responder.edhoc_exporter(1, b"", 8))
    return replies, MemoryOscoreContext(master_secret=secret, master_salt=salt, sender_id=bytes(c_i),
                                        recipient_id=c_r, alg=10, hkdf="sha256")


async def test_reverse_flow_token_in_ead_4() -> None:
    async with running(FakeGate()) as (rs, client):
        replies, context = await reverse(rs, client, TOKEN)
        assert [(r.code, r.payload) for r in replies[1:]] == [((2, 4), b"")]
        assert rs.gate.seen[0][1][:2] == b"\xa1\x0e" and rs.gate.installed == [LABEL]  # ID_CRED_R by value
        client.client_credentials[rs.origin + "/*"] = context
        got = await send(client, aiocoap.Message(code=aiocoap.GET, uri=rs.origin + "/whoami"))
        assert (got.code, got.protected, cbor2.loads(got.payload)) == ((2, 5), True, [LABEL])


async def test_reverse_flow_refusals() -> None:
    async with running(FakeGate()) as (rs, client):
        replies, _ = await reverse(rs, client, b"\xd0bad")
        assert (replies[-1].code, replies[-1].content_format, replies[-1].payload) == (
            (4, 0), EDHOC_CT, edhoc_error("access token refused"))
        replies, _ = await reverse(rs, client, TOKEN, cred=party(b"\x2b", "client")[1])  # cnf: another key
        assert (replies[-1].code, replies[-1].payload) == ((4, 0), edhoc_error("access token refused"))
        replies, _ = await reverse(rs, client, TOKEN, by_value=False)  # MAC_2 needs C's credential by value
        assert replies[-1].code == (4, 0)
        assert rs.gate.installed == []
        assert not [k for k in rs.credentials if k.startswith(":edhoc-reverse:")]  # nothing half-done kept


async def test_reverse_flow_off() -> None:
    async with running(FakeGate(reverse_flow=False)) as (rs, client):
        reply = await send(client, aiocoap.Message(code=aiocoap.POST, uri=rs.origin + "/.well-known/edhoc"))
        assert reply.code == (4, 0)


def test_reverse_flow_half_done_handshakes_are_bounded() -> None:
    now = [0.0]
    credentials = edhoc.EdhocCredentialsMap()
    reverse = edhoc_reverse.ReverseFlow(credentials, clock=lambda: now[0])
    for _ in range(3 * edhoc_reverse.MAX_PENDING):
        assert reverse.trigger()  # message_1
        now[0] += 1
    pending = [k for k in credentials if k.startswith(edhoc_reverse.KEY_PREFIX)]
    assert len(pending) == edhoc_reverse.MAX_PENDING  # the oldest went first
    now[0] += edhoc_reverse.PENDING_SECONDS + 1
    assert reverse.forget_stale() == edhoc_reverse.MAX_PENDING and not list(credentials)


def test_aiocoap_hooks_are_the_pinned_ones() -> None:
    """``edhoc_server`` overrides private aiocoap 0.4.17 methods: fail loudly when they change."""
    assert aiocoap.meta.version == "0.4.17"
    hooks = {
        OscoreSiteWrapper._process_edhoc_msg12: ["self", "pipe"],
        OscoreSiteWrapper._process_edhoc_msg34: ["self", "pipe"],
        OscoreSiteWrapper._render_edhoc_to_pipe: ["self", "pipe"],
        OscoreSiteWrapper._get_edhoc_identity: ["self", "origin"],
        OscoreSiteWrapper.render_to_pipe: ["self", "pipe"],
        aiocoap.edhoc.EdhocResponderContext.__init__: ["self", "responder", "c_i", "c_r", "server_credentials",
                                                       "logger"],
        aiocoap.edhoc.EdhocResponderContext._offer_message_3: ["self", "message_3"],
        aiocoap.edhoc.EdhocResponderContext._make_ready: ["self", "edhoc_context", "c_ours", "c_theirs"],
        aiocoap.edhoc.EdhocResponderContext.unprotect: ["self", "protected_message", "request_id"],
    }
    for hook, params in hooks.items():
        assert list(inspect.signature(hook).parameters) == params, hook
    source = inspect.getsource(aiocoap.edhoc.EdhocResponderContext)
    for attribute in ("self._responder", "self._incomplete", "self._message_4", "self.authenticated_claims",
                      "self._server_credentials"):
        assert attribute in source, attribute
    assert "uri_path == (\".well-known\", \"edhoc\")" in inspect.getsource(OscoreSiteWrapper.render_to_pipe)
