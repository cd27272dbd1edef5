"""Migrating each old schema file in ``data/`` keeps every record (row by row, and read back
through the store against a memory store filled the same way), the migrated file takes the new
kinds of records, and two processes opening an old file at once migrate it once.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from store_support import (
    AUTH,
    AUTH_PRIVATE,
    FILTERS,
    RS_AS,
    TA,
    TB,
    TC,
    TX,
    TY,
    TZ,
    V1_CLOCK,
    V1_FILE,
    V1_SECRET,
    V2_CLOCK,
    V2_FILE,
    V3_CLOCK,
    V3_FILE,
    V3_TOKENS,
    V4_CLOCK,
    V4_FILE,
    V4_REVOKED,
    V4_TOKEN,
    V5_CLOCK,
    V5_FILE,
    V5_TOKENS,
    V6_CLOCK,
    V6_FILE,
    V7_FILE,
    V7_RS,
    V8_FILE,
    claim,
    copy_private,
    dump,
    h,
    populate_v1,
    populate_v2,
    populate_v2_file,
    populate_v3_file,
    populate_v4_file,
    populate_v5_file,
    populate_v6_file,
    populate_v7_file,
    ref,
    snapshot,
    snapshot3,
    snapshot4,
    snapshot5,
    snapshot6,
    snapshot8,
    tok,
)
from support import NOW, fixed_clock

from ace.store import sqlite as sqlite_mod
from ace.store.base import ACE_JAVA, RFC_FORMAT, ClientRecord
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore

# --- from version 1 -----------------------------------------------------------------------


def test_v1_file_is_migrated_keeping_everything(v1_file: Path) -> None:
    v1_rows = dump(v1_file)
    expected = MemoryAsStore()
    populate_v1(expected)
    with SqliteAsStore(v1_file, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 2 and s.integrity_check()
        assert snapshot(s) == snapshot(expected)  # every record identical, read through the store
        assert s.next_cti() > 64  # past the block the version-1 file had reserved
    with sqlite3.connect(v1_file) as raw:
        assert raw.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall() == [
            (1, V1_CLOCK), *((v, NOW) for v in range(2, sqlite_mod.SCHEMA_VERSION + 1))]  # on to the newest
        assert raw.execute("PRAGMA user_version").fetchone() == (sqlite_mod.SCHEMA_VERSION,)
        assert raw.execute("SELECT count(*) FROM clients WHERE psk_identity IS NOT NULL OR psk IS NOT NULL"
                           ).fetchone() == (0,)
        assert raw.execute("SELECT count(*) FROM issued_tokens WHERE pop_kid IS NOT NULL").fetchone() == (0,)
    raw.close()
    # and row by row, the version-1 columns hold exactly what they held (bar the cti counter and migrations)
    after = dump(v1_file, v1_rows)
    assert {t for t in v1_rows if v1_rows[t] != after[t]} == {"counters", "schema_migrations"}
    assert after["schema_migrations"][1][:1] == v1_rows["schema_migrations"][1]
    assert len(v1_rows["clients"][1]) == 3 and len(v1_rows["issued_tokens"][1]) == 3


def test_migrated_file_takes_v2_records(v1_file: Path) -> None:
    expected = MemoryAsStore()
    populate_v1(expected)
    populate_v2(expected)
    with SqliteAsStore(v1_file) as s:
        populate_v2(s)
        with pytest.raises(ValueError, match="already used by 'c1'"):  # v1 OSCORE kids still unique
            s.put_client(ClientRecord(client_id="x", oscore=V1_SECRET))
    with SqliteAsStore(v1_file) as s:
        assert snapshot(s) == snapshot(expected) and s.schema_version() == sqlite_mod.SCHEMA_VERSION


def test_v1_file_is_migrated_past_v3(tmp_path: Path) -> None:
    v1 = copy_private(V1_FILE, tmp_path / "v1.db")
    expected = MemoryAsStore()
    populate_v1(expected)
    with SqliteAsStore(v1, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 3 and s.integrity_check()
        assert snapshot(s) == snapshot(expected)
        assert [r.auth_key for r in s.list_rs()] == [None, None]
    with sqlite3.connect(v1) as raw:
        assert raw.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall() == [
            (1, V1_CLOCK), *((v, NOW) for v in range(2, sqlite_mod.SCHEMA_VERSION + 1))]
    raw.close()


def test_v1_file_is_migrated_to_v4(tmp_path: Path) -> None:
    v1 = copy_private(V1_FILE, tmp_path / "v1.db")
    v1_rows = dump(v1)
    expected = MemoryAsStore()
    populate_v1(expected)
    with SqliteAsStore(v1, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 4 and s.integrity_check()
        assert snapshot(s) == snapshot(expected)
        assert [s.find_tokens(c, a) for c, a in FILTERS] == [expected.find_tokens(c, a) for c, a in FILTERS]
        assert len(s.find_tokens("c1", "rs1")) == 2
    after = dump(v1, v1_rows)
    assert {t for t in v1_rows if v1_rows[t] != after[t]} == {"schema_migrations"}
    assert after["schema_migrations"][1] == [(1, V1_CLOCK),
                                             *((v, NOW) for v in range(2, sqlite_mod.SCHEMA_VERSION + 1))]
    with SqliteAsStore(v1) as s:
        assert s.revoke_token(b"\x11" * 32, revoked_at=NOW, expires_at=None) == 1 and s.next_counter("x") == 1
    with SqliteAsStore(v1) as s:
        assert snapshot(s) == snapshot(expected) and s.revoked_since(0, 5) == [(1, b"\x11" * 32)]


# --- from version 2 -----------------------------------------------------------------------


def test_v2_file_is_migrated_keeping_everything(tmp_path: Path) -> None:
    v2 = copy_private(V2_FILE, tmp_path / "v2.db")
    v2_rows = dump(v2)
    expected = MemoryAsStore()
    populate_v2_file(expected)
    with SqliteAsStore(v2, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 3 and s.integrity_check()
        assert snapshot3(s) == snapshot3(expected)  # every record identical, read through the store
        assert all(r.auth_key is None for r in s.list_rs())
        assert s.next_cti() > 64  # past the block the version-2 file had reserved
    with sqlite3.connect(v2) as raw:
        assert raw.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall() == [
            (1, V2_CLOCK), (2, V2_CLOCK), *((v, NOW) for v in range(3, sqlite_mod.SCHEMA_VERSION + 1))]
        assert raw.execute("PRAGMA user_version").fetchone() == (sqlite_mod.SCHEMA_VERSION,)
        assert raw.execute("SELECT count(*) FROM rs WHERE auth_key IS NOT NULL").fetchone() == (0,)
    raw.close()
    # row by row, the version-2 columns hold exactly what they held (bar the cti counter and migrations)
    after = dump(v2, v2_rows)
    assert {t for t in v2_rows if v2_rows[t] != after[t]} == {"counters", "schema_migrations"}
    assert len(v2_rows["rs"][1]) == 3 and len(v2_rows["grants"][1]) == 4


def test_migrated_file_takes_auth_keys(tmp_path: Path) -> None:
    v2 = copy_private(V2_FILE, tmp_path / "v2.db")
    expected = MemoryAsStore()
    populate_v2_file(expected)
    rs3 = expected.get_rs("rs3")
    assert rs3 is not None
    with_key = replace(rs3, auth_key=AUTH)
    expected.put_rs(with_key)
    with SqliteAsStore(v2) as s:
        s.put_rs(with_key)
        with pytest.raises(ValueError, match="private part"):
            s.put_rs(replace(with_key, auth_key=AUTH_PRIVATE))
    with SqliteAsStore(v2) as s:
        assert snapshot3(s) == snapshot3(expected) and s.get_rs("rs3") == with_key
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION


# --- from versions 3 to 7 -----------------------------------------------------------------


def test_v3_file_is_migrated_keeping_everything(tmp_path: Path) -> None:
    v3 = copy_private(V3_FILE, tmp_path / "v3.db")
    v3_rows = dump(v3)
    expected = MemoryAsStore()
    populate_v3_file(expected)
    SqliteAsStore(v3, clock=fixed_clock()).close()  # only the migration writes
    after = dump(v3, v3_rows)
    assert {t for t in v3_rows if v3_rows[t] != after[t]} == {"schema_migrations"}  # row by row as they were
    assert after["schema_migrations"][1] == [(1, V3_CLOCK), (2, V3_CLOCK), (3, V3_CLOCK),
                                             *((v, NOW) for v in range(4, sqlite_mod.SCHEMA_VERSION + 1))]
    with SqliteAsStore(v3, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 4 and s.integrity_check()
        assert snapshot4(s) == snapshot4(expected)  # every record identical, read through the store
        assert s.find_tokens("e1", "rs4") == [V3_TOKENS[3], V3_TOKENS[0]]
        assert s.next_cti() > 64  # past the block the version-3 file had reserved
        assert s.next_counter("rs4") == 1 and s.next_counter("cti") == 1
        assert s.revoked_since(0, 10) == []
        assert s.revoke_token(V3_TOKENS[3].token_hash, revoked_at=NOW, expires_at=V3_TOKENS[3].expires_at) == 1
    with SqliteAsStore(v3) as s:
        assert snapshot4(s) == snapshot4(expected) and s.revoked_since(0, 10) == [(1, V3_TOKENS[3].token_hash)]
        assert s.next_counter("rs4") == 2


def test_v4_file_is_migrated_keeping_everything(tmp_path: Path) -> None:
    v4 = copy_private(V4_FILE, tmp_path / "v4.db")
    v4_rows = dump(v4)
    expected = MemoryAsStore()
    populate_v4_file(expected)
    SqliteAsStore(v4, clock=fixed_clock()).close()  # only the migration writes
    after = dump(v4, v4_rows)
    assert {t for t in v4_rows if v4_rows[t] != after[t]} == {"schema_migrations"}  # row by row as they were
    assert after["schema_migrations"][1] == [*((v, V4_CLOCK) for v in (1, 2, 3, 4)),
                                             *((v, NOW) for v in range(5, sqlite_mod.SCHEMA_VERSION + 1))]
    with SqliteAsStore(v4, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 5 and s.integrity_check()
        assert snapshot5(s) == snapshot5(expected)  # every record identical, read through the store
        assert s.next_counter("exi:rs6") == 4 and s.revoke_token(V4_REVOKED[1], revoked_at=NOW, expires_at=None) is None
        assert s.revoke_token(V4_TOKEN.token_hash, revoked_at=NOW, expires_at=V4_TOKEN.expires_at) == 3
        assert s.get_reference(h(1)) is None
        s.put_reference(ref(1))
    with SqliteAsStore(v4) as s:
        assert s.get_reference(h(1)) == ref(1) and s.is_revoked(V4_TOKEN.token_hash)


def test_v5_file_is_migrated_keeping_everything(tmp_path: Path) -> None:
    v5 = copy_private(V5_FILE, tmp_path / "v5.db")
    v5_rows = dump(v5)
    expected = MemoryAsStore()
    populate_v5_file(expected)
    SqliteAsStore(v5, clock=fixed_clock()).close()  # only the migration writes
    after = dump(v5, v5_rows)
    assert {t for t in v5_rows if v5_rows[t] != after[t]} == {"schema_migrations"}  # row by row as they were
    assert (6, NOW) in after["schema_migrations"][1]
    with SqliteAsStore(v5, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 6 and s.integrity_check()
        assert snapshot6(s) == snapshot6(expected)  # every record identical, read through the store
        assert s.find_token_by_cti(V4_TOKEN.cti) == V4_TOKEN and s.find_token_by_cti(b"\x71") is None
        assert s.find_tokens_by_hash([V3_TOKENS[0].token_hash]) == [V3_TOKENS[0]]
        assert s.revoked_hashes(audience="rs6", now=V5_CLOCK, limit=10) == [V5_TOKENS[0].token_hash]
        # (a v5 token has no thumbprint: since schema 7 its kid is an OSCORE or DTLS id, no credential)
        assert s.pop_holders("rs6", V5_CLOCK, pop_kid=b"\x71", pop_thumbprint=None) == []
        assert s.count_live_tokens("p1", "rs6", V5_CLOCK, 5) == 1
        assert s.purge_tokens(V5_CLOCK, 100) == expected.purge_tokens(V5_CLOCK, 100) > 0
        assert s.issued_tokens(limit=100) == expected.issued_tokens(limit=100)
        s.log_token(tok(9, thumb=b"\x09" * 32))
    with SqliteAsStore(v5) as s:
        assert s.find_token_by_cti(b"\x00\x09") == tok(9, thumb=b"\x09" * 32)


def test_v6_file_is_migrated_keeping_everything(tmp_path: Path) -> None:
    v6 = copy_private(V6_FILE, tmp_path / "v6.db")
    v6_rows = dump(v6)
    expected = MemoryAsStore()
    populate_v6_file(expected)
    SqliteAsStore(v6, clock=fixed_clock()).close()  # only the migration writes
    after = dump(v6, v6_rows)
    assert {t for t in v6_rows if v6_rows[t] != after[t]} == {"schema_migrations"}  # row by row as they were
    assert (7, NOW) in after["schema_migrations"][1]
    with SqliteAsStore(v6, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 7 and s.integrity_check()
        assert snapshot6(s) == snapshot6(expected)
        assert s.find_tokens(audience="rs7") == expected.find_tokens(audience="rs7")
        # seeded from the log: each credential to its first presenter, OSCORE ids left out
        assert s.edhoc_credentials("e1") == [("rs7", b"kA", TA)]
        assert s.edhoc_credentials("e2") == [("rs7", b"kB", TB), ("rs8", b"kA", TC)]
        assert s.edhoc_credentials("o1") == []
        assert claim(s, "e2", b"kA", TC, audience="rs7") == "e1"  # its expired token's kid: e1's
        assert claim(s, "e2", b"kA", TC, audience="rs9") is None  # its own key elsewhere (schema 9: any audience)
        assert claim(s, "o2", b"\x05", b"\xd4" * 32, audience="rs7") is None  # an OSCORE id is no credential
        assert claim(s, "e1", b"kA", TA, audience="rs7", now=V6_CLOCK + 500) is None


def test_v7_file_is_migrated_keeping_everything(tmp_path: Path) -> None:
    v7 = copy_private(V7_FILE, tmp_path / "v7.db")
    v7_rows = dump(v7)
    expected = MemoryAsStore()
    populate_v7_file(expected)
    SqliteAsStore(v7, clock=fixed_clock()).close()  # only the migration writes
    after = dump(v7, v7_rows)
    assert {t for t in v7_rows if v7_rows[t] != after[t]} == {"schema_migrations"}  # row by row as they were
    assert (8, NOW) in after["schema_migrations"][1]
    with SqliteAsStore(v7, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 8 and s.integrity_check()
        assert snapshot8(s) == snapshot8(expected)  # every record identical, read through the store
        assert s.get_rs("aud9") == V7_RS and V7_RS.oscore == RS_AS and V7_RS.auth_key == AUTH
        assert {r.format for r in s.list_rs()} == {RFC_FORMAT}  # every RS issues as before
        assert s.next_counter("exi:aud9") == 2  # the exi sequence numbers go on
        s.put_rs(replace(V7_RS, format=ACE_JAVA))
    with SqliteAsStore(v7) as s:
        assert s.get_rs("aud9") == replace(V7_RS, format=ACE_JAVA)


# --- from version 8 -----------------------------------------------------------------------


def test_v8_file_is_migrated_dropping_only_squats(tmp_path: Path) -> None:
    v8 = copy_private(V8_FILE, tmp_path / "v8.db")
    v8_rows = dump(v8)
    expected = MemoryAsStore()
    populate_v7_file(expected)
    SqliteAsStore(v8, clock=fixed_clock()).close()  # only the migration writes
    after = dump(v8, v8_rows)
    assert {t for t in v8_rows if v8_rows[t] != after[t]} == {"schema_migrations", "edhoc_credentials"}
    cols, before = v8_rows["edhoc_credentials"]
    squat = [r for r in before if dict(zip(cols, r, strict=True))["kid"] == b"kB"]
    assert len(squat) == 1 and after["edhoc_credentials"][1] == [r for r in before if r not in squat]
    assert (9, NOW) in after["schema_migrations"][1]
    with SqliteAsStore(v8, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 9 and s.integrity_check()
        assert snapshot8(s) == snapshot8(expected)  # every other record identical, read through the store
        assert s.edhoc_credentials("a") == [("rs1", b"kA", TX), ("rs3", b"kA", TX)]
        assert s.edhoc_credentials("b") == [("rs2", b"kA", TY)]  # its own key, a's kid at rs2 (per audience)
        assert s.edhoc_credentials("c") == [("rs1", b"kC", TZ)]
        assert claim(s, "b", b"kB", TX, audience="rs2") == "a"  # the squat stays refused
        assert claim(s, "a", b"kA", TX, audience="rs2") == "b"  # kid kA is b's at rs2


# --- two openers at once ------------------------------------------------------------------


def _open(path: str, start: multiprocessing.synchronize.Barrier, errors: multiprocessing.queues.Queue[str]) -> None:
    try:
        start.wait(10)
        SqliteAsStore(path).close()
    except Exception as exc:  # reported to the test
        errors.put(repr(exc))


def test_two_processes_migrating_at_once(tmp_path: Path) -> None:
    """Each opener read user_version, then migrated: the second ran the first's steps again
    (old: 'duplicate column name: pop_thumbprint' in one of the two, nearly every time)."""
    ctx = multiprocessing.get_context("spawn")
    failures = []
    for run in range(3):
        path = copy_private(V5_FILE, tmp_path / f"race{run}.db")
        start, errors = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(str(path), start, errors)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        while not errors.empty():
            failures.append(errors.get(timeout=5))
        with SqliteAsStore(path) as s:
            assert s.schema_version() == sqlite_mod.SCHEMA_VERSION and s.integrity_check()
    assert failures == []
