"""The AS's embedded default store: one SQLite file, durable when each call returns.

Implements ``AsStore`` (clients with their OSCORE context and/or DTLS PSK, RSs with their token
key and public authentication key, grants, issued-token log with PoP kids, cti counter, OSCORE
sender sequence numbers per RFC 8613 §B.1.1) with stdlib ``sqlite3``. The file is created with
mode 0600 (it holds OSCORE master secrets, PSKs and token keys) and an existing file others can
read is refused. WAL journal with ``synchronous=FULL``: every write is one committed, fsynced
transaction before the call returns; ``next_cti`` hands out values from fsynced blocks, so it
never repeats one across crashes, and the token log alone commits with ``NORMAL`` (see there).
Tables are STRICT; scopes live in an ``ANY`` column so text scopes and AIF bytes (RFC 9237)
keep their type. ``PRAGMA user_version`` is the schema version, ``MIGRATIONS`` brings older
files up to date (each step recorded in ``schema_migrations``); a newer file, a damaged one or
a foreign SQLite database raises ``ConfigError``. One connection behind a lock serves all
threads. Neither exceptions nor logs carry secrets.
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
from ace.store import codec as rc
from ace.store.base import ClientRecord, Grant, IssuedToken, RsRecord

CTI_BLOCK = 64  # cti values reserved per durable write

logger = logging.getLogger(__name__)

APPLICATION_ID = 0x61636531  # "ace1": marks the file as an ace AS store
_OSC = """osc_ms BLOB, osc_sender_id BLOB, osc_recipient_id BLOB, osc_salt BLOB, osc_id_context BLOB,
    osc_alg INTEGER, osc_hkdf TEXT"""
_OSC_CHECK = "CHECK ((osc_ms IS NULL) = (osc_recipient_id IS NULL))"
_SCOPE_TYPE = "typeof(scope) IN ('text', 'blob')"

# version -> statements; append a new version, never edit a released one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT",
        f"""CREATE TABLE clients (client_id TEXT PRIMARY KEY, profiles BLOB NOT NULL, {_OSC},
            updated_at INTEGER NOT NULL, {_OSC_CHECK}) STRICT""",
        """CREATE UNIQUE INDEX clients_oscore_kid ON clients
            (osc_recipient_id, osc_id_context IS NULL, ifnull(osc_id_context, x''))
            WHERE osc_recipient_id IS NOT NULL""",
        f"""CREATE TABLE rs (audience TEXT PRIMARY KEY, rs_id TEXT NOT NULL, token_key BLOB NOT NULL,
            token_kind TEXT NOT NULL, token_alg INTEGER, profiles BLOB NOT NULL,
            token_lifetime INTEGER NOT NULL, {_OSC}, updated_at INTEGER NOT NULL, {_OSC_CHECK}) STRICT""",
        f"""CREATE TABLE grants (id INTEGER PRIMARY KEY, client_id TEXT NOT NULL, audience TEXT NOT NULL,
            scope ANY NOT NULL CHECK ({_SCOPE_TYPE}), is_default INTEGER NOT NULL,
            created_at INTEGER NOT NULL, UNIQUE (client_id, audience, scope)) STRICT""",
        f"""CREATE TABLE issued_tokens (seq INTEGER PRIMARY KEY, cti BLOB NOT NULL UNIQUE,
            client_id TEXT NOT NULL, audience TEXT NOT NULL, scope ANY CHECK (scope IS NULL OR {_SCOPE_TYPE}),
            issued_at INTEGER NOT NULL, expires_at INTEGER, token_hash BLOB NOT NULL) STRICT""",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT",
        "INSERT INTO counters (name, value) VALUES ('cti', 0)",
        """CREATE TABLE oscore_sequence (context_name TEXT PRIMARY KEY, value INTEGER NOT NULL,
            updated_at INTEGER NOT NULL) STRICT""",
    ),
    # DTLS PSK of clients (RFC 9202 §3.1), PoP kid of issued tokens. ALTER TABLE cannot add a
    # CHECK over two columns, so "psk_identity and psk both NULL or both set" is kept by the
    # triggers (any writer) and by codec.psk_from_columns (on read), not by a table constraint.
    2: (
        "ALTER TABLE clients ADD COLUMN psk_identity BLOB",
        "ALTER TABLE clients ADD COLUMN psk BLOB",
        "CREATE UNIQUE INDEX clients_psk_identity ON clients (psk_identity) WHERE psk_identity IS NOT NULL",
        *(f"""CREATE TRIGGER clients_psk_pair_{op} BEFORE {op} ON clients
            WHEN (NEW.psk_identity IS NULL) <> (NEW.psk IS NULL)
            BEGIN SELECT RAISE(ABORT, 'psk_identity and psk must be both NULL or both set'); END"""
          for op in ("insert", "update")),
        "ALTER TABLE issued_tokens ADD COLUMN pop_kid BLOB",
        """CREATE INDEX issued_tokens_pop_kid ON issued_tokens (client_id, audience, pop_kid)
            WHERE pop_kid IS NOT NULL""",
    ),
    # The RS's public authentication key (COSE_Key CBOR; EDHOC profile: rs_cnf), NULL if none.
    3: ("ALTER TABLE rs ADD COLUMN auth_key BLOB",),
}
SCHEMA_VERSION = max(MIGRATIONS)

_CLIENT_COLS = ", ".join(rc.CLIENT_COLUMNS)
_RS_COLS = ", ".join(rc.RS_COLUMNS)
_GRANT_COLS = ", ".join(rc.GRANT_COLUMNS)
_TOKEN_COLS = ", ".join(rc.TOKEN_COLUMNS)
FIND_BY_KID_SQL = f"""SELECT {_CLIENT_COLS} FROM clients
    WHERE osc_recipient_id = ? AND (osc_id_context IS NULL) = ? AND ifnull(osc_id_context, x'') = ?"""
FIND_BY_PSK_SQL = f"SELECT {_CLIENT_COLS} FROM clients WHERE psk_identity = ?"
FIND_TOKEN_BY_POP_KID_SQL = f"""SELECT {_TOKEN_COLS} FROM issued_tokens
    WHERE client_id = ? AND audience = ? AND pop_kid = ? ORDER BY seq DESC LIMIT 1"""


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


def _create_private(path: Path) -> None:
    """Create ``path`` with mode 0600 if absent; refuse an existing file others may read."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"{path}: store holds secrets but has mode {mode:o}; chmod 600 it") from None
        return
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create store ({exc.strerror})") from exc
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the new directory entry survives a crash too
    finally:
        os.close(dir_fd)


def _pragma_int(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute(f"PRAGMA {name}").fetchone()
    return rc.integer(row[0], name)


def _check_identity(conn: sqlite3.Connection, path: Path) -> int:
    """The file's schema version, after making sure it is an ace store we can read."""
    version = _pragma_int(conn, "user_version")
    app_id = _pragma_int(conn, "application_id")
    if app_id not in (0, APPLICATION_ID) or (app_id == 0 and conn.execute("SELECT 1 FROM sqlite_schema").fetchone()):
        raise ConfigError(f"{path}: an SQLite database but not an ace store")
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: store schema version {version} is newer than this ace knows ({SCHEMA_VERSION}); upgrade ace"
        )
    return version


class SqliteAsStore:
    """``AsStore`` over one SQLite file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._cti_next, self._cti_limit = 1, 0  # nothing reserved yet
        _create_private(self.path)
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
            return _pragma_int(self._conn(), "user_version")

    def integrity_check(self) -> bool:
        rows = self._rows("PRAGMA integrity_check")
        return rows == [("ok",)]

    # --- clients ------------------------------------------------------------------------

    def put_client(self, client: ClientRecord) -> None:
        """Refuses (ValueError) an OSCORE kid or a PSK identity another client already has."""
        rc.check_client(client)
        with self._tx() as conn:
            taken = []
            if client.oscore is not None:
                params = _kid_params(client.oscore.recipient_id, client.oscore.id_context)
                taken.append((conn.execute(FIND_BY_KID_SQL, params).fetchone(), rc.duplicate_kid_error))
            if client.psk is not None:
                taken.append((conn.execute(FIND_BY_PSK_SQL, (client.psk.identity,)).fetchone(), rc.duplicate_psk_error))
            for other, error in taken:
                if other is not None and other[0] != client.client_id:
                    raise error(client.client_id, rc.text(other[0], "client_id"))
            conn.execute(_PUT_CLIENT_SQL, (*rc.client_row(client), self._now()))

    def get_client(self, client_id: str) -> ClientRecord | None:
        rows = self._rows(f"SELECT {_CLIENT_COLS} FROM clients WHERE client_id = ?", (client_id,))
        return rc.client_from_row(rows[0]) if rows else None

    def find_client_by_oscore_kid(self, recipient_id: bytes, id_context: bytes | None) -> ClientRecord | None:
        rows = self._rows(FIND_BY_KID_SQL, _kid_params(recipient_id, id_context))
        return rc.client_from_row(rows[0]) if rows else None

    def find_client_by_psk_identity(self, identity: bytes) -> ClientRecord | None:
        rc.check_bytes(identity, "psk identity")
        rows = self._rows(FIND_BY_PSK_SQL, (identity,))
        return rc.client_from_row(rows[0]) if rows else None

    def list_clients(self) -> list[ClientRecord]:
        return [rc.client_from_row(r) for r in self._rows(f"SELECT {_CLIENT_COLS} FROM clients ORDER BY client_id")]

    def remove_client(self, client_id: str) -> bool:
        with self._tx() as conn:
            return conn.execute("DELETE FROM clients WHERE client_id = ?", (client_id,)).rowcount > 0

    # --- resource servers ---------------------------------------------------------------

    def put_rs(self, rs: RsRecord) -> None:
        rc.check_rs(rs)
        with self._tx() as conn:
            conn.execute(_PUT_RS_SQL, (*rc.rs_row(rs), self._now()))

    def get_rs(self, audience: str) -> RsRecord | None:
        rows = self._rows(f"SELECT {_RS_COLS} FROM rs WHERE audience = ?", (audience,))
        return rc.rs_from_row(rows[0]) if rows else None

    def list_rs(self) -> list[RsRecord]:
        return [rc.rs_from_row(r) for r in self._rows(f"SELECT {_RS_COLS} FROM rs ORDER BY audience")]

    def remove_rs(self, audience: str) -> bool:
        with self._tx() as conn:
            return conn.execute("DELETE FROM rs WHERE audience = ?", (audience,)).rowcount > 0

    # --- grants -------------------------------------------------------------------------

    def add_grant(self, grant: Grant) -> None:
        rc.check_grant(grant)
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
            rc.check_scope(scope)
            sql, params = sql + " AND scope = ?", (*params, scope)
        with self._tx() as conn:
            return conn.execute(sql, params).rowcount

    def grants_for(self, client_id: str, audience: str) -> list[Grant]:
        sql = f"SELECT {_GRANT_COLS} FROM grants WHERE client_id = ? AND audience = ? ORDER BY id"
        return [rc.grant_from_row(r) for r in self._rows(sql, (client_id, audience))]

    def list_grants(self) -> list[Grant]:
        return [rc.grant_from_row(r) for r in self._rows(f"SELECT {_GRANT_COLS} FROM grants ORDER BY id")]

    # --- cti counter and token log ------------------------------------------------------

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

    def log_token(self, token: IssuedToken) -> None:
        """Committed before returning, with ``synchronous=NORMAL``: survives a crash of the
        AS process (kill -9), while a power cut may lose the last entries (never the cti
        counter, which stays FULL). This saves one fsync per issued token."""
        rc.check_token(token)
        marks = ", ".join("?" * len(rc.TOKEN_COLUMNS))
        with self._lock:
            conn = self._conn()
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with self._tx() as tx:
                    tx.execute(f"INSERT INTO issued_tokens ({_TOKEN_COLS}) VALUES ({marks})", rc.token_row(token))
            except sqlite3.IntegrityError as exc:
                raise ValueError("a token with this cti is already logged") from exc
            finally:
                conn.execute("PRAGMA synchronous=FULL")

    def find_token_by_pop_kid(self, client_id: str, audience: str, pop_kid: bytes) -> IssuedToken | None:
        """The most recently logged token for ``client_id`` and ``audience`` bound to ``pop_kid``."""
        rc.check_bytes(pop_kid, "pop_kid")
        rows = self._rows(FIND_TOKEN_BY_POP_KID_SQL, (client_id, audience, pop_kid))
        return rc.token_from_row(rows[0]) if rows else None

    def issued_tokens(self, limit: int = 100) -> list[IssuedToken]:
        """The most recent ``limit`` tokens, newest first."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        sql = f"SELECT {_TOKEN_COLS} FROM issued_tokens ORDER BY seq DESC LIMIT ?"
        return [rc.token_from_row(r) for r in self._rows(sql, (limit,))]

    # --- OSCORE sender sequence numbers -------------------------------------------------

    def load_sequence_number(self, context_name: str) -> int | None:
        rows = self._rows("SELECT value FROM oscore_sequence WHERE context_name = ?", (context_name,))
        return rc.integer(rows[0][0], "oscore_sequence.value") if rows else None

    def persist_sequence_number(self, context_name: str, value: int) -> None:
        """Never lowers the stored value: a smaller one (a late writer) is ignored."""
        rc.check_sequence_number(context_name, value)
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO oscore_sequence (context_name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (context_name) DO UPDATE SET value = max(value, excluded.value), "
                "updated_at = excluded.updated_at",
                (context_name, value, self._now()),
            )

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
