"""Schema version 6 of the AS stores: the token log by identity and liveness (``find_token_by_cti``,
``find_tokens_by_hash``, ``count_live_tokens``, ``pop_holders`` with the new ``pop_thumbprint``,
``revoked_hashes``: a requester's TRL joined in SQL, and the bounded ``purge_tokens`` that spares
tokens on the TRL), in ``memory`` and ``sqlite`` alike, plus the SQLite side: index use and the
migration of a version-5 file (``data/as_v5.db``, written by the schema-5 code of commit 42264c1
with ``write_v5_fixture`` below) and of the older fixtures, keeping every record.
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
from test_store_v3 import V2_FILE, copy_private, schema
from test_store_v4 import V3_FILE, V3_TOKENS
from test_store_v5 import V4_FILE, V4_TOKEN, populate_v4_file, ref, snapshot5

from ace.store import sqlite as sqlite_mod
from ace.store.base import AsStore, IssuedToken
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore

V5_FILE = Path(__file__).parent / "data" / "as_v5.db"
V5_CLOCK = 1_698_000_000


def h(n: int) -> bytes:
    return b"\x01" + n.to_bytes(2, "big") * 16  # a 33-byte RFC 9770 "hash"


def tok(n: int, client: str = "c1", audience: str = "rs1", expires_at: int | None = NOW + 60, *,
        kid: bytes | None = None, thumb: bytes | None = None) -> IssuedToken:
    extra = {} if thumb is None else {"pop_thumbprint": thumb}  # (the V5 ones: made by the schema-5 code too)
    return IssuedToken(cti=n.to_bytes(2, "big"), client_id=client, audience=audience, scope="r", issued_at=NOW,
                       expires_at=expires_at, token_hash=h(n), pop_kid=kid, **extra)


V5_TOKENS = [tok(0x71, "e1", "rs6", V5_CLOCK + 60, kid=b"\x71"), tok(0x72, "e1", "rs6", V5_CLOCK - 1),
             tok(0x73, "p1", "rs6", None)]


def populate_v5_file(s: AsStore) -> None:
    """What ``data/as_v5.db`` holds (frozen: the file was written with exactly this)."""
    populate_v4_file(s)
    for t in V5_TOKENS:
        s.log_token(t)
    s.revoke_token(V5_TOKENS[0].token_hash, revoked_at=V5_CLOCK, expires_at=V5_TOKENS[0].expires_at)
    s.put_reference(ref(5, expires_at=V5_CLOCK + 60))


def write_v5_fixture(path: str) -> None:
    """How ``data/as_v5.db`` was made (with the schema-5 code: the assertion fails on later ones)."""
    with SqliteAsStore(path, clock=fixed_clock(V5_CLOCK)) as s:
        assert s.schema_version() == 5
        populate_v5_file(s)


def snapshot6(s: AsStore) -> tuple[object, ...]:
    return (*snapshot5(s), s.find_tokens(audience="rs6"), s.get_reference(ref(5).token_hash))


# --- lookups by identity ------------------------------------------------------------------


def test_find_token_by_cti(store: AsStore) -> None:
    store.log_token(tok(1, thumb=b"\x77" * 32))
    store.log_token(tok(2, "c2", "rs2", None, kid=b"k"))
    assert store.find_token_by_cti(b"\x00\x01") == tok(1, thumb=b"\x77" * 32)
    assert store.find_token_by_cti(b"\x00\x02") == tok(2, "c2", "rs2", None, kid=b"k")
    assert store.find_token_by_cti(b"\x00\x03") is None and store.find_token_by_cti(b"\x01") is None


def test_find_tokens_by_hash_in_log_order(store: AsStore) -> None:
    for n in range(1, 301):  # more than one SQL chunk
        store.log_token(tok(n, "c2" if n % 2 else "c1"))
    assert store.find_tokens_by_hash([]) == []
    assert store.find_tokens_by_hash([h(3), h(1), h(999), h(3)]) == [tok(1, "c2"), tok(3, "c2")]
    found = store.find_tokens_by_hash({h(n) for n in range(1, 400)})
    assert [t.cti for t in found] == [n.to_bytes(2, "big") for n in range(1, 301)]


def test_count_live_tokens(store: AsStore) -> None:
    for t in (tok(1), tok(2), tok(3, expires_at=NOW), tok(4, expires_at=None), tok(5, "c2"), tok(6, audience="rs2"),
              tok(7)):
        store.log_token(t)
    assert store.count_live_tokens("c1", "rs1", NOW, 10) == 4  # 1, 2, 4, 7 (3 expires at NOW)
    store.revoke_token(h(7), revoked_at=NOW, expires_at=NOW + 60)
    assert store.count_live_tokens("c1", "rs1", NOW, 10) == 3  # a revoked token is not live
    assert store.count_live_tokens("c1", "rs1", NOW + 60, 10) == 1  # only the one without expiry
    assert store.count_live_tokens("c2", "rs1", NOW, 10) == 1 and store.count_live_tokens("c3", "rs1", NOW, 10) == 0
    assert store.count_live_tokens("c1", "rs1", NOW, 2) == 2 and store.count_live_tokens("c1", "rs1", NOW, 0) == 0


def test_pop_holders(store: AsStore) -> None:
    store.log_token(tok(1, "a", kid=b"K", thumb=b"T" * 32))
    store.log_token(tok(2, "b", kid=b"L", thumb=b"U" * 32))
    store.log_token(tok(3, "c", kid=b"K", expires_at=NOW - 1, thumb=b"V" * 32))  # expired: holds nothing
    store.log_token(tok(4, "d", "rs2", kid=b"K", thumb=b"T" * 32))  # another audience
    store.log_token(tok(5, "e", kid=b"M", thumb=b"W" * 32))
    store.revoke_token(h(5), revoked_at=NOW, expires_at=NOW + 60)  # revoked, still live: still held
    # an OSCORE material id or a DTLS kid (no thumbprint) is another id space: it holds no credential
    store.log_token(tok(6, "f", kid=b"K"))
    store.log_token(tok(7, "g", kid=b"N"))
    assert store.pop_holders("rs1", NOW, pop_kid=b"N", pop_thumbprint=None) == []
    assert store.pop_holders("rs1", NOW, pop_kid=b"K", pop_thumbprint=None) == ["a"]
    assert store.pop_holders("rs1", NOW, pop_kid=b"X", pop_thumbprint=b"U" * 32) == ["b"]
    assert store.pop_holders("rs1", NOW, pop_kid=b"K", pop_thumbprint=b"U" * 32) == ["a", "b"]
    assert store.pop_holders("rs1", NOW, pop_kid=b"M", pop_thumbprint=None) == ["e"]
    assert store.pop_holders("rs2", NOW, pop_kid=b"K", pop_thumbprint=b"T" * 32) == ["d"]
    assert store.pop_holders("rs1", NOW + 60, pop_kid=b"K", pop_thumbprint=b"T" * 32) == []
    assert store.pop_holders("rs1", NOW, pop_kid=None, pop_thumbprint=None) == []


def test_pop_holders_is_bounded(store: AsStore) -> None:
    for n in range(20):
        store.log_token(tok(n, f"c{n:02d}", kid=b"K", thumb=bytes([n]) * 32))
    assert store.pop_holders("rs1", NOW, pop_kid=b"K", pop_thumbprint=None) == [f"c{n:02d}" for n in range(8)]


# --- the TRL per requester, joined ----------------------------------------------------------


def test_revoked_hashes_per_requester(store: AsStore) -> None:
    for t in (tok(1), tok(2, "c2"), tok(3, audience="rs2"), tok(4, expires_at=NOW + 5), tok(5), tok(6, "c2", "rs2")):
        store.log_token(t)
    for n in (5, 2, 1, 4, 6, 99):  # 99: a hash no logged token has
        store.revoke_token(h(n), revoked_at=NOW, expires_at=None)
    assert store.revoked_hashes(client_id="c1", now=NOW, limit=10) == [h(5), h(1), h(4)]  # revocation order
    assert store.revoked_hashes(client_id="c1", now=NOW + 5, limit=10) == [h(5), h(1)]  # 4 expired
    assert store.revoked_hashes(audience="rs1", now=NOW, limit=10) == [h(5), h(2), h(1), h(4)]
    assert store.revoked_hashes(audience="rs2", now=NOW, limit=10) == [h(6)]
    assert store.revoked_hashes(client_id="c2", audience="rs2", now=NOW, limit=10) == [h(6)]
    assert store.revoked_hashes(now=NOW, limit=10) == [h(5), h(2), h(1), h(4), h(6)]
    assert store.revoked_hashes(client_id="c1", now=NOW, limit=2) == [h(5), h(1)]
    assert store.revoked_hashes(client_id="nobody", now=NOW, limit=10) == []


# --- the purge ------------------------------------------------------------------------------


def test_purge_tokens_bounded_oldest_first_and_spares_the_trl(store: AsStore) -> None:
    expiries = {1: NOW - 5, 2: NOW - 50, 3: NOW, 4: None, 5: NOW - 1, 6: NOW - 50, 7: NOW - 60}
    for n, exp in expiries.items():
        store.log_token(tok(n, expires_at=exp))
    store.revoke_token(h(7), revoked_at=NOW - 100, expires_at=NOW - 60)  # on the TRL: kept
    assert store.purge_tokens(NOW, 2) == 2  # the two that expired first and are not on the TRL
    assert store.find_token_by_cti(b"\x00\x02") is None and store.find_token_by_cti(b"\x00\x06") is None
    assert store.purge_tokens(NOW, 0) == 0
    assert store.purge_tokens(NOW, 10) == 2  # NOW - 5, NOW - 1; NOW itself stays
    assert [t.cti[1] for t in store.issued_tokens(limit=20)] == [7, 4, 3]
    assert store.purge_tokens(2**63 - 1, 10) == 1  # 3; never one without expiry, nor one on the TRL
    assert store.purge_revoked(NOW) == 1 and store.purge_tokens(NOW, 10) == 1  # off the TRL, then purged
    assert store.issued_tokens(limit=20) == [tok(4, expires_at=None)]
    store.log_token(tok(2, expires_at=None))  # cti uniqueness is the counters', not the purged rows'


def test_log_token_purges_in_the_same_write(store: AsStore) -> None:
    store.log_token(tok(1, expires_at=NOW - 5))
    store.log_token(tok(2, expires_at=NOW - 1), purge_before=NOW, purge_limit=0)
    store.log_token(tok(3), purge_before=NOW, purge_limit=1)  # the one that expired first goes
    assert [t.cti[1] for t in store.issued_tokens()] == [3, 2]
    with pytest.raises(ValueError):
        store.log_token(tok(4), purge_before=-1, purge_limit=1)
    assert store.find_token_by_cti(b"\x00\x04") is None  # nothing written
    store.log_token(tok(4), purge_before=NOW, purge_limit=64)
    assert [t.cti[1] for t in store.issued_tokens()] == [4, 3]


TOKEN_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("log"), st.integers(0, 12), st.sampled_from(["a", "b"]), st.one_of(st.none(),
                                                                                               st.integers(0, 20))),
        st.tuples(st.just("revoke"), st.integers(0, 12), st.just(""), st.integers(0, 20)),
        st.tuples(st.just("purge"), st.integers(0, 25), st.just(""), st.integers(0, 3)),
        st.tuples(st.just("purge_trl"), st.integers(0, 25), st.just(""), st.none()),
    ),
    max_size=30,
)


def _observe(s: AsStore, now: int) -> tuple[object, ...]:
    hashes, ctis = [h(n) for n in range(13)], [n.to_bytes(2, "big") for n in range(13)]
    live = (s.count_live_tokens("a", "rs1", now, 50), s.count_live_tokens("b", "rs1", now, 1))
    return (s.issued_tokens(limit=50), *live,
            s.revoked_hashes(client_id="a", now=now, limit=50), s.revoked_hashes(audience="rs1", now=now, limit=50),
            s.pop_holders("rs1", now, pop_kid=b"k", pop_thumbprint=None), s.find_tokens_by_hash(hashes),
            [s.find_token_by_cti(c) for c in ctis])


@settings(max_examples=40, deadline=None)
@given(ops=TOKEN_OPS)
def test_memory_and_sqlite_agree_on_the_token_log(tmp_path_factory: pytest.TempPathFactory,
                                                  ops: list[tuple[str, int, str, int | None]]) -> None:
    mem = MemoryAsStore()
    with SqliteAsStore(tmp_path_factory.mktemp("agree") / "as.db") as sql:
        for op, a, who, b in ops:
            for s in (mem, sql):
                if op == "log" and s.find_token_by_cti(a.to_bytes(2, "big")) is None:
                    s.log_token(tok(a, who, expires_at=b, kid=b"k" if a % 3 == 0 else None))
                elif op == "revoke":
                    s.revoke_token(h(a), revoked_at=0, expires_at=b)
                elif op == "purge_trl":
                    s.purge_revoked(a)
            if op == "purge":
                assert b is not None and mem.purge_tokens(a, b) == sql.purge_tokens(a, b)
            for now in (0, 10, 30):
                assert _observe(mem, now) == _observe(sql, now)


BAD_CALLS: list[tuple[str, Callable[[AsStore], object], type[Exception]]] = [
    ("str cti", lambda s: s.find_token_by_cti("x"), TypeError),  # type: ignore[arg-type]
    ("hashes as bytes", lambda s: s.find_tokens_by_hash(b"\x01" * 33), TypeError),
    ("str in hashes", lambda s: s.find_tokens_by_hash(["ab"]), TypeError),  # type: ignore[list-item]
    ("negative now", lambda s: s.count_live_tokens("c", "a", -1, 1), ValueError),
    ("negative count limit", lambda s: s.count_live_tokens("c", "a", 0, -1), ValueError),
    ("float now", lambda s: s.pop_holders("a", 1.5, pop_kid=b"k", pop_thumbprint=None), TypeError),  # type: ignore
    ("negative limit", lambda s: s.purge_tokens(0, -1), ValueError),
    ("bytes client", lambda s: s.revoked_hashes(client_id=b"c", now=0, limit=1), TypeError),  # type: ignore
    ("bytearray thumbprint", lambda s: s.log_token(tok(1, thumb=bytearray(32))), TypeError),  # type: ignore
]


@pytest.mark.parametrize(("name", "call", "error"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_calls_refused(store: AsStore, name: str, call: Callable[[AsStore], object],
                           error: type[Exception]) -> None:
    with pytest.raises(error):
        call(store)
    assert store.issued_tokens() == []


# --- the SQLite file --------------------------------------------------------------------


def test_lookups_use_the_indexes(db: Path) -> None:
    from ace.store import sqlite_log  # (not at the top: write_v5_fixture runs on the schema-5 code)
    plans: list[tuple[str, tuple[object, ...], str]] = [
        (sqlite_log.FIND_BY_CTI_SQL, (b"\x01",), "USING INDEX sqlite_autoindex_issued_tokens_1"),
        (sqlite_log.find_by_hashes_sql(2), (h(1), h(2)), "USING INDEX issued_tokens_token_hash"),
        (sqlite_log.COUNT_LIVE_SQL, ("c", "a", NOW, 64), "issued_tokens_live"),
        (sqlite_log.POP_HOLDERS_SQL, ("a", b"k", NOW, "a", b"t", NOW), "issued_tokens_pop"),
        (sqlite_log.POP_HOLDERS_SQL, ("a", b"k", NOW, "a", b"t", NOW), "issued_tokens_thumbprint"),
        (sqlite_log.PURGE_TOKENS_SQL, (NOW, 10), "USING INDEX issued_tokens_expires_at"),
        (sqlite_log.REVOKED_HASHES_SQL[(True, False)], ("c", NOW, 10), "issued_tokens_token_hash"),
        (sqlite_log.REVOKED_HASHES_SQL[(False, True)], ("a", NOW, 10), "issued_tokens_token_hash"),
    ]
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        for sql, params, index in plans:
            plan = str(raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            assert index in plan and "SCAN issued_tokens" not in plan, (sql, plan)
    raw.close()


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


def test_every_file_has_the_fresh_schema(tmp_path: Path) -> None:
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
