"""A constrained node: an RS (RFC 9200 §5.10) with a static resource table and a budget.

Modelled on RIOT's nanocoap: the resources are a fixed table of (path, methods, handler)
rows built once, and every limit is explicit. ``Budget.max_tokens`` and ``max_contexts``
bound the token store (each token binds exactly one security context here: an OSCORE
context or a DTLS PSK), so a token beyond them is refused 5.03 (RFC 9200 §5.10.1: the RS
may be unable to store it). ``max_message_size`` bounds every request body the node
buffers: a larger one, announced by Size1 or shown by a Block1 block, is refused 4.13 with
Size1 (RFC 7252 §5.9.2.9, RFC 7959 §2.9.3); aiocoap's own bound (``BoundedBody``, 4352
bytes) stays underneath. For a protected request the bound applies to the plaintext the
handlers see. ``no_clock`` models a node without a real-time clock: its clock counts from
boot, so exp cannot be judged, and a token without exi (RFC 9200 §5.10.3) is refused 4.00
(``RsConfig.require_exi``). ``cnonce`` turns on the other freshness check of §5.10.3: creation
hints carry a cnonce the token must echo (``RsConfig.cnonce``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.resource

from ace.cbor.labels import AceProfile
from ace.cbor.scope import ScopeMeaning, method_bit
from ace.coap.rs_server import AuthzInfoResource, Handler, ProtectedResource, RsServer
from ace.rs.server import ResourceServer, RsConfig
from ace.tokens.cwt import KeyLookup, KeyRing
from ace.tokens.keys import CoseKey

log = logging.getLogger(__name__)
MAX_TABLE_ROWS = 16  # a node's resource table is small and fixed


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """What the node can hold. Defaults: a class-1 device (RFC 7228, ~10 KiB of RAM)."""

    max_tokens: int = 8
    max_message_size: int = 256  # bytes of request body buffered (one 802.15.4 frame is 127)
    max_contexts: int = 8  # security contexts (OSCORE contexts, DTLS PSKs)
    no_clock: bool = False  # no real-time clock: tokens must carry exi

    def __post_init__(self) -> None:
        for name in ("max_tokens", "max_message_size", "max_contexts"):
            if getattr(self, name) < 1:
                raise ValueError(f"Budget.{name} must be at least 1")

    @property
    def token_slots(self) -> int:
        """Tokens the store takes: each binds one security context."""
        return min(self.max_tokens, self.max_contexts)


@dataclass(frozen=True, slots=True)
class Resource:
    """One row of the static resource table (nanocoap's ``coap_resource_t``)."""

    path: str
    methods: tuple[str, ...]
    handler: Handler  # called for any of ``methods``; dispatches on request.code itself

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or not self.methods:
            raise ValueError(f"resource row {self.path!r}: needs an absolute path and methods")
        for m in self.methods:
            method_bit(m)  # ValueError for a non-method


ResourceTable = tuple[Resource, ...]


def table_routes(table: Sequence[Resource]) -> dict[str, dict[str, Handler]]:
    """The table as ``RsServer`` takes it: {path: {METHOD: handler}}."""
    if len(table) > MAX_TABLE_ROWS:
        raise ValueError(f"a node's resource table holds at most {MAX_TABLE_ROWS} rows")
    paths = [r.path for r in table]
    if len(set(paths)) != len(paths):
        raise ValueError("resource table paths must be distinct")
    return {r.path: {m.upper(): r.handler for m in r.methods} for r in table}


def _too_large(request: aiocoap.Message, limit: int) -> bool:
    block1 = request.opt.block1
    if (request.opt.size1 or 0) > limit:
        return True
    if block1 is not None:
        return bool(block1.start + len(request.payload) > limit)
    return len(request.payload) > limit


class _NodeLimit:
    """Mixin: a request body above the node's budget is refused 4.13 with Size1."""

    limit: int

    async def render_to_pipe(self, pipe: Any) -> None:
        if _too_large(pipe.request, self.limit):
            log.info("request of %d bytes refused: budget %d", len(pipe.request.payload), self.limit)
            pipe.add_response(aiocoap.Message(code=aiocoap.REQUEST_ENTITY_TOO_LARGE, size1=self.limit),
                              is_last=True)
            return
        await super().render_to_pipe(pipe)  # type: ignore[misc]


class _NodeAuthzInfo(_NodeLimit, AuthzInfoResource):
    def __init__(self, server: RsServer, limit: int) -> None:
        super().__init__(server)
        self.limit = limit


class _NodeResource(_NodeLimit, ProtectedResource):
    def __init__(self, server: RsServer, path: str, handlers: Mapping[str, Handler], limit: int) -> None:
        super().__init__(server, path, handlers)
        self.limit = limit


class NodeServer(RsServer):
    """``RsServer`` whose resources enforce the node's message-size budget."""

    def __init__(self, core: ResourceServer, *, bind: tuple[str, int], resources: Mapping[str, Mapping[str, Handler]],
                 max_message_size: int) -> None:
        super().__init__(core, bind=bind, resources=resources)
        self.max_message_size = max_message_size

    def site(self) -> aiocoap.resource.Site:
        site = aiocoap.resource.Site()
        site.add_resource(["authz-info"], _NodeAuthzInfo(self, self.max_message_size))
        for path, handlers in self.resources.items():
            segments = [s for s in path.split("/") if s]
            site.add_resource(segments, _NodeResource(self, "/" + "/".join(segments), handlers,
                                                      self.max_message_size))
        return site


@dataclass(slots=True, kw_only=True)
class Node:
    """One simulated device: an RS on ::1 with a static table and a budget.

    ``port`` (and ``port + 1`` for DTLS) must be free; ``ace.cli.demo_cmd.free_port`` or
    ``devices.fleet.PortPool.take(pair=True)`` find such ports."""

    audience: str
    as_uri: str
    token_keys: KeyLookup
    table: ResourceTable
    budget: Budget = field(default_factory=Budget)
    port: int
    host: str = "::1"
    profiles: tuple[int, ...] = (AceProfile.COAP_OSCORE,)
    scope_meaning: ScopeMeaning = field(default_factory=dict)
    hint_scope: str | bytes | None = None
    cnonce: bool = False  # creation hints carry a cnonce the token must echo (RFC 9200 §5.3.1)
    clock: Callable[[], float] | None = None  # default: time.time, or time since boot without a clock
    core: ResourceServer = field(init=False, repr=False)
    server: NodeServer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        clock = self.clock or (_since_boot() if self.budget.no_clock else time.time)
        config = RsConfig(audience=self.audience, as_uri=self.as_uri, scope_meaning=self.scope_meaning,
                          hint_scope=self.hint_scope, max_tokens=self.budget.token_slots, profiles=self.profiles,
                          cnonce=self.cnonce, require_exi=self.budget.no_clock)
        self.core = ResourceServer(config, self.token_keys, clock=clock)
        self.server = NodeServer(self.core, bind=(self.host, self.port), resources=table_routes(self.table),
                                 max_message_size=self.budget.max_message_size)

    @property
    def uri(self) -> str:
        return f"coap://[{self.host}]:{self.port}" if ":" in self.host else f"coap://{self.host}:{self.port}"

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()


def _since_boot() -> Callable[[], float]:
    boot = time.monotonic()
    return lambda: time.monotonic() - boot


def keyring(*keys: CoseKey) -> KeyLookup:
    """The token keys a node accepts (its own, shared with the AS)."""
    return KeyRing(list(keys))
