"""Schema version 5 of the AS stores: reference tokens (RFC 9200 §5.9: the AS keeps the claims
behind an opaque token; ``put_reference``, ``get_reference``, the bounded ``purge_references``)
and ``is_revoked``, in ``memory`` and ``sqlite`` alike, plus the SQLite side: reopen, the file's
constraints, index use, and the migration of a version-4 file (``data/as_v4.db``, written by the
schema-4 code of commit 04c3195 with ``write_v4_fixture`` below) and of the older fixtures,
keeping every record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import NOW, fixed_clock
from test_store_v2 import V1_FILE, dump
from test_store_v3 import TOKEN_KEY, V2_FILE, copy_private, schema
from test_store_v4 import V3_FILE, V3_TOKENS, populate_v3_file, snapshot4

from ace.errors import ConfigError
from ace.store import sqlite as sqlite_mod
from ace.store.base import AsStore, IssuedToken, ReferenceToken, RsRecord
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.oscore_params import OscoreContextParams

V4_FILE = Path(__file__).parent / "data" / "as_v4.db"
V4_CLOCK = 1_695_000_000
RS6_SECRET = OscoreContextParams(master_secret=b"\x66" * 16, sender_id=b"as", recipient_id=b"rs6")
V4_TOKEN = IssuedToken(cti=b"\x60\x01", client_id="e1", audience="rs6", scope="r", issued_at=V4_CLOCK,
                       expires_at=V4_CLOCK + 60, token_hash=b"\x01" + b"\x66" * 32, pop_kid=b"\x60\x01")
V4_REVOKED = [V3_TOKENS[1].token_hash, b"\x01" + b"\x77" * 32]


def populate_v4_file(s: AsStore) -> None:
    """What ``data/as_v4.db`` holds (frozen: the file was written with exactly this)."""
    populate_v3_file(s)
    s.put_rs(RsRecord(audience="rs6", rs_id="six", token_key=TOKEN_KEY, profiles=(2, 1), oscore=RS6_SECRET))
    s.log_token(V4_TOKEN)
    s.revoke_token(V4_REVOKED[0], revoked_at=V4_CLOCK, expires_at=V3_TOKENS[1].expires_at)
    s.revoke_token(V4_REVOKED[1], revoked_at=V4_CLOCK, expires_at=None)
    for _ in range(3):
        s.next_counter("exi:rs6")


def write_v4_fixture(path: str) -> None:
    """How ``data/as_v4.db`` was made (with the schema-4 code: the assertion fails on later ones)."""
    with SqliteAsStore(path, clock=fixed_clock(V4_CLOCK)) as s:
        assert s.schema_version() == 4
        populate_v4_file(s)


def snapshot5(s: AsStore) -> tuple[object, ...]:
    return (*snapshot4(s), s.get_rs("rs6"), s.find_tokens(audience="rs6"), s.revoked_since(0, 10),
            [s.is_revoked(h) for h in (*V4_REVOKED, V4_TOKEN.token_hash)])


def h(n: int) -> bytes:
    return b"\x01" + n.to_bytes(2, "big") * 16  # a 33-byte RFC 9770 "hash"


def ref(n: int, expires_at: int | None = NOW + 60, audience: str = "rs1") -> ReferenceToken:
    return ReferenceToken(token_hash=h(n), audience=audience, claims=b"\xa1\x03\x63rs1" + bytes([n % 24]),
                          expires_at=expires_at)


# --- reference tokens -------------------------------------------------------------------


def test_reference_round_trip(store: AsStore) -> None:
    assert store.get_reference(h(1)) is None
    store.put_reference(ref(1))
    store.put_reference(ref(2, expires_at=None, audience="rs2"))
    assert store.get_reference(h(1)) == ref(1)
    assert store.get_reference(h(2)) == ref(2, expires_at=None, audience="rs2")
    assert store.get_reference(h(3)) is None and store.get_reference(h(1)[:-1]) is None


def test_reference_stored_once(store: AsStore) -> None:
    store.put_reference(ref(1))
    with pytest.raises(ValueError, match="already"):
        store.put_reference(ref(1, expires_at=NOW + 999))
    assert store.get_reference(h(1)) == ref(1)


def test_reference_claims_not_in_repr() -> None:
    assert "claims" not in repr(ref(1)) and "rs1" in repr(ref(1))


def test_purge_is_bounded_and_oldest_first(store: AsStore) -> None:
    for n, exp in [(1, NOW - 5), (2, NOW - 50), (3, NOW), (4, None), (5, NOW - 1), (6, NOW - 50)]:
        store.put_reference(ref(n, expires_at=exp))
    assert store.purge_references(NOW, 2) == 2  # the two that expired first (NOW - 50)
    assert store.get_reference(h(2)) is None and store.get_reference(h(6)) is None
    assert store.get_reference(h(1)) is not None
    assert store.purge_references(NOW, 0) == 0
    assert store.purge_references(NOW, 10) == 2  # NOW - 5, NOW - 1; NOW itself stays
    assert [store.get_reference(h(n)) is not None for n in range(1, 7)] == [False, False, True, True, False, False]
    assert store.purge_references(2**63 - 1, 10) == 1  # no-expiry references stay
    assert store.get_reference(h(4)) == ref(4, expires_at=None)


def test_is_revoked(store: AsStore) -> None:
    assert not store.is_revoked(h(1))
    store.revoke_token(h(1), revoked_at=NOW, expires_at=NOW + 1)
    assert store.is_revoked(h(1)) and not store.is_revoked(h(2))
    store.purge_revoked(NOW + 2)
    assert not store.is_revoked(h(1))


REF_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 8), st.one_of(st.none(), st.integers(0, 20))),
        st.tuples(st.just("purge"), st.integers(0, 25), st.integers(0, 3)),
        st.tuples(st.just("get"), st.integers(0, 8), st.none()),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(ops=REF_OPS)
def test_memory_and_sqlite_agree_on_references(tmp_path_factory: pytest.TempPathFactory,
                                                ops: list[tuple[str, int, int | None]]) -> None:
    mem = MemoryAsStore()
    with SqliteAsStore(tmp_path_factory.mktemp("agree") / "as.db") as sql:
        for op, a, b in ops:
            if op == "put":
                errors: list[type[Exception] | None] = []
                for s in (mem, sql):
                    try:
                        s.put_reference(ref(a, expires_at=b))
                        errors.append(None)
                    except ValueError as exc:
                        errors.append(type(exc))
                assert errors[0] == errors[1]
            elif op == "purge":
                assert b is not None and mem.purge_references(a, b) == sql.purge_references(a, b)
            else:
                assert mem.get_reference(h(a)) == sql.get_reference(h(a))
        assert [mem.get_reference(h(n)) for n in range(9)] == [sql.get_reference(h(n)) for n in range(9)]


BAD_CALLS: list[tuple[str, Callable[[AsStore], object], type[Exception]]] = [
    ("empty hash", lambda s: s.put_reference(ReferenceToken(token_hash=b"", audience="a", claims=b"\xa0",
                                                            expires_at=None)), ValueError),
    ("65-byte hash", lambda s: s.put_reference(ReferenceToken(token_hash=b"\x5e" * 65, audience="a",
                                                              claims=b"\xa0", expires_at=None)), ValueError),
    ("str hash", lambda s: s.get_reference("ab"), TypeError),  # type: ignore[arg-type]
    ("bytearray hash", lambda s: s.is_revoked(bytearray(b"\x5e" * 32)), TypeError),  # type: ignore[arg-type]
    ("empty audience", lambda s: s.put_reference(ReferenceToken(token_hash=b"\x5e" * 33, audience="",
                                                                claims=b"\xa0", expires_at=None)), ValueError),
    ("empty claims", lambda s: s.put_reference(ReferenceToken(token_hash=b"\x5e" * 33, audience="a",
                                                              claims=b"", expires_at=None)), ValueError),
    ("huge claims", lambda s: s.put_reference(ReferenceToken(token_hash=b"\x5e" * 33, audience="a",
                                                             claims=b"\xa0" * 4097, expires_at=None)), ValueError),
    ("str claims", lambda s: s.put_reference(ReferenceToken(token_hash=b"\x5e" * 33, audience="a",
                                                            claims="x", expires_at=None)),  # type: ignore[arg-type]
     TypeError),
    ("negative expiry", lambda s: s.put_reference(ReferenceToken(token_hash=b"\x5e" * 33, audience="a",
                                                                 claims=b"\xa0", expires_at=-1)), ValueError),
    ("negative now", lambda s: s.purge_references(-1, 1), ValueError),
    ("negative limit", lambda s: s.purge_references(0, -1), ValueError),
    ("float limit", lambda s: s.purge_references(0, 1.0), TypeError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("name", "call", "error"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_calls_refused(store: AsStore, name: str, call: Callable[[AsStore], object],
                           error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        call(store)
    assert "5e5e" not in str(info.value) and "^^" not in str(info.value)  # never the hash itself
    assert store.get_reference(b"\x5e" * 33) is None


def test_closed_store_refuses_new_calls(store: AsStore) -> None:
    store.close()
    for call in (lambda: store.put_reference(ref(1)), lambda: store.get_reference(h(1)),
                 lambda: store.purge_references(0, 1), lambda: store.is_revoked(h(1))):
        with pytest.raises(ValueError, match="closed"):
            call()


# --- the SQLite file --------------------------------------------------------------------


def test_references_survive_reopen(db: Path) -> None:
    with SqliteAsStore(db, clock=fixed_clock()) as s:
        for n in (1, 2, 3):
            s.put_reference(ref(n, expires_at=NOW + n))
        assert s.purge_references(NOW + 2, 10) == 1
    with SqliteAsStore(db) as s:
        assert s.get_reference(h(1)) is None and s.get_reference(h(3)) == ref(3, expires_at=NOW + 3)
        assert s.integrity_check()
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT token_hash, audience, expires_at, created_at FROM reference_tokens "
                           "ORDER BY expires_at").fetchall()
    raw.close()
    assert rows == [(h(2), "rs1", NOW + 2, NOW), (h(3), "rs1", NOW + 3, NOW)]


def test_reference_constraints_kept_by_the_file(db: Path) -> None:
    with SqliteAsStore(db) as s:
        s.put_reference(ref(1))
    insert = ("INSERT INTO reference_tokens (token_hash, audience, claims, expires_at, created_at) "
              "VALUES (?, ?, ?, ?, 0)")
    with sqlite3.connect(db) as raw:
        for params, match in [
            ((h(1), "a", b"\xa0", None), "UNIQUE"),
            ((b"", "a", b"\xa0", None), "CHECK"),
            ((bytes(65), "a", b"\xa0", None), "CHECK"),
            ((h(2), "a", b"", None), "CHECK"),
            ((h(2), "a", bytes(4097), None), "CHECK"),
            ((h(2), "a", "x", None), "cannot store TEXT"),
            ((h(2), "a", b"\xa0", "x"), "cannot store TEXT"),
            ((h(2), None, b"\xa0", None), "NOT NULL"),
        ]:
            with pytest.raises(sqlite3.IntegrityError, match=match):
                raw.execute(insert, params)
    raw.close()


def test_damaged_reference_row(db: Path) -> None:
    with SqliteAsStore(db) as s:
        s.put_reference(ref(1))
    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA ignore_check_constraints = ON")
        raw.execute("UPDATE reference_tokens SET audience = '' WHERE token_hash = ?", (h(1),))
    raw.close()
    with SqliteAsStore(db) as s, pytest.raises(ConfigError, match=r"reference_tokens\.audience"):
        s.get_reference(h(1))


def test_lookups_use_the_indexes(db: Path) -> None:
    plans: list[tuple[str, tuple[object, ...], str]] = [
        (sqlite_mod.GET_REFERENCE_SQL, (h(1),), "USING INDEX sqlite_autoindex_reference_tokens_1"),
        (sqlite_mod.PURGE_REFERENCES_SQL, (NOW, 10), "USING COVERING INDEX reference_tokens_expires_at"),
        (sqlite_mod.IS_REVOKED_SQL, (h(1),), "USING COVERING INDEX sqlite_autoindex_revoked_tokens_1"),
    ]
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        for sql, params, index in plans:
            plan = str(raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            assert index in plan and "TEMP B-TREE" not in plan, (sql, plan)
    raw.close()


# --- migration of the version-4 file and of the older ones -------------------------------


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


def test_every_file_has_the_fresh_schema(tmp_path: Path) -> None:
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
