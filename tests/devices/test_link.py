"""LossyLink on loopback: real datagrams between aiocoap peers or raw UDP sockets.

Every relay, server and socket a test opens is closed in a ``finally``; every await is bounded.
CoAP tests lower aiocoap's retransmission timers per message with ``FastTuning`` (aiocoap 0.4.17
reads ACK_TIMEOUT, ACK_RANDOM_FACTOR and MAX_RETRANSMIT from ``message.transport_tuning``).
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import aiocoap
import pytest
from aiocoap import resource
from aiocoap.numbers.constants import TransportTuning
from support import TIMEOUT, bounded

from devices.link import Address, LinkModel, LossyLink, draw_fate

HOSTS = ["::1", "127.0.0.1"]


class FastTuning(TransportTuning):
    """CON with a 20 ms first timeout (RFC 7252 default 2 s) and more retries, for lossy tests."""

    ACK_TIMEOUT = 0.02
    ACK_RANDOM_FACTOR = 1.5
    MAX_RETRANSMIT = 8
    reliability = True


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- CoAP peers ---------------------------------------------------------------------------------


class Echo(resource.Resource):
    """GET /echo?i=N answers N; counts handler calls (deduplication keeps them to one per GET)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.calls += 1
        return aiocoap.Message(code=aiocoap.CONTENT, payload="".join(request.opt.uri_query).encode())

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        self.calls += 1
        return aiocoap.Message(code=aiocoap.CHANGED)


class Coap:
    def __init__(self, client: Any, echo: Echo, link: LossyLink, host: str) -> None:
        self.client, self.echo, self.link, self.host = client, echo, link, host

    async def get(self, i: int, tuning: TransportTuning | None = None) -> aiocoap.Message:
        uri = f"coap://{hostport(self.host, self.link.port)}/echo?{i}"
        msg = aiocoap.Message(code=aiocoap.GET, uri=uri, transport_tuning=tuning)
        return await bounded(self.client.request(msg).response)


@asynccontextmanager
async def coap_through(model: LinkModel, host: str = "::1", **kw: Any) -> AsyncIterator[Coap]:
    """An aiocoap server with /echo, a LossyLink in front of it and a client context."""
    site, echo = resource.Site(), Echo()
    site.add_resource(["echo"], echo)
    port = free_port(host)
    server = await bounded(aiocoap.Context.create_server_context(site, bind=(host, port), transports=["udp6"]))
    link = LossyLink((host, port), model, listen=(host, 0), **kw)
    client = None
    try:
        await bounded(link.start())
        client = await bounded(aiocoap.Context.create_client_context(transports=["udp6"]))
        yield Coap(client, echo, link, host)
    finally:
        if client is not None:
            await bounded(client.shutdown())
        await bounded(link.stop())
        await bounded(server.shutdown())


# -- raw UDP peers ------------------------------------------------------------------------------


class Peer(asyncio.DatagramProtocol):
    def __init__(self, echo: bool) -> None:
        self.echo = echo
        self.transport: asyncio.DatagramTransport | None = None
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.echo and self.transport is not None:
            self.transport.sendto(data, addr)
        self.queue.put_nowait(data)

    def send(self, data: bytes, addr: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)

    async def recv(self, timeout: float = TIMEOUT) -> bytes:
        return await bounded(self.queue.get(), timeout)

    async def drain(self, quiet: float = 0.15) -> list[bytes]:
        """Everything that arrives until nothing has for ``quiet`` seconds."""
        got: list[bytes] = []
        while True:
            try:
                got.append(await self.recv(quiet))
            except TimeoutError:
                return got


@asynccontextmanager
async def udp_peer(host: str = "::1", *, echo: bool = False) -> AsyncIterator[tuple[Peer, int]]:
    loop = asyncio.get_running_loop()
    transport, peer = await bounded(loop.create_datagram_endpoint(lambda: Peer(echo), local_addr=(host, 0)))
    try:
        yield peer, int(transport.get_extra_info("sockname")[1])
    finally:
        transport.close()


@asynccontextmanager
async def raw_through(model: LinkModel, host: str = "::1", **kw: Any) -> AsyncIterator[tuple[Peer, Peer, LossyLink]]:
    """(client, target, link): target echoes unless told otherwise."""
    echo = kw.pop("echo", True)
    async with udp_peer(host, echo=echo) as (target, tport), udp_peer(host) as (client, _):
        link = LossyLink((host, tport), model, listen=(host, 0), **kw)
        try:
            await bounded(link.start())
            yield client, target, link
        finally:
            await bounded(link.stop())


# -- tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
async def test_get_through_clean_link(host: str) -> None:
    async with coap_through(LinkModel(), host) as coap:
        response = await coap.get(7)
        assert response.code == aiocoap.CONTENT and response.payload == b"7"
        s = coap.link.stats
        assert (s.up.received, s.up.sent, s.down.received, s.down.sent) == (1, 1, 1, 1)
        assert s.clients == 1 and coap.link.clients == 1
        assert s.up.dropped == s.down.dropped == 0
        assert s.as_dict()["up"]["received"] == 1


async def test_drops_recovered_by_coap_retransmission() -> None:
    started = time.monotonic()
    async with coap_through(LinkModel(drop=0.2, seed=7)) as coap:
        for i in range(50):
            response = await coap.get(i, FastTuning())
            assert response.code == aiocoap.CONTENT and response.payload == str(i).encode()
        s = coap.link.stats
        assert s.up.dropped > 0 and s.down.dropped > 0
        assert s.up.received > 50  # retransmissions
        assert s.up.received == s.up.sent + s.up.dropped
        assert coap.echo.calls == 50
    assert time.monotonic() - started < 10


async def test_duplicates_are_deduplicated_by_coap() -> None:
    async with coap_through(LinkModel(duplicate=1.0, seed=1)) as coap:
        for i in range(10):
            response = await coap.get(i)
            assert response.payload == str(i).encode()
        s = coap.link.stats
        assert coap.echo.calls == 10  # the server's message deduplication ran each GET once
        assert s.up.duplicated == s.up.received and s.up.sent == 2 * s.up.received
        assert s.down.duplicated == s.down.received and s.down.sent == 2 * s.down.received


async def test_delay_adds_at_least_the_drawn_delay() -> None:
    model = LinkModel(delay_ms=30, jitter_ms=10, seed=3)
    replay = random.Random(f"{model.seed}:up")
    async with raw_through(model, downlink=LinkModel()) as (client, _, link):
        rtts, drawn = [], []
        for i in range(10):
            drawn.append(draw_fate(model, replay, 2).delays[0])
            sent = time.monotonic()
            client.send(b"%02d" % i, ("::1", link.port))
            assert await client.recv() == b"%02d" % i
            rtts.append(time.monotonic() - sent)
        assert all(rtt >= d for rtt, d in zip(rtts, drawn, strict=True))
        assert all(0.020 <= d <= 0.040 for d in drawn)
        assert sum(rtts) / len(rtts) >= sum(drawn) / len(drawn) >= 0.025
        assert link.stats.up.delayed == 10 and link.stats.down.delayed == 0


async def test_reorder_lets_the_next_datagram_overtake() -> None:
    async with raw_through(LinkModel(reorder=0.5, seed=5), echo=False) as (client, target, link):
        for i in range(30):
            client.send(b"%02d" % i, ("::1", link.port))
            await asyncio.sleep(0.002)
        got = [int(d) for d in await target.drain()]
        assert sorted(got) == list(range(30))  # held datagrams are released, none lost
        assert got != sorted(got)
        assert link.stats.up.reordered > 0


async def test_coap_survives_reorder_delay_and_loss() -> None:
    model = LinkModel(drop=0.1, delay_ms=10, jitter_ms=8, reorder=0.3, duplicate=0.1, seed=11)
    async with coap_through(model) as coap:
        for i in range(20):
            response = await coap.get(i, FastTuning())
            assert response.payload == str(i).encode()
        s = coap.link.stats
        assert s.up.delayed > 0 and s.down.delayed > 0
        assert s.up.reordered + s.down.reordered > 0  # the retransmission overtook a held CON
        assert coap.echo.calls == 20


async def test_mtu_drops_oversize_datagrams() -> None:
    async with raw_through(LinkModel(mtu=64), echo=False) as (client, target, link):
        client.send(b"x" * 65, ("::1", link.port))
        client.send(b"y" * 64, ("::1", link.port))
        assert await target.drain() == [b"y" * 64]
        assert link.stats.up.oversize == 1 and link.stats.up.sent == 1


async def test_mtu_loses_an_oversize_coap_post() -> None:
    class Once(FastTuning):
        MAX_RETRANSMIT = 1

    async with coap_through(LinkModel(mtu=100)) as coap:
        assert (await coap.get(1)).payload == b"1"
        uri = f"coap://{hostport('::1', coap.link.port)}/echo"
        big = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=b"z" * 200, transport_tuning=Once())
        with pytest.raises(aiocoap.error.ConRetransmitsExceeded):
            await bounded(coap.client.request(big).response)
        assert coap.link.stats.up.oversize == 2  # first transmission and one retransmission
        assert coap.echo.calls == 1


async def _surviving(seed: int) -> list[int]:
    async with raw_through(LinkModel(drop=0.3, seed=seed), echo=False) as (client, target, link):
        for i in range(60):
            client.send(b"%02d" % i, ("::1", link.port))
            await asyncio.sleep(0.001)
        got = sorted(int(d) for d in await target.drain())
        assert len(got) == link.stats.up.sent == 60 - link.stats.up.dropped
        return got


async def test_same_seed_same_drop_decisions() -> None:
    first, second, other = await _surviving(42), await _surviving(42), await _surviving(43)
    assert first == second and len(first) < 60
    assert other != first
    replay = random.Random("42:up")
    expected = [i for i in range(60) if draw_fate(LinkModel(drop=0.3, seed=42), replay, 2).delays]
    assert first == expected


@pytest.mark.parametrize("host", HOSTS)
async def test_nat_table_routes_replies_and_evicts_lru(host: str) -> None:
    async with raw_through(LinkModel(), host, max_clients=2) as (_, _, link), \
            udp_peer(host) as (a, _), udp_peer(host) as (b, _), udp_peer(host) as (c, _):
        for peer, name in ((a, b"a"), (b, b"b"), (a, b"a2"), (c, b"c")):
            peer.send(name, (host, link.port))
            assert await peer.recv() == name
        assert link.clients == 2 and link.stats.evicted == 1  # b was least recently used
        b.send(b"b2", (host, link.port))
        assert await b.recv() == b"b2"
        assert link.stats.clients == 4 and link.stats.evicted == 2


async def test_pending_delays_are_capped_and_cancelled_by_stop() -> None:
    async with raw_through(LinkModel(delay_ms=300), echo=False, max_pending=5) as (client, target, link):
        for i in range(20):
            client.send(b"%02d" % i, ("::1", link.port))
        for _ in range(100):
            if link.stats.up.received == 20:
                break
            await asyncio.sleep(0.01)
        assert link.stats.up.delayed == 5 and link.stats.up.overflow == 15
        started = time.monotonic()
        await bounded(link.stop(), 2)
        assert time.monotonic() - started < 1.5
        assert await target.drain(0.45) == []
        assert link.stats.up.sent == 0


@pytest.mark.parametrize("bad", [
    {"drop": 1.5}, {"duplicate": -0.1}, {"reorder": 2}, {"delay_ms": -1}, {"jitter_ms": -1}, {"mtu": 0},
])
def test_model_rejects_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        LinkModel(**bad)


def test_draw_fate_uses_a_fixed_number_of_draws() -> None:
    a, b = random.Random(9), random.Random(9)
    draw_fate(LinkModel(mtu=10), a, 100)  # oversize, still five draws
    draw_fate(LinkModel(drop=1.0), a, 1)
    for _ in range(10):
        b.random()
    assert a.random() == b.random()
