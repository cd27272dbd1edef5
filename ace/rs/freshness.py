"""Freshness of tokens at an RS without a trusted clock (RFC 9200 §5.3.1, §5.10.3), sans I/O.

cnonce: the RS hands a fresh nonce out in its AS Request Creation Hints and accepts a token
carrying it once, while fresh. exi: a token valid for exi seconds from when the RS first sees
it, its cti the RS's id followed by a per-RS sequence number; the RS remembers the ctis it took
(no replay) and the highest sequence number of the exi tokens that expired, persisted, so that
after a restart (when its clock starts over) older tokens are still refused. Both bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ace.cbor.messages import CreationHints
from ace.errors import UNAUTHORIZED, DecodeError, RemoteError
from ace.rs.denied import AccessDenied
from ace.tokens.claims import AccessTokenClaims

if TYPE_CHECKING:
    from ace.rs.store import Binding

MAX_EXI_REMEMBERED = 4096  # ctis of exi tokens kept to refuse replays
CNONCE_LEN = 8
MAX_CNONCES = 256  # outstanding cnonces kept (RFC 9200 §5.3.1: the RS MUST store what it needs)


class CounterState(Protocol):
    """Where the RS keeps what must survive a restart (ace.store.seqno.FileSequenceStore fits)."""

    def load_sequence_number(self, context_name: str) -> int | None: ...
    def persist_sequence_number(self, context_name: str, value: int) -> None: ...


class Freshness:
    def __init__(self, rs_id: str, *, clock: Callable[[], float], rng: Callable[[int], bytes],
                 state: CounterState | None = None, cnonce_lifetime: float | None = None) -> None:
        self.prefix, self.clock, self.rng, self.state = rs_id.encode(), clock, rng, state
        self.cnonce_lifetime = cnonce_lifetime  # None: this RS does not use cnonce
        self._state_name = f"exi-expired/{rs_id}"
        stored = state.load_sequence_number(self._state_name) if state is not None else None
        self._highest = stored or 0  # read once: from now on only note_expired moves it
        self._exi_seen: OrderedDict[bytes, None] = OrderedDict()
        self._cnonces: OrderedDict[bytes, float] = OrderedDict()

    # -- cnonce -------------------------------------------------------------------------

    def new_cnonce(self) -> bytes | None:
        if self.cnonce_lifetime is None:
            return None
        nonce = self.rng(CNONCE_LEN)
        self._cnonces[nonce] = self.clock()
        while len(self._cnonces) > MAX_CNONCES:  # bounded: the oldest go first
            self._cnonces.popitem(last=False)
        return nonce

    def check_cnonce(self, cnonce: bytes | None, hints: Callable[[], CreationHints]) -> None:
        """RFC 9200 §5.10.1.1: a token for an RS that sent a cnonce must carry a fresh one of its
        own, each accepted once; else 4.01 (with hints carrying a new cnonce)."""
        if self.cnonce_lifetime is None:
            return
        issued = self._cnonces.pop(cnonce, None) if cnonce is not None else None
        if issued is None or self.clock() - issued > self.cnonce_lifetime:
            raise AccessDenied("token without a fresh cnonce of this RS", coap_code=UNAUTHORIZED, hints=hints())

    # -- exi ------------------------------------------------------------------------------

    def check_exi(self, claims: AccessTokenClaims) -> None:
        if claims.exi is None:
            return
        if claims.cti is None:  # RFC 9200 §5.10.3: the AS MUST give an exi token a cti
            raise DecodeError("token with exi but no cti")
        seq = self.sequence(claims.cti)
        if claims.cti in self._exi_seen or (seq is not None and seq <= self.highest_expired()):
            raise RemoteError("token with exi seen before or expired", error_code=None, coap_code=UNAUTHORIZED)

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
