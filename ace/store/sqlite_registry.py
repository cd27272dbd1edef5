"""The registry of the SQLite AS store: ``SqliteRegistry``, mixed into ``SqliteAsStore``.

Clients (refused when another client has their OSCORE recipient id and id context or their PSK
identity; the ``clients_oscore_kid`` index makes the first lookup one probe), RSs, and the
Resource Owner's grants (unique per client, audience and scope; text scopes and AIF bytes stay
apart). Client and RS records are cached until anyone writes to the file (``_record``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from ace.store import checks
from ace.store import codec as rc
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.sqlite_schema import SqlitePart, pragma_int

_R = TypeVar("_R")

_CLIENT_COLS = ", ".join(rc.CLIENT_COLUMNS)
_RS_COLS = ", ".join(rc.RS_COLUMNS)
_GRANT_COLS = ", ".join(rc.GRANT_COLUMNS)
FIND_BY_KID_SQL = f"""SELECT {_CLIENT_COLS} FROM clients
    WHERE osc_recipient_id = ? AND (osc_id_context IS NULL) = ? AND ifnull(osc_id_context, x'') = ?"""
FIND_BY_PSK_SQL = f"SELECT {_CLIENT_COLS} FROM clients WHERE psk_identity = ?"


def _upsert(table: str, columns: tuple[str, ...], stamp: str) -> str:
    marks = ", ".join("?" * (len(columns) + 1))
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*columns[1:], stamp))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}, {stamp}) VALUES ({marks}) "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}"
    )


_PUT_CLIENT_SQL = _upsert("clients", rc.CLIENT_COLUMNS, "updated_at")
_PUT_RS_SQL = _upsert("rs", rc.RS_COLUMNS, "updated_at")


def _kid_params(recipient_id: bytes, id_context: bytes | None) -> tuple[bytes, bool, bytes]:
    return (recipient_id, id_context is None, id_context or b"")


class SqliteRegistry(SqlitePart):
    """The clients, RSs and grants of ``SqliteAsStore`` (which provides the connection, lock and transactions)."""

    _records: dict[tuple[str, str], object]  # get_client/get_rs results (see _record)
    _records_version: int

    # --- clients ------------------------------------------------------------------------

    def put_client(self, client: ClientRecord) -> None:
        """Refuses (ValueError) an OSCORE kid or a PSK identity another client already has."""
        checks.check_client(client)
        with self._record_tx() as conn:
            taken = []
            if client.oscore is not None:
                params = _kid_params(client.oscore.recipient_id, client.oscore.id_context)
                taken.append((conn.execute(FIND_BY_KID_SQL, params).fetchone(), checks.duplicate_kid_error))
            if client.psk is not None:
                other = conn.execute(FIND_BY_PSK_SQL, (client.psk.identity,)).fetchone()
                taken.append((other, checks.duplicate_psk_error))
            for other, error in taken:
                if other is not None and other[0] != client.client_id:
                    raise error(client.client_id, rc.text(other[0], "client_id"))
            conn.execute(_PUT_CLIENT_SQL, (*rc.client_row(client), self._now()))

    def get_client(self, client_id: str) -> ClientRecord | None:
        return self._record(("client", client_id), f"SELECT {_CLIENT_COLS} FROM clients WHERE client_id = ?",
                            rc.client_from_row)

    def find_client_by_oscore_kid(self, recipient_id: bytes, id_context: bytes | None) -> ClientRecord | None:
        rows = self._rows(FIND_BY_KID_SQL, _kid_params(recipient_id, id_context))
        return rc.client_from_row(rows[0]) if rows else None

    def find_client_by_psk_identity(self, identity: bytes) -> ClientRecord | None:
        checks.check_bytes(identity, "psk identity")
        rows = self._rows(FIND_BY_PSK_SQL, (identity,))
        return rc.client_from_row(rows[0]) if rows else None

    def list_clients(self) -> list[ClientRecord]:
        return [rc.client_from_row(r) for r in self._rows(f"SELECT {_CLIENT_COLS} FROM clients ORDER BY client_id")]

    def remove_client(self, client_id: str) -> bool:
        """Its EDHOC credentials go too (registered or first presented: another may hold them now)."""
        with self._record_tx() as conn:
            conn.execute("DELETE FROM edhoc_credentials WHERE client_id = ?", (client_id,))
            return conn.execute("DELETE FROM clients WHERE client_id = ?", (client_id,)).rowcount > 0

    # --- resource servers ---------------------------------------------------------------

    def put_rs(self, rs: RsRecord) -> None:
        checks.check_rs(rs)
        with self._record_tx() as conn:
            conn.execute(_PUT_RS_SQL, (*rc.rs_row(rs), self._now()))

    def get_rs(self, audience: str) -> RsRecord | None:
        return self._record(("rs", audience), f"SELECT {_RS_COLS} FROM rs WHERE audience = ?", rc.rs_from_row)

    def _record(self, key: tuple[str, str], sql: str, from_row: Callable[[Any], _R]) -> _R | None:
        """A client or RS record, cached until anyone (another process included: SQLite's
        data_version; this store: ``_record_tx``) writes. Every token request reads the client and
        the RS; their keys take decoding, so this is worth one PRAGMA. Misses are not cached (the
        audience comes from the request: the cache must not grow with what clients send)."""
        with self._lock:
            version = pragma_int(self._conn(), "data_version")
            if version != self._records_version:
                self._records.clear()
                self._records_version = version
            cached = self._records.get(key)
            if cached is not None:
                return cast(_R, cached)
            rows = self._conn().execute(sql, (key[1],)).fetchall()
            if not rows:
                return None
            record = self._records[key] = from_row(rows[0])
            return record

    @contextmanager
    def _record_tx(self) -> Iterator[sqlite3.Connection]:
        """A write to clients or RSs: the cache is dropped once it is committed (data_version does
        not move for this connection's own writes)."""
        with self._tx() as conn:
            yield conn
        with self._lock:
            self._records.clear()

    def list_rs(self) -> list[RsRecord]:
        return [rc.rs_from_row(r) for r in self._rows(f"SELECT {_RS_COLS} FROM rs ORDER BY audience")]

    def remove_rs(self, audience: str) -> bool:
        with self._record_tx() as conn:
            return conn.execute("DELETE FROM rs WHERE audience = ?", (audience,)).rowcount > 0

    # --- grants -------------------------------------------------------------------------

    def add_grant(self, grant: Grant) -> None:
        checks.check_grant(grant)
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO grants ({_GRANT_COLS}, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (client_id, audience, scope) DO UPDATE SET is_default = excluded.is_default",
                (grant.client_id, grant.audience, grant.scope, int(grant.default), self._now()),
            )

    def revoke_grant(self, client_id: str, audience: str, scope: str | bytes | None = None) -> int:
        sql = "DELETE FROM grants WHERE client_id = ? AND audience = ?"
        params: tuple[object, ...] = (client_id, audience)
        if scope is not None:
            checks.check_scope(scope)
            sql, params = sql + " AND scope = ?", (*params, scope)
        with self._tx() as conn:
            return conn.execute(sql, params).rowcount

    def grants_for(self, client_id: str, audience: str) -> list[Grant]:
        sql = f"SELECT {_GRANT_COLS} FROM grants WHERE client_id = ? AND audience = ? ORDER BY id"
        return [rc.grant_from_row(r) for r in self._rows(sql, (client_id, audience))]

    def list_grants(self) -> list[Grant]:
        return [rc.grant_from_row(r) for r in self._rows(f"SELECT {_GRANT_COLS} FROM grants ORDER BY id")]
