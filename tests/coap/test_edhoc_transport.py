"""EDHOC (method 3, suite 2) between aiocoap peers on ::1 through ``ace.coap.edhoc``.

Every server is stopped by its context manager; every await is bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiocoap
import aiocoap.resource
import cbor2
import pytest
from aiocoap import oscore
from aiocoap.credentials import CredentialsMap
from aiocoap.edhoc import CoseKeyForEdhoc, EdhocResponderContext
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper
from support import bounded

from ace.cbor.labels import Curve
from ace.cli.demo_cmd import free_port
from ace.coap import edhoc
from ace.tokens.crypto import generate
from ace.tokens.keys import CoseKey

INDEX_KEY = ":edhoc-peers"


class CountingMap(edhoc.EdhocCredentialsMap):
    """Counts the message_1s the server processed (aiocoap stores one responder context each)."""

    handshakes = 0

    def __setitem__(self, key: str, value: Any) -> None:
        if isinstance(value, EdhocResponderContext):
            self.handshakes += 1
        super().__setitem__(key, value)


class WhoAmI(aiocoap.resource.Resource):  # type: ignore[misc]
    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        claims = list(getattr(request.remote, "authenticated_claims", None) or [])
        labels = [c for c in claims if isinstance(c, bytes | str)]
        return aiocoap.Message(code=aiocoap.CONTENT, payload=cbor2.dumps(labels))


@dataclass
class Rs:
    context: Any
    credentials: Any
    index: edhoc.PeerCredentialIndex
    key: CoseKey
    port: int


@asynccontextmanager
async def running_rs(credentials: Any | None = None) -> AsyncIterator[Rs]:
    port = free_port()
    creds = CountingMap() if credentials is None else credentials
    index = edhoc.PeerCredentialIndex()
    creds[INDEX_KEY] = index
    key = generate(Curve.P_256, kid=b"RS")
    edhoc.install_server_identity(creds, key, [edhoc.edhoc_origin("::1", port)])
    site = aiocoap.resource.Site()
    site.add_resource(["whoami"], WhoAmI())
    ctx = await bounded(aiocoap.Context.create_server_context(
        OscoreSiteWrapper(site, creds), bind=("::1", port), transports=["oscore", "udp6"], server_credentials=creds))
    try:
        yield Rs(ctx, creds, index, key, port)
    finally:
        await bounded(ctx.shutdown())


@asynccontextmanager
async def client_context() -> AsyncIterator[Any]:
    ctx = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
    try:
        yield ctx
    finally:
        await bounded(ctx.shutdown())


def client_key(n: int) -> CoseKey:
    return generate(Curve.P_256, kid=n.to_bytes(2, "big"))


async def get(ctx: Any, rs: Rs) -> aiocoap.Message:
    msg = aiocoap.Message(code=aiocoap.GET, uri=f"coap://[::1]:{rs.port}/whoami")
    response: aiocoap.Message = await bounded(ctx.request(msg).response)
    return response


async def refused(ctx: Any, rs: Rs) -> aiocoap.Message:
    """The unprotected answer a client gets when the RS cannot (or no longer) protect for it."""
    with pytest.raises(oscore.NotAProtectedMessage) as info:
        await get(ctx, rs)
    plain: aiocoap.Message = info.value.plain_message
    return plain


# --- conversions (no sockets) ---------------------------------------------------------------


def test_ccs_matches_aiocoaps_own_builder() -> None:
    ours = generate(Curve.P_256, kid=b"\x01")
    theirs = CoseKeyForEdhoc.from_map({1: 2, -1: 1, -4: ours.d}).as_ccs(b"\x01", "me")[14]
    assert edhoc.ccs_bytes(ours, subject="me") == cbor2.dumps(theirs, canonical=True)
    assert edhoc.key_from_ccs(edhoc.ccs_bytes(ours)) == ours.public()
    assert edhoc.private_key_map(ours) == {1: 2, -1: 1, -4: ours.d}


@pytest.mark.parametrize(("id_cred", "kid"), [
    (bytes.fromhex("a1044132"), b"\x32"),  # {4: h'32'}: what lakers hands over
    (bytes.fromhex("a10432"), b"\x32"),  # {4: -19}: the compact form of the same kid
    (bytes.fromhex("32"), b"\x32"),  # bare compact ID_CRED (RFC 9528 §3.5.3.2)
    (bytes.fromhex("a1044118"), b"\x18"),  # never compacted: 0x18 is no one-byte int
    (bytes.fromhex("a10442abcd"), b"\xab\xcd"),
    (cbor2.dumps({14: {8: {1: {2: b"k"}}}}), b"k"),  # by value: the kid inside
    (bytes.fromhex("a10418ff"), None),  # int 255: not a one-byte encoding
    (b"\xff\xff", None),
    (cbor2.dumps({33: b"x5t"}), None),
])
def test_kid_of_id_cred(id_cred: bytes, kid: bytes | None) -> None:
    assert edhoc.kid_of_id_cred(id_cred) == kid


@pytest.mark.parametrize("kid", [None, b"", b"k" * (edhoc.MAX_KID + 1)])
def test_keys_without_a_usable_kid_are_refused(kid: bytes | None) -> None:
    with pytest.raises(ValueError, match="kid"):
        edhoc.ccs_bytes(generate(Curve.P_256, kid=kid))


def test_other_curves_are_refused() -> None:
    with pytest.raises(ValueError, match="P-256"):
        edhoc.ccs_bytes(generate(Curve.X25519, kid=b"1"))


def test_index_lookup_loader_and_replacement() -> None:
    calls: list[bytes] = []
    late = client_key(7)

    def loader(kid: bytes) -> tuple[bytes, object] | None:
        calls.append(kid)
        if kid == b"boom":
            raise RuntimeError("store down")
        return (edhoc.ccs_bytes(late), b"late") if kid == late.kid else None

    index = edhoc.PeerCredentialIndex(loader)
    first, second = client_key(1), client_key(1)
    assert index.add(first, b"t1") is None
    replaced = index.add(second, b"t2")
    assert replaced is not None and replaced.label == b"t1"
    assert index.lookup_edhoc_peer(edhoc.id_cred_by_kid(b"\x00\x01")) == (edhoc.ccs_bytes(second), b"t2")
    assert index.find_edhoc_by_id_cred_peer(edhoc.id_cred_by_kid(late.kid or b"")) == edhoc.ccs_bytes(late)
    assert late.kid in index  # kept
    assert index.lookup_edhoc_peer(edhoc.id_cred_by_kid(b"boom")) is None  # loader error: a clean miss
    by_value_other = cbor2.dumps({14: edhoc.ccs_map(first)})  # same kid, not the bound credential
    assert index.lookup_edhoc_peer(by_value_other) is None
    assert index.lookup_edhoc_peer(cbor2.dumps({14: edhoc.ccs_map(second)})) == (edhoc.ccs_bytes(second), b"t2")
    with pytest.raises(ValueError):
        index.add_ccs(b"other", edhoc.ccs_bytes(first), b"t3")
    assert index.remove(b"\x00\x01") is not None and b"\x00\x01" not in index
    assert bool(edhoc.PeerCredentialIndex())


def test_origin_strings() -> None:
    assert edhoc.edhoc_origin("::1", 5700) == "coap://[::1]:5700"
    assert edhoc.edhoc_origin("::1", 5683) == "coap://[::1]"
    assert edhoc.edhoc_origin("rs.example", None) == "coap://rs.example"


# --- real sockets ---------------------------------------------------------------------------


async def test_handshake_then_get_sees_the_token_label() -> None:
    async with running_rs() as rs, client_context() as ctx:
        key = client_key(1)
        rs.index.add(key, b"binding-1")
        session = edhoc.ClientEdhoc.install(ctx, "::1", rs.port, key, rs.key)
        response = await get(ctx, rs)
        assert response.code == aiocoap.CONTENT
        assert cbor2.loads(response.payload) == [b"binding-1"]
        assert rs.credentials.handshakes == 1
        assert session.pin(response) and session.pinned
        (entry,) = edhoc.responder_contexts(rs.credentials)
        assert entry.complete and entry.claims == [b"binding-1"]


async def test_plain_credentials_map_reports_the_item_key_as_claim() -> None:
    async with running_rs(CredentialsMap()) as rs, client_context() as ctx:
        key = client_key(2)
        rs.index.add(key, b"binding-2")
        edhoc.ClientEdhoc.install(ctx, "::1", rs.port, key, rs.key)
        assert cbor2.loads((await get(ctx, rs)).payload) == [INDEX_KEY]


async def test_unknown_client_is_refused_and_the_server_keeps_serving() -> None:
    async with running_rs() as rs, client_context() as ctx:
        stranger = client_key(3)
        edhoc.ClientEdhoc.install(ctx, "::1", rs.port, stranger, rs.key)
        plain = await refused(ctx, rs)  # message_3 rides on the request: unprotected 4.00
        assert plain.code == aiocoap.BAD_REQUEST
        known = client_key(4)
        rs.index.add(known, b"binding-4")
        async with client_context() as other:
            edhoc.ClientEdhoc.install(other, "::1", rs.port, known, rs.key)
            assert (await get(other, rs)).code == aiocoap.CONTENT
        incomplete = [e for e in edhoc.responder_contexts(rs.credentials) if not e.complete]
        assert len(incomplete) == 1  # the refused handshake's context is left behind ...
        assert rs.credentials.forget_stale(-1.0) == 1  # ... until swept


async def test_pinning_reuses_the_context() -> None:
    async with running_rs() as rs, client_context() as ctx:
        key = client_key(5)
        rs.index.add(key, b"binding-5")
        session = edhoc.ClientEdhoc.install(ctx, "::1", rs.port, key, rs.key)
        await get(ctx, rs)
        await get(ctx, rs)
        assert rs.credentials.handshakes == 2  # aiocoap alone: one handshake per request
        session.pin(await get(ctx, rs))
        for _ in range(5):
            assert (await get(ctx, rs)).code == aiocoap.CONTENT
        assert rs.credentials.handshakes == 3


async def test_removal_from_the_index_ends_access() -> None:
    async with running_rs() as rs, client_context() as ctx:
        key = client_key(6)
        rs.index.add(key, b"binding-6")
        session = edhoc.ClientEdhoc.install(ctx, "::1", rs.port, key, rs.key)
        session.pin(await get(ctx, rs))
        rs.index.remove(key.kid or b"")
        assert (await get(ctx, rs)).code == aiocoap.CONTENT  # the established context lives on ...
        assert rs.credentials.forget_label(b"binding-6") == 1  # ... until the RS forgets it
        plain = await refused(ctx, rs)
        assert plain.code == aiocoap.UNAUTHORIZED and plain.payload == b"Security context not found"
        session.reset()
        plain = await refused(ctx, rs)  # a new handshake: the credential is gone
        assert plain.code == aiocoap.BAD_REQUEST


async def test_aiocoap_alone_runs_out_of_connection_ids() -> None:
    async with running_rs(CredentialsMap()) as rs, client_context() as ctx:
        key = client_key(8)
        rs.index.add(key, b"binding-8")
        edhoc.ClientEdhoc.install(ctx, "::1", rs.port, key, rs.key)
        failure: Exception | None = None
        succeeded = 0
        for _ in range(edhoc.CONNECTION_IDS + 1):
            try:
                await get(ctx, rs)
                succeeded += 1
            except aiocoap.error.ResponseWrappingError as exc:
                failure = exc
                break
        assert failure is not None and failure.coapmessage.code == aiocoap.INTERNAL_SERVER_ERROR
        assert failure.coapmessage.payload == b"Too many contexts"
        # 48 ids; the client's C_I (random 0..23) is excluded too, so 47 or 48 handshakes worked
        assert edhoc.CONNECTION_IDS - 1 <= succeeded <= edhoc.CONNECTION_IDS


async def test_200_handshakes_from_different_clients_never_hit_the_limit() -> None:
    async with running_rs() as rs, client_context() as ctx:
        live: list[tuple[bytes, bytes]] = []  # (kid, label) of the tokens the RS still holds
        for n in range(200):
            key, label = client_key(1000 + n), b"binding-%d" % n
            rs.index.add(key, label)
            live.append((key.kid or b"", label))
            if n % 3 == 0 and len(live) > 4:  # a token expired: the RS forgets key and contexts
                kid, gone = live.pop(0)
                rs.index.remove(kid)
                rs.credentials.forget_label(gone)
            edhoc.ClientEdhoc.install(ctx, "::1", rs.port, key, rs.key)
            response = await get(ctx, rs)
            assert response.code == aiocoap.CONTENT, n
            assert cbor2.loads(response.payload) == [label]
        assert rs.credentials.handshakes == 200
        # more tokens stayed than contexts may: the oldest contexts were evicted at the limit
        assert len(live) > rs.credentials.max_responders
        assert len(edhoc.responder_contexts(rs.credentials)) == rs.credentials.max_responders


async def test_wrong_rs_credential_fails_on_the_client() -> None:
    async with running_rs() as rs, client_context() as ctx:
        key = client_key(9)
        rs.index.add(key, b"binding-9")
        impostor = generate(Curve.P_256, kid=b"RS")  # rs_cnf naming another key
        edhoc.ClientEdhoc.install(ctx, "::1", rs.port, key, impostor)
        with pytest.raises(ValueError, match="MacVerificationFailed"):
            await get(ctx, rs)
        assert [e.complete for e in edhoc.responder_contexts(rs.credentials)] == [False]
