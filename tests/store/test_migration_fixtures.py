"""The old schema files in ``data/`` are what they claim (each ``as_vN.db`` has exactly the schema
the migrations up to N make, and its recorded version), and every one of them, migrated, has the
schema of a fresh file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_support import (
    V1_CLOCK,
    V1_FILE,
    V2_CLOCK,
    V2_FILE,
    V3_CLOCK,
    V3_FILE,
    V4_CLOCK,
    V4_FILE,
    V5_FILE,
    V6_FILE,
    V7_FILE,
    V8_FILE,
    copy_private,
    h,
    ref,
    schema,
    tok,
)
from support import NOW

from ace.store import sqlite as sqlite_mod
from ace.store.codec import FORMAT_COLUMNS
from ace.store.sqlite import SqliteAsStore

# --- each fixture is a schema-N file ------------------------------------------------------


def test_v1_fixture_is_a_schema_1_file(v1_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = tmp_path / "fresh.db"
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", 1)  # apply MIGRATIONS[1] only
    with SqliteAsStore(fresh) as s:
        assert s.schema_version() == 1
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name"
    with sqlite3.connect(v1_file) as a, sqlite3.connect(fresh) as b:
        assert a.execute(schema).fetchall() == b.execute(schema).fetchall()
        assert a.execute("PRAGMA user_version").fetchone() == (1,)
        assert a.execute("SELECT * FROM schema_migrations").fetchall() == [(1, V1_CLOCK)]
    a.close()
    b.close()


def test_v2_fixture_is_a_schema_2_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v2 = copy_private(V2_FILE, tmp_path / "v2.db")
    fresh = tmp_path / "fresh.db"
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", 2)  # apply MIGRATIONS[1] and [2] only
    with SqliteAsStore(fresh) as s:
        assert s.schema_version() == 2
    assert schema(v2) == schema(fresh)
    with sqlite3.connect(v2) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (2,)
        assert raw.execute("SELECT * FROM schema_migrations").fetchall() == [(1, V2_CLOCK), (2, V2_CLOCK)]
        counts = [raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("clients", "rs", "issued_tokens")]
    raw.close()
    assert counts == [5, 3, 7]


def test_v3_fixture_is_a_schema_3_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v3 = copy_private(V3_FILE, tmp_path / "v3.db")
    fresh = tmp_path / "fresh.db"
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", 3)  # apply MIGRATIONS[1] to [3] only
    with SqliteAsStore(fresh) as s:
        assert s.schema_version() == 3
    assert schema(v3) == schema(fresh)
    with sqlite3.connect(v3) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (3,)
        assert raw.execute("SELECT * FROM schema_migrations").fetchall() == [(v, V3_CLOCK) for v in (1, 2, 3)]
        counts = [raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("clients", "rs", "issued_tokens")]
        assert raw.execute("SELECT count(*) FROM rs WHERE auth_key IS NOT NULL").fetchone() == (2,)
    raw.close()
    assert counts == [6, 5, 12]


def test_v4_fixture_is_a_schema_4_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v4 = copy_private(V4_FILE, tmp_path / "v4.db")
    fresh = tmp_path / "fresh.db"
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", 4)  # apply MIGRATIONS[1] to [4] only
    with SqliteAsStore(fresh) as s:
        assert s.schema_version() == 4
    assert schema(v4) == schema(fresh)
    with sqlite3.connect(v4) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (4,)
        assert raw.execute("SELECT * FROM schema_migrations").fetchall() == [(v, V4_CLOCK) for v in (1, 2, 3, 4)]
        counts = [raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("clients", "rs", "issued_tokens", "revoked_tokens")]
    raw.close()
    assert counts == [6, 6, 13, 2]


def test_v5_fixture_is_a_schema_5_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v5 = copy_private(V5_FILE, tmp_path / "v5.db")
    fresh = tmp_path / "fresh.db"
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", 5)  # apply MIGRATIONS[1] to [5] only
    with SqliteAsStore(fresh) as s:
        assert s.schema_version() == 5
    assert schema(v5) == schema(fresh)
    with sqlite3.connect(v5) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (5,)
        counts = [raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("issued_tokens", "revoked_tokens", "reference_tokens")]
    raw.close()
    assert counts == [16, 3, 1]


def test_v6_fixture_is_a_schema_6_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v6 = copy_private(V6_FILE, tmp_path / "v6.db")
    fresh = tmp_path / "fresh.db"
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", 6)  # apply MIGRATIONS[1] to [6] only
    with SqliteAsStore(fresh) as s:
        assert s.schema_version() == 6
    assert schema(v6) == schema(fresh)
    with sqlite3.connect(v6) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (6,)
        assert raw.execute("SELECT count(*) FROM issued_tokens WHERE audience IN ('rs7', 'rs8')").fetchone() == (6,)
    raw.close()


def test_v7_fixture_is_a_schema_7_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v7 = copy_private(V7_FILE, tmp_path / "v7.db")
    fresh = tmp_path / "fresh.db"
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", 7)  # apply MIGRATIONS[1] to [7] only
    with SqliteAsStore(fresh) as s:
        assert s.schema_version() == 7
    assert schema(v7) == schema(fresh)
    with sqlite3.connect(v7) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (7,)
        assert raw.execute("SELECT rs_id FROM rs WHERE audience = 'aud9'").fetchone() == ("rs9",)
    raw.close()


def test_v8_fixture_is_a_schema_8_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v8 = copy_private(V8_FILE, tmp_path / "v8.db")
    fresh = tmp_path / "fresh.db"
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", 8)  # apply MIGRATIONS[1] to [8] only
    with SqliteAsStore(fresh) as s:
        assert s.schema_version() == 8
    assert schema(v8) == schema(fresh)
    with sqlite3.connect(v8) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (8,)
        squat = "SELECT client_id FROM edhoc_credentials WHERE audience = 'rs2' AND kid = x'6b42'"  # kB
        assert raw.execute(squat).fetchone() == ("b",)  # the squat schema 8 let through
    raw.close()


# --- migrated, every file has the fresh schema --------------------------------------------


def test_migrated_files_have_the_fresh_schema(tmp_path: Path) -> None:
    files = [copy_private(V1_FILE, tmp_path / "v1.db"), copy_private(V2_FILE, tmp_path / "v2.db"), tmp_path / "new.db"]
    for f in files:
        SqliteAsStore(f).close()
    assert schema(files[0]) == schema(files[2]) == schema(files[1])
    assert any("auth_key BLOB" in str(row[3]) for row in schema(files[2]) if row[1] == "rs")


def test_every_file_has_the_fresh_schema_v4(tmp_path: Path) -> None:
    files = [copy_private(f, tmp_path / f.name) for f in (V1_FILE, V2_FILE, V3_FILE)]
    fresh = tmp_path / "new.db"
    for f in (*files, fresh):
        SqliteAsStore(f).close()
    assert all(schema(f) == schema(fresh) for f in files)
    names = {row[1] for row in schema(fresh)}
    assert {"revoked_tokens", "revoked_tokens_expires_at", "issued_tokens_client", "issued_tokens_audience",
            "sqlite_sequence"} <= names


def test_every_file_has_the_fresh_schema_v5(tmp_path: Path) -> None:
    files = [copy_private(f, tmp_path / f.name) for f in (V1_FILE, V2_FILE, V3_FILE, V4_FILE)]
    fresh = tmp_path / "new.db"
    for f in (*files, fresh):
        SqliteAsStore(f).close()
    assert all(schema(f) == schema(fresh) for f in files)
    assert {"reference_tokens", "reference_tokens_expires_at"} <= {row[1] for row in schema(fresh)}
    for f in files:
        with SqliteAsStore(f) as s:
            s.put_reference(ref(7))
            assert s.get_reference(h(7)) == ref(7) and s.purge_references(NOW + 61, 5) == 1


def test_every_file_has_the_fresh_schema_v6(tmp_path: Path) -> None:
    files = [copy_private(f, tmp_path / f.name) for f in (V1_FILE, V2_FILE, V3_FILE, V4_FILE, V5_FILE)]
    fresh = tmp_path / "new.db"
    for f in (*files, fresh):
        SqliteAsStore(f).close()
    assert all(schema(f) == schema(fresh) for f in files)
    assert {"issued_tokens_expires_at", "issued_tokens_thumbprint"} <= {row[1] for row in schema(fresh)}
    for f in files:
        with SqliteAsStore(f) as s:
            s.log_token(tok(0x7A7B, expires_at=NOW - 1))
            assert s.purge_tokens(NOW, 100) >= 1 and s.find_token_by_cti(b"\x7a\x7b") is None


def test_every_file_has_the_fresh_schema_v7(tmp_path: Path) -> None:
    files = [copy_private(f, tmp_path / f.name) for f in (V4_FILE, V5_FILE, V6_FILE)]
    fresh = tmp_path / "new.db"
    for f in (*files, fresh):
        SqliteAsStore(f).close()
    assert all(schema(f) == schema(fresh) for f in files)
    assert "edhoc_credentials_kid" in {row[1] for row in schema(fresh)}


def test_every_file_has_the_fresh_schema_v8(tmp_path: Path) -> None:
    files = [copy_private(f, tmp_path / f.name) for f in (V4_FILE, V5_FILE, V6_FILE, V7_FILE)]
    fresh = tmp_path / "new.db"
    for f in (*files, fresh):
        SqliteAsStore(f).close()
    assert all(schema(f) == schema(fresh) for f in files)
    with sqlite3.connect(fresh) as raw:
        assert {r[1] for r in raw.execute("PRAGMA table_info(rs)")} >= set(FORMAT_COLUMNS)
    raw.close()


def test_every_file_has_the_fresh_schema_v9(tmp_path: Path) -> None:
    files = [copy_private(f, tmp_path / f.name) for f in (V7_FILE, V8_FILE)]
    fresh = tmp_path / "new.db"
    for f in (*files, fresh):
        SqliteAsStore(f).close()
    assert all(schema(f) == schema(fresh) for f in files)
