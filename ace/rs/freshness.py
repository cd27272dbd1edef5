"""Freshness of tokens at an RS without a trusted clock (RFC 9200 §5.3.1, §5.10.3), sans I/O.

cnonce, stateless: the RS hands out ``stamp || tag`` in its AS Request Creation Hints, stamp its
own (relative, never decreasing) time when it issued the cnonce, tag a MAC of it under a secret
drawn at start. Handing one out stores nothing, so no number of unauthenticated requests can
displace a client's cnonce. A token's cnonce is taken when its tag is ours, it is younger than
the lifetime, and it was not taken before: the stamps taken stay in a bounded used-set until they
expire; when that is full the oldest leaves and raises a floor (stamps at or below it are refused),
so a replay never gets in. A restart draws a new secret: earlier cnonces are all refused.
exi: a token valid for exi seconds from when the RS first sees it, its cti the RS's id followed
by a per-RS sequence number; the RS remembers the ctis it took (no replay) and the highest
sequence number of the exi tokens that expired, persisted, so that after a restart (when its
clock starts over) older tokens are still refused. Both bounded.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from ace.errors import UNAUTHORIZED, DecodeError, TokenRefused
from ace.rs.denied import AccessDenied

if TYPE_CHECKING:
    from ace.messages import CreationHints
    from ace.rs.store import Binding
    from ace.store.base import SequenceNumberStore
    from ace.tokens.claims import AccessTokenClaims

MAX_EXI_REMEMBERED = 4096  # ctis of exi tokens kept to refuse replays
# cnonce = stamp (6 bytes) || tag (8 bytes). The stamp counts 1/65536 s since the RS started and
# is strictly increasing, so it both dates the cnonce and tells any two apart: 48 bits last 2^32 s
# (136 years of uptime) and give 65536 distinct cnonces a second before they run ahead of the clock.
# The tag is HMAC-SHA256 truncated to 64 bits, as the tags of OSCORE's default AES-CCM-16-64-128 and
# of HMAC 256/64: the secret never leaves the RS, so a forgery can only be tried online (a token from
# the AS per guess), each try succeeding with probability 2^-64.
TICKS = 1 << 16  # stamp units per second
STAMP_LEN = 6
TAG_LEN = 8
CNONCE_LEN = STAMP_LEN + TAG_LEN
SECRET_LEN = 32  # the HMAC-SHA256 key: as long as its output
MAX_LEAD = TICKS  # stamps may run ahead of the clock by 1 s at most: the rate limit of new cnonces
MAX_USED_CNONCES = 1024  # stamps of cnonces taken and not yet expired (beyond: the floor rises)


class Freshness:
    def __init__(self, rs_id: str, *, clock: Callable[[], float], rng: Callable[[int], bytes],
                 state: SequenceNumberStore | None = None, cnonce_lifetime: float | None = None,
                 max_used: int = MAX_USED_CNONCES) -> None:
        self.prefix, self.clock, self.rng, self.state = rs_id.encode(), clock, rng, state
        self.cnonce_lifetime = cnonce_lifetime  # None: this RS does not use cnonce
        self.max_used = max_used
        self._state_name = f"exi-expired/{rs_id}"
        stored = state.load_sequence_number(self._state_name) if state is not None else None
        self._highest = stored or 0  # read once: from now on only note_expired moves it
        self._exi_seen: OrderedDict[bytes, None] = OrderedDict()
        uses_cnonce = cnonce_lifetime is not None
        self._secret = rng(SECRET_LEN) if uses_cnonce else b""  # never leaves this object
        self._start = clock() if uses_cnonce else 0.0
        self._back = 0  # ticks added because the clock stepped back
        self._now_ticks = 0  # the latest _now()
        self._issued = 0  # the last stamp handed out
        self._floor = 0  # stamps at or below it are refused (the used-set overflowed)
        self._used: set[int] = set()  # stamps taken, not yet expired ...
        self._used_heap: list[int] = []  # ... the same, oldest first

    # -- cnonce -------------------------------------------------------------------------

    def new_cnonce(self) -> bytes | None:
        """A fresh cnonce for the AS Request Creation Hints (RFC 9200 §5.3.1); stores nothing. None
        when this RS does not use cnonce, or when it handed out more than the stamps can tell
        apart (65536 a second, in bursts of as many): such hints go out without one."""
        if self.cnonce_lifetime is None:
            return None
        now = self._now()
        stamp = max(now, self._issued + 1)
        if stamp - now > MAX_LEAD or stamp >= 1 << (8 * STAMP_LEN):
            return None
        self._issued = stamp
        raw = stamp.to_bytes(STAMP_LEN, "big")
        return raw + self._tag(raw)

    def check_cnonce(self, cnonce: bytes | None, hints: Callable[[], CreationHints], *, take: bool = True) -> None:
        """RFC 9200 §5.10.1.1: a token for an RS that sent a cnonce must carry a fresh one of its
        own, each accepted once; else 4.01 (with hints carrying a new cnonce). ``take=False``:
        checked only, not spent (the caller takes it when it commits)."""
        if self.cnonce_lifetime is None:
            return
        problem = self._take(cnonce, int(self.cnonce_lifetime * TICKS), take=take)
        if problem is not None:
            raise AccessDenied(f"token {problem}", coap_code=UNAUTHORIZED, hints=hints())

    def used_cnonces(self) -> int:
        """How many taken cnonces the RS keeps (to refuse their replay): at most ``max_used``."""
        return len(self._used)

    def _take(self, cnonce: bytes | None, lifetime: int, *, take: bool = True) -> str | None:
        """Why ``cnonce`` is refused, or None: then it is taken (if ``take``), and from now on refused."""
        if cnonce is None:
            return "without a cnonce"
        raw = cnonce[:STAMP_LEN]
        # RFC 9200 §5.3.1: the RS must be able to tell the cnonce is one it issued (constant time)
        if len(cnonce) != CNONCE_LEN or not hmac.compare_digest(cnonce[STAMP_LEN:], self._tag(raw)):
            return "with a cnonce this RS did not issue"
        stamp, now = int.from_bytes(raw, "big"), self._now()
        if now - stamp > lifetime:
            return "with an expired cnonce"
        self._forget_expired(now - lifetime)
        if stamp <= self._floor or stamp in self._used:  # RFC 9200 §5.10.1.1: each cnonce used once
            return "with a cnonce used before (or older than the used ones the RS still keeps)"
        if take:
            self._remember(stamp)
        return None

    def _now(self) -> int:
        """Ticks since the start on the injected clock, never decreasing: when the clock steps
        back, time here goes on from where it was (or old cnonces would live longer)."""
        t = int((self.clock() - self._start) * TICKS) + self._back
        if t < self._now_ticks:
            self._back += self._now_ticks - t
            t = self._now_ticks
        self._now_ticks = t
        return t

    def _tag(self, raw_stamp: bytes) -> bytes:
        return hmac.new(self._secret, raw_stamp, hashlib.sha256).digest()[:TAG_LEN]

    def _forget_expired(self, oldest: int) -> None:
        """Stamps older than ``oldest`` fail the lifetime check anyway: they leave the used-set."""
        while self._used_heap and self._used_heap[0] < oldest:
            self._used.discard(heapq.heappop(self._used_heap))

    def _remember(self, stamp: int) -> None:
        """Bounded: when full the oldest stamp leaves and raises the floor, so that it (and any
        older one) stays refused: a replay never gets in, a late unused cnonce may not either."""
        self._used.add(stamp)
        if len(self._used_heap) < self.max_used:
            heapq.heappush(self._used_heap, stamp)
            return
        gone = heapq.heappushpop(self._used_heap, stamp)
        self._used.discard(gone)
        self._floor = max(self._floor, gone)

    # -- exi ------------------------------------------------------------------------------

    def check_exi(self, claims: AccessTokenClaims) -> None:
        if claims.exi is None:
            return
        if claims.cti is None:  # RFC 9200 §5.10.3: the AS MUST give an exi token a cti
            raise DecodeError("token with exi but no cti")
        seq = self.sequence(claims.cti)
        if claims.cti in self._exi_seen or (seq is not None and seq <= self.highest_expired()):
            raise TokenRefused("token with exi seen before or expired")

    def sequence(self, cti: bytes) -> int | None:
        """The sequence number in an exi token's cti (our id, then the number), if it has ours."""
        if not cti.startswith(self.prefix) or len(cti) == len(self.prefix):
            return None
        return int.from_bytes(cti[len(self.prefix):], "big")

    def highest_expired(self) -> int:
        return self._highest

    def remember(self, claims: AccessTokenClaims) -> None:
        if claims.exi is not None and claims.cti is not None:
            self._exi_seen[claims.cti] = None
            while len(self._exi_seen) > MAX_EXI_REMEMBERED:  # bounded: the oldest go first
                self._exi_seen.popitem(last=False)

    def note_expired(self, binding: Binding) -> None:
        """Remember the highest sequence number of expired exi tokens (persisted: after a restart
        the RS has no clock to tell what is old)."""
        if binding.claims.exi is None or binding.claims.cti is None:
            return
        seq = self.sequence(binding.claims.cti)
        if seq is not None and seq > self._highest:
            self._highest = seq
            if self.state is not None:
                self.state.persist_sequence_number(self._state_name, seq)
