"""Errors and ACE payloads as CoAP responses: the one place RemoteError meets aiocoap, and
the limits on what unauthenticated peers can make a server hold.

A ``RemoteError`` with an RFC 9200 error code becomes its CoAP code with an
application/ace+cbor error map (RFC 9200 §5.8.3); an ``AccessDenied`` carrying AS Request
Creation Hints becomes 4.01 with the hints (§5.3); any other becomes its CoAP code with a
short diagnostic payload. Nothing secret is in any of them: descriptions are written for
peers.

Block-wise request bodies (RFC 7959 §2.5) are reassembled in one ``Block1Spool`` per process
(``BLOCK1_SPOOL``), and answers served in Block2 blocks (§2.4) are held in one ``Block2Store``
(``BLOCK2_STORE``), both shared by every ``BoundedBody`` resource of every server: one entry
per peer, a byte budget over all of them, a short idle lifetime. What a server may send to
unverified addresses is ``ace.coap.amplification``'s (re-exported here).
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import aiocoap
import aiocoap.blockwise
from aiocoap.numbers.codes import Code
from aiocoap.numbers.optionnumbers import OptionNumber
from aiocoap.optiontypes import BlockOption

from ace.cbor.labels import ContentFormat
from ace.cbor.messages import ErrorResponse
from ace.coap.amplification import AmplificationGuard, AnswerLimiter, EchoStamp
from ace.errors import RemoteError

__all__ = ["AmplificationGuard", "AnswerLimiter", "BoundedBody", "EchoStamp", "ace_message", "code_of",
           "error_message", "pair_of"]

MAX_BODY = 4096 + 256  # the largest token we take (ace.tokens.cwt.MAX_TOKEN_SIZE) plus map overhead
BLOCK1_BUDGET = 256 * 1024  # bytes all incomplete Block1 assemblies of the process may hold together
ASSEMBLY_OVERHEAD = 3584  # bytes an assembly costs beyond its body (measured: request object, options, key)
ASSEMBLY_IDLE = 45.0  # seconds: RFC 7252 §4.8.2 MAX_TRANSMIT_SPAN, the longest a client retransmits a block
BLOCK2_BUDGET = 256 * 1024  # bytes all answers held for Block2 of the process may hold together
ANSWER_OVERHEAD = 2048  # bytes a held answer costs beyond its payload (measured 1.3 KB: message, options, key)
_BLOCK_KEY_IGNORED = (OptionNumber.BLOCK1, OptionNumber.BLOCK2, OptionNumber.OBSERVE)


# -- one entry per peer, a byte budget, an idle lifetime -------------------------------------------

@dataclass(slots=True)
class _Held:
    key: Hashable  # (resource, code, cache key): what a later block must match
    message: aiocoap.Message  # Block1: the first block, the following ones appended; Block2: the answer
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


class _PerPeer:
    """At most one entry per peer; all share ``budget`` bytes, beyond which the least recently
    used go (not the newest: one entry is always below the budget); an entry not used for
    ``idle`` seconds goes too. A later block of a dropped entry gets 4.08, which RFC 7959 §2.9.2
    foresees for blocks "sent long enough ago that the server has already discarded them".
    (Refusing new transfers instead would let a peer spoofing many addresses hold the budget
    for the whole lifetime; dropping the oldest makes it outrun every legitimate transfer.)"""

    def __init__(self, *, budget: int, idle: float, clock: Callable[[], float]) -> None:
        self.budget, self.idle, self.clock = budget, idle, clock
        self._by_peer: OrderedDict[Hashable, _Held] = OrderedDict()  # least recently used first
        self.bytes = 0  # accounted cost of all entries held
        self.dropped = 0  # entries dropped for the budget or for idling (not replaced or completed)

    def __len__(self) -> int:
        return len(self._by_peer)

    def clear(self) -> None:
        self._by_peer.clear()
        self.bytes = 0

    def _put(self, peer: Hashable, held: _Held) -> None:
        self._remove(peer)
        self._by_peer[peer] = held
        self.bytes += held.cost
        self._fit(keep=peer)

    def _get(self, peer: Hashable, key: Hashable, now: float) -> _Held:
        held = self._by_peer.get(peer)
        if held is None or held.key != key:
            raise aiocoap.blockwise.IncompleteException
        held.touched = now
        self._by_peer.move_to_end(peer)
        return held

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
            if peer == keep:
                return
            self._remove(peer)
            self.dropped += 1


def _block_key(owner: Hashable, req: aiocoap.Message) -> Hashable:
    return (owner, req.code, req.get_cache_key(_BLOCK_KEY_IGNORED))


# -- Block1 (RFC 7959 §2.5) ---------------------------------------------------------------------------

class Block1Spool(_PerPeer):
    """Reassembly of Block1 request bodies. aiocoap's own spool keeps any number of assemblies
    per peer (one per option set, so per Uri-Query value) for 93 to 186 s; here a peer has at
    most one: a new first block replaces its old assembly."""

    def __init__(self, *, budget: int = BLOCK1_BUDGET, idle: float = ASSEMBLY_IDLE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(budget=budget, idle=idle, clock=clock)

    def feed(self, owner: Hashable, req: aiocoap.Message) -> aiocoap.Message:
        """The request with its whole body, or ContinueException (2.31) / IncompleteException
        (4.08, RFC 7959 §2.9.2). Requests without Block1 pass through."""
        block1 = req.opt.block1
        if block1 is None:
            return req
        now = self.clock()
        self._expire(now)
        peer = _peer_of(req.remote)
        key = _block_key(owner, req)
        if block1.block_number == 0:
            self._remove(peer)  # a new body replaces the peer's old one
            if not block1.more:
                return req
            assembly = _Held(key, req, ASSEMBLY_OVERHEAD + len(req.payload), now)
            self._put(peer, assembly)
        else:
            assembly = self._continue(peer, key, req, now)
        if not block1.more:
            self._remove(peer)
            return assembly.message  # carries the last block's Block1 option
        self._fit(keep=peer)
        raise aiocoap.blockwise.ContinueException(block1)

    def _continue(self, peer: Hashable, key: Hashable, req: aiocoap.Message, now: float) -> _Held:
        assembly = self._get(peer, key, now)
        try:
            assembly.message._append_request_block(req)
        except ValueError:  # a gap or an overlap: RFC 7959 §2.9.2
            raise aiocoap.blockwise.IncompleteException from None
        assembly.cost += len(req.payload)
        self.bytes += len(req.payload)
        return assembly


# -- Block2 (RFC 7959 §2.4) ---------------------------------------------------------------------------

class Block2Store(_PerPeer):
    """Answers served in Block2 blocks, held for the peer's later blocks. aiocoap's per-resource
    Block2Cache keeps every answer longer than the asked block size, one per Uri-Query value
    and source port, for 93 to 186 s; here a peer has one (a new block 0 replaces it), the
    process a byte budget, and the answer goes once its last block is served. A held answer is
    not rendered again (an answer carries a fresh cnonce or a token: blocks must come from one)."""

    def __init__(self, *, budget: int = BLOCK2_BUDGET, idle: float = ASSEMBLY_IDLE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(budget=budget, idle=idle, clock=clock)

    async def extract_or_insert(self, owner: Hashable, req: aiocoap.Message,
                                build: Callable[[], Awaitable[aiocoap.Message]]) -> aiocoap.Message:
        """The answer, or the asked block of it; IncompleteException (4.08) for a later block of
        an answer not held (RFC 7959 §2.9.2)."""
        now = self.clock()
        self._expire(now)
        peer, key, block2 = _peer_of(req.remote), _block_key(owner, req), req.opt.block2
        first = block2 is None or block2.block_number == 0
        answer = await build() if first else self._get(peer, key, now).message
        limit = req.remote.maximum_payload_size
        if len(answer.payload) <= limit and (block2 is None or len(answer.payload) <= block2.size):
            return answer
        block2 = block2 or BlockOption.BlockwiseTuple(0, False, req.remote.maximum_block_size_exp)
        block = answer._extract_block(block2.block_number, block2.size_exponent, limit)
        if block.opt.block2 is not None and not block.opt.block2.more:
            self._remove(peer)  # the last block: nothing more to ask for
        elif first:
            self._put(peer, _Held(key, answer, ANSWER_OVERHEAD + len(answer.payload), self.clock()))
        return block


BLOCK1_SPOOL = Block1Spool()  # the process's one spool: its budget covers all servers and resources
BLOCK2_STORE = Block2Store()  # likewise for answers served in blocks
_owners = itertools.count()


class _SpoolFeed:
    """What aiocoap's ``Resource`` calls as ``self._block1`` and ``self._block2``: the shared
    spool and store under the resource's own key (aiocoap strips the Uri-Path before a resource
    sees the request)."""

    def __init__(self, spool: Block1Spool, store: Block2Store) -> None:
        self.spool, self.store, self.owner = spool, store, next(_owners)

    def feed_and_take(self, req: aiocoap.Message) -> aiocoap.Message:
        return self.spool.feed(self.owner, req)

    async def extract_or_insert(self, req: aiocoap.Message,
                                build: Callable[[], Awaitable[aiocoap.Message]]) -> aiocoap.Message:
        return await self.store.extract_or_insert(self.owner, req, build)


class BoundedBody:
    """Mixin for our resources: a block-wise request body larger than ``MAX_BODY`` is refused
    with 4.13 and Size1 (RFC 7959 §2.9.3) as soon as a block shows it, before it is reassembled;
    reassembly happens in ``BLOCK1_SPOOL`` and answers served in blocks are held in
    ``BLOCK2_STORE`` (bounded per peer and in bytes); a block out of sequence gets 4.08 (not
    aiocoap's 5.00)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._block1 = self._block2 = _SpoolFeed(BLOCK1_SPOOL, BLOCK2_STORE)

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
