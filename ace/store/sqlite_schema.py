"""The SQLite file of the AS store: its schema, as ``MIGRATIONS``, and its private creation.

``MIGRATIONS`` maps each schema version to the statements that bring a file of the version
before up to it; ``sqlite`` applies them in order, one transaction each. Versions are only ever
appended, never edited once released (files in the field were made by them). ``create_private``
makes the file with mode 0600 (it holds OSCORE master secrets, PSKs and token keys) and refuses
an existing one that others may read.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import AbstractContextManager
from pathlib import Path

from ace.errors import ConfigError
from ace.store import codec as rc

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
    # Named counters (``next_counter``) live in ``counters`` under ``COUNTER_PREFIX`` + name, no DDL.
    # The Token Revocation List (RFC 9770): AUTOINCREMENT so a position is never handed out twice,
    # not even after the newest rows were purged (diff-query cursors must only move forward).
    # Issued tokens by client and by audience (``find_tokens``), newest first straight from the index.
    4: (
        """CREATE TABLE revoked_tokens (position INTEGER PRIMARY KEY AUTOINCREMENT,
            token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) BETWEEN 1 AND 64),
            revoked_at INTEGER NOT NULL, expires_at INTEGER) STRICT""",
        "CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at) WHERE expires_at IS NOT NULL",
        "CREATE INDEX issued_tokens_client ON issued_tokens (client_id)",
        "CREATE INDEX issued_tokens_audience ON issued_tokens (audience)",
    ),
    # Reference tokens (RFC 9200 §5.9): the claims behind each opaque token, by the token's RFC 9770
    # hash; purged in expiry order, a bounded batch at a time (the index serves that order).
    5: (
        """CREATE TABLE reference_tokens (token_hash BLOB PRIMARY KEY CHECK (length(token_hash) BETWEEN 1 AND 64),
            audience TEXT NOT NULL, claims BLOB NOT NULL CHECK (length(claims) BETWEEN 1 AND 4096),
            expires_at INTEGER, created_at INTEGER NOT NULL) STRICT""",
        """CREATE INDEX reference_tokens_expires_at ON reference_tokens (expires_at, token_hash)
            WHERE expires_at IS NOT NULL""",
    ),
    # The token log by identity and liveness: the RFC 9679 thumbprint of a client's own PoP key
    # (EDHOC: a kid or key belongs to one client per audience while it has live tokens), expired
    # rows purged a bounded batch at a time in expiry order, live tokens counted per client and
    # audience, a requester's TRL hashes joined in SQL (by token_hash), PoP kids per audience.
    6: (
        "ALTER TABLE issued_tokens ADD COLUMN pop_thumbprint BLOB",
        "CREATE INDEX issued_tokens_expires_at ON issued_tokens (expires_at) WHERE expires_at IS NOT NULL",
        "CREATE INDEX issued_tokens_token_hash ON issued_tokens (token_hash)",
        "CREATE INDEX issued_tokens_live ON issued_tokens (client_id, audience, expires_at)",
        "CREATE INDEX issued_tokens_pop ON issued_tokens (audience, pop_kid) WHERE pop_kid IS NOT NULL",
        """CREATE INDEX issued_tokens_thumbprint ON issued_tokens (audience, pop_thumbprint)
            WHERE pop_thumbprint IS NOT NULL""",
    ),
    # EDHOC credentials (kid, RFC 9679 thumbprint) and the client each belongs to, for good: at an
    # audience, the client that first presented it (``claim_edhoc_credential``); with audience NULL,
    # registered by the operator for a client at every audience (``register_edhoc_credential``).
    # Seeded from the token log: each credential of a logged EDHOC token, to its first presenter.
    7: (
        """CREATE TABLE edhoc_credentials (id INTEGER PRIMARY KEY, audience TEXT,
            kid BLOB NOT NULL CHECK (length(kid) BETWEEN 1 AND 64),
            thumbprint BLOB NOT NULL CHECK (length(thumbprint) = 32), client_id TEXT NOT NULL,
            last_used INTEGER NOT NULL) STRICT""",
        "CREATE UNIQUE INDEX edhoc_credentials_key ON edhoc_credentials (audience, thumbprint, kid)",
        "CREATE INDEX edhoc_credentials_kid ON edhoc_credentials (audience, kid)",
        "CREATE INDEX edhoc_credentials_client ON edhoc_credentials (client_id, audience, last_used)",
        """INSERT INTO edhoc_credentials (audience, kid, thumbprint, client_id, last_used)
            SELECT t.audience, t.pop_kid, t.pop_thumbprint, t.client_id, max(t.issued_at) FROM issued_tokens t
            WHERE length(t.pop_kid) BETWEEN 1 AND 64 AND length(t.pop_thumbprint) = 32
            AND NOT EXISTS (SELECT 1 FROM issued_tokens o WHERE o.audience = t.audience AND o.seq < t.seq
                AND o.client_id <> t.client_id AND o.pop_thumbprint IS NOT NULL
                AND (o.pop_thumbprint = t.pop_thumbprint OR o.pop_kid = t.pop_kid))
            GROUP BY t.audience, t.pop_thumbprint, t.pop_kid, t.client_id ORDER BY min(t.seq)""",
    ),
    # Per-RS token format (``TokenFormat``: what a peer such as RISE ace-java needs, issue 11). Every
    # existing RS gets the defaults: the RFCs as written, exactly what the AS issued before.
    8: (
        *(f"ALTER TABLE rs ADD COLUMN {c} INTEGER NOT NULL DEFAULT {d} CHECK ({c} IN (0, 1))"
          for c, d in (("cose_tag", 0), ("cwt_tag", 0), ("include_sub", 1), ("exi", 0))),
        "ALTER TABLE rs ADD COLUMN time_unit TEXT NOT NULL DEFAULT 's'",
        "ALTER TABLE rs ADD COLUMN exi_cti TEXT NOT NULL DEFAULT 'bytes'",
        "ALTER TABLE rs ADD COLUMN salt_len INTEGER CHECK (salt_len IS NULL OR salt_len BETWEEN 0 AND 64)",
    ),
    # An EDHOC key (RFC 9679 thumbprint) first presented belongs to its first presenter at every
    # audience, not per audience (the kid stays per audience): looked up by thumbprint alone. Rows
    # of a key first presented by another client (at another audience, before) go: squats.
    9: (
        "CREATE INDEX edhoc_credentials_thumbprint ON edhoc_credentials (thumbprint)",
        """DELETE FROM edhoc_credentials WHERE audience IS NOT NULL AND client_id <> (SELECT o.client_id
            FROM edhoc_credentials o WHERE o.thumbprint = edhoc_credentials.thumbprint AND o.audience IS NOT NULL
            ORDER BY o.id LIMIT 1)""",
    ),
    # How a secret PoP key is encrypted to an RS whose tokens are readable (sign1, mac0): not at all
    # (every existing RS: what the AS did before), with a shared key or to the RS's public key (its
    # COSE_Key CBOR in encryption_key; checked by ``checks.check_encryption_key``).
    10: (
        """ALTER TABLE rs ADD COLUMN pop_key_encryption TEXT NOT NULL DEFAULT 'none'
            CHECK (pop_key_encryption IN ('none', 'shared', 'rs_public'))""",
        "ALTER TABLE rs ADD COLUMN encryption_key BLOB",
    ),
    # EDHOC profile at draft -11 and token upload: an RS's code-point preset (every existing RS:
    # the draft's), its own CCS, the EDHOC_Information it publishes, its /authz-info URI; the
    # token series (session_id) each logged token belongs to, found per client and audience.
    11: (
        "ALTER TABLE rs ADD COLUMN edhoc_preset TEXT NOT NULL DEFAULT 'draft-11'",
        "ALTER TABLE rs ADD COLUMN auth_cred BLOB CHECK (auth_cred IS NULL OR length(auth_cred) BETWEEN 1 AND 1024)",
        "ALTER TABLE rs ADD COLUMN edhoc_params BLOB",
        "ALTER TABLE rs ADD COLUMN upload_uri TEXT",
        "ALTER TABLE issued_tokens ADD COLUMN session_id BLOB",
        """CREATE INDEX issued_tokens_session ON issued_tokens (client_id, audience, session_id)
            WHERE session_id IS NOT NULL""",
    ),
}

COUNTER_PREFIX = "counter:"  # named counters in ``counters``; the cti counter is plain 'cti'


def pragma_int(conn: sqlite3.Connection, name: str) -> int:
    """An integer PRAGMA of the file (``user_version``, ``application_id``, ``data_version``)."""
    row = conn.execute(f"PRAGMA {name}").fetchone()
    return rc.integer(row[0], name)


def create_private(path: Path) -> None:
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


class SqlitePart:
    """What each part of ``SqliteAsStore`` (registry, token log, EDHOC credentials) uses of the
    whole, which provides it: the connection, its lock, transactions, queries and the clock."""

    _lock: threading.RLock

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        raise NotImplementedError

    def _now(self) -> int:
        raise NotImplementedError
