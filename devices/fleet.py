"""A fleet on loopback: one AS, N constrained nodes, M clients, optional lossy links.

``Fleet`` sets it up in one process: an AS (``SqliteAsStore`` in a temporary directory) on a
clean link; N nodes (``devices.types`` in turn), each an RS with its own audience and token
key registered at the AS; M clients, each with its own OSCORE context with the AS and, per
node, the default grant of its role (even: operator, odd: reader); with ``loss`` > 0 a
``LossyLink`` in front of each node (and of its DTLS port), which the clients use.
``run_fleet`` lets every client pick a node and an action at random until ``duration``
passes (or ``max_actions`` per client) and reports completed flows (permitted, 2.xx),
refusals as expected (forbidden, 4.03/4.05 per RFC 9200 §5.10.2), failures (anything
else), latencies, retransmissions and bytes per flow. CoAP timers are lowered for loopback
(``FAST``): RFC 7252 §4.8's 2 s ACK_TIMEOUT is for real networks, and aiocoap 0.4.17 takes
it per message (``Message.transport_tuning``), so each client's context is wrapped to set it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiocoap.numbers.constants import TransportTuning

from ace.authz_server.token import TokenPolicy
from ace.client.flow import ClientConfig, ClientFlow, Done, ResourceRequest
from ace.coap import dtls_flights
from ace.coap.as_server import AsServer
from ace.coap.client import ClientRunner, Exchange
from ace.errors import AceError
from ace.messages import AccessTokenResponse
from ace.profiles import BY_NAME
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.keys import generate_symmetric
from ace.tokens.oscore_params import OscoreContextParams
from devices.link import LinkModel, LossyLink
from devices.node import Budget, Node, keyring
from devices.types import DEVICE_TYPES, ROLES, Action, DeviceType

log = logging.getLogger(__name__)
FLEET_PROFILES = {name: BY_NAME[name].number for name in ("oscore", "dtls")}  # what a fleet's nodes run
REFUSED = ((4, 3), (4, 5))
EXCHANGE_TIMEOUT = 10.0  # seconds per CoAP exchange (covers ~8 transmissions with FAST)
MAX_ACTIONS = 500  # per client and run
MAX_TIMELINE = 5000  # actions kept for plotting
MAX_FAILURES_SHOWN = 20


class CountingTuning(TransportTuning):  # type: ignore[misc]
    """Loopback timers; counts how often a retransmission timer fired (aiocoap reads
    MAX_RETRANSMIT exactly then: a retransmission, or the give-up after the last one)."""

    def __init__(self, ack_timeout: float = 0.05, max_retransmit: int = 10) -> None:
        self.ACK_TIMEOUT = ack_timeout
        self._max_retransmit = max_retransmit
        self.timer_fires = 0

    @property
    def MAX_RETRANSMIT(self) -> int:  # aiocoap's name
        self.timer_fires += 1
        return self._max_retransmit


def tune(runner: ClientRunner, tuning: CountingTuning) -> None:
    """Every request of ``runner``'s (started) context goes out with ``tuning``, and its DTLS
    handshake flights are sent again on the same scale (tinydtls's own timer starts at 2 s)."""
    ctx = runner.context
    dtls_flights.retransmit_flights(ctx, initial=2 * tuning.ACK_TIMEOUT)
    original = ctx.request

    def request(message: Any, *args: Any, **kwargs: Any) -> Any:
        message.transport_tuning = tuning
        return original(message, *args, **kwargs)

    ctx.request = request


class PortPool:
    """Free ports on ::1, never the same twice (and the next one free too, for DTLS)."""

    def __init__(self, host: str = "::1") -> None:
        self.host = host
        self.taken: set[int] = set()

    def _free(self, port: int) -> bool:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            try:
                s.bind((self.host, port))
            except OSError:
                return False
        return True

    def take(self, pair: bool = False) -> int:
        for _ in range(200):
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
                s.bind((self.host, 0))
                port = int(s.getsockname()[1])
            if port in self.taken or (pair and (port + 1 in self.taken or port >= 65535 or not self._free(port + 1))):
                continue
            self.taken.update((port, port + 1) if pair else (port,))
            return port
        raise OSError("no free port (pair) on loopback")


@dataclass(slots=True)
class Target:
    """A node as clients see it: its type and the URI they use (the relay's, if lossy)."""

    node: Node
    type: DeviceType
    uri: str
    links: list[LossyLink] = field(default_factory=list)


@dataclass(slots=True)
class Member:
    """One fleet client: its role, its runner and what it has seen."""

    client_id: str
    role: str
    runner: ClientRunner
    tuning: CountingTuning
    exchanges: list[Exchange] = field(default_factory=list)


class Fleet:
    """AS + nodes + clients (+ links); ``async with Fleet(...)`` starts and stops them all."""

    def __init__(self, *, devices: int, clients: int, profile: str = "oscore", loss: float = 0.0, seed: int = 0,
                 budget: Budget | None = None, directory: Path | None = None) -> None:
        if profile not in FLEET_PROFILES:
            raise ValueError(f"profile must be one of {sorted(FLEET_PROFILES)}")
        if devices < 1 or clients < 1 or not 0.0 <= loss < 1.0:
            raise ValueError("a fleet needs devices ≥ 1, clients ≥ 1 and 0 ≤ loss < 1")
        self.n_devices, self.n_clients, self.profile, self.loss, self.seed = devices, clients, profile, loss, seed
        slots = max(8, clients + 2)  # one token per client, and its successor while it takes over
        self.budget = budget or Budget(max_tokens=slots, max_contexts=slots)
        self._dir_arg = directory
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ports = PortPool()
        self.as_uri = ""
        self.store: SqliteAsStore | None = None
        self.as_server: AsServer | None = None
        self.targets: list[Target] = []
        self.members: list[Member] = []

    async def __aenter__(self) -> Fleet:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _directory(self) -> Path:
        if self._dir_arg is not None:
            return self._dir_arg
        shm = Path("/dev/shm")  # fsync is free there: the AS's durable writes do not dominate
        self._tmp = tempfile.TemporaryDirectory(prefix="ace-fleet-", dir=shm if shm.is_dir() else None)
        return Path(self._tmp.name)

    async def start(self) -> None:
        as_port = self.ports.take()
        self.as_uri = f"coap://[::1]:{as_port}/token"
        self.store = SqliteAsStore(self._directory() / "as.db")
        nodes = [self._node(i) for i in range(self.n_devices)]
        client_secrets = [self._register_client(j, nodes) for j in range(self.n_clients)]
        self.as_server = AsServer(self.store, bind=("::1", as_port), policy=TokenPolicy())
        await self.as_server.start()
        for node, dtype in nodes:
            await node.start()
            self.targets.append(Target(node, dtype, node.uri))
        if self.loss > 0:
            for i, target in enumerate(self.targets):
                await self._link(i, target)
        for j, secret in enumerate(client_secrets):
            await self._client(j, secret)

    @property
    def _extra_port(self) -> bool:
        """Whether each node takes a second port (DTLS: coaps on the CoAP port + 1)."""
        return bool(BY_NAME[self.profile].port_offsets)

    def _node(self, i: int) -> tuple[Node, DeviceType]:
        assert self.store is not None
        dtype = DEVICE_TYPES[i % len(DEVICE_TYPES)]
        audience = f"{dtype.name}-{i}"
        key = generate_symmetric(16, kid=i.to_bytes(4, "big"))
        profile = FLEET_PROFILES[self.profile]
        self.store.put_rs(RsRecord(audience=audience, rs_id=audience, token_key=key, profiles=(profile,)))
        node = Node(audience=audience, as_uri=self.as_uri, token_keys=keyring(key), table=dtype.make_table(i),
                    budget=self.budget, port=self.ports.take(pair=self._extra_port), profiles=(profile,))
        return node, dtype

    def _register_client(self, j: int, nodes: list[tuple[Node, DeviceType]]) -> OscoreContextParams:
        assert self.store is not None
        client_id, role = f"client-{j}", ROLES[j % len(ROLES)]
        ms, cid = secrets.token_bytes(16), (j + 1).to_bytes(2, "big")
        self.store.put_client(ClientRecord(
            client_id=client_id, profiles=(FLEET_PROFILES[self.profile],),
            oscore=OscoreContextParams(master_secret=ms, sender_id=b"\x00", recipient_id=cid)))
        for node, dtype in nodes:  # the Resource Owner: this role's scope on every node, by default
            self.store.add_grant(Grant(client_id=client_id, audience=node.audience, scope=dtype.roles[role],
                                       default=True))
        return OscoreContextParams(master_secret=ms, sender_id=cid, recipient_id=b"\x00")

    async def _link(self, i: int, target: Target) -> None:
        port = target.node.port
        listen = self.ports.take(pair=self._extra_port)
        model = LinkModel(drop=self.loss, seed=self.seed * 100_003 + i)
        for offset in (0, *BY_NAME[self.profile].port_offsets):
            link = LossyLink(("::1", port + offset), model, listen=("::1", listen + offset),
                             max_clients=self.n_clients + 8)
            await link.start()
            target.links.append(link)
        target.uri = f"coap://[::1]:{listen}"

    async def _client(self, j: int, secret: OscoreContextParams) -> None:
        client_id, role = f"client-{j}", ROLES[j % len(ROLES)]
        flow = ClientFlow(ClientConfig(client_id=client_id, as_uri=self.as_uri, profile=FLEET_PROFILES[self.profile]),
                          clock=time.time)
        runner = ClientRunner(flow, as_secret=secret, as_uri=self.as_uri, seqno_store=MemoryAsStore(),
                              timeout=EXCHANGE_TIMEOUT)
        member = Member(client_id, role, runner, CountingTuning())
        runner.observer = member.exchanges.append
        await runner.start()
        tune(runner, member.tuning)
        self.members.append(member)

    async def stop(self) -> None:
        for m in self.members:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(m.runner.stop(), 5)
        for t in self.targets:
            for link in t.links:
                await link.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(t.node.stop(), 5)
        if self.as_server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.as_server.stop(), 5)
        if self.store is not None:
            self.store.close()
        self.members, self.targets, self.as_server, self.store = [], [], None, None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def retransmissions(self) -> dict[str, Any]:
        up = sum(link.stats.up.dropped for t in self.targets for link in t.links)
        down = sum(link.stats.down.dropped for t in self.targets for link in t.links)
        return {"coap_timer_fires": sum(m.tuning.timer_fires for m in self.members),
                "link_dropped_up": up, "link_dropped_down": down}


# -- one run ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Outcome:
    t: float  # seconds since the run began
    client: str
    device: str
    action: str
    permitted: bool
    kind: str  # completed | refused | failed
    code: str
    latency_ms: float
    bytes: int  # request and response payloads of every exchange of the action
    token_bytes: int  # the access token, when this action fetched one (else 0)
    authz_info_bytes: int


def _code(result: object) -> str:
    if isinstance(result, Done):
        c = result.response.code
        return f"{c[0]}.{c[1]:02d}"
    return "timeout" if result is None else f"failed:{getattr(result, 'step', '?')}"


def classify(permitted: bool, result: object) -> str:
    if isinstance(result, Done):
        if permitted and result.response.success:
            return "completed"
        if not permitted and result.response.code in REFUSED:
            return "refused"
    return "failed"


def _token_bytes(exchanges: list[Exchange]) -> tuple[int, int]:
    token = authz = 0
    for e in exchanges:
        if e.step == "token" and e.response.success:
            with contextlib.suppress(AceError):
                token = len(AccessTokenResponse.decode(e.response.payload).access_token)
        elif e.step == "authz-info":
            authz = len(e.request_payload)
    return token, authz


async def act(member: Member, target: Target, action: Action, command_id: int, t0: float) -> Outcome:
    """One action: the client's whole flow for one request (A–F if it has no session)."""
    permitted = target.type.allows(member.role, action)
    seen = len(member.exchanges)
    request = ResourceRequest(method=action.method, uri=target.uri + action.path,
                              payload=action.payload_for(command_id))
    started = time.perf_counter()
    result: object
    try:
        result = await asyncio.wait_for(member.runner.request(request), 8 * EXCHANGE_TIMEOUT)
    except TimeoutError:
        result = None
    latency = (time.perf_counter() - started) * 1000
    new = member.exchanges[seen:]
    token, authz = _token_bytes(new)
    size = sum(len(e.request_payload) + len(e.response.payload) for e in new)
    return Outcome(round(started - t0, 3), member.client_id, target.node.audience, action.name, permitted,
                   classify(permitted, result), _code(result), round(latency, 2), size, token, authz)


async def _client_loop(member: Member, targets: list[Target], rng: random.Random, end: float, max_actions: int,
                       t0: float, out: list[Outcome]) -> None:
    for n in range(max_actions):
        if time.monotonic() >= end:
            return
        target = rng.choice(targets)
        out.append(await act(member, target, rng.choice(target.type.actions), n, t0))


def _pct(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    v = sorted(values)

    def pick(q: float) -> float:
        return v[min(len(v) - 1, int(q * len(v)))]

    return {"p50": round(statistics.median(v), 2), "p90": round(pick(0.9), 2), "p99": round(pick(0.99), 2),
            "max": round(v[-1], 2), "mean": round(statistics.fmean(v), 2)}


@dataclass(slots=True)
class FleetReport:
    devices: int
    clients: int
    profile: str
    loss: float
    duration: float
    seed: int
    wall_s: float
    outcomes: list[Outcome]
    retransmissions: dict[str, Any]

    def count(self, kind: str) -> int:
        return sum(1 for o in self.outcomes if o.kind == kind)

    @property
    def permitted(self) -> int:
        return sum(1 for o in self.outcomes if o.permitted)

    @property
    def forbidden(self) -> int:
        return len(self.outcomes) - self.permitted

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0 and bool(self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        first = [o for o in self.outcomes if o.token_bytes]
        again = [o for o in self.outcomes if not o.token_bytes and o.kind != "failed"]
        return {
            "devices": self.devices, "clients": self.clients, "profile": self.profile, "loss": self.loss,
            "duration_s": self.duration, "seed": self.seed, "wall_s": round(self.wall_s, 2),
            "actions": len(self.outcomes), "permitted": self.permitted, "forbidden": self.forbidden,
            "completed": self.count("completed"), "refused_as_expected": self.count("refused"),
            "failed": self.count("failed"), "ok": self.ok,
            "flows_per_s": round(len(self.outcomes) / self.wall_s, 1) if self.wall_s else 0.0,
            "latency_ms": {"all": _pct([o.latency_ms for o in self.outcomes if o.kind != "failed"]),
                           "with_token": _pct([o.latency_ms for o in first]),
                           "session_reused": _pct([o.latency_ms for o in again])},
            "retransmissions": self.retransmissions,
            "bytes_per_flow": {"with_token": _pct([float(o.bytes) for o in first]),
                               "session_reused": _pct([float(o.bytes) for o in again]),
                               "token": _pct([float(o.token_bytes) for o in first]),
                               "authz_info_request": _pct([float(o.authz_info_bytes) for o in first])},
            "failures": [_outcome_dict(o) for o in self.outcomes if o.kind == "failed"][:MAX_FAILURES_SHOWN],
            "timeline": [[o.t, o.latency_ms, o.kind] for o in self.outcomes[:MAX_TIMELINE]],
        }


def _outcome_dict(o: Outcome) -> dict[str, Any]:
    return {"t": o.t, "client": o.client, "device": o.device, "action": o.action, "permitted": o.permitted,
            "code": o.code, "latency_ms": o.latency_ms}


async def run_fleet(devices: int, clients: int, profile: str = "oscore", loss: float = 0.0, duration: float = 5.0,
                    seed: int = 0, *, max_actions: int = MAX_ACTIONS, budget: Budget | None = None) -> FleetReport:
    """Start a fleet, let every client act until ``duration`` passes, stop it, report."""
    async with Fleet(devices=devices, clients=clients, profile=profile, loss=loss, seed=seed, budget=budget) as fleet:
        out: list[Outcome] = []
        t0, end = time.perf_counter(), time.monotonic() + duration
        loops = [_client_loop(m, fleet.targets, random.Random(seed * 7919 + j), end, max_actions, t0, out)
                 for j, m in enumerate(fleet.members)]
        await asyncio.gather(*loops)
        wall = time.perf_counter() - t0
        out.sort(key=lambda o: o.t)
        return FleetReport(devices, clients, profile, loss, duration, seed, wall, out, fleet.retransmissions())


@contextlib.contextmanager
def quiet(level: int = logging.ERROR) -> Iterator[None]:
    """aiocoap and ace log every refused request at INFO/WARNING; a fleet makes many on purpose."""
    names = ("coap", "coap-server", "ace", "devices")
    saved = [(n, logging.getLogger(n).level) for n in names]
    for n in names:
        logging.getLogger(n).setLevel(level)
    try:
        yield
    finally:
        for n, lvl in saved:
            logging.getLogger(n).setLevel(lvl)
