"""A lossy link between CoAP peers: an asyncio UDP relay that applies a link model on loopback.

``LossyLink`` listens on a local address and forwards each datagram to ``target`` through one
upstream socket per client address (a NAT-like table, LRU-bounded), so replies find their client.
Each direction ("up": client to target, "down": target to client) draws a ``Fate`` per datagram
from its own ``random.Random(f"{seed}:{direction}")`` (``LinkModel.seed``): drop, duplicate, hold back
(reorder) and delay (mean ± uniform jitter). ``mtu`` drops larger UDP payloads, as an IEEE
802.15.4 frame would without 6LoWPAN fragmentation. Every datagram draws the same number of
values, so the n-th datagram of a direction meets the same fate in every run with the same seed.
Bandwidth, queueing, corruption and fragmentation are not modelled. Not part of the sans-I/O
core: it uses asyncio sockets and no CoAP library.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

log = logging.getLogger(__name__)

Address = tuple[Any, ...]  # (host, port), or (host, port, flowinfo, scope_id) for IPv6
Direction = Literal["up", "down"]

MAX_CLIENTS = 64  # upstream sockets (NAT table entries) before LRU eviction
MAX_PENDING = 1024  # delayed datagrams waiting for their timer, all flows together
MAX_BACKLOG = 64  # datagrams queued per client while its upstream socket opens
HOLD_MS = 50.0  # a held-back datagram goes out after this if no later one overtakes it
STOP_TIMEOUT = 1.0  # seconds stop() waits for upstream sockets still opening


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkModel:
    """What one direction of the link does; probabilities are 0..1, times are milliseconds.

    ``reorder`` is the probability that a datagram is held back and sent right after the next
    datagram of the same client and direction (or after ``hold_ms`` if none comes). ``mtu`` is
    compared with the UDP payload length; ``None`` lets any size through.
    """

    drop: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    hold_ms: float = HOLD_MS
    mtu: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in 0..1, got {value!r}")
        for name in ("delay_ms", "jitter_ms", "hold_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)!r}")
        if self.mtu is not None and self.mtu < 1:
            raise ValueError(f"mtu must be at least 1 or None, got {self.mtu!r}")


@dataclass(frozen=True, slots=True)
class Fate:
    """What happens to one datagram: one delay (seconds) per copy sent, none when it is lost
    (``oversize`` tells an MTU loss from a random drop); ``hold``: held back for reordering."""

    delays: tuple[float, ...]
    hold: bool = False
    oversize: bool = False


def draw_fate(model: LinkModel, rng: random.Random, size: int) -> Fate:
    """Decide one datagram's fate; always five draws, so it depends on its position only."""
    r_drop, r_duplicate, r_hold, jitter1, jitter2 = (rng.random() for _ in range(5))
    if model.mtu is not None and size > model.mtu:
        return Fate((), oversize=True)
    if r_drop < model.drop:
        return Fate(())
    jitters = (jitter1, jitter2) if r_duplicate < model.duplicate else (jitter1,)
    delays = tuple(max(0.0, model.delay_ms + (2 * j - 1) * model.jitter_ms) / 1000 for j in jitters)
    return Fate(delays, hold=r_hold < model.reorder)


@dataclass(slots=True)
class DirectionStats:
    """Datagram counters for one direction; ``sent`` includes duplicates, ``overflow`` counts
    datagrams lost to the relay's own caps (pending delays, per-client backlog)."""

    received: int = 0
    sent: int = 0
    dropped: int = 0
    oversize: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    overflow: int = 0


@dataclass(slots=True)
class LinkStats:
    up: DirectionStats = field(default_factory=DirectionStats)
    down: DirectionStats = field(default_factory=DirectionStats)
    clients: int = 0  # upstream sockets opened
    evicted: int = 0  # of those, closed by LRU eviction

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Held(NamedTuple):
    data: bytes
    delays: tuple[float, ...]
    timer: asyncio.TimerHandle


class _Flow:
    """One client's upstream socket and its held-back datagram per direction."""

    def __init__(self, client: Address) -> None:
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.backlog: list[bytes] = []
        self.held: dict[Direction, _Held] = {}
        self.closed = False

    def close(self) -> None:
        self.closed = True
        for held in self.held.values():
            held.timer.cancel()
        self.held.clear()
        self.backlog.clear()
        if self.transport is not None:
            self.transport.close()


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None], name: str) -> None:
        self.on_datagram, self.name = on_datagram, name

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("lossy link %s: %s", self.name, exc)


class LossyLink:
    """A UDP relay from ``listen`` to ``target`` applying ``model`` to both directions, or
    ``downlink`` to target-to-client datagrams when given. Use ``start``/``stop`` or
    ``async with``; clients send to ``(listen host, port)``."""

    def __init__(
        self,
        target: Address,
        model: LinkModel,
        *,
        downlink: LinkModel | None = None,
        listen: Address = ("::1", 0),
        max_clients: int = MAX_CLIENTS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        if max_clients < 1 or max_pending < 0:
            raise ValueError("max_clients must be at least 1 and max_pending not negative")
        self.target, self.listen = target, listen
        self.models: dict[Direction, LinkModel] = {"up": model, "down": downlink if downlink is not None else model}
        self.max_clients, self.max_pending = max_clients, max_pending
        self.stats = LinkStats()
        self._rngs: dict[Direction, random.Random] = {
            "up": random.Random(f"{model.seed}:up"),
            "down": random.Random(f"{self.models['down'].seed}:down"),
        }
        self._flows: OrderedDict[Address, _Flow] = OrderedDict()
        self._pending: set[asyncio.TimerHandle] = set()
        self._opening: set[asyncio.Task[None]] = set()
        self._listener: asyncio.DatagramTransport | None = None
        self._port = 0

    @property
    def port(self) -> int:
        """The port clients should send to (0 before ``start``)."""
        return self._port

    @property
    def clients(self) -> int:
        """Entries in the NAT table now."""
        return len(self._flows)

    async def start(self) -> int:
        if self._listener is not None:
            raise RuntimeError("LossyLink already started")
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(self._from_client, "listener"), local_addr=self.listen)
        self._listener = transport
        self._port = int(transport.get_extra_info("sockname")[1])
        log.debug("lossy link %s:%d -> %s", self.listen[0], self._port, self.target)
        return self._port

    async def stop(self) -> None:
        """Close every socket and cancel delayed sends; waits at most STOP_TIMEOUT. Idempotent."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        opening = set(self._opening)
        for task in opening:
            task.cancel()
        if opening:
            await asyncio.wait(opening, timeout=STOP_TIMEOUT)
        for flow in self._flows.values():
            flow.close()
        self._flows.clear()

    async def __aenter__(self) -> LossyLink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _from_client(self, data: bytes, client: Address) -> None:
        if self._listener is None:
            return
        self.stats.up.received += 1
        self._apply("up", self._flow_for(client), data)

    def _from_target(self, data: bytes, flow: _Flow) -> None:
        if self._listener is None or flow.closed:
            return
        self.stats.down.received += 1
        self._apply("down", flow, data)

    def _flow_for(self, client: Address) -> _Flow:
        flow = self._flows.get(client)
        if flow is not None:
            self._flows.move_to_end(client)
            return flow
        while len(self._flows) >= self.max_clients:
            _, oldest = self._flows.popitem(last=False)
            oldest.close()
            self.stats.evicted += 1
        flow = self._flows[client] = _Flow(client)
        self.stats.clients += 1
        task = asyncio.get_running_loop().create_task(self._open(flow))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)
        return flow

    async def _open(self, flow: _Flow) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Receiver(lambda data, _: self._from_target(data, flow), f"to {self.target}"),
                remote_addr=self.target)
        except OSError as exc:
            log.warning("lossy link: cannot open a socket to %s: %s", self.target, exc)
            if self._flows.get(flow.client) is flow:
                del self._flows[flow.client]
            flow.close()
            return
        if flow.closed:
            transport.close()
            return
        flow.transport = transport
        backlog, flow.backlog = flow.backlog, []
        for data in backlog:
            self._send("up", flow, data)

    def _apply(self, direction: Direction, flow: _Flow, data: bytes) -> None:
        model, stats = self.models[direction], self._stats(direction)
        fate = draw_fate(model, self._rngs[direction], len(data))
        if not fate.delays:
            if fate.oversize:
                stats.oversize += 1
            else:
                stats.dropped += 1
            return
        if len(fate.delays) > 1:
            stats.duplicated += 1
        held = flow.held.pop(direction, None)
        if fate.hold and held is None:
            timer = asyncio.get_running_loop().call_later(model.hold_ms / 1000, self._release, direction, flow)
            flow.held[direction] = _Held(data, fate.delays, timer)
            return
        self._emit(direction, flow, data, fate.delays)
        if held is not None:  # overtaken by this datagram
            held.timer.cancel()
            stats.reordered += 1
            self._emit(direction, flow, held.data, held.delays)

    def _release(self, direction: Direction, flow: _Flow) -> None:
        held = flow.held.pop(direction, None)
        if held is not None and not flow.closed:
            self._emit(direction, flow, held.data, held.delays)

    def _emit(self, direction: Direction, flow: _Flow, data: bytes, delays: tuple[float, ...]) -> None:
        stats = self._stats(direction)
        for delay in delays:
            if delay <= 0:
                self._send(direction, flow, data)
            elif len(self._pending) >= self.max_pending:
                stats.overflow += 1
            else:
                stats.delayed += 1
                self._later(delay, direction, flow, data)

    def _later(self, delay: float, direction: Direction, flow: _Flow, data: bytes) -> None:
        def fire() -> None:
            self._pending.discard(handle)
            self._send(direction, flow, data)

        handle = asyncio.get_running_loop().call_later(delay, fire)
        self._pending.add(handle)

    def _send(self, direction: Direction, flow: _Flow, data: bytes) -> None:
        if flow.closed or self._listener is None:
            return
        if direction == "down":
            self._listener.sendto(data, flow.client)
            self.stats.down.sent += 1
        elif flow.transport is not None:
            flow.transport.sendto(data)
            self.stats.up.sent += 1
        elif len(flow.backlog) < MAX_BACKLOG:
            flow.backlog.append(data)
        else:
            self.stats.up.overflow += 1

    def _stats(self, direction: Direction) -> DirectionStats:
        return self.stats.up if direction == "up" else self.stats.down
