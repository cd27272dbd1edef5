"""The issued-token log of the SQLite AS store: ``SqliteTokenLog``, mixed into ``SqliteAsStore``.

Logging (``synchronous=NORMAL``, see ``log_token``), the lookups by PoP kid, client and audience,
and those of schema 6 by identity and liveness: by cti (introspection decides by the token's
identity, not by the bytes presented), by RFC 9770 hash, live tokens per client and audience
(the AS's per-client limit), the clients holding a PoP kid or key thumbprint at an audience
(EDHOC: one client per credential), a requester's TRL hashes joined in SQL, and the bounded purge
of expired rows. "Live" is ``expires_at IS NULL OR expires_at > now``. A row whose hash is on the
TRL is never purged: the TRL's purge and its 'removed' diff items still need to know whose it
was; cti uniqueness needs no old rows (ctis come from counters that never repeat a value).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from ace.store import checks
from ace.store import codec as rc
from ace.store.base import EdhocClaim, IssuedToken
from ace.store.sqlite_cred import claim_in
from ace.store.sqlite_schema import SqlitePart

TOKEN_COLS = ", ".join(rc.TOKEN_COLUMNS)
HASH_CHUNK = 256  # token hashes per IN (...) lookup, well below SQLite's variable limit

FIND_TOKEN_BY_POP_KID_SQL = f"""SELECT {TOKEN_COLS} FROM issued_tokens
    WHERE client_id = ? AND audience = ? AND pop_kid = ? ORDER BY seq DESC LIMIT 1"""
FIND_TOKEN_BY_SESSION_SQL = f"""SELECT {TOKEN_COLS} FROM issued_tokens
    WHERE client_id = ? AND audience = ? AND session_id = ? ORDER BY seq DESC LIMIT 1"""
# find_tokens, by which filters are given: (client_id, audience) -> SQL
FIND_TOKENS_SQL = {
    (c, a): f"SELECT {TOKEN_COLS} FROM issued_tokens{where} ORDER BY seq DESC"
    for c, a, where in [(False, False, ""), (True, False, " WHERE client_id = ?"), (False, True, " WHERE audience = ?"),
                        (True, True, " WHERE client_id = ? AND audience = ?")]
}

_LIVE = "(t.expires_at IS NULL OR t.expires_at > ?)"
_NOT_REVOKED = "NOT EXISTS (SELECT 1 FROM revoked_tokens r WHERE r.token_hash = t.token_hash)"
FIND_BY_CTI_SQL = f"SELECT {TOKEN_COLS} FROM issued_tokens WHERE cti = ?"
COUNT_LIVE_SQL = f"""SELECT count(*) FROM (SELECT 1 FROM issued_tokens t
    WHERE t.client_id = ? AND t.audience = ? AND {_LIVE} AND {_NOT_REVOKED} LIMIT ?)"""
# only a client's own credentials (a thumbprint): OSCORE material ids and DTLS kids are another id space
POP_HOLDERS_SQL = f"""SELECT t.client_id FROM issued_tokens t WHERE t.audience = ? AND t.pop_kid = ?
    AND +t.pop_thumbprint IS NOT NULL AND {_LIVE}  -- (+: look up by the kid index)
    UNION SELECT t.client_id FROM issued_tokens t WHERE t.audience = ? AND t.pop_thumbprint = ? AND {_LIVE}
    ORDER BY 1 LIMIT {checks.MAX_POP_HOLDERS}"""
PURGE_TOKENS_SQL = f"""DELETE FROM issued_tokens WHERE seq IN (SELECT t.seq FROM issued_tokens t
    WHERE t.expires_at IS NOT NULL AND t.expires_at < ? AND {_NOT_REVOKED} ORDER BY t.expires_at LIMIT ?)"""
# revoked_hashes, by which filters are given: (client_id, audience) -> SQL
REVOKED_HASHES_SQL = {
    (c, a): f"""SELECT r.token_hash FROM revoked_tokens r WHERE EXISTS (SELECT 1 FROM issued_tokens t
        WHERE t.token_hash = r.token_hash{owner} AND {_LIVE}) ORDER BY r.position LIMIT ?"""
    for c, a, owner in [(False, False, ""), (True, False, " AND t.client_id = ?"), (False, True, " AND t.audience = ?"),
                        (True, True, " AND t.client_id = ? AND t.audience = ?")]
}


def find_by_hashes_sql(n: int) -> str:
    return f"SELECT seq, {TOKEN_COLS} FROM issued_tokens WHERE token_hash IN ({', '.join('?' * n)})"


class SqliteTokenLog(SqlitePart):
    """The token-log half of ``SqliteAsStore`` (which provides the connection, lock and transactions)."""

    def log_token(self, token: IssuedToken, *, purge_before: int | None = None, purge_limit: int = 0,
                  edhoc_claim: EdhocClaim | None = None) -> str | None:
        """Committed before returning, with ``synchronous=NORMAL``: survives a crash of the
        AS process (kill -9), while a power cut may lose the last entries (never the cti
        counter, which stays FULL). This saves one fsync per issued token. A purge asked for
        (``purge_tokens``) and the claim of the token's EDHOC credential go in the same transaction:
        no second commit per issued token, and no claim without its token. The credential another
        client owns: its id is returned and nothing is written."""
        checks.check_log_token(token, purge_before, purge_limit, edhoc_claim)
        marks = ", ".join("?" * len(rc.TOKEN_COLUMNS))
        try:
            with self._normal_tx() as tx:
                if edhoc_claim is not None:
                    c = edhoc_claim
                    other = claim_in(tx, token.client_id, token.audience, kid=c.kid, thumbprint=c.thumbprint,
                                     now=token.issued_at, limit=c.limit)
                    if other is not None:
                        return other  # (nothing was written: the transaction commits empty)
                tx.execute(f"INSERT INTO issued_tokens ({TOKEN_COLS}) VALUES ({marks})", rc.token_row(token))
                if purge_before is not None:
                    tx.execute(PURGE_TOKENS_SQL, (purge_before, purge_limit))
        except sqlite3.IntegrityError as exc:
            raise ValueError("a token with this cti is already logged") from exc
        return None

    @contextmanager
    def _normal_tx(self) -> Iterator[sqlite3.Connection]:
        """A token-log write committed with ``synchronous=NORMAL`` (see ``log_token``)."""
        with self._lock:
            conn = self._conn()
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._tx() as tx:
                    yield tx
            finally:
                conn.execute("PRAGMA synchronous=FULL")

    def find_token_by_pop_kid(self, client_id: str, audience: str, pop_kid: bytes) -> IssuedToken | None:
        """The most recently logged token for ``client_id`` and ``audience`` bound to ``pop_kid``."""
        checks.check_bytes(pop_kid, "pop_kid")
        rows = self._rows(FIND_TOKEN_BY_POP_KID_SQL, (client_id, audience, pop_kid))
        return rc.token_from_row(rows[0]) if rows else None

    def find_token_by_session_id(self, client_id: str, audience: str, session_id: bytes) -> IssuedToken | None:
        """The most recently logged token for ``client_id`` and ``audience`` in the series ``session_id``."""
        checks.check_bytes(session_id, "session_id")
        rows = self._rows(FIND_TOKEN_BY_SESSION_SQL, (client_id, audience, session_id))
        return rc.token_from_row(rows[0]) if rows else None

    def issued_tokens(self, limit: int = 100) -> list[IssuedToken]:
        """The most recent ``limit`` tokens, newest first."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        sql = f"SELECT {TOKEN_COLS} FROM issued_tokens ORDER BY seq DESC LIMIT ?"
        return [rc.token_from_row(r) for r in self._rows(sql, (limit,))]

    def find_tokens(self, client_id: str | None = None, audience: str | None = None) -> list[IssuedToken]:
        """Logged tokens of ``client_id`` and/or ``audience`` (None: any), newest first."""
        checks.check_token_filter(client_id, "client_id")
        checks.check_token_filter(audience, "audience")
        params = tuple(v for v in (client_id, audience) if v is not None)
        sql = FIND_TOKENS_SQL[(client_id is not None, audience is not None)]
        return [rc.token_from_row(r) for r in self._rows(sql, params)]

    def find_token_by_cti(self, cti: bytes) -> IssuedToken | None:
        checks.check_bytes(cti, "cti")
        rows = self._rows(FIND_BY_CTI_SQL, (cti,))
        return rc.token_from_row(rows[0]) if rows else None

    def find_tokens_by_hash(self, token_hashes: Collection[bytes]) -> list[IssuedToken]:
        checks.check_token_hashes(token_hashes)
        wanted, rows = list(dict.fromkeys(token_hashes)), []
        for i in range(0, len(wanted), HASH_CHUNK):
            chunk = tuple(wanted[i:i + HASH_CHUNK])
            rows += self._rows(find_by_hashes_sql(len(chunk)), chunk)
        return [rc.token_from_row(r[1:]) for r in sorted(rows, key=lambda r: rc.integer(r[0], "seq"))]

    def count_live_tokens(self, client_id: str, audience: str, now: int, limit: int) -> int:
        checks.check_count(now, "now")
        checks.check_count(limit, "limit")
        return rc.integer(self._rows(COUNT_LIVE_SQL, (client_id, audience, now, limit))[0][0], "count")

    def pop_holders(self, audience: str, now: int, *, pop_kid: bytes | None,
                    pop_thumbprint: bytes | None) -> list[str]:
        checks.check_count(now, "now")
        rows = self._rows(POP_HOLDERS_SQL, (audience, pop_kid, now, audience, pop_thumbprint, now))
        return [rc.text(r[0], "client_id") for r in rows]

    def purge_tokens(self, now: int, limit: int) -> int:
        """Committed with ``synchronous=NORMAL`` (a purge lost to a power cut is simply done again)."""
        checks.check_count(now, "now")
        checks.check_count(limit, "limit")
        with self._normal_tx() as tx:
            return tx.execute(PURGE_TOKENS_SQL, (now, limit)).rowcount

    def revoked_hashes(self, *, client_id: str | None = None, audience: str | None = None, now: int,
                       limit: int) -> list[bytes]:
        checks.check_token_filter(client_id, "client_id")
        checks.check_token_filter(audience, "audience")
        checks.check_count(now, "now")
        checks.check_count(limit, "limit")
        params = (*(v for v in (client_id, audience) if v is not None), now, limit)
        sql = REVOKED_HASHES_SQL[(client_id is not None, audience is not None)]
        return [rc.blob(r[0], "token_hash") for r in self._rows(sql, params)]
