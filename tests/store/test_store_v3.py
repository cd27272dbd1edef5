"""Schema version 3 of the AS stores: an RS's public authentication key (``RsRecord.auth_key``,
sent to clients as rs_cnf in the EDHOC profile), in ``memory`` and ``sqlite`` alike, plus the
SQLite side: reopen, a damaged column, and the migration of a version-2 file
(``data/as_v2.db``, written by the schema-2 code of commit 5839198 with ``populate_v2_file``
below and ``V2_CLOCK``) and of the version-1 file of ``test_store_v2``, keeping every record.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from support import NOW, fixed_clock
from test_store_v2 import V1_CLOCK, V1_FILE, dump, populate_v1, populate_v2, snapshot

from ace.cbor.labels import Curve, KeyType
from ace.errors import ConfigError
from ace.store import sqlite as sqlite_mod
from ace.store.base import AsStore, Grant, RsRecord
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.keys import CoseKey, symmetric_key

V2_FILE = Path(__file__).parent / "data" / "as_v2.db"
V2_CLOCK = 1_650_000_000

# fixed P-256 key pairs (generated once), so the fixture and the tests are reproducible
SIGN_KEY = CoseKey(
    kty=KeyType.EC2, crv=Curve.P_256, kid=b"as-sign", alg=-7,
    x=bytes.fromhex("d9948d6aa31dce1191b17c2364e9539b88f7e7d010a346c500005aa8f8a083a4"),
    y=bytes.fromhex("654342828a5a799792f0b982654e6bf967e3483f3a7377d238b31cbcee7b9af8"),
    d=bytes.fromhex("780a22fa1a98353139ce20ac7734f652ebb269c1c994b8803f277d3d37a318d1"),
)
AUTH_D = bytes.fromhex("846dfe65fabddd32b0bd235c1c4f1b742dc514081888381cad3ce879e1969818")
AUTH = CoseKey(
    kty=KeyType.EC2, crv=Curve.P_256, kid=b"rs-edhoc",
    x=bytes.fromhex("793b58c4ca4d03af790ba011b9072325504cc10615231e40b517ba731f8635e5"),
    y=bytes.fromhex("611c9a1716e292b986b52e65bdcf8a4937ca422b81019fa66d7fc1ebf92dd4cb"),
)
AUTH_PRIVATE = replace(AUTH, d=AUTH_D)
OKP_AUTH = CoseKey(kty=KeyType.OKP, crv=Curve.ED25519, kid=b"\x01", x=b"\x42" * 32)
TOKEN_KEY = symmetric_key(b"\x07" * 16, kid=b"t")


def populate_v2_file(s: AsStore) -> None:
    """What ``data/as_v2.db`` holds (frozen: the file was written with exactly this)."""
    populate_v1(s)
    populate_v2(s)
    s.put_rs(RsRecord(audience="rs3", rs_id="three", token_key=SIGN_KEY, token_kind="sign1", token_alg=-7,
                      profiles=(2, 1), token_lifetime=600))
    s.add_grant(Grant(client_id="p1", audience="rs3", scope=b"\x82\x61/\x03", default=True))
    s.persist_sequence_number("ctx-2", 2**40 - 1)


def snapshot3(s: AsStore) -> tuple[object, ...]:
    return (*snapshot(s), s.load_sequence_number("ctx-2"), s.get_rs("rs3"), s.grants_for("p1", "rs3"))


def rs(audience: str, auth_key: CoseKey | None, **kw: object) -> RsRecord:
    return RsRecord(audience=audience, rs_id=f"{audience}-id", token_key=TOKEN_KEY, auth_key=auth_key, **kw)  # type: ignore[arg-type]


# --- RS authentication keys -------------------------------------------------------------


def test_rs_auth_key_round_trip(store: AsStore) -> None:
    plain, ec, okp = rs("a", None), rs("b", AUTH, profiles=(1, 2), oscore=None), rs("c", OKP_AUTH)
    for r in (okp, plain, ec):
        store.put_rs(r)
    assert store.get_rs("a") == plain and store.get_rs("b") == ec and store.get_rs("c") == okp
    assert store.list_rs() == [plain, ec, okp]
    got = store.get_rs("b")
    assert got is not None and got.auth_key == AUTH and not got.auth_key.has_private and got.auth_key.kid == b"rs-edhoc"
    # updates: a key added, a key replaced, a key removed
    store.put_rs(rs("a", AUTH))
    store.put_rs(rs("b", None))
    store.put_rs(rs("c", AUTH, token_kind="mac0"))
    assert store.list_rs() == [rs("a", AUTH), rs("b", None), rs("c", AUTH, token_kind="mac0")]
    assert store.remove_rs("a") and store.get_rs("a") is None


def test_public_half_of_a_generated_pair_accepted(store: AsStore) -> None:
    store.put_rs(rs("a", AUTH_PRIVATE.public()))
    assert store.get_rs("a") == rs("a", AUTH)


PRIVATE_KEYS = [
    ("EC2 with d", AUTH_PRIVATE, "private part"),
    ("OKP with d", replace(OKP_AUTH, d=AUTH_D), "private part"),
    ("symmetric", symmetric_key(AUTH_D, kid=b"s"), "not a symmetric key"),
]


@pytest.mark.parametrize(("name", "key", "match"), PRIVATE_KEYS, ids=[x[0] for x in PRIVATE_KEYS])
def test_private_auth_key_refused(store: AsStore, name: str, key: CoseKey, match: str) -> None:
    store.put_rs(rs("a", AUTH))
    for record in (rs("a", key), rs("b", key)):  # neither an update nor a new RS
        with pytest.raises(ValueError, match=f"auth_key .*{match}") as info:
            store.put_rs(record)
        assert AUTH_D.hex() not in str(info.value) and repr(AUTH_D) not in str(info.value)
    assert store.list_rs() == [rs("a", AUTH)]


def test_auth_key_must_be_a_cose_key(store: AsStore) -> None:
    with pytest.raises(TypeError, match="auth_key must be a CoseKey"):
        store.put_rs(rs("a", AUTH.encode()))  # type: ignore[arg-type]
    assert store.list_rs() == []


def test_auth_key_survives_reopen(db: Path) -> None:
    records = [rs("a", AUTH), rs("b", None), rs("c", OKP_AUTH, token_alg=5)]
    with SqliteAsStore(db) as s:
        for r in records:
            s.put_rs(r)
    with SqliteAsStore(db) as s:
        assert s.list_rs() == records and s.integrity_check()
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT audience, auth_key FROM rs ORDER BY audience").fetchall()
    raw.close()
    assert rows == [("a", AUTH.encode()), ("b", None), ("c", OKP_AUTH.encode())]  # COSE_Key CBOR, as token_key


DAMAGE = [
    ("not CBOR", b"\xff", "auth_key is not a COSE_Key"),
    ("not a COSE_Key", b"\xa0", "auth_key is not a COSE_Key"),
    ("a private key", AUTH_PRIVATE.encode(), "auth_key holds a private key"),
    ("a symmetric key", symmetric_key(AUTH_D).encode(), "auth_key holds a private key"),
]


@pytest.mark.parametrize(("name", "value", "match"), DAMAGE, ids=[x[0] for x in DAMAGE])
def test_damaged_auth_key_column(db: Path, name: str, value: object, match: str) -> None:
    with SqliteAsStore(db) as s:
        s.put_rs(rs("a", AUTH))
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE rs SET auth_key = ?", (value,))
        with pytest.raises(sqlite3.IntegrityError, match=r"cannot store TEXT value in BLOB column rs\.auth_key"):
            raw.execute("UPDATE rs SET auth_key = 'k'")  # STRICT: only a BLOB (or NULL) gets in
    raw.close()
    with SqliteAsStore(db) as s:
        for read in (lambda: s.get_rs("a"), s.list_rs):
            with pytest.raises(ConfigError, match=match) as info:
                read()
            assert AUTH_D.hex() not in str(info.value) and repr(AUTH_D) not in str(info.value)


# --- migration of version-2 and version-1 files -----------------------------------------


def copy_private(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    dst.chmod(0o600)
    return dst


SCHEMA_SQL = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name"


def schema(path: Path) -> list[tuple[object, ...]]:
    raw = sqlite3.connect(path)
    try:
        return raw.execute(SCHEMA_SQL).fetchall()
    finally:
        raw.close()


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


def test_migrated_files_have_the_fresh_schema(tmp_path: Path) -> None:
    files = [copy_private(V1_FILE, tmp_path / "v1.db"), copy_private(V2_FILE, tmp_path / "v2.db"), tmp_path / "new.db"]
    for f in files:
        SqliteAsStore(f).close()
    assert schema(files[0]) == schema(files[2]) == schema(files[1])
    assert any("auth_key BLOB" in str(row[3]) for row in schema(files[2]) if row[1] == "rs")


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
