"""The EDHOC credentials of the SQLite AS store: ``SqliteEdhocCredentials``, mixed into ``SqliteAsStore``.

An EDHOC credential (its kid, the RS's label for the binding, and its RFC 9679 thumbprint, the key
itself) belongs for good to one client: registered by the operator for that client (``audience``
NULL: the kid and the key at every audience), or else the client that first presented the key
anywhere (at any audience: the key is public, seen in EDHOC message_3; per audience, another client
could take it where its owner has not been yet), and the kid, per audience (short kids may repeat
across RSs), to the client that first presented it there. Not "whoever holds live tokens with it":
that let a client keep renewing tokens with another client's kid or key and lock that client out.
``edhoc_owner`` reads; ``claim_in`` records, inside the token log's transaction (``log_token``), so
a refused request records nothing. Bounded: one row per (audience, thumbprint, kid), at most
``limit`` first-presented ones per client and audience (its least recently used go first), and a
removed client's rows go with it (``remove_client``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator

from ace.store import checks
from ace.store import codec as rc
from ace.store.sqlite_schema import SqlitePart
from ace.tokens.keys import CoseKey
from ace.tokens.keys import thumbprint as key_thumbprint  # (``thumbprint`` names arguments here)

Rows = Callable[[str, tuple[object, ...]], list[tuple[object, ...]]]
_MATCH = "(thumbprint = ? OR kid = ?)"
REGISTERED_SQL = f"SELECT client_id, kid, thumbprint FROM edhoc_credentials WHERE audience IS NULL AND {_MATCH}"
# another client's first presentation: of the key at any audience, or of the kid at this one
OTHER_PRESENTER_SQL = """SELECT client_id FROM edhoc_credentials
    WHERE thumbprint = ? AND audience IS NOT NULL AND client_id <> ?
    UNION ALL SELECT client_id FROM edhoc_credentials WHERE audience = ? AND kid = ? AND client_id <> ? LIMIT 1"""
CLAIM_SQL = """INSERT INTO edhoc_credentials (audience, kid, thumbprint, client_id, last_used) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (audience, thumbprint, kid) DO UPDATE SET last_used = max(last_used, excluded.last_used)"""
EVICT_SQL = """DELETE FROM edhoc_credentials WHERE id IN (SELECT id FROM edhoc_credentials
    WHERE client_id = ? AND audience = ? ORDER BY last_used DESC, id DESC LIMIT -1 OFFSET ?)"""
FORGET_PRESENTED_SQL = f"DELETE FROM edhoc_credentials WHERE audience IS NOT NULL AND {_MATCH} AND client_id <> ?"
REGISTER_SQL = """INSERT INTO edhoc_credentials (audience, kid, thumbprint, client_id, last_used)
    VALUES (NULL, ?, ?, ?, ?)"""
LIST_SQL = """SELECT audience, kid, thumbprint FROM edhoc_credentials WHERE client_id = ?
    ORDER BY audience IS NOT NULL, audience, id"""


def owner(rows: Rows, client_id: str, audience: str, kid: bytes, thumbprint: bytes) -> tuple[str | None, bool]:
    """(another client the credential belongs to, or None; whether it is registered for ``client_id``)."""
    registered = [(rc.text(r[0], "client_id"), r[1], r[2]) for r in rows(REGISTERED_SQL, (thumbprint, kid))]
    other = next((c for c, _, _ in registered if c != client_id), None)
    if other is not None:
        return other, False
    if (client_id, kid, thumbprint) in registered:
        return None, True  # the operator's word: nothing to record
    found = rows(OTHER_PRESENTER_SQL, (thumbprint, client_id, audience, kid, client_id))
    return (rc.text(found[0][0], "client_id") if found else None), False


def claim_in(tx: sqlite3.Connection, client_id: str, audience: str, *, kid: bytes, thumbprint: bytes, now: int,
             limit: int) -> str | None:
    """``claim_edhoc_credential`` within the caller's transaction ``tx``."""
    other, registered = owner(lambda sql, p: tx.execute(sql, p).fetchall(), client_id, audience, kid, thumbprint)
    if other is None and not registered:
        tx.execute(CLAIM_SQL, (audience, kid, thumbprint, client_id, now))
        tx.execute(EVICT_SQL, (client_id, audience, limit))
    return other


class SqliteEdhocCredentials(SqlitePart):
    """The EDHOC-credential half of ``SqliteAsStore`` (which provides the connection and transactions)."""

    def edhoc_owner(self, client_id: str, audience: str, *, kid: bytes, thumbprint: bytes) -> str | None:
        checks.check_edhoc_credential(kid, thumbprint)
        return owner(self._rows, client_id, audience, kid, thumbprint)[0]

    def claim_edhoc_credential(self, client_id: str, audience: str, *, kid: bytes, thumbprint: bytes, now: int,
                               limit: int) -> str | None:
        checks.check_edhoc_credential(kid, thumbprint)
        checks.check_count(now, "now")
        checks.check_count(limit, "limit")
        with self._tx() as tx:
            return claim_in(tx, client_id, audience, kid=kid, thumbprint=thumbprint, now=now, limit=limit)

    def register_edhoc_credential(self, client_id: str, *, kid: bytes, thumbprint: bytes, now: int) -> None:
        checks.check_edhoc_credential(kid, thumbprint)
        checks.check_count(now, "now")
        with self._tx() as tx:
            registered = tx.execute(REGISTERED_SQL, (thumbprint, kid)).fetchall()
            other = next((rc.text(r[0], "client_id") for r in registered if r[0] != client_id), None)
            if other is not None:
                raise checks.duplicate_edhoc_error(client_id, other)
            tx.execute(FORGET_PRESENTED_SQL, (thumbprint, kid, client_id))
            if not any(r[1] == kid and r[2] == thumbprint for r in registered):
                tx.execute(REGISTER_SQL, (kid, thumbprint, client_id, now))

    def register_edhoc_key(self, client_id: str, key: CoseKey) -> None:
        """``register_edhoc_credential`` of ``key`` (its kid and RFC 9679 thumbprint), now: what
        ``ace policy add-client --edhoc-key`` does (there, with the squatters' tokens revoked), and
        ``ace init`` for its client, whose key is then never anyone else's."""
        if key.kid is None or key.has_private:
            raise ValueError("an EDHOC credential to register: a public key with a kid")
        self.register_edhoc_credential(client_id, kid=key.kid, thumbprint=key_thumbprint(key), now=self._now())

    def registered_edhoc_owner(self, *, kid: bytes, thumbprint: bytes) -> str | None:
        checks.check_edhoc_credential(kid, thumbprint)
        rows = self._rows(REGISTERED_SQL + " ORDER BY id LIMIT 1", (thumbprint, kid))
        return rc.text(rows[0][0], "client_id") if rows else None

    def edhoc_credentials(self, client_id: str) -> list[tuple[str | None, bytes, bytes]]:
        return list(_credentials(self._rows(LIST_SQL, (client_id,))))


def _credentials(rows: list[tuple[object, ...]]) -> Iterator[tuple[str | None, bytes, bytes]]:
    for audience, kid, thumbprint in rows:
        yield (None if audience is None else rc.text(audience, "audience"), rc.blob(kid, "kid"),
               rc.blob(thumbprint, "thumbprint"))
