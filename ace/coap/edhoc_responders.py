"""Bounds on aiocoap 0.4.17's EDHOC responder state and its connection identifiers (RFC 9528 §3.3).

aiocoap keeps one responder context per message_1 in the server credentials map (under
``":" + uuid4().hex``, never expired) and picks its C_R, the OSCORE Recipient ID of the derived
context, as the first of the 48 one-byte CBOR ints -24..23 not in
``find_all_used_contextless_oscore_kid()`` nor equal to C_I (else 5.00 "Too many contexts").
``BoundedResponderMap`` bounds that state so that unauthenticated peers cannot displace
established sessions: half-done handshakes have their own budget, globally and per source
(``admitting``: the oldest half-done one of the most crowded source gives way, or 5.03 when no
identifier is left), and only a handshake that completed (message_3 verified) may displace a
completed context, the least recently used one after those whose token is gone or that a newer
context of the same token replaced. C_R shares one identifier space with the OSCORE profile's
``RecipientIdPool`` (``share_ids``): the pool never hands out a one-byte C_R candidate and avoids
every live C_R; C_R selection avoids what the pool handed out and, while others are free, the
identifiers freed last (a client of a forgotten context then gets 4.01, not another context).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import aiocoap
import cbor2
from aiocoap.edhoc import EdhocResponderContext

from ace.coap.dtls import DtlsCredentialsMap
from ace.coap.ratelog import RateLimitedLog
from ace.profiles.ids import RecipientIdPool

log = logging.getLogger(__name__)
peer_log = RateLimitedLog(log)  # lines unauthenticated peers drive

CONNECTION_IDS = 48  # aiocoap picks C_R among the one-byte CBOR ints -24..23
CANDIDATE_IDS: tuple[bytes, ...] = tuple(cbor2.dumps(i) for i in range(-24, 24))  # in aiocoap's order
FREE_IDS_KEPT = 2  # the next client's C_I may take one of the free ids
DEFAULT_MAX_RESPONDERS = 40  # completed contexts
DEFAULT_MAX_INCOMPLETE = 6  # half-done handshakes, all sources together
DEFAULT_MAX_INCOMPLETE_PER_SOURCE = 3  # half-done handshakes per IPv4 address / IPv6 /64
RETRY_AFTER = 10  # seconds (Max-Age of the 5.03 when no connection identifier is left)
EDHOC_PATH = (".well-known", "edhoc")
REVERSE_PREFIX = ":edhoc-reverse:"  # the reverse flow's entries (edhoc_reverse): counted like the others
_CBOR_TRUE = b"\xf5"  # message_1 over CoAP is prefixed with CBOR true (RFC 9528 appendix A.2)


class HandshakeRefused(aiocoap.error.ServiceUnavailable):  # type: ignore[misc]
    """No connection identifier left for a new handshake: 5.03 with Max-Age (RFC 7252 §5.9.3.4)."""

    message = "too many EDHOC sessions"

    def to_message(self) -> aiocoap.Message:
        message: aiocoap.Message = super().to_message()
        message.opt.max_age = RETRY_AFTER
        return message


def is_message_1(request: aiocoap.Message) -> bool:
    return bool(request.code == aiocoap.POST and request.opt.uri_path == EDHOC_PATH
                and request.payload[:1] == _CBOR_TRUE)


@dataclass(slots=True)
class _Slot:
    rid: bytes  # C_R
    born: float  # monotonic seconds when message_1 was processed
    source: str | None  # None: stored without ``admitting``
    complete: bool = False


@dataclass(frozen=True, slots=True)
class ResponderEntry:
    """One responder context aiocoap keeps in the server map (under ``key``)."""

    key: str
    context: Any
    born: float  # monotonic seconds when it was stored (message_1 processed)

    @property
    def complete(self) -> bool:  # message_3 verified
        return not getattr(self.context, "_incomplete", True)

    @property
    def claims(self) -> list[Any]:
        return list(getattr(self.context, "authenticated_claims", []))


def free_ids(credentials: Any, *taken: bytes) -> list[bytes]:
    """The one-byte connection ids neither ``credentials`` (its ``find_all_used_contextless_oscore_kid``)
    nor ``taken`` holds, in aiocoap's order."""
    used = set(credentials.find_all_used_contextless_oscore_kid()).union(taken)
    return [c for c in CANDIDATE_IDS if c not in used]


def responder_contexts(credentials: dict[str, Any]) -> list[ResponderEntry]:
    """aiocoap's EDHOC responder contexts in a server map, oldest first where known."""
    slots: dict[str, _Slot] = getattr(credentials, "_slots", {})
    found = [ResponderEntry(k, v, slots[k].born if k in slots else 0.0) for k, v in list(credentials.items())
             if isinstance(v, EdhocResponderContext)]
    return sorted(found, key=lambda e: e.born)


def forget_responder_contexts(credentials: dict[str, Any], predicate: Callable[[ResponderEntry], bool]) -> int:
    """Drop the responder contexts ``predicate`` selects (their OSCORE contexts end: a client
    still using one gets an unprotected 4.01 "Security context not found"); returns how many."""
    doomed = [e for e in responder_contexts(credentials) if predicate(e)]
    for entry in doomed:
        if entry.key in credentials:
            del credentials[entry.key]
    return len(doomed)


class BoundedResponderMap(DtlsCredentialsMap):
    """A ``DtlsCredentialsMap`` keeping at most ``max_responders`` completed and ``max_incomplete``
    half-done responder contexts (``max_incomplete_per_source`` from one source), with two
    connection ids always free (``edhoc.EdhocCredentialsMap`` is the RS's, with peer lookup)."""

    def __init__(self, *, max_responders: int = DEFAULT_MAX_RESPONDERS, max_incomplete: int = DEFAULT_MAX_INCOMPLETE,
                 max_incomplete_per_source: int = DEFAULT_MAX_INCOMPLETE_PER_SOURCE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        if max_responders < 1 or max_incomplete < 1 or max_responders + max_incomplete > CONNECTION_IDS - FREE_IDS_KEPT:
            raise ValueError(f"max_responders + max_incomplete must be 2..{CONNECTION_IDS - FREE_IDS_KEPT}, each >= 1")
        self.max_responders, self.max_incomplete, self._clock = max_responders, max_incomplete, clock
        self.max_incomplete_per_source = max(1, min(max_incomplete_per_source, max_incomplete))
        self._slots: dict[str, _Slot] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()  # completed ones, least recently used first
        self._freed: OrderedDict[bytes, None] = OrderedDict()  # C_Rs given up, least recently first
        self._ids: RecipientIdPool | None = None
        self._live: Callable[[object], bool] = lambda label: True
        self._source: str | None = None  # the source of the message_1 being processed

    def share_ids(self, ids: RecipientIdPool, live: Callable[[object], bool]) -> None:
        """One identifier space with the OSCORE profile's pool; ``live(label)``: does a token
        (a binding of the RS core) still back contexts authenticated as ``label``?"""
        self._ids, self._live = ids, live
        ids.keep_clear(CANDIDATE_IDS)
        for slot in self._slots.values():
            ids.reserve(slot.rid)

    # -- aiocoap's view: storing contexts, picking C_R --------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self._slots:
            self._untrack(key)
        super().__setitem__(key, value)
        if isinstance(value, EdhocResponderContext):  # aiocoap stores one per message_1
            self._track(key, value)
        elif key.startswith(REVERSE_PREFIX):  # a triggered handshake, or its OSCORE context
            self._track_reverse(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._untrack(key)

    def pop(self, key: str, *default: Any) -> Any:
        if key not in self:
            if default:
                return default[0]
            raise KeyError(key)
        value = self[key]
        del self[key]
        return value

    def find_all_used_contextless_oscore_kid(self) -> set[bytes]:
        """What aiocoap must not pick as C_R: every live id, and the ids freed last while others
        are free (aiocoap takes the first free candidate)."""
        used = self._used_ids()
        free = [c for c in CANDIDATE_IDS if c not in used]
        recent = [rid for rid in self._freed if rid in free]
        spare = len(free) - len(recent)
        return used | set(recent[max(0, FREE_IDS_KEPT - spare):])

    # -- admission of message_1 (called by the site before aiocoap processes it) --------------------

    @contextmanager
    def admitting(self, source: str) -> Iterator[None]:
        """Room for one more half-done handshake from ``source``, taken only from half-done ones;
        ``HandshakeRefused`` (5.03) when no connection identifier is left."""
        self._refresh()
        pending = self._pending()
        mine = [k for k in pending if self._slots[k].source == source]
        if len(mine) >= self.max_incomplete_per_source:
            pending.remove(mine[0])
            self._evict(mine[0], "per-source limit of half-done handshakes")
        if len(pending) >= self.max_incomplete:
            counts = Counter(self._slots[k].source for k in pending)
            crowded = next(k for k in pending if counts[self._slots[k].source] == max(counts.values()))
            pending.remove(crowded)
            self._evict(crowded, "limit of half-done handshakes")
        while pending and self._free_ids() < FREE_IDS_KEPT:
            self._evict(pending.pop(0), "no free connection identifier")
        if self._free_ids() < FREE_IDS_KEPT:
            peer_log.log(logging.INFO, "EDHOC: message_1 from %s refused: every connection identifier is in use",
                         source)
            raise HandshakeRefused()
        self._source = source
        try:
            yield
        finally:
            self._source = None

    # -- completion and use (hooked into each responder context) ----------------------------------

    def _slot(self, key: str, rid: bytes, *, complete: bool = False) -> None:
        self._slots[key] = _Slot(rid, self._clock(), self._source, complete)
        self._source = None
        self._freed.pop(rid, None)
        if self._ids is not None and not self._ids.reserve(rid):
            log.warning("EDHOC C_R h'%s' is an OSCORE recipient id already", rid.hex())

    def _track_reverse(self, key: str, value: Any) -> None:
        """A reverse-flow entry: half-done (its C_I) or a completed OSCORE context, in the same budgets."""
        done = hasattr(value, "recipient_id")
        self._slot(key, bytes(value.recipient_id if done else value.c_i), complete=done)
        if done:
            self._hook_use(key, value)
            self._settle(key)
        while len(self._pending()) > self.max_incomplete:  # stored without ``admitting``
            self._evict(next(k for k in self._pending() if k != key), "limit of half-done handshakes")

    def _hook_use(self, key: str, context: Any) -> None:
        unprotect = context.unprotect

        def unprotect_and_touch(*args: Any, **kwargs: Any) -> Any:
            result = unprotect(*args, **kwargs)
            if key in self._recent:  # authenticated use: least recently used goes first
                self._recent.move_to_end(key)
            return result

        context.unprotect = unprotect_and_touch

    def _track(self, key: str, context: Any) -> None:
        self._slot(key, bytes(context.recipient_id))
        offer = context._offer_message_3

        def offer_and_settle(message_3: bytes) -> Any:
            result = offer(message_3)
            self._completed(key)
            return result

        context._offer_message_3 = offer_and_settle
        self._hook_use(key, context)
        while len(self._pending()) > self.max_incomplete:  # stored without ``admitting``
            self._evict(next(k for k in self._pending() if k != key), "limit of half-done handshakes")

    def _untrack(self, key: str) -> None:
        slot = self._slots.pop(key, None)
        if slot is None:
            return
        self._recent.pop(key, None)
        if self._ids is not None:
            self._ids.unreserve(slot.rid)
        self._freed[slot.rid] = None
        self._freed.move_to_end(slot.rid)
        while len(self._freed) > CONNECTION_IDS:
            self._freed.popitem(last=False)

    def _completed(self, key: str) -> None:
        slot = self._slots.get(key)
        if slot is None or slot.complete or getattr(self.get(key), "_incomplete", True):
            return
        slot.complete = True
        self._settle(key)

    def _settle(self, key: str) -> None:
        self._recent[key] = None
        while len(self._recent) > self.max_responders:  # only an authenticated handshake displaces
            victim, why = self._displaced(keep=key)
            self._evict(victim, why)

    def _displaced(self, keep: str) -> tuple[str, str]:
        order = [k for k in self._recent if k != keep]
        claims = {k: tuple(getattr(self.get(k), "authenticated_claims", ())) for k in [*order, keep]}
        for k in order:
            if not any(self._live(c) for c in claims[k]):
                return k, "its token is gone"
        newest = {claims[k]: k for k in [*order, keep]}
        for k in order:
            if newest[claims[k]] != k:
                return k, "a newer context has its token"
        return order[0], f"limit of {self.max_responders} sessions, least recently used"

    # -- bookkeeping --------------------------------------------------------------------------------

    def _refresh(self) -> None:
        for key in [k for k, s in self._slots.items() if not s.complete]:
            self._completed(key)

    def _pending(self) -> list[str]:
        """Half-done handshakes, oldest first (the context itself says whether it completed)."""
        keys = [k for k, s in self._slots.items() if not s.complete and getattr(self.get(k), "_incomplete", True)]
        return sorted(keys, key=lambda k: self._slots[k].born)

    def _used_ids(self) -> set[bytes]:
        used: set[bytes] = super().find_all_used_contextless_oscore_kid()
        if self._ids is not None:
            used |= {c for c in CANDIDATE_IDS if c in self._ids}
        return used

    def _free_ids(self) -> int:
        return CONNECTION_IDS - len(self._used_ids() & set(CANDIDATE_IDS))

    def _evict(self, key: str, why: str) -> None:
        slot = self._slots.get(key)
        rid = slot.rid.hex() if slot else "?"
        peer_log.log(logging.INFO, "EDHOC: dropping responder context C_R h'%s' (%s)", rid, why)
        if key in self:
            del self[key]

    def forget_label(self, label: object) -> int:
        """Drop the contexts authenticated as ``label`` (its token expired or was replaced)."""
        return forget_responder_contexts(self, lambda e: label in e.claims)

    def forget_stale(self, max_age: float) -> int:
        """Drop handshakes that never completed within ``max_age`` seconds."""
        now = self._clock()
        return forget_responder_contexts(self, lambda e: not e.complete and now - e.born > max_age)
