"""Attacks on the CoAP transport of the AS and the RS (issue 17 items 4 and 11), replayed with raw
UDP sockets on ::1 against an in-process AS + RS from an ``ace init`` deployment. Each test
failed on the code before the fix; the comment says how.

- 4: first Block1 blocks with distinct Uri-Query values each made aiocoap's spool keep an
  assembly (about 3.7 KB per 1 KB datagram) for 93 s or more, without a count limit; now one
  assembly per peer, one byte budget for the process, 45 s idle lifetime (``BLOCK1_SPOOL``).
- 11: a spoofable 9-10 byte NON request got a 4.01 with creation hints (RS) or an error map
  (AS) several times its size; now no answer to an unauthenticated NON request is larger than
  the request, and amplifying error answers to CON requests are rate-limited per source.
- 11, review: a cheap spoofed CON flood (the client's address, or many) exhausted that limit and
  the real client's probe got a bare 4.01 (no hints, no cnonce): its flow failed. Past the limit
  the bare code now carries an Echo (RFC 9175 §2.4 item 3, §2.6); a request echoing it has a
  verified address and gets its full answer; ``ace client`` echoes it once.
- review: aiocoap's per-resource Block2Cache kept every answer longer than the asked block size
  (Block2 0/0/16), one per Uri-Query value and source port, for 93 s or more; now one answer
  per peer in one byte budget for the process (``BLOCK2_STORE``).
- review 2: that budget was everyone's and a peer was an address and port: ~125 tiny Block2
  requests (or ~55 first Block1 blocks) from the ports of one host evicted an OSCORE client's
  transfer (4.08), and a second transfer from one client socket replaced the first. Now
  authenticated (OSCORE, DTLS) transfers have a budget of their own, an unauthenticated source
  is an IPv4 address or IPv6 /64 holding at most ``PER_SOURCE`` entries, the budget is taken
  first from the source holding most, and Block2 answers are held per peer and request.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiocoap
import cbor2
import pytest
from aiocoap.optiontypes import BlockOption
from deployment import Flow, running_deployment, send
from support import ACE_CBOR, TIMEOUT, bounded

from ace.client.flow import Done, ResourceRequest
from ace.coap import render
from ace.coap.render import AnswerLimiter
from ace.messages import CreationHints
from tests.security.test_attack_cnonce import FULL, cnonce_deployment

try:
    from ace.coap import amplification
except ImportError:  # before the fix
    amplification = None  # type: ignore[assignment]

SPOOL: Any = getattr(render, "BLOCK1_SPOOL", None)  # None before the fix
STORE: Any = getattr(render, "BLOCK2_STORE", None)  # likewise
PER_SOURCE = int(getattr(render, "PER_SOURCE", 1))  # entries one host (or security association) may hold
ATTACK_BLOCKS = 200
SOURCES = 100  # sockets (distinct remote addresses) for the many-sources attack
BLOCK = 1024  # bytes per block (SZX 6), as in the attack
RECV_TIMEOUT = 2.0


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[Flow]:
    for held in (SPOOL, STORE):
        if held is not None:
            held.clear()  # the spool and the store are the process's: nothing left over from other tests
    async with running_deployment(tmp_path / "deployment") as f:
        yield f
    for held in (SPOOL, STORE):
        if held is not None:
            held.clear()


# -- raw CoAP over UDP --------------------------------------------------------------------------

@dataclass
class RawPeer(asyncio.DatagramProtocol):
    """One UDP socket on ::1 (one remote address for the server): sends datagrams, queues answers."""

    received: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    transport: Any = None
    mid: int = field(default_factory=lambda: secrets.randbelow(0x8000))

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait(data)

    def send(self, msg: aiocoap.Message, port: int) -> bytes:
        self.mid = (self.mid + 1) & 0xFFFF
        msg.mid = self.mid
        data = msg.encode()
        self.transport.sendto(data, ("::1", port))
        return data

    async def answer(self) -> bytes:
        while True:  # an empty ACK may precede a separate response
            data = await bounded(self.received.get(), RECV_TIMEOUT)
            if data[1] != 0:
                return data

    async def exchange(self, msg: aiocoap.Message, port: int) -> tuple[bytes, aiocoap.Message]:
        """The request's datagram and the answer (decoded; ``raw_size`` has its datagram's length)."""
        request = self.send(msg, port)
        data = await self.answer()
        answer = aiocoap.Message.decode(data)
        answer.raw_size = len(data)  # type: ignore[attr-defined]
        return request, answer


async def raw_peers(n: int) -> list[RawPeer]:
    loop = asyncio.get_running_loop()
    peers = []
    for _ in range(n):
        _, peer = await loop.create_datagram_endpoint(RawPeer, local_addr=("::1", 0))
        peers.append(peer)
    return peers


def close(peers: list[RawPeer]) -> None:
    for peer in peers:
        peer.transport.close()


def port_of(uri: str) -> int:
    port = urlsplit(uri).port
    assert port is not None
    return port


def message(code: aiocoap.Code, path: tuple[str, ...], *, mtype: aiocoap.Type = aiocoap.CON,
            payload: bytes = b"", query: tuple[str, ...] = (), block1: tuple[int, bool] | None = None,
            content_format: int | None = None, token: bytes | None = None,
            block2: int | None = None, echo: bytes | None = None) -> aiocoap.Message:
    msg = aiocoap.Message(code=code, payload=payload, echo=echo)
    if block2 is not None:  # block ``block2`` of 16 bytes (SZX 0)
        msg.opt.block2 = BlockOption.BlockwiseTuple(block2, False, 0)
    msg.mtype, msg.token = mtype, secrets.token_bytes(2) if token is None else token
    msg.opt.uri_path = path
    msg.opt.uri_query = query
    if content_format is not None:
        msg.opt.content_format = content_format
    if block1 is not None:
        msg.opt.block1 = BlockOption.BlockwiseTuple(block1[0], block1[1], 6)
    return msg


def code_of(msg: aiocoap.Message) -> str:
    return f"{int(msg.code) >> 5}.{int(msg.code) & 31:02d}"


def first_block(path: tuple[str, ...], n: int) -> aiocoap.Message:
    """Block 0 of 2 (more to come), 1 KB of body, a Uri-Query of its own; NON as in the attack."""
    return message(aiocoap.POST, path, mtype=aiocoap.NON, payload=b"\xa1" * BLOCK, query=(f"q={n}",),
                   block1=(0, True), content_format=ACE_CBOR)


def last_block(path: tuple[str, ...], n: int) -> aiocoap.Message:
    return message(aiocoap.POST, path, payload=b"\x00" * 16, query=(f"q={n}",), block1=(1, False),
                   content_format=ACE_CBOR)


TARGETS = {"rs": ("rs_uri", ("authz-info",)), "as": ("as_uri", ("token",))}


def target(flow: Flow, name: str) -> tuple[int, tuple[str, ...]]:
    uri_attr, path = TARGETS[name]
    return port_of(getattr(flow.d, uri_attr)), path


async def traced_growth(peers: list[RawPeer], port: int, messages: list[aiocoap.Message], code: str) -> int:
    """Bytes still allocated (tracemalloc, this process: the servers run in it) after sending
    ``messages`` round-robin over ``peers``, each answered with ``code``."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n, msg in enumerate(messages):
            _, answer = await peers[n % len(peers)].exchange(msg, port)
            assert code_of(answer) == code
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


async def attack(peers: list[RawPeer], port: int, path: tuple[str, ...]) -> int:
    """``ATTACK_BLOCKS`` first blocks round-robin over ``peers``; returns what the Block1 state
    kept of them: the traced growth minus that of as many datagrams of the same size to a path
    that does not exist (what aiocoap's message layer keeps of any datagram, RFC 7252 §4.5)."""
    junk = [message(aiocoap.POST, ("nothing",), mtype=aiocoap.NON, payload=b"\xa1" * BLOCK, query=(f"q={n}",),
                    content_format=ACE_CBOR) for n in range(ATTACK_BLOCKS)]
    # warm-up, not measured: what the site loads or compiles on its first Block1 request (the servers import
    # code lazily; a fresh clone also compiles it) is no state the attack leaves behind
    _, warm = await peers[0].exchange(first_block(path, 10 * ATTACK_BLOCKS), port)
    assert code_of(warm) == "2.31"
    baseline = await traced_growth(peers, port, junk, "4.04")
    blocks = [first_block(path, n) for n in range(ATTACK_BLOCKS)]
    return await traced_growth(peers, port, blocks, "2.31") - baseline


def assert_spool_bounded(peers: int) -> None:
    assert SPOOL is not None, "no process-wide Block1 spool (old code)"
    assert len(SPOOL) <= peers
    assert SPOOL.bytes <= SPOOL.budget
    assert SPOOL.bytes <= peers * (render.ASSEMBLY_OVERHEAD + BLOCK)


async def legitimate_blockwise_post(flow: Flow) -> str:
    """aiocoap's own client posts a 2,000-byte body in Block1 blocks to /authz-info: it is
    reassembled (the RS refuses the junk token, 4.00), not 4.08."""
    ctx = await flow.plain()
    msg = aiocoap.Message(code=aiocoap.POST, uri=flow.authz_info_uri, payload=b"\xa0" * 2000,
                          content_format=ACE_CBOR)
    major, minor = (await send(ctx, msg)).code
    return f"{major}.{minor:02d}"


# -- item 4: Block1 assemblies ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rs", "as"])
async def test_block1_one_assembly_per_peer(flow: Flow, name: str) -> None:
    """Old code: 200 assemblies (one per Uri-Query) were kept, block 1 for the first query still
    completed its body (not 4.08), and the traced memory grew by about 3.7 KB per block."""
    port, path = target(flow, name)
    peers = await raw_peers(1)
    try:
        kept = await attack(peers, port, path)
        print(f"Block1 state kept of {ATTACK_BLOCKS} first blocks from one peer: {kept} bytes")
        _, first = await peers[0].exchange(last_block(path, 0), port)
        assert code_of(first) == "4.08"  # replaced by the peer's later first blocks (RFC 7959 §2.9.2)
        assert kept < 8 * (render.ASSEMBLY_OVERHEAD + BLOCK)  # old code: all 200 assemblies
        assert_spool_bounded(1)
        _, last = await peers[0].exchange(last_block(path, ATTACK_BLOCKS - 1), port)
        assert code_of(last) not in ("4.08", "2.31")  # the peer's newest assembly completes
        assert len(SPOOL) == 0 and SPOOL.bytes == 0
    finally:
        close(peers)
    assert await legitimate_blockwise_post(flow) == "4.00"
    assert isinstance(await bounded(flow.full_flow(), 4 * TIMEOUT), Done)


@pytest.mark.parametrize("name", ["rs", "as"])
async def test_block1_budget_over_many_peers(flow: Flow, name: str) -> None:
    """Old code: the assemblies of 100 ports of one host filled the process's byte budget
    (about 55 kept). Now ::1 is one source: it holds at most ``PER_SOURCE``, its newest."""
    port, path = target(flow, name)
    peers = await raw_peers(SOURCES)
    try:
        kept = await attack(peers, port, path)
        print(f"Block1 state kept of {ATTACK_BLOCKS} first blocks from {SOURCES} peers: {kept} bytes")
        _, oldest = await peers[0].exchange(last_block(path, SOURCES), port)  # peer 0's newest query
        assert code_of(oldest) == "4.08"  # dropped for the budget
        assert kept < render.BLOCK1_BUDGET
        assert_spool_bounded(SOURCES)
        assert len(SPOOL) <= PER_SOURCE  # old code: about 55
        assert SPOOL.dropped > 0
        _, newest = await peers[-1].exchange(last_block(path, ATTACK_BLOCKS - 1), port)
        assert code_of(newest) not in ("4.08", "2.31")
    finally:
        close(peers)
    assert await legitimate_blockwise_post(flow) == "4.00"
    assert isinstance(await bounded(flow.full_flow(), 4 * TIMEOUT), Done)


async def test_block1_idle_assembly_expires(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    """Old code: an assembly lived 93 to 186 s; now one not fed for 45 s is gone (4.08)."""
    assert SPOOL is not None, "no process-wide Block1 spool (old code)"
    now = [1000.0]
    monkeypatch.setattr(SPOOL, "clock", lambda: now[0])
    port, path = target(flow, "rs")
    peers = await raw_peers(2)
    try:
        await peers[0].exchange(first_block(path, 1), port)
        await peers[1].exchange(first_block(path, 2), port)
        now[0] += render.ASSEMBLY_IDLE - 1
        _, fresh = await peers[1].exchange(last_block(path, 2), port)
        assert code_of(fresh) == "4.00"  # still there a second before the end (the junk body is refused)
        now[0] += 2
        _, stale = await peers[0].exchange(last_block(path, 1), port)
        assert code_of(stale) == "4.08"
        assert len(SPOOL) == 0
    finally:
        close(peers)


async def test_oscore_outer_block1_is_not_assembled(flow: Flow) -> None:
    """An OSCORE request carrying an outer Block1 option is not reassembled before it is
    verified (aiocoap's OSCORE site wrapper unprotects each datagram alone): a fragment with a
    live kid fails decryption (4.00), with an unknown kid 4.01, and nothing is spooled. (Inner
    Block1, after verification, goes through ``BLOCK1_SPOOL`` like any other.) Passes on old code."""
    session = await flow.post_token(await flow.plain(), *flow.token())
    assert session.server_rid is not None
    port = port_of(flow.rs_uri)
    peers = await raw_peers(1)
    try:
        for kid, expected in ((session.server_rid, "4.00"), (b"\x7e\x7f", "4.01")):
            msg = message(aiocoap.POST, ("temp",), payload=b"\x5a" * BLOCK, block1=(0, True))
            msg.opt.oscore = b"\x09\x05" + kid  # RFC 8613 §6.1: flags (kid, 1-byte Partial IV), PIV, kid
            _, answer = await peers[0].exchange(msg, port)
            assert code_of(answer) == expected
        assert SPOOL is None or len(SPOOL) == 0
    finally:
        close(peers)


# -- item 11: amplification ----------------------------------------------------------------------

async def test_non_get_to_protected_resource_is_not_amplified(flow: Flow) -> None:
    """Old code: a 10-byte NON GET /temp got a 4.01 with AS Request Creation Hints, about 6 times
    its size. Now the bare 4.01 (no hints: a client learns them with CON)."""
    port = port_of(flow.rs_uri)
    peers = await raw_peers(1)
    try:
        for token in (b"", b"\x01"):  # 9 and 10 bytes
            request, answer = await peers[0].exchange(
                message(aiocoap.GET, ("temp",), mtype=aiocoap.NON, token=token), port)
            assert len(request) == 9 + len(token)
            assert code_of(answer) == "4.01"
            assert answer.raw_size <= len(request)
        _, con = await peers[0].exchange(message(aiocoap.GET, ("temp",), token=b"\x03"), port)
        assert code_of(con) == "4.01" and con.payload  # CON: the hints (RFC 9200 §5.3)
    finally:
        close(peers)


async def test_non_token_request_without_security_is_not_amplified(flow: Flow) -> None:
    """Old code: a 9-byte NON POST /token got a 4.01 invalid_client error map, about 4 times its size."""
    port = port_of(flow.d.as_uri)
    peers = await raw_peers(1)
    try:
        request, answer = await peers[0].exchange(
            message(aiocoap.POST, ("token",), mtype=aiocoap.NON, payload=b"\xa0", content_format=ACE_CBOR), port)
        assert code_of(answer).startswith("4.")
        assert answer.raw_size <= len(request)
        bare, answer = await peers[0].exchange(message(aiocoap.POST, ("token",), mtype=aiocoap.NON, token=b""), port)
        assert len(bare) <= 10 and answer.raw_size <= len(bare)
    finally:
        close(peers)


async def test_con_error_answers_are_rate_limited_per_source(flow: Flow) -> None:
    """Old code: every CON GET /temp got the hints. Now a source gets at most the burst of
    amplifying error answers (the clock stands still here), then the bare code."""
    guard = flow.rs_server.context.serversite
    if hasattr(guard, "limiter"):
        guard.limiter = render.AnswerLimiter(clock=lambda: 0.0)
    burst = int(getattr(amplification or render, "SOURCE_BURST", 32))
    port = port_of(flow.rs_uri)
    peers = await raw_peers(2)  # two ports, one address (::1): one source
    try:
        answers = [(await peers[n % 2].exchange(message(aiocoap.GET, ("temp",)), port))[1] for n in range(burst + 3)]
        assert all(code_of(a) == "4.01" for a in answers)
        assert [bool(a.payload) for a in answers] == [True] * burst + [False] * 3
    finally:
        close(peers)
    # another address has a bucket of its own; all together share one
    limiter = render.AnswerLimiter(clock=lambda: 0.0, total=(0.0, burst + 2))
    assert [limiter.allow("2001:db8::1") for _ in range(burst + 1)] == [True] * burst + [False]
    assert [limiter.allow("2001:db8::2") for _ in range(3)] == [True, True, False]


# -- item 11, review: the exhausted limiter and Echo (RFC 9175 §2.4 item 3) ---------------------------

FROZEN = 0.0  # the limiter's clock stands still: the buckets the flood empties stay empty for the test


def echo_bound(request: bytes) -> int:
    """The largest answer an unverified address may get to ``request`` past the limit: the bare
    code (4 bytes and the request's token: never more than the request) plus the Echo option
    (``ECHO_OPTION_SIZE`` = 14: header byte, extended delta, 12-byte value), and never more
    than three times the request (RFC 9175 §2.4 item 3: the amplification factor SHOULD NOT
    exceed 3). A 10-byte GET /temp: at most 4 + 1 + 14 = 19 bytes, under 30."""
    assert amplification is not None, "no Echo (old code)"
    return min(len(request) + amplification.ECHO_OPTION_SIZE, amplification.AMPLIFICATION_FACTOR * len(request))


async def flood(peers: list[RawPeer], port: int, count: int) -> list[tuple[bytes, aiocoap.Message]]:
    """``count`` 10-byte CON GET /temp (what a spoofer sends in the victim's name), in batches of
    one per peer; the answers in order of arrival with the largest request."""
    answers = []
    for _ in range(-(-count // len(peers))):
        sent = [peer.send(message(aiocoap.GET, ("temp",), token=b"\x01"), port) for peer in peers]
        for peer in peers:
            data = await peer.answer()
            answer = aiocoap.Message.decode(data)
            answer.raw_size = len(data)  # type: ignore[attr-defined]
            answers.append((max(sent, key=len), answer))
    return answers


@pytest.mark.parametrize("bucket", ["per-source", "global"])
async def test_exhausted_limiter_answers_with_echo_and_the_client_completes(tmp_path: Path, bucket: str) -> None:
    """Old code: past the limit (the client's address spoofed >50/s, or >500/s from anywhere)
    the client's probe got a bare 4.01 without hints: its flow failed for want of a cnonce.
    Now the bare code carries an Echo, the client echoes it once and its flow completes."""
    async with cnonce_deployment(tmp_path / "dep") as flow:
        guard = flow.rs_server.context.serversite
        if bucket == "per-source":  # the spoofer uses the client's address (here ::1, like everyone)
            guard.limiter = AnswerLimiter(clock=lambda: FROZEN)
            count = int(guard.limiter.per_source[1]) + 16
        else:  # many spoofed sources: loopback has one, so the per-source bucket is made endless
            guard.limiter = AnswerLimiter(clock=lambda: FROZEN, per_source=(0.0, 1e9))
            count = int(guard.limiter.total[1]) + 16
        peers = await raw_peers(8)
        try:
            answers = await flood(peers, port_of(flow.rs_uri), count)
            past = [(request, answer) for request, answer in answers if not answer.payload]
            assert len(past) >= 16 and all(code_of(a) == "4.01" for _, a in past)
            for request, answer in past:
                assert answer.opt.echo is not None and answer.raw_size <= echo_bound(request)
            # a forged or another address's Echo verifies nothing; the genuine one gets the hints
            genuine = past[-1][1].opt.echo
            for bad in (genuine[:-1] + bytes([genuine[-1] ^ 1]), guard.echo.issue("2001:db8::1"), genuine[:-1]):
                _, answer = await peers[0].exchange(message(aiocoap.GET, ("temp",), echo=bad), port_of(flow.rs_uri))
                assert not answer.payload and answer.opt.echo is not None
            _, answer = await peers[0].exchange(message(aiocoap.GET, ("temp",), echo=genuine), port_of(flow.rs_uri))
            assert code_of(answer) == "4.01" and CreationHints.decode(answer.payload).cnonce is not None
        finally:
            close(peers)
        runner = await flow.client()
        got = await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")), 4 * TIMEOUT)
        assert isinstance(got, Done) and got.response.code == (2, 5), got
        assert flow.steps() == FULL, flow.steps()
        hinted = CreationHints.decode(flow.exchanges[0].response.payload).cnonce
        assert hinted is not None
        assert [b.claims.cnonce for b in flow.rs_server.core.bindings] == [hinted]
        assert guard.verified >= 2  # the test's genuine Echo and the client's


def test_echo_values_verify_their_own_address_while_fresh() -> None:
    assert amplification is not None, "no Echo (old code)"
    now = [1000.0]
    stamp = amplification.EchoStamp(clock=lambda: now[0])
    value = stamp.issue("2001:db8::1")
    assert len(value) == amplification.ECHO_LEN
    assert stamp.verify(value, "2001:db8::1") and not stamp.verify(value, "2001:db8::2")
    assert not stamp.verify(None, "2001:db8::1") and not stamp.verify(value + b"\x00", "2001:db8::1")
    assert not amplification.EchoStamp(clock=lambda: now[0]).verify(value, "2001:db8::1")  # another process's key
    now[0] += amplification.ECHO_LIFETIME
    assert stamp.verify(value, "2001:db8::1")
    now[0] += 1.0
    assert not stamp.verify(value, "2001:db8::1")
    now[0] -= 100.0  # a value from the future
    assert not stamp.verify(value, "2001:db8::1")


# -- review: Block2 answers ---------------------------------------------------------------------------

BLOCK2_REQUESTS = 300


def _resources(site: Any) -> dict[Any, Any]:
    while not hasattr(site, "_resources"):
        site = getattr(site, "site", None) or site._inner_site
    resources: dict[Any, Any] = site._resources
    return resources


def held_block2_answers(site: Any) -> int:
    """Answers held for later Block2 blocks: in ``BLOCK2_STORE``, and in aiocoap's caches of
    the site's resources (old code)."""
    held = len(STORE) if STORE is not None else 0
    for resource in _resources(site).values():
        completes = getattr(getattr(resource, "_block2", None), "_completes", None)
        held += len(completes._items) if completes is not None else 0
    return held


@pytest.mark.parametrize("name", ["rs", "as"])
async def test_block2_answers_held_one_per_peer(flow: Flow, name: str) -> None:
    """Old code: each of 300 requests asking for 16-byte blocks (a distinct Uri-Query each) left
    its whole answer (4.01 hints at the RS, an error map at the AS) in aiocoap's cache: 300."""
    port, path = {"rs": (port_of(flow.rs_uri), ("temp",)), "as": (port_of(flow.d.as_uri), ("token",))}[name]
    server = flow.rs_server if name == "rs" else flow.as_server
    code, body = (aiocoap.GET, b"") if name == "rs" else (aiocoap.POST, b"\xa0")
    peers = await raw_peers(4)
    try:
        for n in range(BLOCK2_REQUESTS):
            _, answer = await peers[n % 4].exchange(
                message(code, path, payload=body, query=(f"q={n}",), block2=0), port)
            assert code_of(answer).startswith("4.")  # block 0 (or, past the rate limit, the bare code and Echo)
        held = held_block2_answers(server.context.serversite)
        print(f"answers held after {BLOCK2_REQUESTS} Block2 requests from 4 peers: {held}")
        assert held <= 4
        assert STORE.bytes <= min(STORE.budget, 4 * (render.ANSWER_OVERHEAD + 256))
        _, replaced = await peers[0].exchange(message(code, path, payload=body, query=("q=0",), block2=1), port)
        assert code_of(replaced) == "4.08"  # that answer was replaced by the peer's later ones (RFC 7959 §2.9.2)
    finally:
        close(peers)


async def test_block2_transfer_comes_from_one_rendering(flow: Flow) -> None:
    """aiocoap's own client fetches the hints in 16-byte blocks: all from one rendering (the
    hints parse), and nothing is held after the last block. Passes on old code except the end."""
    ctx = await flow.plain()
    msg = aiocoap.Message(code=aiocoap.GET, uri=flow.rs_uri + "/temp")
    msg.opt.block2 = BlockOption.BlockwiseTuple(0, False, 0)
    reply = await send(ctx, msg)
    assert reply.code == (4, 1) and len(reply.payload) > 16
    assert CreationHints.decode(reply.payload).as_uri
    assert held_block2_answers(flow.rs_server.context.serversite) == 0


# -- review 2: many ports of one host, and authenticated transfers ------------------------------------

FLOOD_PORTS = 200  # one host (::1), a port each: on old code about 125 tiny requests filled the budget


async def tiny_block2_flood(port: int) -> None:
    """``FLOOD_PORTS`` unauthenticated POST /token asking for 16-byte blocks (SZX 0), each from
    a port of its own and with a Uri-Query of its own: each answer is held for its block 1."""
    peers = await raw_peers(FLOOD_PORTS)
    try:
        for n, peer in enumerate(peers):
            _, answer = await peer.exchange(message(aiocoap.POST, ("token",), payload=b"\xa0", query=(f"q={n}",),
                                                    block2=0, content_format=ACE_CBOR), port)
            assert code_of(answer).startswith("4.")
    finally:
        close(peers)


async def block1_flood(port: int) -> None:
    """``FLOOD_PORTS`` unauthenticated first Block1 blocks (1 KB each) to /token, a port each."""
    peers = await raw_peers(FLOOD_PORTS)
    try:
        for n, peer in enumerate(peers):
            _, answer = await peer.exchange(first_block(("token",), n), port)
            assert code_of(answer) == "2.31"
    finally:
        close(peers)


async def blocks_of(ctx: Any, uri: str, payload: bytes, between: Any) -> tuple[str, bytes]:
    """POST ``payload`` to ``uri`` over ``ctx`` asking for its answer in 16-byte blocks one at a
    time (aiocoap's own block-wise handling off); awaits ``between()`` after block 0. Returns the
    last block's code and the body put together."""
    body = b""
    for num in range(256):  # a bounded number of blocks
        msg = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=payload, content_format=ACE_CBOR)
        msg.opt.block2 = BlockOption.BlockwiseTuple(num, False, 0)
        answer = await bounded(ctx.request(msg, handle_blockwise=False).response)
        block2 = answer.opt.block2
        if block2 is None:
            return code_of(answer), body + answer.payload
        body += answer.payload
        if num == 0:
            await between()
        if not block2.more:
            return code_of(answer), body
    raise AssertionError("too many blocks")


async def test_block2_tiny_flood_from_many_ports_leaves_oscore_transfer(flow: Flow) -> None:
    """Old code: one Block2 store and one byte budget for everyone, a peer keyed by address and
    port: 200 tiny unauthenticated requests from 200 ports of one host evicted the answer an
    OSCORE client was fetching block by block, and its block 1 got 4.08. Now authenticated
    transfers have a budget of their own, and one host holds at most ``PER_SOURCE`` answers."""
    runner = await flow.client()
    port = port_of(flow.d.as_uri)
    code, body = await blocks_of(runner.context, flow.d.as_uri, b"\xa0", lambda: tiny_block2_flood(port))
    assert code.startswith("4.") and code != "4.08", code  # the AS's error answer to an empty map, all of it
    assert len(body) > 16 and isinstance(cbor2.loads(body), dict)
    assert STORE is not None and STORE.held_by(authenticated=False) <= PER_SOURCE  # ::1 is one source
    assert STORE.held_by(authenticated=True) == 0  # the last block served: nothing held


async def test_block1_flood_from_many_ports_leaves_oscore_upload(flow: Flow) -> None:
    """Old code: 200 unauthenticated first blocks from 200 ports of one host pushed an OSCORE
    client's Block1 upload out of the spool (its next block got 4.08). Now it completes."""
    runner = await flow.client()
    uri, body = flow.d.as_uri, b"\xa1\x18\x63" + b"\x58\x40" + b"\x00" * 64  # {99: 64 zero bytes}: junk, 69 B
    answer = None
    for num in range(-(-len(body) // 16)):
        msg = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=body[16 * num:16 * (num + 1)],
                              content_format=ACE_CBOR)
        msg.opt.block1 = BlockOption.BlockwiseTuple(num, 16 * (num + 1) < len(body), 0)
        answer = await bounded(runner.context.request(msg, handle_blockwise=False).response)
        if num == 0:
            assert code_of(answer) == "2.31"
            await block1_flood(port_of(uri))
    assert answer is not None and code_of(answer) not in ("2.31", "4.08"), code_of(answer)
    assert SPOOL is not None and len(SPOOL) <= PER_SOURCE


async def nothing() -> None:
    return None


async def test_one_socket_fetches_two_block2_answers_at_once(flow: Flow) -> None:
    """Old code: one answer per peer, so block 0 of a second transfer from the same client
    socket replaced the first's answer, whose block 1 then got 4.08. Both complete now."""
    ctx = await flow.plain()
    first: list[Any] = []

    async def other() -> None:
        first.append(await blocks_of(ctx, flow.d.as_uri + "?other", b"\xa0", nothing))

    code, body = await blocks_of(ctx, flow.d.as_uri, b"\xa0", other)  # block 0 of one, all of the other, the rest
    assert code != "4.08" and len(body) > 16
    assert [(code, cbor2.loads(body))] == [(c, cbor2.loads(b)) for c, b in first]


class FakeRemote:
    """What the store and the spool read of a udp6 remote (unauthenticated)."""

    maximum_payload_size, maximum_block_size_exp, hostinfo_local = 1024, 6, "srv"

    def __init__(self, host: str, port: int) -> None:
        self.sockaddr = (host, port)
        self.blockwise_key = (self.sockaddr, None)


def fake_request(host: str, port: int, num: int, szx: int, query: str = "") -> aiocoap.Message:
    msg = aiocoap.Message(code=aiocoap.GET, uri_path=["temp"], uri_query=[query] if query else [])
    msg.remote = FakeRemote(host, port)
    msg.opt.block2 = BlockOption.BlockwiseTuple(num, False, szx)
    return msg


@pytest.mark.parametrize("attacker", ["192.0.2.7", "2001:db8:0:1::{n:x}"])
async def test_block2_unauthenticated_victim_outlives_a_flood_from_one_host(attacker: str) -> None:
    """(Unit level: loopback has one address.) Old code: 130 tiny requests from the ports of one
    IPv4 address, or from the addresses of one IPv6 /64, evicted another host's held answer.
    Now that host or /64 holds ``PER_SOURCE`` answers and the victim's transfer continues."""
    store = render.Block2Store()

    async def big() -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"x" * 3000)

    async def small() -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.UNAUTHORIZED, payload=b"h" * 60)

    await store.extract_or_insert("res", fake_request("2001:db8::1", 5683, 0, 6), big)
    for n in range(130):
        await store.extract_or_insert("res", fake_request(attacker.format(n=n + 2), 2000 + n, 0, 0), small)
    block = await store.extract_or_insert("res", fake_request("2001:db8::1", 5683, 1, 6), big)
    assert block.opt.block2.block_number == 1 and block.payload == b"x" * 1024
    assert len(store) == 1 + PER_SOURCE


async def test_block2_budget_goes_first_from_the_source_holding_most() -> None:
    """Many sources past the budget: the source with the most answers loses its oldest first, so a
    source with one answer keeps it while others hold more. Old code: the oldest answer went."""
    store = render.Block2Store(budget=10 * (render.ANSWER_OVERHEAD + 100))

    async def answer() -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.UNAUTHORIZED, payload=b"h" * 100)

    await store.extract_or_insert("res", fake_request("192.0.2.1", 1, 0, 0), answer)  # the victim's, the oldest
    for n in range(12):  # three sources, four answers each (other ports and queries)
        await store.extract_or_insert("res", fake_request(f"198.51.100.{n % 3}", n + 2, 0, 0, f"q={n}"), answer)
    assert len(store) == 10
    block = await store.extract_or_insert("res", fake_request("192.0.2.1", 1, 1, 0), answer)
    assert block.opt.block2.block_number == 1
