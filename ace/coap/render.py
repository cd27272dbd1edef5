"""ACE payloads as CoAP responses, and the limits on what unauthenticated peers can make a
server hold. (Errors become responses in ``ace.coap.boundary``, as ``ace.replies.reply_of`` says.)

Block-wise request bodies (RFC 7959 §2.5) are reassembled in one ``Block1Spool`` per process
(``BLOCK1_SPOOL``), and answers served in Block2 blocks (§2.4) are held in one ``Block2Store``
(``BLOCK2_STORE``), both shared by every ``BoundedBody`` resource of every server: a few
entries per source (an IPv4 address or IPv6 /64, whatever the port; or an OSCORE context or
DTLS session), a byte budget for authenticated peers and another for everyone else (so
unauthenticated requests cannot evict an authenticated transfer), a short idle lifetime. What a
server may send to unverified addresses is ``ace.coap.amplification``'s (re-exported here).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

import aiocoap
import aiocoap.blockwise
from aiocoap.numbers.codes import Code
from aiocoap.numbers.optionnumbers import OptionNumber
from aiocoap.optiontypes import BlockOption
from aiocoap.transports.oscore import OSCOREAddress

from ace.cbor.labels import ContentFormat
from ace.coap.amplification import AmplificationGuard, AnswerLimiter, EchoStamp
from ace.coap.peers import source_of

__all__ = ["AmplificationGuard", "AnswerLimiter", "BoundedBody", "EchoStamp", "ace_message", "code_of",
           "pair_of"]

MAX_BODY = 4096 + 256  # the largest token we take (ace.tokens.cwt.MAX_TOKEN_SIZE) plus map overhead
BLOCK1_BUDGET = 256 * 1024  # bytes the incomplete Block1 assemblies of the process may hold, per pool (two)
ASSEMBLY_OVERHEAD = 3584  # bytes an assembly costs beyond its body (measured: request object, options, key)
ASSEMBLY_IDLE = 45.0  # seconds: RFC 7252 §4.8.2 MAX_TRANSMIT_SPAN, the longest a client retransmits a block
BLOCK2_BUDGET = 256 * 1024  # bytes the answers held for Block2 of the process may hold, per pool (two)
ANSWER_OVERHEAD = 2048  # bytes a held answer costs beyond its payload (measured 1.3 KB: message, options, key)
PER_SOURCE = 4  # entries one source may hold in the spool or the store: an IPv4 address, an IPv6 /64, or
# one OSCORE context or DTLS session (a client socket may run transfers to several resources at once)
_BLOCK_KEY_IGNORED = (OptionNumber.BLOCK1, OptionNumber.BLOCK2, OptionNumber.OBSERVE)


# -- per-source pools: a byte budget each, an idle lifetime ----------------------------------------

class _Held:  # a plain slotted class: no dataclass to build at start (issue 14: cold start)
    __slots__ = ("cost", "key", "message", "source", "touched")

    def __init__(self, key: Hashable, message: aiocoap.Message, cost: int, touched: float,
                 source: Hashable = None) -> None:
        self.key = key  # (resource, code, cache key): what a later block must match
        self.message = message  # Block1: the first block, the following ones appended; Block2: the answer
        self.cost, self.touched = cost, touched
        self.source = source  # what the entry counts against (``_origin_of``)


def _peer_of(remote: Any) -> Hashable:
    """The peer as aiocoap keys block-wise transfers (address and, if any, security association),
    with the local endpoint it reached (two servers in one process are two peers)."""
    return (_local_of(remote), remote.blockwise_key)


def _local_of(remote: Any) -> Any:
    try:
        return remote.hostinfo_local
    except Exception:  # a transport that cannot tell: one endpoint
        return None


def _origin_of(remote: Any) -> tuple[bool, Hashable]:
    """Whether the request was authenticated, and the source its entries count against: an
    OSCORE security context (its recipient key) or a DTLS session; otherwise the IPv4 address
    or IPv6 /64 (``source_of``), whatever the (freely chosen) port."""
    local = _local_of(remote)
    if isinstance(remote, OSCOREAddress):
        return True, (local, "oscore", remote.blockwise_key[1])
    if getattr(remote, "scheme", None) == "coaps":
        return True, (local, "dtls", remote.blockwise_key)
    try:
        return False, (local, source_of(remote))
    except Exception:  # a transport that names no address: the peer alone
        return False, (local, remote.blockwise_key)


class _Pool:
    """Entries under one byte budget, at most ``per_source`` of them per source. Past the budget
    an entry of the source holding the most goes, the least recently used of those first."""

    def __init__(self, budget: int, per_source: int) -> None:
        self.budget, self.per_source = budget, per_source
        self.entries: OrderedDict[Hashable, _Held] = OrderedDict()  # least recently used first
        self.count: Counter[Hashable] = Counter()  # entries per source
        self.bytes = 0

    def remove(self, slot: Hashable) -> None:
        old = self.entries.pop(slot, None)
        if old is not None:
            self.bytes -= old.cost
            self.count[old.source] -= 1
            if self.count[old.source] <= 0:
                del self.count[old.source]

    def put(self, slot: Hashable, held: _Held) -> int:
        """Adds ``held``; returns how many other entries went for it."""
        self.remove(slot)
        self.entries[slot] = held
        self.bytes += held.cost
        self.count[held.source] += 1
        dropped = 0
        while self.count[held.source] > self.per_source:  # the source's own oldest goes
            self.remove(next(s for s, h in self.entries.items() if h.source == held.source))
            dropped += 1
        return dropped + self.fit(keep=slot)

    def fit(self, keep: Hashable) -> int:
        dropped = 0
        while self.bytes > self.budget and len(self.entries) > 1:
            others = [(s, h.source) for s, h in self.entries.items() if s != keep]
            most = max(self.count[source] for _, source in others)
            self.remove(next(s for s, source in others if self.count[source] == most))
            dropped += 1
        return dropped


class _PerSource:
    """Entries of block-wise transfers in two pools of ``budget`` bytes each: one for OSCORE and
    DTLS peers, one for everyone else, so unauthenticated requests never evict an authenticated
    transfer. In each, a source (a security association; an address or /64) holds at most
    ``per_source`` entries, a new one replacing its own oldest, and past the budget the source
    holding the most loses its least recently used. An entry not used for ``idle`` seconds
    goes too. A later block of a dropped entry gets 4.08, which RFC 7959 §2.9.2 foresees for
    blocks "sent long enough ago that the server has already discarded them". (Refusing new
    transfers instead would let a peer spoofing many addresses hold the budget for the whole
    lifetime.) Many ports of one host are one source; only many addresses (or /64s) can still
    outrun an unauthenticated transfer."""

    def __init__(self, *, budget: int, idle: float, clock: Callable[[], float], per_source: int) -> None:
        self.budget, self.idle, self.clock = budget, idle, clock
        self._pools = {True: _Pool(budget, per_source), False: _Pool(budget, per_source)}  # by authenticated
        self.dropped = 0  # entries dropped for a budget, a source's cap or idling (not replaced or completed)

    def __len__(self) -> int:
        return sum(len(pool.entries) for pool in self._pools.values())

    @property
    def bytes(self) -> int:
        """Accounted cost of all entries held (both pools)."""
        return sum(pool.bytes for pool in self._pools.values())

    def held_by(self, *, authenticated: bool) -> int:
        return len(self._pools[authenticated].entries)

    def clear(self) -> None:
        for pool in self._pools.values():
            pool.entries.clear()
            pool.count.clear()
            pool.bytes = 0

    def _pool(self, remote: Any) -> tuple[_Pool, Hashable]:
        authenticated, source = _origin_of(remote)
        return self._pools[authenticated], source

    def _put(self, remote: Any, slot: Hashable, held: _Held) -> None:
        pool, held.source = self._pool(remote)
        self.dropped += pool.put(slot, held)

    def _get(self, remote: Any, slot: Hashable, key: Hashable, now: float) -> _Held:
        pool = self._pool(remote)[0]
        held = pool.entries.get(slot)
        if held is None or held.key != key:
            raise aiocoap.blockwise.IncompleteException
        held.touched = now
        pool.entries.move_to_end(slot)
        return held

    def _remove(self, remote: Any, slot: Hashable) -> None:
        self._pool(remote)[0].remove(slot)

    def _grow(self, remote: Any, slot: Hashable, held: _Held, size: int) -> None:
        pool = self._pool(remote)[0]
        held.cost += size
        pool.bytes += size
        self.dropped += pool.fit(keep=slot)

    def _expire(self, now: float) -> None:
        for pool in self._pools.values():
            while pool.entries:
                slot, oldest = next(iter(pool.entries.items()))
                if now - oldest.touched < self.idle:
                    break
                pool.remove(slot)
                self.dropped += 1


def _block_key(owner: Hashable, req: aiocoap.Message) -> Hashable:
    return (owner, req.code, req.get_cache_key(_BLOCK_KEY_IGNORED))


# -- Block1 (RFC 7959 §2.5) ---------------------------------------------------------------------------

class Block1Spool(_PerSource):
    """Reassembly of Block1 request bodies. aiocoap's own spool keeps any number of assemblies
    per peer (one per option set, so per Uri-Query value) for 93 to 186 s; here a peer has at
    most one: a new first block replaces its old assembly (and a source at most ``per_source``)."""

    def __init__(self, *, budget: int = BLOCK1_BUDGET, idle: float = ASSEMBLY_IDLE,
                 clock: Callable[[], float] = time.monotonic, per_source: int = PER_SOURCE) -> None:
        super().__init__(budget=budget, idle=idle, clock=clock, per_source=per_source)

    def feed(self, owner: Hashable, req: aiocoap.Message) -> aiocoap.Message:
        """The request with its whole body, or ContinueException (2.31) / IncompleteException
        (4.08, RFC 7959 §2.9.2). Requests without Block1 pass through."""
        block1 = req.opt.block1
        if block1 is None:
            return req
        now = self.clock()
        self._expire(now)
        remote, peer, key = req.remote, _peer_of(req.remote), _block_key(owner, req)
        if block1.block_number == 0:
            self._remove(remote, peer)  # a new body replaces the peer's old one
            if not block1.more:
                return req
            self._put(remote, peer, _Held(key, req, ASSEMBLY_OVERHEAD + len(req.payload), now))
            raise aiocoap.blockwise.ContinueException(block1)
        assembly = self._get(remote, peer, key, now)
        try:
            assembly.message._append_request_block(req)
        except ValueError:  # a gap or an overlap: RFC 7959 §2.9.2
            raise aiocoap.blockwise.IncompleteException from None
        if not block1.more:
            self._remove(remote, peer)
            return assembly.message  # carries the last block's Block1 option
        self._grow(remote, peer, assembly, len(req.payload))
        raise aiocoap.blockwise.ContinueException(block1)


# -- Block2 (RFC 7959 §2.4) ---------------------------------------------------------------------------

class Block2Store(_PerSource):
    """Answers served in Block2 blocks, held for the peer's later blocks. aiocoap's per-resource
    Block2Cache keeps every answer longer than the asked block size, one per Uri-Query value
    and source port, for 93 to 186 s; here one per peer and request (a new block 0 replaces
    it; one client socket may fetch several at once), at most ``per_source`` per source, and
    the answer goes once its last block is served. A held answer is not rendered again (an
    answer carries a fresh cnonce or a token: blocks must come from one). The client's block
    size is kept (RFC 7959 §2.4 lets a server only lower it): tiny blocks cost requests, not
    entries."""

    def __init__(self, *, budget: int = BLOCK2_BUDGET, idle: float = ASSEMBLY_IDLE,
                 clock: Callable[[], float] = time.monotonic, per_source: int = PER_SOURCE) -> None:
        super().__init__(budget=budget, idle=idle, clock=clock, per_source=per_source)

    async def extract_or_insert(self, owner: Hashable, req: aiocoap.Message,
                                build: Callable[[], Awaitable[aiocoap.Message]]) -> aiocoap.Message:
        """The answer, or the asked block of it; IncompleteException (4.08) for a later block of
        an answer not held (RFC 7959 §2.9.2)."""
        now = self.clock()
        self._expire(now)
        remote, key, block2 = req.remote, _block_key(owner, req), req.opt.block2
        slot = (_peer_of(remote), key)
        first = block2 is None or block2.block_number == 0
        answer = await build() if first else self._get(remote, slot, key, now).message
        limit = remote.maximum_payload_size
        if len(answer.payload) <= limit and (block2 is None or len(answer.payload) <= block2.size):
            return answer
        block2 = block2 or BlockOption.BlockwiseTuple(0, False, remote.maximum_block_size_exp)
        block = answer._extract_block(block2.block_number, block2.size_exponent, limit)
        if block.opt.block2 is not None and not block.opt.block2.more:
            self._remove(remote, slot)  # the last block: nothing more to ask for
        elif first:
            self._put(remote, slot, _Held(key, answer, ANSWER_OVERHEAD + len(answer.payload), self.clock()))
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
    ``BLOCK2_STORE`` (bounded per peer, per source and in bytes); a block out of sequence gets 4.08 (not
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

