"""An ``AsStore`` in process memory, for tests and the in-memory demo.

Same semantics as ``sqlite`` (the same argument checks from ``checks``, the same ordering of
lists, the same refusal of a second client with one OSCORE recipient id and id context or
one DTLS PSK identity and of an RS ``auth_key`` that is not a public key, the newest logged
token for a PoP kid, grants unique per client, audience and scope with text scopes and AIF
bytes distinct, sequence numbers that never go down, newest-first token log and its client and
audience filters, named counters 1, 2, ... with no gaps, TRL positions that a duplicate does not
use and a purge does not give back, the token log's lookups by cti, hash, liveness and PoP key and
its purge that spares tokens on the TRL), without durability: all is lost with the process. Records
are frozen, so they are kept as given. Thread-safe. Clients, RSs and grants: ``memory_registry``;
EDHOC credentials: ``memory_cred``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Collection, Iterator
from types import TracebackType

from ace.store import checks
from ace.store.base import EdhocClaim, IssuedToken, ReferenceToken
from ace.store.memory_cred import EdhocCredentialTable
from ace.store.memory_registry import MemoryRegistry


class MemoryAsStore(MemoryRegistry):
    """``AsStore`` in dictionaries (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._open = True
        self._clients, self._rs, self._grants = {}, {}, {}  # (``MemoryRegistry``)
        self._tokens: list[IssuedToken] = []
        self._ctis: set[bytes] = set()
        self._cti = 0
        self._sequence: dict[str, int] = {}
        self._counters: dict[str, int] = {}
        self._revoked: list[tuple[int, bytes, int | None]] = []  # (position, hash, expires_at), by position
        self._revoked_hashes: set[bytes] = set()
        self._last_position = 0  # as sqlite's AUTOINCREMENT: only ever goes up
        self._references: dict[bytes, ReferenceToken] = {}
        self._edhoc = EdhocCredentialTable()

    def _check_open(self) -> None:
        if not self._open:
            raise ValueError("the store is closed")

    def integrity_check(self) -> bool:
        self._check_open()
        return True

    # --- cti counter and token log ------------------------------------------------------

    def next_cti(self) -> int:
        with self._lock:
            self._check_open()
            self._cti += 1
            return self._cti

    def log_token(self, token: IssuedToken, *, purge_before: int | None = None, purge_limit: int = 0,
                  edhoc_claim: EdhocClaim | None = None) -> str | None:
        checks.check_log_token(token, purge_before, purge_limit, edhoc_claim)
        with self._lock:
            self._check_open()
            if token.cti in self._ctis:
                raise ValueError("a token with this cti is already logged")
            if edhoc_claim is not None:
                c = edhoc_claim
                other = self._edhoc.claim(token.client_id, token.audience, c.kid, c.thumbprint, token.issued_at,
                                          c.limit)
                if other is not None:
                    return other
            self._ctis.add(token.cti)
            self._tokens.append(token)
            if purge_before is not None:
                self.purge_tokens(purge_before, purge_limit)
            return None

    def find_token_by_pop_kid(self, client_id: str, audience: str, pop_kid: bytes) -> IssuedToken | None:
        """The most recently logged token for ``client_id`` and ``audience`` bound to ``pop_kid``."""
        checks.check_bytes(pop_kid, "pop_kid")
        return self._newest(client_id, audience, lambda t: t.pop_kid == pop_kid)

    def find_token_by_session_id(self, client_id: str, audience: str, session_id: bytes) -> IssuedToken | None:
        """The most recently logged token for ``client_id`` and ``audience`` in the series ``session_id``."""
        checks.check_bytes(session_id, "session_id")
        return self._newest(client_id, audience, lambda t: t.session_id == session_id)

    def _newest(self, client_id: str, audience: str, match: Callable[[IssuedToken], bool]) -> IssuedToken | None:
        with self._lock:
            self._check_open()
            return next((t for t in reversed(self._tokens) if t.client_id == client_id and t.audience == audience
                         and match(t)), None)

    def issued_tokens(self, limit: int = 100) -> list[IssuedToken]:
        """The most recent ``limit`` tokens, newest first."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        with self._lock:
            self._check_open()
            return self._tokens[::-1][:limit]

    def find_tokens(self, client_id: str | None = None, audience: str | None = None) -> list[IssuedToken]:
        """Logged tokens of ``client_id`` and/or ``audience`` (None: any), newest first."""
        checks.check_token_filter(client_id, "client_id")
        checks.check_token_filter(audience, "audience")
        with self._lock:
            self._check_open()
            return [t for t in reversed(self._tokens) if (client_id is None or t.client_id == client_id)
                    and (audience is None or t.audience == audience)]

    def find_token_by_cti(self, cti: bytes) -> IssuedToken | None:
        checks.check_bytes(cti, "cti")
        with self._lock:
            self._check_open()
            return next((t for t in self._tokens if t.cti == cti), None)

    def find_tokens_by_hash(self, token_hashes: Collection[bytes]) -> list[IssuedToken]:
        checks.check_token_hashes(token_hashes)
        wanted = set(token_hashes)
        with self._lock:
            self._check_open()
            return [t for t in self._tokens if t.token_hash in wanted]

    def _live(self, now: int) -> Iterator[IssuedToken]:
        return (t for t in self._tokens if t.expires_at is None or t.expires_at > now)

    def count_live_tokens(self, client_id: str, audience: str, now: int, limit: int) -> int:
        checks.check_count(now, "now")
        checks.check_count(limit, "limit")
        with self._lock:
            self._check_open()
            return min(limit, sum(1 for t in self._live(now) if t.client_id == client_id and t.audience == audience
                                  and t.token_hash not in self._revoked_hashes))

    def pop_holders(self, audience: str, now: int, *, pop_kid: bytes | None,
                    pop_thumbprint: bytes | None) -> list[str]:
        checks.check_count(now, "now")
        with self._lock:
            self._check_open()
            holders = {t.client_id for t in self._live(now) if t.audience == audience and t.pop_thumbprint is not None
                       and ((pop_kid is not None and t.pop_kid == pop_kid)
                or (pop_thumbprint is not None and t.pop_thumbprint == pop_thumbprint))}
            return sorted(holders)[:checks.MAX_POP_HOLDERS]

    def purge_tokens(self, now: int, limit: int) -> int:
        """As sqlite: the ``limit`` that expired first (ties in log order) go, never one on the TRL."""
        checks.check_count(now, "now")
        checks.check_count(limit, "limit")
        with self._lock:
            self._check_open()
            expired = sorted((t.expires_at, i) for i, t in enumerate(self._tokens) if t.expires_at is not None
                             and t.expires_at < now and t.token_hash not in self._revoked_hashes)
            doomed = {i for _, i in expired[:limit]}
            self._ctis -= {self._tokens[i].cti for i in doomed}
            self._tokens = [t for i, t in enumerate(self._tokens) if i not in doomed]
            return len(doomed)

    # --- EDHOC credentials (``memory_cred``) ---------------------------------------------

    def edhoc_owner(self, client_id: str, audience: str, *, kid: bytes, thumbprint: bytes) -> str | None:
        checks.check_edhoc_credential(kid, thumbprint)
        with self._lock:
            self._check_open()
            return self._edhoc.owner(client_id, audience, kid, thumbprint)[0]

    def claim_edhoc_credential(self, client_id: str, audience: str, *, kid: bytes, thumbprint: bytes, now: int,
                               limit: int) -> str | None:
        checks.check_edhoc_credential(kid, thumbprint)
        checks.check_count(now, "now")
        checks.check_count(limit, "limit")
        with self._lock:
            self._check_open()
            return self._edhoc.claim(client_id, audience, kid, thumbprint, now, limit)

    def register_edhoc_credential(self, client_id: str, *, kid: bytes, thumbprint: bytes, now: int) -> None:
        checks.check_edhoc_credential(kid, thumbprint)
        checks.check_count(now, "now")
        with self._lock:
            self._check_open()
            self._edhoc.register(client_id, kid, thumbprint, now)

    def registered_edhoc_owner(self, *, kid: bytes, thumbprint: bytes) -> str | None:
        checks.check_edhoc_credential(kid, thumbprint)
        with self._lock:
            self._check_open()
            return self._edhoc.registered_owner(kid, thumbprint)

    def edhoc_credentials(self, client_id: str) -> list[tuple[str | None, bytes, bytes]]:
        with self._lock:
            self._check_open()
            return self._edhoc.of(client_id)

    # --- named counters -----------------------------------------------------------------

    def next_counter(self, name: str) -> int:
        checks.check_counter_name(name)
        with self._lock:
            self._check_open()
            value = self._counters[name] = self._counters.get(name, 0) + 1
            return value

    # --- token revocation list (RFC 9770) -----------------------------------------------

    def revoke_token(self, token_hash: bytes, *, revoked_at: int, expires_at: int | None) -> int | None:
        """The new entry's position, or None (nothing recorded) if ``token_hash`` is listed already."""
        checks.check_revocation(token_hash, revoked_at, expires_at)
        with self._lock:
            self._check_open()
            if token_hash in self._revoked_hashes:
                return None
            self._last_position += 1
            self._revoked.append((self._last_position, token_hash, expires_at))
            self._revoked_hashes.add(token_hash)
            return self._last_position

    def revoked_since(self, cursor: int, limit: int) -> list[tuple[int, bytes]]:
        checks.check_count(cursor, "cursor")
        checks.check_count(limit, "limit")
        with self._lock:
            self._check_open()
            start = bisect.bisect_right(self._revoked, cursor, key=lambda e: e[0])
            return [(position, h) for position, h, _ in self._revoked[start:start + limit]]

    def purge_revoked(self, now: int) -> int:
        checks.check_count(now, "now")
        with self._lock:
            self._check_open()
            kept = [e for e in self._revoked if e[2] is None or e[2] >= now]
            purged = len(self._revoked) - len(kept)
            self._revoked = kept
            self._revoked_hashes = {h for _, h, _ in kept}
            return purged

    def is_revoked(self, token_hash: bytes) -> bool:
        checks.check_bytes(token_hash, "token_hash")
        with self._lock:
            self._check_open()
            return token_hash in self._revoked_hashes

    def revoked_hashes(self, *, client_id: str | None = None, audience: str | None = None, now: int,
                       limit: int) -> list[bytes]:
        checks.check_token_filter(client_id, "client_id")
        checks.check_token_filter(audience, "audience")
        checks.check_count(now, "now")
        checks.check_count(limit, "limit")
        with self._lock:
            self._check_open()
            mine = {t.token_hash for t in self._live(now) if (client_id is None or t.client_id == client_id)
                    and (audience is None or t.audience == audience)}
            return [h for _, h, _ in self._revoked if h in mine][:limit]

    # --- reference tokens (RFC 9200 §5.9) -------------------------------------------------

    def put_reference(self, reference: ReferenceToken) -> None:
        checks.check_reference(reference)
        with self._lock:
            self._check_open()
            if reference.token_hash in self._references:
                raise ValueError("a reference token with this hash is already stored")
            self._references[reference.token_hash] = reference

    def get_reference(self, token_hash: bytes) -> ReferenceToken | None:
        checks.check_bytes(token_hash, "token_hash")
        with self._lock:
            self._check_open()
            return self._references.get(token_hash)

    def purge_references(self, now: int, limit: int) -> int:
        """As sqlite: the ``limit`` that expired first (ties by hash) go."""
        checks.check_count(now, "now")
        checks.check_count(limit, "limit")
        with self._lock:
            self._check_open()
            expired = sorted((r.expires_at, h) for h, r in self._references.items()
                             if r.expires_at is not None and r.expires_at < now)
            for _, h in expired[:limit]:
                del self._references[h]
            return min(limit, len(expired))

    # --- OSCORE sender sequence numbers -------------------------------------------------

    def load_sequence_number(self, context_name: str) -> int | None:
        with self._lock:
            self._check_open()
            return self._sequence.get(context_name)

    def persist_sequence_number(self, context_name: str, value: int) -> None:
        """Never lowers the stored value: a smaller one (a late writer) is ignored."""
        checks.check_sequence_number(context_name, value)
        with self._lock:
            self._check_open()
            self._sequence[context_name] = max(value, self._sequence.get(context_name, value))

    def reserve_sequence_numbers(self, context_name: str, at_least: int, count: int) -> int:
        checks.check_sequence_number(context_name, at_least)
        with self._lock:
            self._check_open()
            start = max(at_least, self._sequence.get(context_name, 0))
            self._sequence[context_name] = start + count
            return start

    def persist_replay_floor(self, context_name: str, value: int) -> None:
        self.persist_sequence_number(context_name, value)

    # --- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._open = False

    def __enter__(self) -> MemoryAsStore:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
