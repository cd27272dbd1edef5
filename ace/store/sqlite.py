"""The AS's embedded default store: one SQLite file, durable when each call returns.

Implements ``AsStore``, every role of ``base``, with stdlib ``sqlite3``: clients with their OSCORE
context and/or DTLS PSK, RSs with their token key and public authentication key, and grants
(``sqlite_registry``), the issued-token log with PoP kids (``sqlite_log``), EDHOC credentials per
client (``sqlite_cred``), and here the cti and named counters, the Token Revocation List of RFC
9770, reference tokens of RFC 9200 §5.9 and OSCORE sender sequence numbers per RFC 8613 §B.1.1.
The file is created with mode 0600 (it holds OSCORE master secrets, PSKs and token keys) and an
existing file others can read is refused. WAL journal with ``synchronous=FULL``: every write is one
committed, fsynced transaction before the call returns; ``next_cti`` hands out values from fsynced
blocks, so it never repeats one across crashes, ``next_counter`` commits each value before returning
it, and only the token log (``sqlite_log``) and the replay floors commit with ``NORMAL`` (see there).
Tables are STRICT; scopes live in an ``ANY`` column so text scopes and AIF bytes (RFC 9237) keep
their type. ``PRAGMA user_version`` is the schema version, ``MIGRATIONS`` (in ``sqlite_schema``,
with the file's private creation) brings older files up to date (each step recorded in
``schema_migrations``); a newer file, a damaged one or a foreign SQLite database raises
``ConfigError``. One connection behind a lock serves all threads. Neither exceptions nor logs carry
secrets.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from ace.errors import ConfigError
from ace.store import checks
from ace.store import codec as rc
from ace.store.base import ReferenceToken
from ace.store.sqlite_cred import SqliteEdhocCredentials
from ace.store.sqlite_log import FIND_TOKEN_BY_POP_KID_SQL, FIND_TOKENS_SQL, SqliteTokenLog
from ace.store.sqlite_registry import FIND_BY_KID_SQL, FIND_BY_PSK_SQL, SqliteRegistry
from ace.store.sqlite_schema import APPLICATION_ID, COUNTER_PREFIX, MIGRATIONS, create_private, pragma_int

__all__ = ["APPLICATION_ID", "FIND_BY_KID_SQL", "FIND_BY_PSK_SQL", "FIND_TOKENS_SQL", "FIND_TOKEN_BY_POP_KID_SQL",
           "MIGRATIONS", "SCHEMA_VERSION", "SqliteAsStore"]

CTI_BLOCK = 64  # cti values reserved per durable write

logger = logging.getLogger(__name__)

SCHEMA_VERSION = max(MIGRATIONS)

PERSIST_SEQUENCE_SQL = ("INSERT INTO oscore_sequence (context_name, value, updated_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (context_name) DO UPDATE SET value = max(value, excluded.value), "
                        "updated_at = excluded.updated_at")
NEXT_COUNTER_SQL = """INSERT INTO counters (name, value) VALUES (?, 1)
    ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"""
REVOKED_SINCE_SQL = "SELECT position, token_hash FROM revoked_tokens WHERE position > ? ORDER BY position LIMIT ?"
PURGE_REVOKED_SQL = "DELETE FROM revoked_tokens WHERE expires_at IS NOT NULL AND expires_at < ?"
IS_REVOKED_SQL = "SELECT 1 FROM revoked_tokens WHERE token_hash = ?"
_REF_COLS = ", ".join(rc.REFERENCE_COLUMNS)
GET_REFERENCE_SQL = f"SELECT {_REF_COLS} FROM reference_tokens WHERE token_hash = ?"
PURGE_REFERENCES_SQL = """DELETE FROM reference_tokens WHERE token_hash IN (SELECT token_hash FROM reference_tokens
    WHERE expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at, token_hash LIMIT ?)"""


def _check_identity(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version, after making sure it is an ace store we can read."""
    version = pragma_int(conn, "user_version")
    app_id = pragma_int(conn, "application_id")
    if app_id not in (0, APPLICATION_ID) or (app_id == 0 and conn.execute("SELECT 1 FROM sqlite_schema").fetchone()):
        raise ConfigError(f"{path}: an SQLite database but not an ace store")
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: store schema version {version} is newer than this ace knows ({SCHEMA_VERSION}); upgrade ace"
        )
    return version


class SqliteAsStore(SqliteRegistry, SqliteTokenLog, SqliteEdhocCredentials):
    """``AsStore`` over one SQLite file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._cti_next, self._cti_limit = 1, 0  # nothing reserved yet
        self._records: dict[tuple[str, str], object] = {}  # get_client/get_rs results (see _record)
        self._records_version = -1
        create_private(self.path)
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"{self.path}: cannot open store ({exc})") from exc
        try:
            self._setup()
        except ConfigError:
            self._abandon()
            raise
        except sqlite3.Error as exc:
            self._abandon()
            raise ConfigError(f"{self.path}: not a readable ace store ({exc})") from exc

    def _abandon(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _setup(self) -> None:
        conn = self._conn()
        version = _check_identity(conn, self.path)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            logger.warning("%s: WAL journal unavailable, using %s", self.path, mode)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")  # removed secrets do not linger in free pages
        conn.execute("PRAGMA trusted_schema=OFF")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            self._migrate(target)
        logger.info("opened AS store %s (schema version %d)", self.path, SCHEMA_VERSION)

    def _migrate(self, target: int) -> None:
        with self._tx() as conn:
            # the version read before BEGIN IMMEDIATE may be stale: another process opening the
            # same file may have migrated it since (its steps must not run twice)
            if pragma_int(conn, "user_version") >= target:
                return
            for statement in MIGRATIONS[target]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (target, self._now()))
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={target}")
        logger.info("%s: migrated store schema to version %d", self.path, target)

    # --- plumbing -----------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock())

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError("the store is closed")
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed (and fsynced) before the block's caller continues."""
        with self._lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._conn().execute(sql, params).fetchall())

    def schema_version(self) -> int:
        with self._lock:
            return pragma_int(self._conn(), "user_version")

    def integrity_check(self) -> bool:
        rows = self._rows("PRAGMA integrity_check")
        return rows == [("ok",)]

    # --- cti counter (the token log: ``sqlite_log``) ----------------------------

    def next_cti(self) -> int:
        """Never a value returned before, even across crashes: values are handed out from a
        block whose end was committed and fsynced first (a crash skips the rest of a block)."""
        with self._lock:
            if self._cti_next > self._cti_limit:
                with self._tx() as conn:
                    row = conn.execute("UPDATE counters SET value = value + ? WHERE name = 'cti' RETURNING value",
                                       (CTI_BLOCK,)).fetchone()
                if row is None:
                    raise ConfigError(f"{self.path}: store damaged: the cti counter is missing")
                self._cti_limit = rc.integer(row[0], "counters.value")
                self._cti_next = self._cti_limit - CTI_BLOCK + 1
            value = self._cti_next
            self._cti_next += 1
            return value

    # --- named counters -----------------------------------------------------------------

    def next_counter(self, name: str) -> int:
        """1, 2, ... per ``name``, each value committed with ``synchronous=FULL`` before it is
        returned (no blocks: the sequence has no gaps, and never repeats across crashes). Kept in
        ``counters`` under ``COUNTER_PREFIX`` + name, apart from the cti counter."""
        checks.check_counter_name(name)
        with self._tx() as conn:
            row = conn.execute(NEXT_COUNTER_SQL, (COUNTER_PREFIX + name,)).fetchone()
        return rc.integer(row[0], "counters.value")

    # --- token revocation list (RFC 9770) -----------------------------------------------

    def revoke_token(self, token_hash: bytes, *, revoked_at: int, expires_at: int | None) -> int | None:
        """The new entry's position, or None (nothing written) if ``token_hash`` is listed already.
        Positions come from AUTOINCREMENT: never reused, even after purges; a duplicate uses none."""
        checks.check_revocation(token_hash, revoked_at, expires_at)
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM revoked_tokens WHERE token_hash = ?", (token_hash,)).fetchone():
                return None
            row = conn.execute(
                "INSERT INTO revoked_tokens (token_hash, revoked_at, expires_at) VALUES (?, ?, ?) RETURNING position",
                (token_hash, revoked_at, expires_at),
            ).fetchone()
        return rc.integer(row[0], "revoked_tokens.position")

    def revoked_since(self, cursor: int, limit: int) -> list[tuple[int, bytes]]:
        checks.check_count(cursor, "cursor")
        checks.check_count(limit, "limit")
        return [rc.revocation_from_row(r) for r in self._rows(REVOKED_SINCE_SQL, (cursor, limit))]

    def purge_revoked(self, now: int) -> int:
        checks.check_count(now, "now")
        with self._tx() as conn:
            return conn.execute(PURGE_REVOKED_SQL, (now,)).rowcount

    def is_revoked(self, token_hash: bytes) -> bool:
        checks.check_bytes(token_hash, "token_hash")
        return bool(self._rows(IS_REVOKED_SQL, (token_hash,)))

    # --- reference tokens (RFC 9200 §5.9) -------------------------------------------------

    def put_reference(self, reference: ReferenceToken) -> None:
        checks.check_reference(reference)
        try:
            with self._tx() as conn:
                conn.execute(f"INSERT INTO reference_tokens ({_REF_COLS}, created_at) VALUES (?, ?, ?, ?, ?)",
                             (*rc.reference_row(reference), self._now()))
        except sqlite3.IntegrityError as exc:
            raise ValueError("a reference token with this hash is already stored") from exc

    def get_reference(self, token_hash: bytes) -> ReferenceToken | None:
        checks.check_bytes(token_hash, "token_hash")
        rows = self._rows(GET_REFERENCE_SQL, (token_hash,))
        return rc.reference_from_row(rows[0]) if rows else None

    def purge_references(self, now: int, limit: int) -> int:
        checks.check_count(now, "now")
        checks.check_count(limit, "limit")
        with self._tx() as conn:
            return conn.execute(PURGE_REFERENCES_SQL, (now, limit)).rowcount

    # --- OSCORE sender sequence numbers -------------------------------------------------

    def load_sequence_number(self, context_name: str) -> int | None:
        rows = self._rows("SELECT value FROM oscore_sequence WHERE context_name = ?", (context_name,))
        return rc.integer(rows[0][0], "oscore_sequence.value") if rows else None

    def persist_sequence_number(self, context_name: str, value: int) -> None:
        """Never lowers the stored value: a smaller one (a late writer) is ignored."""
        checks.check_sequence_number(context_name, value)
        with self._tx() as conn:
            conn.execute(PERSIST_SEQUENCE_SQL, (context_name, value, self._now()))

    def reserve_sequence_numbers(self, context_name: str, at_least: int, count: int) -> int:
        """Read and raised in one write transaction (BEGIN IMMEDIATE): another process reserving
        from this file gets a range after ours."""
        checks.check_sequence_number(context_name, at_least)
        with self._tx() as conn:
            row = conn.execute("SELECT value FROM oscore_sequence WHERE context_name = ?", (context_name,)).fetchone()
            start = max(at_least, rc.integer(row[0], "oscore_sequence.value") if row else 0)
            conn.execute(PERSIST_SEQUENCE_SQL, (context_name, start + count, self._now()))
        return start

    def persist_replay_floor(self, context_name: str, value: int) -> None:
        """``persist_sequence_number`` for a replay window's floor, written on every accepted request:
        committed with ``synchronous=NORMAL`` like the token log (survives a crash of the AS; a power
        cut may lose the last floors, as it may the last log entries), not an fsync per request."""
        checks.check_sequence_number(context_name, value)
        with self._normal_tx() as conn:
            conn.execute(PERSIST_SEQUENCE_SQL, (context_name, value, self._now()))

    # --- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()
                self._db = None

    def __enter__(self) -> SqliteAsStore:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
