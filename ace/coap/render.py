"""Errors and ACE payloads as CoAP responses: the one place RemoteError meets aiocoap, and
the limits on what unauthenticated peers can make a server hold or send.

A ``RemoteError`` with an RFC 9200 error code becomes its CoAP code with an
application/ace+cbor error map (RFC 9200 §5.8.3); an ``AccessDenied`` carrying AS Request
Creation Hints becomes 4.01 with the hints (§5.3); any other becomes its CoAP code with a
short diagnostic payload. Nothing secret is in any of them: descriptions are written for
peers.

Block-wise request bodies (RFC 7959 §2.5) are reassembled in one ``Block1Spool`` per process
(``BLOCK1_SPOOL``, shared by every ``BoundedBody`` resource of every server): one assembly per
peer, a byte budget over all of them, a short idle lifetime. ``AmplificationGuard`` wraps a
server's site so that no answer to an unauthenticated NON request is larger than the request,
and amplifying error answers to unauthenticated CON requests are rate-limited (RFC 7252 §11.3).
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import aiocoap
import aiocoap.blockwise
import aiocoap.error
from aiocoap.numbers.codes import Code
from aiocoap.numbers.optionnumbers import OptionNumber

from ace.cbor.labels import ContentFormat
from ace.cbor.messages import ErrorResponse
from ace.errors import RemoteError

MAX_BODY = 4096 + 256  # the largest token we take (ace.tokens.cwt.MAX_TOKEN_SIZE) plus map overhead
BLOCK1_BUDGET = 256 * 1024  # bytes all incomplete Block1 assemblies of the process may hold together
ASSEMBLY_OVERHEAD = 3584  # bytes an assembly costs beyond its body (measured: request object, options, key)
ASSEMBLY_IDLE = 45.0  # seconds: RFC 7252 §4.8.2 MAX_TRANSMIT_SPAN, the longest a client retransmits a block
_BLOCK_KEY_IGNORED = (OptionNumber.BLOCK1, OptionNumber.BLOCK2, OptionNumber.OBSERVE)


# -- Block1 (RFC 7959 §2.5): one bounded spool per process ---------------------------------------

@dataclass(slots=True)
class _Assembly:
    key: Hashable  # (resource, code, cache key): what a later block must match
    request: aiocoap.Message  # the first block, the following ones appended to its payload
    cost: int
    touched: float


def _peer_of(remote: Any) -> Hashable:
    """The peer as aiocoap keys block-wise transfers (address and, if any, security association),
    with the local endpoint it reached (two servers in one process are two peers)."""
    try:
        local = remote.hostinfo_local
    except Exception:  # a transport that cannot tell: one endpoint
        local = None
    return (local, remote.blockwise_key)


class Block1Spool:
    """Reassembly of Block1 request bodies, bounded for unauthenticated peers.

    aiocoap's own spool keeps any number of assemblies per peer (one per option set, so per
    Uri-Query value) for 93 to 186 s. Here a peer has at most one: a new first block replaces
    its old assembly. All assemblies share ``budget`` bytes; beyond it the least recently fed
    ones are dropped, and their next block gets 4.08, which RFC 7959 §2.9.2 foresees for blocks
    "sent long enough ago that the server has already discarded them". (Refusing new transfers
    with 5.03 instead would let a peer spoofing many addresses hold the budget for the whole
    lifetime; dropping the oldest makes it outrun every legitimate transfer in progress.) An
    assembly not fed for ``idle`` seconds is dropped too.
    """

    def __init__(self, *, budget: int = BLOCK1_BUDGET, idle: float = ASSEMBLY_IDLE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budget, self.idle, self.clock = budget, idle, clock
        self._by_peer: OrderedDict[Hashable, _Assembly] = OrderedDict()  # least recently fed first
        self.bytes = 0  # accounted cost of all assemblies held
        self.dropped = 0  # assemblies dropped for the budget or for idling (not replaced or completed)

    def __len__(self) -> int:
        return len(self._by_peer)

    def clear(self) -> None:
        self._by_peer.clear()
        self.bytes = 0

    def feed(self, owner: Hashable, req: aiocoap.Message) -> aiocoap.Message:
        """The request with its whole body, or ContinueException (2.31) / IncompleteException
        (4.08, RFC 7959 §2.9.2). Requests without Block1 pass through."""
        block1 = req.opt.block1
        if block1 is None:
            return req
        now = self.clock()
        self._expire(now)
        peer = _peer_of(req.remote)
        key = (owner, req.code, req.get_cache_key(_BLOCK_KEY_IGNORED))
        if block1.block_number == 0:
            self._remove(peer)
            assembly = _Assembly(key, req, ASSEMBLY_OVERHEAD + len(req.payload), now)
            self._by_peer[peer] = assembly
            self.bytes += assembly.cost
        else:
            assembly = self._continue(peer, key, req, now)
        if not block1.more:
            self._remove(peer)
            return assembly.request  # carries the last block's Block1 option
        self._fit(keep=peer)
        raise aiocoap.blockwise.ContinueException(block1)

    def _continue(self, peer: Hashable, key: Hashable, req: aiocoap.Message, now: float) -> _Assembly:
        assembly = self._by_peer.get(peer)
        if assembly is None or assembly.key != key:
            raise aiocoap.blockwise.IncompleteException
        try:
            assembly.request._append_request_block(req)
        except ValueError:  # a gap or an overlap: RFC 7959 §2.9.2
            raise aiocoap.blockwise.IncompleteException from None
        assembly.cost += len(req.payload)
        self.bytes += len(req.payload)
        assembly.touched = now
        self._by_peer.move_to_end(peer)
        return assembly

    def _remove(self, peer: Hashable) -> None:
        old = self._by_peer.pop(peer, None)
        if old is not None:
            self.bytes -= old.cost

    def _expire(self, now: float) -> None:
        while self._by_peer:
            peer, oldest = next(iter(self._by_peer.items()))
            if now - oldest.touched < self.idle:
                return
            self._remove(peer)
            self.dropped += 1

    def _fit(self, keep: Hashable) -> None:
        while self.bytes > self.budget:
            peer = next(iter(self._by_peer))
            if peer == keep:  # only the newest is left (one assembly is always below the budget)
                return
            self._remove(peer)
            self.dropped += 1


BLOCK1_SPOOL = Block1Spool()  # the process's one spool: its budget covers all servers and resources
_owners = itertools.count()


class _SpoolFeed:
    """What aiocoap's ``Resource`` calls as ``self._block1``: feeds the shared spool under the
    resource's own key (aiocoap strips the Uri-Path before a resource sees the request)."""

    def __init__(self, spool: Block1Spool) -> None:
        self.spool, self.owner = spool, next(_owners)

    def feed_and_take(self, req: aiocoap.Message) -> aiocoap.Message:
        return self.spool.feed(self.owner, req)


class BoundedBody:
    """Mixin for our resources: a block-wise request body larger than ``MAX_BODY`` is refused
    with 4.13 and Size1 (RFC 7959 §2.9.3) as soon as a block shows it, before it is reassembled;
    reassembly happens in ``BLOCK1_SPOOL`` (bounded per peer and in bytes); a block out of
    sequence gets 4.08 (not aiocoap's 5.00)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._block1 = _SpoolFeed(BLOCK1_SPOOL)

    async def render_to_pipe(self, pipe: Any) -> None:
        request = pipe.request
        block1 = request.opt.block1
        too_big = (request.opt.size1 or 0) > MAX_BODY or (
            block1 is not None and block1.start + len(request.payload) > MAX_BODY)
        if too_big:
            pipe.add_response(aiocoap.Message(code=aiocoap.REQUEST_ENTITY_TOO_LARGE, size1=MAX_BODY),
                              is_last=True)
            return
        await super().render_to_pipe(pipe)  # type: ignore[misc]


def code_of(pair: tuple[int, int]) -> Code:
    return Code((pair[0] << 5) | pair[1])


def pair_of(code: Code) -> tuple[int, int]:
    return (int(code) >> 5, int(code) & 0x1F)


def ace_message(code: tuple[int, int], payload: bytes) -> aiocoap.Message:
    return aiocoap.Message(code=code_of(code), payload=payload, content_format=int(ContentFormat.ACE_CBOR))


def error_message(exc: RemoteError) -> aiocoap.Message:
    hints = getattr(exc, "hints", None)
    if hints is not None:
        return ace_message(exc.coap_code, hints.encode())
    if exc.error_code is not None:
        body = ErrorResponse(error=exc.error_code, error_description=exc.description)
        return ace_message(exc.coap_code, body.encode())
    return aiocoap.Message(code=code_of(exc.coap_code), payload=exc.description.encode()[:80])


# -- amplification (RFC 7252 §11.3) ----------------------------------------------------------------

SOURCE_RATE, SOURCE_BURST = 50.0, 100.0  # amplifying error answers per second, and at once, per source
TOTAL_RATE, TOTAL_BURST = 500.0, 1000.0  # the same over all sources together (many spoofed victims)
MAX_SOURCES = 1024  # source addresses remembered; the least recently answered is forgotten first
_SILENT = 0b11010  # RFC 7967 No-Response: suppress 2.xx, 4.xx and 5.xx


def _refill(bucket: tuple[float, float], rate: float, burst: float, now: float) -> float:
    tokens, at = bucket
    return min(burst, tokens + max(0.0, now - at) * rate)


class AnswerLimiter:
    """Token buckets for error answers larger than the unauthenticated CON request they answer:
    one per source address (a spoofed victim) and one for all sources."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 per_source: tuple[float, float] = (SOURCE_RATE, SOURCE_BURST),
                 total: tuple[float, float] = (TOTAL_RATE, TOTAL_BURST), max_sources: int = MAX_SOURCES) -> None:
        self.clock, self.per_source, self.total, self.max_sources = clock, per_source, total, max_sources
        self._sources: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, when)
        self._all = (total[1], clock())
        self.refused = 0

    def allow(self, source: str) -> bool:
        now = self.clock()
        everyone = _refill(self._all, *self.total, now)
        own = _refill(self._sources.pop(source, (self.per_source[1], now)), *self.per_source, now)
        ok = everyone >= 1.0 and own >= 1.0
        if ok:
            everyone, own = everyone - 1.0, own - 1.0
        else:
            self.refused += 1
        self._all = (everyone, now)
        self._sources[source] = (own, now)
        if len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)
        return ok


def _source_of(remote: Any) -> str:
    sockaddr = getattr(remote, "sockaddr", None)  # udp6: the IP address, whatever the (spoofable) port
    if sockaddr:
        return str(sockaddr[0])
    return str(getattr(remote, "hostinfo", remote))


def _wire_size(msg: aiocoap.Message, token: bytes) -> int:
    """Bytes ``msg`` takes in a datagram with ``token`` (RFC 7252 §3: header, token, options, payload)."""
    return 4 + len(token) + len(msg.opt.encode()) + (1 + len(msg.payload) if msg.payload else 0)


def _bare(response: aiocoap.Message, no_response: int | None) -> aiocoap.Message:
    """The response code alone: no payload, no options (4 bytes plus the request's token)."""
    bare = aiocoap.Message(code=response.code)
    bare.opt.no_response = no_response
    return bare


def _rendered(exc: aiocoap.error.RenderableError) -> aiocoap.Message:
    try:
        message = exc.to_message()
    except Exception:
        message = None
    return message if message is not None else aiocoap.Message(code=aiocoap.INTERNAL_SERVER_ERROR)


class _GuardedPipe:
    """The pipe an unauthenticated request's site sees: each answer passes ``AmplificationGuard.admit``."""

    def __init__(self, pipe: Any, guard: AmplificationGuard) -> None:
        self._pipe, self._guard = pipe, guard
        self.request = self._original = pipe.request  # the site replaces ``request`` (path stripped)
        self._size = _wire_size(self._original, self._original.token)

    def add_response(self, response: aiocoap.Message, is_last: bool = False) -> None:
        self._pipe.add_response(self._guard.admit(self._original, self._size, response), is_last)

    def __getattr__(self, name: str) -> Any:  # on_interest_end, add_exception, log ...
        return getattr(self._pipe, name)


class AmplificationGuard:
    """A server's outermost site (around aiocoap's OSCORE site wrapper): answers to requests that
    are neither DTLS nor (successfully) OSCORE protected come from an address nobody verified
    (RFC 7252 §11.3). Such an answer to a NON request is never larger than the request: an
    error shrinks to its bare code (no hints, no error payload; a client learns them with CON),
    any other answer is not sent. An error answer larger than a CON request goes out as long
    as the source's and the server's token buckets allow (``AnswerLimiter``), else bare."""

    def __init__(self, site: Any, limiter: AnswerLimiter | None = None) -> None:
        self.site = site
        self.limiter = limiter or AnswerLimiter()
        self.shrunk = 0  # answers cut down (tests and operators look)

    async def render_to_pipe(self, pipe: Any) -> None:
        if getattr(pipe.request.remote, "scheme", None) == "coaps":  # DTLS: authenticated, address checked
            await self.site.render_to_pipe(pipe)
            return
        guarded = _GuardedPipe(pipe, self)
        try:
            await self.site.render_to_pipe(guarded)
        except aiocoap.error.RenderableError as exc:  # rendered here, so that the guard sees it too
            guarded.add_response(_rendered(exc), is_last=True)

    def admit(self, request: aiocoap.Message, request_size: int, response: aiocoap.Message) -> aiocoap.Message:
        if response.opt.oscore is not None:  # OSCORE-protected: the request was authenticated
            return response
        sent = response.copy(no_response=None) if response.opt.no_response is not None else response
        if _wire_size(sent, request.token) <= request_size:  # (No-Response is not sent, RFC 7967)
            return response
        error = not response.code.is_successful()
        if request.mtype == aiocoap.NON:  # RFC 7252 §11.3: no amplification for a spoofable request
            self.shrunk += 1
            return _bare(response, response.opt.no_response if error else _SILENT)
        if not error or self.limiter.allow(_source_of(request.remote)):
            return response
        self.shrunk += 1
        return _bare(response, response.opt.no_response)
