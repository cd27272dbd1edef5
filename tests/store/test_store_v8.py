"""Schema version 8 of the AS stores: per-RS token format (``RsRecord.format``: COSE and CWT tags,
``sub``, exp/exi time unit, exi tokens and their cti layout, OSCORE_Input_Material salt length),
the options a peer such as RISE ace-java needs (issue 11), in ``memory`` and ``sqlite`` alike; and
the migration of a version-7 file (``data/as_v7.db``, written by the schema-7 code of commit cbaa4f1
with ``write_v7_fixture`` below): every RS keeps today's RFC behaviour, every record is kept.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from support import NOW, fixed_clock
from test_store_v2 import dump
from test_store_v3 import AUTH, TOKEN_KEY, copy_private, schema
from test_store_v5 import V4_FILE
from test_store_v6 import V5_FILE, snapshot6
from test_store_v7 import TA, V6_FILE, populate_v6_file

from ace.errors import ConfigError
from ace.store import sqlite as sqlite_mod
from ace.store.base import ACE_JAVA, MAX_SALT_LEN, RFC_FORMAT, AsStore, RsRecord, TokenFormat
from ace.store.codec import FORMAT_COLUMNS
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.oscore_params import OscoreContextParams

V7_FILE = Path(__file__).parent / "data" / "as_v7.db"
V7_CLOCK = 1_700_500_000
RS_AS = OscoreContextParams(master_secret=bytes(range(16)), sender_id=b"\x01", recipient_id=b"\x77",
                            master_salt=b"\x09")
V7_RS = RsRecord(audience="aud9", rs_id="rs9", token_key=TOKEN_KEY, token_alg=10, profiles=(2, 4),
                 token_lifetime=30, oscore=RS_AS, auth_key=AUTH)


def populate_v7_file(s: AsStore) -> None:
    """What ``data/as_v7.db`` holds (frozen: the file was written with exactly this)."""
    populate_v6_file(s)
    s.put_rs(V7_RS)
    s.register_edhoc_credential("e1", kid=b"kR", thumbprint=TA, now=V7_CLOCK)
    s.next_counter("exi:aud9")


def write_v7_fixture(path: str) -> None:
    """How ``data/as_v7.db`` was made (with the schema-7 code: the assertion fails on later ones)."""
    with SqliteAsStore(path, clock=fixed_clock(V7_CLOCK)) as s:
        assert s.schema_version() == 7
        populate_v7_file(s)


def snapshot8(s: AsStore) -> tuple[object, ...]:
    return (*snapshot6(s), s.list_rs(), s.edhoc_credentials("e1"), s.edhoc_credentials("e2"))


def rs(audience: str = "aud1", fmt: TokenFormat = RFC_FORMAT, **kw: object) -> RsRecord:
    return RsRecord(audience=audience, rs_id="rs1", token_key=TOKEN_KEY, format=fmt, **kw)  # type: ignore[arg-type]


# --- the token format of an RS ----------------------------------------------------------------

FORMATS = [
    RFC_FORMAT, ACE_JAVA, TokenFormat(cwt_tag=True), TokenFormat(sub=False, salt_len=0),
    TokenFormat(exi=True, time_unit="ms", salt_len=MAX_SALT_LEN), TokenFormat(cose_tag=True, exi_cti="text"),
]


@pytest.mark.parametrize("fmt", FORMATS, ids=range(len(FORMATS)))
def test_format_round_trip(store: AsStore, fmt: TokenFormat) -> None:
    store.put_rs(rs(fmt=fmt, oscore=RS_AS))
    assert store.get_rs("aud1") == rs(fmt=fmt, oscore=RS_AS)
    assert store.list_rs() == [rs(fmt=fmt, oscore=RS_AS)]
    store.put_rs(rs())  # back to the RFC's
    assert store.get_rs("aud1") == rs() and rs().format == RFC_FORMAT


def test_defaults_are_the_rfcs() -> None:
    f = RsRecord(audience="a", rs_id="a", token_key=TOKEN_KEY).format
    assert (f.cose_tag, f.cwt_tag, f.sub, f.time_unit, f.exi, f.exi_cti, f.salt_len) == (
        False, False, True, "s", False, "bytes", None)
    assert f.per_second == 1 and ACE_JAVA.per_second == 1000


BAD_FORMATS: list[tuple[dict[str, object], type[Exception]]] = [
    ({"time_unit": "h"}, ValueError), ({"time_unit": "milliseconds"}, ValueError),
    ({"exi_cti": "hex"}, ValueError), ({"salt_len": -1}, ValueError), ({"salt_len": MAX_SALT_LEN + 1}, ValueError),
    ({"salt_len": True}, ValueError), ({"cose_tag": 1}, TypeError), ({"sub": "no"}, TypeError),
]


@pytest.mark.parametrize(("kw", "error"), BAD_FORMATS, ids=[str(k) for k, _ in BAD_FORMATS])
def test_bad_formats_refused(kw: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        TokenFormat(**kw)  # type: ignore[arg-type]


def test_put_rs_needs_a_token_format(store: AsStore) -> None:
    with pytest.raises(TypeError, match="TokenFormat"):
        store.put_rs(rs(fmt={"cose_tag": True}))  # type: ignore[arg-type]
    assert store.list_rs() == []


@pytest.mark.parametrize(("column", "value"), [("time_unit", "'h'"), ("exi_cti", "'hex'"), ("time_unit", "1")])
def test_damaged_format_column_is_a_config_error(db: Path, column: str, value: str) -> None:
    with SqliteAsStore(db) as s:
        s.put_rs(rs())
    with sqlite3.connect(db) as raw:
        raw.execute(f"UPDATE rs SET {column} = {value}")
    raw.close()
    with SqliteAsStore(db) as s, pytest.raises(ConfigError, match="store damaged") as info:
        s.get_rs("aud1")
    assert "TOKEN_KEY" not in str(info.value)


@pytest.mark.parametrize(("column", "value"), [("cose_tag", 2), ("include_sub", -1), ("salt_len", 65),
                                               ("exi", None)])
def test_format_columns_are_checked_by_the_table(db: Path, column: str, value: object) -> None:
    with SqliteAsStore(db) as s:
        s.put_rs(rs())
    with sqlite3.connect(db) as raw, pytest.raises(sqlite3.IntegrityError):
        raw.execute(f"UPDATE rs SET {column} = ?", (value,))
    raw.close()


# --- the SQLite file --------------------------------------------------------------------------


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


def test_every_file_has_the_fresh_schema(tmp_path: Path) -> None:
    files = [copy_private(f, tmp_path / f.name) for f in (V4_FILE, V5_FILE, V6_FILE, V7_FILE)]
    fresh = tmp_path / "new.db"
    for f in (*files, fresh):
        SqliteAsStore(f).close()
    assert all(schema(f) == schema(fresh) for f in files)
    with sqlite3.connect(fresh) as raw:
        assert {r[1] for r in raw.execute("PRAGMA table_info(rs)")} >= set(FORMAT_COLUMNS)
    raw.close()
