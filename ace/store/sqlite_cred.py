"""The EDHOC credentials of the SQLite AS store: ``EdhocCredentials``, mixed into ``SqliteAsStore``.

An EDHOC credential (its kid, the RS's label for the binding, and its RFC 9679 thumbprint, the key
itself) belongs for good to one client: registered by the operator for that client (``audience``
NULL: at every audience), or else, at an audience, to the client that first presented it there
(``claim_edhoc_credential``). Not "whoever holds live tokens with it": that let a client keep
renewing tokens with another client's kid or key and lock that client out. Bounded: one row per
(audience, thumbprint, kid), at most ``limit`` first-presented ones per client and audience (its
least recently used go first), and a removed client's rows go with it (``remove_client``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager

from ace.store import codec as rc

_MATCH = "(thumbprint = ? OR kid = ?)"
REGISTERED_SQL = f"SELECT client_id, kid, thumbprint FROM edhoc_credentials WHERE audience IS NULL AND {_MATCH}"
OTHER_PRESENTER_SQL = f"""SELECT client_id FROM edhoc_credentials
    WHERE audience = ? AND {_MATCH} AND client_id <> ? LIMIT 1"""
CLAIM_SQL = """INSERT INTO edhoc_credentials (audience, kid, thumbprint, client_id, last_used) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (audience, thumbprint, kid) DO UPDATE SET last_used = max(last_used, excluded.last_used)"""
EVICT_SQL = """DELETE FROM edhoc_credentials WHERE id IN (SELECT id FROM edhoc_credentials
    WHERE client_id = ? AND audience = ? ORDER BY last_used DESC, id DESC LIMIT -1 OFFSET ?)"""
FORGET_PRESENTED_SQL = f"DELETE FROM edhoc_credentials WHERE audience IS NOT NULL AND {_MATCH} AND client_id <> ?"
REGISTER_SQL = """INSERT INTO edhoc_credentials (audience, kid, thumbprint, client_id, last_used)
    VALUES (NULL, ?, ?, ?, ?)"""
LIST_SQL = """SELECT audience, kid, thumbprint FROM edhoc_credentials WHERE client_id = ?
    ORDER BY audience IS NOT NULL, audience, id"""


class EdhocCredentials:
    """The EDHOC-credential half of ``SqliteAsStore`` (which provides the connection and transactions)."""

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        raise NotImplementedError

    def claim_edhoc_credential(self, client_id: str, audience: str, *, kid: bytes, thumbprint: bytes, now: int,
                               limit: int) -> str | None:
        rc.check_edhoc_credential(kid, thumbprint)
        rc.check_count(now, "now")
        rc.check_count(limit, "limit")
        with self._tx() as tx:
            registered = [(rc.text(r[0], "client_id"), r[1], r[2])
                          for r in tx.execute(REGISTERED_SQL, (thumbprint, kid)).fetchall()]
            other = next((c for c, _, _ in registered if c != client_id), None)
            if other is not None:
                return other
            if (client_id, kid, thumbprint) in registered:
                return None  # the operator's word: nothing to record
            row = tx.execute(OTHER_PRESENTER_SQL, (audience, thumbprint, kid, client_id)).fetchone()
            if row is not None:
                return rc.text(row[0], "client_id")
            tx.execute(CLAIM_SQL, (audience, kid, thumbprint, client_id, now))
            tx.execute(EVICT_SQL, (client_id, audience, limit))
        return None

    def register_edhoc_credential(self, client_id: str, *, kid: bytes, thumbprint: bytes, now: int) -> None:
        rc.check_edhoc_credential(kid, thumbprint)
        rc.check_count(now, "now")
        with self._tx() as tx:
            registered = tx.execute(REGISTERED_SQL, (thumbprint, kid)).fetchall()
            other = next((rc.text(r[0], "client_id") for r in registered if r[0] != client_id), None)
            if other is not None:
                raise rc.duplicate_edhoc_error(client_id, other)
            tx.execute(FORGET_PRESENTED_SQL, (thumbprint, kid, client_id))
            if not any(r[1] == kid and r[2] == thumbprint for r in registered):
                tx.execute(REGISTER_SQL, (kid, thumbprint, client_id, now))

    def registered_edhoc_owner(self, *, kid: bytes, thumbprint: bytes) -> str | None:
        rc.check_edhoc_credential(kid, thumbprint)
        rows = self._rows(REGISTERED_SQL + " ORDER BY id LIMIT 1", (thumbprint, kid))
        return rc.text(rows[0][0], "client_id") if rows else None

    def edhoc_credentials(self, client_id: str) -> list[tuple[str | None, bytes, bytes]]:
        return list(_credentials(self._rows(LIST_SQL, (client_id,))))


def _credentials(rows: list[tuple[object, ...]]) -> Iterator[tuple[str | None, bytes, bytes]]:
    for audience, kid, thumbprint in rows:
        yield (None if audience is None else rc.text(audience, "audience"), rc.blob(kid, "kid"),
               rc.blob(thumbprint, "thumbprint"))
