"""The Token Revocation List (RFC 9770), sans I/O: token hashes, revocation, full and diff
queries with the Cursor extension.

``token_hash`` (``ace.tokens.hashing``, re-exported here) is RFC 9770 §4.2.1/§4.4: HASH_INPUT
is the UTF-8 text of the base64url
(unpadded) encoding of the token bytes (the value of the access_token byte string), and the
hash is RFC 6920 §6 binary format: the suite id (1: sha-256) followed by the digest. The AS
logs this hash for every token it issues; the RS and the client compute it the same way.

``TrlEndpoint.handle`` answers GET /revoke/trl. Every answer pertains to the requester only
(§5): a client sees the tokens issued to it, an RS (``RsPeer``) the tokens issued for its
audience.

* Full query (§6.1): ``{0 / full_set /: [* hash], 2 / cursor /: last_index / null}``, the
  revoked, unexpired hashes oldest revocation first; the cursor is there because this AS
  supports diff queries and the Cursor extension (§9.1).
* Diff query ``?diff=N`` (§6.2, §8), with the Cursor extension (§9.2, ``?cursor=P``):
  ``{1 / diff_set /: [* [removed, added]], 2 / cursor /: index / null, 3 / more /: bool}``,
  newest item first.

The update collection (§8). The AS keeps one per requester: a series of items, each a pair
(removed, added) of hash sets restricted to that requester, with an index (0, 1, 2, ...
modulo MAX_INDEX + 1). An item is made for each batch of TRL entries the AS takes from the
store (``ingest``: what ``TrlWatch`` polls once a second, or what a request finds) that has
hashes of that requester, and for each purge of expired hashes that had some (``purge``: an
item with 'removed' only). An item holds at most MAX_ITEM_HASHES hashes (a bigger batch is
several items). A collection keeps at most MAX_N = 64 items (the value to communicate to
registered devices, §8: "MAX_N") and at most MAX_COLLECTION_HASHES hashes; the oldest items go
first. MAX_DIFF_BATCH = 8 items are returned at most per response (the Cursor extension).

Bounded memory: collections are kept for the MAX_REQUESTERS requesters (clients and RSs)
that queried the TRL most recently (LRU). A requester's collection is created when it is
first seen (first query or observation, or again after being evicted or after an AS
restart) with, if the requester's portion of the TRL is not empty, one item whose 'added' is
that whole portion, so that a diff query never hides a revocation made before the collection
existed. Item indexes come from a durable per-requester counter in the store
(``Counters.next_counter``): the first item ever is index 0, and a collection made again
continues where the lost one stopped, as if its items had been dropped. So a cursor kept from
before an AS restart or an eviction names an item that is gone: Case A (``cursor: null,
more: true``), and the requester does a full query, never a silent "nothing new". Positions
in the store at AS start are taken as already known (nothing replayed).

Errors (§6.3): a malformed ``diff`` or ``cursor`` value, ``cursor`` without ``diff``, a
repeated parameter, or a ``cursor`` out of bound (above MAX_INDEX, or beyond last_index when
the indexes have not wrapped around) get 4.00 with problem details (RFC 9290,
application/concise-problem-details+cbor, content format 257) carrying the Custom Problem
Detail entry ace-trl-error (key 1): {0 / error-id /: 0 invalid parameter value, 1 invalid set
of parameters, 2 out of bound cursor value; 1 / cursor /: last_index or null, only with error 0
for a bad cursor value}. An empty collection answers any cursor with an empty diff (§9.2).
Unknown parameters are ignored. ``revoke_tokens`` and ``revoke_token`` are what ``ace
revoke`` (and ``ace policy revoke``) run against the store.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ace.authz_server.identity import TokenLookup, find_issued
from ace.errors import ConfigError, Unauthorized
from ace.requester import Requester, RsPeer
from ace.store.base import Counters, IssuedToken, RevocationList, TokenLog
from ace.tokens.hashing import HASH_LEN, SHA256_SUITE, token_hash
from ace.trl_wire import (
    ACE_TRL_ERROR,
    MAX_ENTRIES,
    MAX_INDEX,
    MAX_N,
    MAX_QUERY_DIGITS,
    PD_TITLE,
    PROBLEM_DETAILS_CF,
    DiffSet,
    TrlError,
    TrlErrorId,
    TrlQuery,
    decode_diff_set,
    decode_full_set,
    encode_diff_set,
    encode_full_set,
    parse_query,
)

log = logging.getLogger(__name__)
__all__ = [  # re-exported (trl_wire, the requesters, the token hash): the TRL's users import them from here
    "ACE_TRL_ERROR",
    "HASH_LEN",
    "MAX_ENTRIES",
    "MAX_INDEX",
    "MAX_N",
    "MAX_QUERY_DIGITS",
    "PD_TITLE",
    "PROBLEM_DETAILS_CF",
    "SHA256_SUITE",
    "DiffSet",
    "Requester",
    "RsPeer",
    "TrlError",
    "TrlErrorId",
    "TrlQuery",
    "decode_diff_set",
    "decode_full_set",
    "encode_diff_set",
    "encode_full_set",
    "parse_query",
    "token_hash",
]
Clock = Callable[[], float]

DEFAULT_PATH = "/revoke/trl"
BATCH = 512  # TRL entries read from the store at a time
INGEST_BATCHES = 16  # store batches one ``ingest`` takes at most (the rest: the next call)
MAX_DIFF_BATCH = 8  # items one diff response carries at most (RFC 9770 §9 MAX_DIFF_BATCH)
MAX_REQUESTERS = 1024  # update collections kept (least recently used dropped)
MAX_ITEM_HASHES = 256  # hashes in one item; a bigger batch becomes several items
MAX_COLLECTION_HASHES = 4096  # hashes one collection keeps over all its items


# -- the update collection (RFC 9770 §8, §9) ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class SeriesItem:
    index: int
    removed: tuple[bytes, ...]
    added: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class DiffAnswer:
    items: list[SeriesItem]  # eldest first
    cursor: int | None
    more: bool

    def encode(self) -> bytes:
        return encode_diff_set(((i.removed, i.added) for i in reversed(self.items)), self.cursor, self.more)


class UpdateCollection:
    """One requester's series of TRL updates, bounded (MAX_N items, MAX_COLLECTION_HASHES hashes)."""

    def __init__(self, *, max_n: int = MAX_N, max_index: int = MAX_INDEX,
                 counter: Callable[[], int] | None = None) -> None:
        if max_n < 1 or max_index < max_n:
            raise ValueError("need 1 <= max_n <= max_index")
        self.max_n, self.max_index = max_n, max_index
        self.counter = counter  # durable 1, 2, ...: indexes go on across AS restarts and evictions
        self.items: deque[SeriesItem] = deque()
        self.total = 0  # items ever added (to this requester's collection, counter permitting)
        self.hashes = 0  # hashes in the items kept

    @property
    def last_index(self) -> int | None:
        return None if self.total == 0 else (self.total - 1) % (self.max_index + 1)

    @property
    def wrapped(self) -> bool:
        return self.total > self.max_index + 1

    def add(self, removed: Sequence[bytes], added: Sequence[bytes]) -> int:
        """Append items for one update (split at MAX_ITEM_HASHES); returns how many."""
        n = 0
        for kind, hashes in ((0, removed), (1, added)):
            for start in range(0, len(hashes), MAX_ITEM_HASHES):
                chunk = tuple(hashes[start:start + MAX_ITEM_HASHES])
                self.total = self.counter() if self.counter is not None else self.total + 1
                self._append(SeriesItem((self.total - 1) % (self.max_index + 1),
                                        chunk if kind == 0 else (), chunk if kind == 1 else ()))
                n += 1
        return n

    def _append(self, item: SeriesItem) -> None:
        self.items.append(item)
        self.hashes += len(item.removed) + len(item.added)
        while len(self.items) > self.max_n or (self.hashes > MAX_COLLECTION_HASHES and len(self.items) > 1):
            old = self.items.popleft()
            self.hashes -= len(old.removed) + len(old.added)

    def diff(self, n: int, cursor: int | None, *, batch: int = MAX_DIFF_BATCH) -> DiffAnswer:
        """RFC 9770 §6.2 (NUM, U) with §9.2 (L = min(U, MAX_DIFF_BATCH), cursor, more)."""
        num = self.max_n if n == 0 or n > self.max_n else n
        if cursor is None:
            u = min(num, len(self.items))
            chosen = list(self.items)[len(self.items) - u:][:batch]
            return DiffAnswer(chosen, chosen[-1].index if chosen else None, u > batch)
        last = self.last_index
        if cursor > self.max_index:  # RFC 9770 §6.3: error-id 0, with cursor = last_index or null
            raise TrlError("cursor above MAX_INDEX", TrlErrorId.INVALID_PARAMETER_VALUE, cursor=last,
                           with_cursor=True)
        if last is None:  # RFC 9770 §9.2: an empty collection, whatever the cursor
            return DiffAnswer([], None, False)
        if not self.wrapped and cursor > last:  # RFC 9770 §6.3: error-id 2, without cursor
            raise TrlError("cursor out of bound", TrlErrorId.OUT_OF_BOUND_CURSOR_VALUE)
        if cursor == last:
            return DiffAnswer([], last, False)
        modulus = self.max_index + 1
        nxt = (cursor + 1) % modulus
        offset = (nxt - self.items[0].index) % modulus if self.items else 0
        if not self.items or offset >= len(self.items) or self.items[offset].index != nxt:
            return DiffAnswer([], None, True)  # item P+1 is gone: the requester SHOULD do a full query
        following = list(self.items)[offset:]
        sub_u = min(num, len(following))
        chosen = following[len(following) - sub_u:][:batch]  # §9.2 Case B: the eldest L of the last SUB_U
        return DiffAnswer(chosen, chosen[-1].index, sub_u > batch)


# -- the endpoint -----------------------------------------------------------------------------

class TrlStore(RevocationList, TokenLog, Counters, Protocol):
    """What the TRL endpoint and revoking need: the TRL, the token log (whose tokens), counters (item indexes)."""


class RevocationStore(RevocationList, TokenLookup, Protocol):
    """What revoking a presented token needs: the TRL, and what finds the logged token."""


class TrlEndpoint:
    """Answers TRL queries from the store: ``RevocationList.revoked_since`` is the TRL, in revocation
    order; ``revoked_hashes`` (a requester's full set) and ``find_tokens_by_hash`` (whose new
    entries are whose) say which of its hashes pertain to a requester, in SQL. Keeps the update
    collections (see the module docstring); ``generation`` moves whenever the TRL did."""

    def __init__(self, store: TrlStore, *, clock: Clock, max_n: int = MAX_N,
                 max_diff_batch: int = MAX_DIFF_BATCH, max_index: int = MAX_INDEX,
                 max_requesters: int = MAX_REQUESTERS) -> None:
        if not 1 <= max_diff_batch <= max_n or max_requesters < 1:
            raise ValueError("need 1 <= max_diff_batch <= max_n and max_requesters >= 1")
        self.store, self.clock = store, clock
        self.max_n, self.max_diff_batch, self.max_index = max_n, max_diff_batch, max_index
        self.max_requesters = max_requesters
        self.collections: OrderedDict[Requester, UpdateCollection] = OrderedDict()
        self.generation = 0
        self.position = 0  # the last store position taken into the collections
        self.catch_up()

    # the TRL in the store
    def full_set(self, requester: Requester) -> list[bytes]:
        """The pertaining, unexpired revoked hashes, oldest revocation first (bounded), joined in
        the store (no token of the requester is read one by one)."""
        owner = {"audience": requester.audience} if isinstance(requester, RsPeer) else {"client_id": requester}
        out = self.store.revoked_hashes(**owner, now=int(self.clock()), limit=MAX_ENTRIES + 1)
        if len(out) > MAX_ENTRIES:
            log.warning("TRL of %s truncated at %d entries", requester, MAX_ENTRIES)
            del out[MAX_ENTRIES:]
        return out

    def revocations(self, cursor: int = 0) -> list[tuple[int, bytes]]:
        """Every TRL entry after ``cursor`` (position, hash), oldest first."""
        return list(self._after(cursor, None))

    def _after(self, cursor: int, max_batches: int | None) -> Iterator[tuple[int, bytes]]:
        """TRL entries after ``cursor``, read from the store BATCH at a time, at most
        ``max_batches`` batches (None: all)."""
        batches = 0
        while max_batches is None or batches < max_batches:
            batch = self.store.revoked_since(cursor, BATCH)
            batches += 1
            yield from batch
            if len(batch) < BATCH:
                return
            cursor = batch[-1][0]

    # the update collections
    def catch_up(self) -> None:
        """Take every entry already in the store as known (no items for them)."""
        for position, _ in self._after(self.position, 1_000_000 // BATCH):
            self.position = position

    def ingest(self) -> int:
        """Take new TRL entries (any writer) into the collections, as one update; returns how many."""
        new: list[bytes] = []
        for position, h in self._after(self.position, INGEST_BATCHES):
            self.position = position
            new.append(h)
        if new:
            self.generation += 1
            self._record((), new)
        return len(new)

    def purge(self, now: int) -> int:
        """Forget the entries of tokens expired before ``now`` (``RevocationList.purge_revoked``); each
        collection with some gets an item of them as 'removed'. Returns how many."""
        self.ingest()
        before = [h for _, h in self.revocations()]
        n = self.store.purge_revoked(now)
        if n:
            after = {h for _, h in self.revocations()}
            self.generation += 1
            self._record([h for h in before if h not in after], ())
        return n

    def _record(self, removed: Sequence[bytes], added: Sequence[bytes]) -> None:
        """An item per collection whose requester the hashes pertain to (their owners looked up
        once, by hash: the work grows with the hashes, not with the requesters' tokens)."""
        if not self.collections:
            return
        mine: dict[Requester, set[bytes]] = {}
        for t in self.store.find_tokens_by_hash({*removed, *added}):
            mine.setdefault(t.client_id, set()).add(t.token_hash)
            mine.setdefault(RsPeer(t.audience), set()).add(t.token_hash)
        for requester, collection in self.collections.items():
            hashes = mine.get(requester)
            if not hashes:
                continue
            r = [h for h in removed if h in hashes]
            a = [h for h in added if h in hashes]
            if r or a:
                collection.add(r, a)

    def collection(self, requester: Requester) -> UpdateCollection:
        """The requester's update collection, made (and seeded, see the module docstring) if new."""
        found = self.collections.get(requester)
        if found is not None:
            self.collections.move_to_end(requester)
            return found
        name = f"trl:rs:{requester.audience}" if isinstance(requester, RsPeer) else f"trl:c:{requester}"
        made = UpdateCollection(max_n=self.max_n, max_index=self.max_index,
                                counter=lambda: self.store.next_counter(name))
        made.add((), self.full_set(requester))
        self.collections[requester] = made
        while len(self.collections) > self.max_requesters:
            self.collections.popitem(last=False)
        return made

    def handle(self, requester: Requester | None, query: Iterable[str] = ()) -> bytes:
        """GET /revoke/trl: the payload of the 2.05, or RemoteError (4.01 unauthenticated, 4.00;
        TrlError: 4.00 with problem details)."""
        if requester is None:  # RFC 9770 §6: only registered devices over a secure association
            raise Unauthorized("TRL requests must come over a registered secure association")
        self.ingest()
        collection = self.collection(requester)
        try:
            q = parse_query(query)
        except TrlError as exc:
            if exc.with_cursor:
                exc.cursor = collection.last_index
            raise
        if q.diff is None:
            return encode_full_set(self.full_set(requester), collection.last_index)
        return collection.diff(q.diff, q.cursor, batch=self.max_diff_batch).encode()


def revoke_issued(store: RevocationList, tokens: Iterable[IssuedToken], *, now: int) -> list[bytes]:
    """Put the live ones of ``tokens`` on the TRL; returns the hashes newly listed."""
    added: list[bytes] = []
    for t in tokens:
        if t.expires_at is not None and t.expires_at <= now:
            continue  # expired: no need to list it (RFC 9770 §5)
        if store.revoke_token(t.token_hash, revoked_at=now, expires_at=t.expires_at) is not None:
            added.append(t.token_hash)
    if added:
        log.info("revoked %d token(s)", len(added))
    return added


def revoke_tokens(store: TrlStore, *, client_id: str | None = None, audience: str | None = None,
                  clock: Clock) -> list[bytes]:
    """Revoke every live token of ``client_id`` (and/or for ``audience``)."""
    if client_id is None and audience is None:
        raise ValueError("name a client and/or an audience")
    return revoke_issued(store, store.find_tokens(client_id=client_id, audience=audience), now=int(clock()))


def revoke_token(store: RevocationStore, token: bytes, *, clock: Clock) -> bytes | None:
    """Revoke one token this AS issued, found by its identity (``identity.find_issued``: another
    encoding of it revokes the logged token); returns the logged token's hash if newly listed."""
    issued = find_issued(store, token, clock=clock)
    if issued is None:
        raise ConfigError("this AS has not logged that token (or it expired and was forgotten)")
    added = revoke_issued(store, [issued], now=int(clock()))
    return added[0] if added else None
