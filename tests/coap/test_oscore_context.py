"""OSCORE contexts: RFC 8613 Appendix C vectors, aiocoap over loopback sockets, §B.1 persistence."""

from __future__ import annotations

import json
from typing import Any

import aiocoap
import pytest
from aiocoap import oscore
from aiocoap.credentials import CredentialsMap
from aiocoap.message import Direction
from aiocoap.numbers import CHANGED, CONTENT, GET, POST, UNAUTHORIZED
from oscore_support import FakeSeqnoStore, _request, coap_client, oscore_server
from vectors import load_vector

from ace.coap.oscore_context import (
    MemoryOscoreContext,
    OscoreContextExpired,
    PersistentOscoreContext,
    aead_algorithm,
    hkdf,
)

VECTORS = load_vector("oscore_rfc8613.json")["vectors"]
MASTER_SECRET = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
KEY_SETS = {  # Appendix C.1 / C.2 / C.3 inputs, as (client, server) vector names
    "C.1": ("C.1.1", "C.1.2"),
    "C.2": ("C.2.1", "C.2.2"),
    "C.3": ("C.3.1", "C.3.2"),
}


def _values(name: str) -> dict[str, str]:
    values: dict[str, str] = VECTORS[name]["values"]
    return values


def _ctx_from_vector(name: str, **kw: Any) -> MemoryOscoreContext:
    v = _values(name)
    id_context = v.get("ID Context")
    return MemoryOscoreContext(
        master_secret=bytes.fromhex(v["Master Secret"]),
        master_salt=bytes.fromhex(v.get("Master Salt", "")),
        sender_id=bytes.fromhex(v["Sender ID"]),
        recipient_id=bytes.fromhex(v["Recipient ID"]),
        id_context=None if id_context is None else bytes.fromhex(id_context),
        **kw,
    )


# -- RFC 8613 C.1-C.3: key derivation ------------------------------------------------------


@pytest.mark.parametrize("name", ["C.1.1", "C.1.2", "C.2.1", "C.2.2", "C.3.1", "C.3.2"])
def test_key_derivation_vectors(name: str) -> None:
    v = _values(name)
    ctx = _ctx_from_vector(name)
    assert ctx.sender_key == bytes.fromhex(v["Sender Key"])
    assert ctx.recipient_key == bytes.fromhex(v["Recipient Key"])
    assert ctx.common_iv == bytes.fromhex(v["Common IV"])
    # nonces for Partial IV 0 (aiocoap's nonce construction, RFC 8613 §5.2)
    assert ctx._construct_nonce(b"\x00", ctx.sender_id, ctx.alg_aead) == bytes.fromhex(v["sender nonce"])
    assert ctx._construct_nonce(b"\x00", ctx.recipient_id, ctx.alg_aead) == bytes.fromhex(v["recipient nonce"])


# -- RFC 8613 C.4-C.8: message protection -------------------------------------------------


def _outgoing(raw: bytes) -> aiocoap.Message:
    msg = aiocoap.Message.decode(raw)
    msg.direction = Direction.OUTGOING
    return msg


def _wire(outer: aiocoap.Message, like: aiocoap.Message) -> bytes:
    """The outer message as sent: message layer fields are the transport's business."""
    outer.mtype, outer.mid, outer.token = like.mtype, like.mid, like.token
    encoded: bytes = outer.encode()
    return encoded


def _raw(protected: aiocoap.Message, mid: int) -> bytes:
    protected.mtype, protected.mid, protected.token = aiocoap.CON, mid, b""
    encoded: bytes = protected.encode()
    return encoded


def _incoming(raw: bytes) -> aiocoap.Message:
    return aiocoap.Message.decode(raw)


@pytest.mark.parametrize(("request_vector", "key_set"), [("C.4", "C.1"), ("C.5", "C.2"), ("C.6", "C.3")])
def test_request_protection_vectors(request_vector: str, key_set: str) -> None:
    v = _values(request_vector)
    client_name, server_name = KEY_SETS[key_set]
    client = _ctx_from_vector(client_name)
    client.sender_sequence_number = int(v["Sender Sequence Number"])
    plain = _outgoing(bytes.fromhex(v["Unprotected CoAP request"]))

    protected, request_id = client.protect(plain)
    assert protected.opt.oscore == bytes.fromhex(v["OSCORE option value"])
    assert request_id.partial_iv == bytes.fromhex(v["Partial IV"])
    assert _wire(protected, plain) == bytes.fromhex(v["Protected CoAP request (OSCORE message)"])
    assert client.sender_sequence_number == int(v["Sender Sequence Number"]) + 1

    server = _ctx_from_vector(server_name)
    unprotected, server_request_id = server.unprotect(
        _incoming(bytes.fromhex(v["Protected CoAP request (OSCORE message)"]))
    )
    assert unprotected.code == GET
    assert unprotected.opt.uri_path == ("tv1",)
    assert unprotected.payload == b""
    assert server_request_id.partial_iv == bytes.fromhex(v["Partial IV"])


@pytest.mark.parametrize("response_vector", ["C.7", "C.8"])
def test_response_protection_vectors(response_vector: str) -> None:
    v = _values(response_vector)
    request = _values("C.4")
    client = _ctx_from_vector("C.1.1")
    client.sender_sequence_number = int(request["Sender Sequence Number"])
    _, client_request_id = client.protect(_outgoing(bytes.fromhex(request["Unprotected CoAP request"])))

    server = _ctx_from_vector("C.1.2")
    server.sender_sequence_number = int(v["Sender Sequence Number"])
    _, server_request_id = server.unprotect(
        _incoming(bytes.fromhex(request["Protected CoAP request (OSCORE message)"]))
    )
    if response_vector == "C.8":
        server_request_id.can_reuse_nonce = False  # the server chooses to send its own Partial IV

    plain = _outgoing(bytes.fromhex(v["Unprotected CoAP response"]))
    protected, _ = server.protect(plain, server_request_id)
    assert protected.opt.oscore == bytes.fromhex(v["OSCORE option value"])
    assert _wire(protected, plain) == bytes.fromhex(v["Protected CoAP response (OSCORE message)"])

    response, _ = client.unprotect(
        _incoming(bytes.fromhex(v["Protected CoAP response (OSCORE message)"])), client_request_id
    )
    assert response.code == CONTENT
    assert response.payload == b"Hello World!"


def test_nonce_reused_once_then_own_partial_iv() -> None:
    """aiocoap reuses the request nonce for the first response only (C.7), then uses C.8 style."""
    request = _values("C.4")
    server = _ctx_from_vector("C.1.2")
    _, rid = server.unprotect(_incoming(bytes.fromhex(request["Protected CoAP request (OSCORE message)"])))
    first, _ = server.protect(_outgoing(bytes.fromhex(_values("C.7")["Unprotected CoAP response"])), rid)
    second, _ = server.protect(_outgoing(bytes.fromhex(_values("C.8")["Unprotected CoAP response"])), rid)
    assert first.opt.oscore == b""
    assert second.opt.oscore == bytes.fromhex(_values("C.8")["OSCORE option value"])


# -- unit behaviour ------------------------------------------------------------------------


def _pair(**server_kw: Any) -> tuple[MemoryOscoreContext, MemoryOscoreContext]:
    secret = bytes(range(16))
    client = MemoryOscoreContext(master_secret=secret, sender_id=b"\x55", recipient_id=b"\x00")
    server = MemoryOscoreContext(master_secret=secret, sender_id=b"\x00", recipient_id=b"\x55", **server_kw)
    return client, server


def _get() -> aiocoap.Message:
    return aiocoap.Message(code=GET, uri_path=("x",))


def _piv(protected: aiocoap.Message) -> int:
    return int.from_bytes(oscore.verify_start(protected)[oscore.COSE_PIV], "big")


def test_repr_hides_secrets() -> None:
    ctx = MemoryOscoreContext(master_secret=b"\xaa" * 16, sender_id=b"\x01", recipient_id=b"\x02")
    text = repr(ctx) + str(ctx)
    for secret in (b"\xaa" * 16, ctx.sender_key, ctx.recipient_key, ctx.common_iv):
        assert secret.hex() not in text
    assert "h'01'" in text and "h'02'" in text


def test_algorithm_lookup_and_validation() -> None:
    assert aead_algorithm(10).value == 10
    assert aead_algorithm(1).value == 1
    with pytest.raises(ValueError):
        aead_algorithm(-65531)  # A128CBC is not an AEAD
    with pytest.raises(ValueError):
        MemoryOscoreContext(master_secret=b"s" * 16, sender_id=b"", recipient_id=b"\x01", hkdf="md5")
    with pytest.raises(ValueError):
        MemoryOscoreContext(master_secret=b"s" * 16, sender_id=b"12345678", recipient_id=b"\x01")
    ctx = MemoryOscoreContext(master_secret=b"s" * 16, sender_id=b"", recipient_id=b"\x01", alg=24, hkdf="sha512")
    assert len(ctx.sender_key) == 32 and len(ctx.common_iv) == 12


def test_lookup_matches_kid_and_kid_context() -> None:
    ctx = MemoryOscoreContext(master_secret=b"s" * 16, sender_id=b"\x01", recipient_id=b"\x02", id_context=b"ctx")
    assert ctx.get_oscore_context_for({4: b"\x02", 10: b"ctx"}) is ctx
    assert ctx.get_oscore_context_for({4: b"\x02"}) is None
    assert ctx.get_oscore_context_for({4: b"\x01", 10: b"ctx"}) is None
    plain = MemoryOscoreContext(master_secret=b"s" * 16, sender_id=b"\x01", recipient_id=b"\x02")
    assert plain.get_oscore_context_for({4: b"\x02"}) is plain
    assert plain.get_oscore_context_for({4: b"\x02", 10: b"ctx"}) is None
    assert plain.find_all_used_contextless_oscore_kid() == {b"\x02"}
    assert ctx.find_all_used_contextless_oscore_kid() == set()


def test_invalidate_and_expiry() -> None:
    now = [100.0]
    client, server = _pair(expires_at=150.0, clock=lambda: now[0])
    protected, _ = client.protect(_get())
    server.unprotect(_incoming(_raw(protected, 1)))
    assert not server.expired
    now[0] = 150.0
    assert server.expired
    assert server.get_oscore_context_for({4: b"\x55"}) is None
    with pytest.raises(oscore.ContextUnavailable):
        server.unprotect(_incoming(_raw(client.protect(_get())[0], 2)))
    assert not client.expired
    client.invalidate()
    assert client.expired and "expired" in repr(client)
    with pytest.raises(OscoreContextExpired) as info:
        client.protect(_get())
    assert isinstance(info.value, oscore.ContextUnavailable)
    assert info.value.to_message().code == UNAUTHORIZED


def test_replay_rejected() -> None:
    client, server = _pair()
    raw = _raw(client.protect(_get())[0], 1)
    server.unprotect(_incoming(raw))
    with pytest.raises(oscore.ReplayError):
        server.unprotect(_incoming(raw))


# -- persistence (RFC 8613 §B.1) -----------------------------------------------------------


def _persistent(store: FakeSeqnoStore, name: str = "as", **kw: Any) -> PersistentOscoreContext:
    return PersistentOscoreContext(
        seqno_store=store,
        name=name,
        master_secret=bytes(range(16)),
        sender_id=b"\x55",
        recipient_id=b"\x00",
        **kw,
    )


def test_persistent_never_reuses_partial_iv_across_restarts() -> None:
    store = FakeSeqnoStore()
    used: list[int] = []
    for _restart in range(3):
        ctx = _persistent(store)
        floor = max(used, default=-1)
        for _ in range(1000):
            piv = _piv(ctx.protect(_get())[0])
            assert piv > floor
            assert piv < store.values["as"]  # reserved durably before use
            used.append(piv)
    assert len(used) == len(set(used)) == 3000
    assert used == sorted(used)
    assert len(store.writes) < 3000 / 50  # chunking: a handful of writes per 1000 messages


def test_persistent_chunks_grow_to_limit() -> None:
    store = FakeSeqnoStore()
    ctx = _persistent(store, chunk_start=4, chunk_limit=64)
    for _ in range(1000):
        ctx.protect(_get())
    steps = [b - a for (_, a), (_, b) in zip(store.writes, store.writes[1:], strict=False)]
    assert store.writes[0] == ("as", 0)  # the "context exists" marker of a fresh context
    assert max(steps) == 64
    assert ctx.persisted_sequence_number == store.values["as"] >= ctx.sender_sequence_number


def test_persistent_store_failure_means_no_message() -> None:
    store = FakeSeqnoStore()
    ctx = _persistent(store, chunk_start=1, chunk_limit=1)  # one write per message
    ctx.protect(_get())
    store.fail = True
    with pytest.raises(OSError):
        ctx.protect(_get())
    store.fail = False
    assert _piv(ctx.protect(_get())[0]) > 0


def test_persistent_restart_keeps_replay_window_floor() -> None:
    """RFC 8613 §B.1.2: the window's floor is persisted before a request is handed on, so a restart
    refuses every request seen before and accepts newer ones without an Echo round trip."""
    store = FakeSeqnoStore()
    client = MemoryOscoreContext(master_secret=bytes(range(16)), sender_id=b"\x00", recipient_id=b"\x55")
    fresh = _persistent(store)
    raws = [_raw(client.protect(_get())[0], mid) for mid in range(1, 4)]  # client numbers 0, 1, 2
    fresh.unprotect(_incoming(raws[0]))
    fresh.unprotect(_incoming(raws[2]))  # number 1 never arrives
    assert store.values["as/replay"] == 3  # above the highest number seen

    restarted = _persistent(store)
    assert restarted.recipient_replay_window.is_initialized()
    for old in raws:  # seen (0, 2) or below the floor (1): refused, no Echo offered
        with pytest.raises(oscore.ReplayError) as info:
            restarted.unprotect(_incoming(old))
        assert not isinstance(info.value, oscore.ReplayErrorWithEcho)
    newer = _raw(client.protect(_get())[0], 4)
    restarted.unprotect(_incoming(newer))  # no Echo needed
    assert store.values["as/replay"] == 4
    with pytest.raises(oscore.ReplayError):
        restarted.unprotect(_incoming(newer))


def test_persistent_floor_store_failure_means_request_not_served() -> None:
    store = FakeSeqnoStore()
    client = MemoryOscoreContext(master_secret=bytes(range(16)), sender_id=b"\x00", recipient_id=b"\x55")
    ctx = _persistent(store)
    raw = _raw(client.protect(_get())[0], 1)
    store.fail = True
    with pytest.raises(OSError):
        ctx.unprotect(_incoming(raw))
    store.fail = False
    assert _persistent(store).recipient_replay_window.persist()["index"] == 0


def test_persistent_restart_without_floor_requires_echo() -> None:
    """A context persisted before its window's floor was (an older store): Echo recovers it."""
    store = FakeSeqnoStore()
    client = MemoryOscoreContext(master_secret=bytes(range(16)), sender_id=b"\x00", recipient_id=b"\x55")
    fresh = _persistent(store)
    assert fresh.recipient_replay_window.is_initialized()
    raw = _raw(client.protect(_get())[0], 1)
    fresh.unprotect(_incoming(raw))
    del store.values["as/replay"]

    restarted = _persistent(store)
    assert not restarted.recipient_replay_window.is_initialized()
    assert restarted.echo_recovery is not None and len(restarted.echo_recovery) == 8
    with pytest.raises(oscore.ReplayErrorWithEcho) as info:
        restarted.unprotect(_incoming(raw))  # the old request, replayed
    challenge = info.value.to_message()  # protected 4.01 + Echo (outer code 2.04)
    assert challenge.code == CHANGED
    with pytest.raises(oscore.ReplayErrorWithEcho):  # a new request without Echo: challenged too
        restarted.unprotect(_incoming(_raw(client.protect(_get())[0], 2)))
    answered = _get()
    answered.opt.echo = restarted.echo_recovery
    restarted.unprotect(_incoming(_raw(client.protect(answered)[0], 3)))
    assert restarted.recipient_replay_window.is_initialized()
    with pytest.raises(oscore.ReplayError):
        restarted.unprotect(_incoming(raw))


# -- real sockets on ::1 -------------------------------------------------------------------


def _contexts(**server_kw: Any) -> tuple[MemoryOscoreContext, MemoryOscoreContext]:
    secret = bytes.fromhex("6162630405060708090a0b0c0d0e0f10")
    server = MemoryOscoreContext(
        master_secret=secret, sender_id=b"\x00", recipient_id=b"\x55", authenticated_claims=["clientA"], **server_kw
    )
    client = MemoryOscoreContext(master_secret=secret, sender_id=b"\x55", recipient_id=b"\x00")
    return server, client


def _with(ctx: Any, label: str = ":clientA") -> CredentialsMap:
    credentials = CredentialsMap()
    credentials[label] = ctx
    return credentials


async def test_roundtrip_claims_and_unprotected_passthrough() -> None:
    server_ctx, client_ctx = _contexts()
    async with oscore_server(_with(server_ctx)) as (_, port):
        async with coap_client(port, client_ctx) as client:
            got = await _request(client, port, POST, b"hello")
            assert got.code == CHANGED
            assert json.loads(got.payload) == {"claims": ["clientA"], "payload": "hello"}
            assert isinstance(got.remote, aiocoap.transports.oscore.OSCOREAddress)
            assert got.remote.security_context is client_ctx
            got = await _request(client, port, GET)
            assert got.code == CONTENT and json.loads(got.payload)["claims"] == ["clientA"]
            assert client_ctx.sender_sequence_number == 2
        async with coap_client(port, None) as plain_client:
            got = await _request(plain_client, port, GET)
            assert got.code == CONTENT
            assert json.loads(got.payload)["claims"] is None


async def test_wrong_key_is_refused() -> None:
    server_ctx, _ = _contexts()
    wrong = MemoryOscoreContext(master_secret=b"\x99" * 16, sender_id=b"\x55", recipient_id=b"\x00")
    async with oscore_server(_with(server_ctx)) as (_, port), coap_client(port, wrong) as client:
        with pytest.raises(oscore.NotAProtectedMessage) as info:
            await _request(client, port)
        assert info.value.plain_message.code == aiocoap.numbers.BAD_REQUEST  # 4.00 "Decryption failed"


async def test_unknown_kid_is_4_01() -> None:
    server_ctx, _ = _contexts()
    stranger = MemoryOscoreContext(master_secret=b"\x99" * 16, sender_id=b"\x66", recipient_id=b"\x00")
    async with oscore_server(_with(server_ctx)) as (_, port), coap_client(port, stranger) as client:
        with pytest.raises(oscore.NotAProtectedMessage) as info:
            await _request(client, port)
        assert info.value.plain_message.code == UNAUTHORIZED
        assert info.value.plain_message.payload == b"Security context not found"


async def test_invalidated_server_context_answers_4_01() -> None:
    server_ctx, client_ctx = _contexts()
    async with oscore_server(_with(server_ctx)) as (_, port), coap_client(port, client_ctx) as client:
        assert (await _request(client, port)).code == CONTENT
        server_ctx.invalidate()
        with pytest.raises(oscore.NotAProtectedMessage) as info:
            await _request(client, port)
        # lookup skips an expired context: aiocoap's unprotected 4.01
        assert info.value.plain_message.code == UNAUTHORIZED
        assert info.value.plain_message.payload == b"Security context not found"


async def test_expired_context_held_by_custom_lookup_answers_4_01() -> None:
    """A map item that returns the context without checking expiry: unprotect raises a 4.01."""
    server_ctx, client_ctx = _contexts()

    class IndexByKid:
        def get_oscore_context_for(self, unprotected: Any) -> Any:
            return server_ctx if unprotected.get(4) == server_ctx.recipient_id else None

    async with oscore_server(_with(IndexByKid(), ":index")) as (_, port), coap_client(port, client_ctx) as client:
        assert (await _request(client, port)).code == CONTENT
        server_ctx.invalidate()
        with pytest.raises(oscore.NotAProtectedMessage) as info:
            await _request(client, port)
        assert info.value.plain_message.code == UNAUTHORIZED
        assert info.value.plain_message.payload == b"Security context expired"


async def test_invalidated_client_context_raises_locally() -> None:
    server_ctx, client_ctx = _contexts()
    async with oscore_server(_with(server_ctx)) as (wrapper, port), coap_client(port, client_ctx) as client:
        client_ctx.invalidate()
        with pytest.raises(oscore.ContextUnavailable):
            await _request(client, port)
        assert wrapper.outer_requests == 0


async def test_restarted_persistent_server_recovers_with_echo() -> None:
    """A store without the window's floor (persisted by an older version): Echo recovers it."""
    store = FakeSeqnoStore()
    secret = bytes.fromhex("5152530405060708090a0b0c0d0e0f10")

    def server_side() -> PersistentOscoreContext:
        return PersistentOscoreContext(
            seqno_store=store,
            name="rs1",
            master_secret=secret,
            sender_id=b"\x01",
            recipient_id=b"\x77",
            authenticated_claims=["rs1"],
        )

    client_ctx = MemoryOscoreContext(master_secret=secret, sender_id=b"\x77", recipient_id=b"\x01")
    async with coap_client(0, None) as client:
        client.client_credentials["coap://[::1]:*"] = client_ctx  # port-independent: two servers
        for round_ in range(2):
            store.values.pop("rs1/replay", None)
            server_ctx = server_side()
            async with oscore_server(_with(server_ctx)) as (wrapper, port):
                seqno_before = server_ctx.sender_sequence_number
                got = await _request(client, port, POST, b"x")
                assert got.code == CHANGED and json.loads(got.payload)["claims"] == ["rs1"]
                if round_ == 0:  # fresh context: no challenge, response reuses the request nonce
                    assert wrapper.outer_requests == 1
                    assert server_ctx.sender_sequence_number == seqno_before
                else:  # restarted: 4.01 + Echo (own Partial IV), then the client's transparent retry
                    assert wrapper.outer_requests == 2
                    # the challenge and the response both carry a server Partial IV: aiocoap does
                    # not reuse the nonce of a request received while the window was unknown
                    assert server_ctx.sender_sequence_number == seqno_before + 2
                    assert store.values["rs1"] >= server_ctx.sender_sequence_number  # reserved first
                assert server_ctx.recipient_replay_window.is_initialized()
                got = await _request(client, port, GET)
                assert got.code == CONTENT
                assert wrapper.outer_requests == (2 if round_ == 0 else 3)


@pytest.mark.parametrize("hkdf_name", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("alg", [10, 30])
@pytest.mark.parametrize("salt", [b"", b"\x9e\x7c\xa9\x22\x23\x78\x63\x40"])
@pytest.mark.parametrize("id_context", [None, b"\x37\xcb\xf3\x21\x00\x17\xa2\xd3"])
def test_derived_keys_are_aiocoaps(hkdf_name: str, alg: int, salt: bytes, id_context: bytes | None) -> None:
    """The stdlib HKDF gives the keys and IV aiocoap's own derivation gives (RFC 8613 §3.2.1)."""

    class Reference(MemoryOscoreContext):  # type: ignore[misc]
        _kdf_lowlevel = oscore.SecurityContextUtils._kdf_lowlevel

    params = dict(master_secret=bytes(range(16)), master_salt=salt, sender_id=b"\x01", recipient_id=b"",
                  id_context=id_context, alg=alg, hkdf=hkdf_name)
    ours, theirs = MemoryOscoreContext(**params), Reference(**params)
    assert (ours.sender_key, ours.recipient_key, ours.common_iv) == (
        theirs.sender_key, theirs.recipient_key, theirs.common_iv)


def test_hkdf_matches_rfc5869_case_1() -> None:
    """RFC 5869 Appendix A.1."""
    okm = hkdf("sha256", bytes.fromhex("000102030405060708090a0b0c"), b"\x0b" * 22,
               bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")
    with pytest.raises(ValueError):
        hkdf("sha256", b"", b"k", b"", 255 * 32 + 1)
