"""What only the SQLite store's file has to show: every field identical after close/reopen, mode
0600 for the file and its journal, the schema version and migrations recorded, and refusal
(ConfigError) of newer, foreign, garbage, unreadable and world-readable files.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from store_support import EC_KEY, FULL_SECRET, SECRET, token
from support import NOW, fixed_clock

from ace.cbor.labels import KeyType
from ace.errors import ConfigError
from ace.store import sqlite as sqlite_mod
from ace.store.base import AsStore, ClientRecord, Grant, IssuedToken, RsRecord
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SCHEMA_VERSION, SqliteAsStore
from ace.tokens.keys import CoseKey


def populate(s: AsStore) -> None:
    s.put_client(ClientRecord(client_id="c1", oscore=FULL_SECRET, profiles=(2, 1)))
    s.put_client(ClientRecord(client_id="c2", oscore=SECRET))
    s.put_client(ClientRecord(client_id="c3"))
    odd = CoseKey(kty=KeyType.SYMMETRIC, k=b"\x07" * 32, kid=b"m", alg=5, key_ops=(9, 10), base_iv=b"\x01" * 7,
                  extra=((-70000, "note"),))
    s.put_rs(RsRecord(audience="rs1", rs_id="one", token_key=odd, token_kind="mac0", token_alg=5))
    s.put_rs(RsRecord(audience="rs2", rs_id="two", token_key=EC_KEY, token_kind="sign1", token_alg=None,
                      profiles=(1, 2), token_lifetime=1, oscore=FULL_SECRET))
    for g in [Grant(client_id="c1", audience="rs1", scope="r w", default=True),
              Grant(client_id="c1", audience="rs1", scope=b"\x82\x61/\x01"),
              Grant(client_id="c2", audience="rs2", scope="")]:
        s.add_grant(g)
    s.log_token(token(b"\x00\x01", None))
    s.log_token(IssuedToken(cti=b"\x02", client_id="c2", audience="rs2", scope=b"\xa0", issued_at=0, expires_at=2**40,
                            token_hash=b""))
    s.persist_sequence_number("ctx", 123)
    for _ in range(5):
        s.next_cti()


def snapshot(s: AsStore) -> tuple[object, ...]:
    return (s.list_clients(), s.list_rs(), s.list_grants(), s.issued_tokens(),
            s.load_sequence_number("ctx"), s.find_client_by_oscore_kid(b"\x02", b"\x37\xcb"))


def test_every_field_survives_reopen(db: Path) -> None:
    mem = MemoryAsStore()
    populate(mem)
    with SqliteAsStore(db) as s:
        populate(s)
        before = snapshot(s)
    assert before == snapshot(mem)
    with SqliteAsStore(db) as s:
        assert snapshot(s) == before
        # after a reopen the counter continues past the reserved block: never a value given before
        assert s.next_cti() > 5 and s.integrity_check()


def test_file_and_journal_are_private(db: Path) -> None:
    old = os.umask(0)
    try:
        with SqliteAsStore(db) as s:
            s.put_client(ClientRecord(client_id="c", oscore=SECRET))
            files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
            assert {p.name for p in files} >= {"as.db", "as.db-wal"}
            assert all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    finally:
        os.umask(old)


def test_schema_version_and_migrations_recorded(db: Path) -> None:
    with SqliteAsStore(db, clock=fixed_clock()) as s:
        assert s.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("PRAGMA application_id").fetchone() == (sqlite_mod.APPLICATION_ID,)
        rows = raw.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert rows == [(v, NOW) for v in range(1, SCHEMA_VERSION + 1)]


def test_older_file_is_migrated(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SqliteAsStore(db) as s:
        s.add_grant(Grant(client_id="c", audience="a", scope=b"\x01"))
    nxt = SCHEMA_VERSION + 1
    monkeypatch.setitem(sqlite_mod.MIGRATIONS, nxt, ("ALTER TABLE grants ADD COLUMN note TEXT",))
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", nxt)
    with SqliteAsStore(db) as s:
        assert s.schema_version() == nxt
        assert s.list_grants() == [Grant(client_id="c", audience="a", scope=b"\x01")]


def test_newer_schema_version_refused(db: Path) -> None:
    SqliteAsStore(db).close()
    with sqlite3.connect(db) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="newer than this ace knows"):
        SqliteAsStore(db)


def private_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def test_garbage_file_refused(db: Path) -> None:
    private_file(db, b"not a database, just some bytes " * 200)
    with pytest.raises(ConfigError, match="not a readable ace store"):
        SqliteAsStore(db)


def test_foreign_sqlite_database_refused(db: Path) -> None:
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE t (x)")
    db.chmod(0o600)
    with pytest.raises(ConfigError, match="not an ace store"):
        SqliteAsStore(db)


def test_readable_by_others_refused(db: Path) -> None:
    SqliteAsStore(db).close()
    db.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        SqliteAsStore(db)


def test_missing_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot create store"):
        SqliteAsStore(tmp_path / "nope" / "as.db")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_refused(db: Path) -> None:
    SqliteAsStore(db).close()
    db.chmod(0o000)
    with pytest.raises(ConfigError):
        SqliteAsStore(db)
