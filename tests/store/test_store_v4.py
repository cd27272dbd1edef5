"""Schema version 4 of the AS stores: named counters (``next_counter``), the Token Revocation
List of RFC 9770 (``revoke_token``, ``revoked_since``, ``purge_revoked``) and ``find_tokens``, in
``memory`` and ``sqlite`` alike, plus the SQLite side: reopen, SIGKILL mid-stream, index use,
and the migration of a version-3 file (``data/as_v3.db``, written by the schema-3 code of commit
b1ac9cd with ``write_v3_fixture`` below) and of the version-1 file of ``test_store_v2``, keeping
every record.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import NOW, fixed_clock
from test_sqlite_crash import run_and_kill_lines
from test_store_v2 import V1_CLOCK, V1_FILE, dump, populate_v1, snapshot
from test_store_v3 import AUTH, OKP_AUTH, TOKEN_KEY, V2_FILE, copy_private, populate_v2_file, schema, snapshot3

from ace.store import sqlite as sqlite_mod
from ace.store.base import AsStore, ClientRecord, Grant, IssuedToken, RsRecord
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.oscore_params import OscoreContextParams

V3_FILE = Path(__file__).parent / "data" / "as_v3.db"
V3_CLOCK = 1_690_000_000
E1_SECRET = OscoreContextParams(master_secret=b"\x44" * 16, sender_id=b"\x01", recipient_id=b"\x09")


def v3_token(cti: int, client_id: str, audience: str, *, expires: int | None = 600,
             pop_kid: bytes | None = None) -> IssuedToken:
    return IssuedToken(cti=bytes([0x50, cti]), client_id=client_id, audience=audience, scope="r",
                       issued_at=V3_CLOCK + cti, expires_at=None if expires is None else V3_CLOCK + cti + expires,
                       token_hash=bytes([0x50 + cti]) * 32, pop_kid=pop_kid)


V3_TOKENS = [
    v3_token(1, "e1", "rs4", pop_kid=b"\x09"), v3_token(2, "p1", "rs4"), v3_token(3, "e1", "rs5", expires=None),
    v3_token(4, "e1", "rs4", pop_kid=b"\x09"), v3_token(5, "p2", "rs5", expires=1),
]


def populate_v3_file(s: AsStore) -> None:
    """What ``data/as_v3.db`` holds (frozen: the file was written with exactly this)."""
    populate_v2_file(s)
    s.put_rs(RsRecord(audience="rs4", rs_id="four", token_key=TOKEN_KEY, auth_key=AUTH, profiles=(2,)))
    s.put_rs(RsRecord(audience="rs5", rs_id="five", token_key=TOKEN_KEY, token_kind="mac0", auth_key=OKP_AUTH))
    s.put_client(ClientRecord(client_id="e1", oscore=E1_SECRET, profiles=(2,)))
    s.add_grant(Grant(client_id="e1", audience="rs4", scope="r", default=True))
    for t in V3_TOKENS:
        s.log_token(t)
    s.persist_sequence_number("ctx-3", 5)
    for _ in range(3):
        s.next_cti()


def write_v3_fixture(path: str) -> None:
    """How ``data/as_v3.db`` was made (with the schema-3 code: the assertion fails on later ones)."""
    with SqliteAsStore(path, clock=fixed_clock(V3_CLOCK)) as s:
        assert s.schema_version() == 3
        populate_v3_file(s)


def snapshot4(s: AsStore) -> tuple[object, ...]:
    return (
        *snapshot3(s), s.get_rs("rs4"), s.get_rs("rs5"), s.get_client("e1"), s.grants_for("e1", "rs4"),
        s.load_sequence_number("ctx-3"), s.find_client_by_oscore_kid(b"\x09", None),
        s.find_token_by_pop_kid("e1", "rs4", b"\x09"), *(s.find_tokens(c, a) for c, a in FILTERS),
    )


FILTERS = [(None, None), ("e1", None), (None, "rs4"), ("e1", "rs4"), ("p1", None), ("c", "rs1"), ("zz", None)]


def h(n: int) -> bytes:
    return n.to_bytes(2, "big") * 16  # a 32-byte "hash"


# --- named counters ---------------------------------------------------------------------


def test_counters_count_from_one_per_name(store: AsStore) -> None:
    assert [store.next_counter("rs1") for _ in range(3)] == [1, 2, 3]
    assert store.next_counter("rs2") == 1
    assert store.next_counter("rs1") == 4
    # names that look like the cti counter or like the stored prefix are counters of their own
    for name in ("cti", "counter:rs1", "RS1", "rs1 ", "é"):
        assert store.next_counter(name) == 1
    assert store.next_counter("rs2") == 2 and store.next_counter("cti") == 2


def test_counters_leave_the_cti_alone(store: AsStore) -> None:
    first = store.next_cti()
    for _ in range(100):
        store.next_counter("cti")
    assert store.next_cti() == first + 1


def test_counter_unique_across_threads(store: AsStore) -> None:
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def work(name: str) -> None:
        seen[name].extend(store.next_counter(name) for _ in range(25))

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b") * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(seen["a"]) == sorted(seen["b"]) == list(range(1, 76))


# --- the token revocation list ----------------------------------------------------------


def test_revoke_duplicate_and_since(store: AsStore) -> None:
    assert store.revoked_since(0, 10) == []
    assert store.revoke_token(h(1), revoked_at=NOW, expires_at=NOW + 60) == 1
    assert store.revoke_token(h(2), revoked_at=NOW, expires_at=None) == 2
    assert store.revoke_token(h(1), revoked_at=NOW + 5, expires_at=None) is None  # already listed: no position used
    assert store.revoke_token(b"\x03", revoked_at=0, expires_at=0) == 3  # any 1 to 64 bytes
    assert store.revoke_token(b"\x04" * 64, revoked_at=NOW, expires_at=NOW) == 4
    every = [(1, h(1)), (2, h(2)), (3, b"\x03"), (4, b"\x04" * 64)]
    assert store.revoked_since(0, 10) == every
    assert store.revoked_since(0, 4) == every
    assert store.revoked_since(0, 2) == every[:2]
    assert store.revoked_since(2, 1) == every[2:3]
    assert store.revoked_since(1, 100) == every[1:]
    assert store.revoked_since(0, 0) == [] and store.revoked_since(4, 10) == [] and store.revoked_since(99, 1) == []


def test_purge_forgets_expired_entries_only(store: AsStore) -> None:
    for n, exp in enumerate([NOW - 1, None, NOW, NOW + 100, NOW - 1000], start=1):
        assert store.revoke_token(h(n), revoked_at=NOW - 2000, expires_at=exp) == n
    assert store.purge_revoked(NOW) == 2  # expired before NOW; NOW itself stays
    assert store.revoked_since(0, 10) == [(2, h(2)), (3, h(3)), (4, h(4))]
    assert store.purge_revoked(NOW) == 0
    assert store.revoked_since(1, 1) == [(2, h(2))]  # cursors keep working across gaps
    assert store.revoked_since(2, 10) == [(3, h(3)), (4, h(4))]
    assert store.purge_revoked(2**63 - 1) == 2  # everything that expires; no-expiry entries stay
    assert store.revoked_since(0, 10) == [(2, h(2))]
    assert store.purge_revoked(0) == 0


def test_positions_keep_increasing_after_purges(store: AsStore) -> None:
    for n in (1, 2, 3):
        store.revoke_token(h(n), revoked_at=NOW, expires_at=NOW + n)
    assert store.purge_revoked(NOW + 10) == 3  # the newest entry gone too: the TRL is empty
    assert store.revoked_since(0, 10) == []
    assert store.revoke_token(h(3), revoked_at=NOW, expires_at=None) == 4  # a purged hash listed anew
    assert store.revoke_token(h(9), revoked_at=NOW, expires_at=NOW) == 5
    assert store.revoked_since(3, 10) == [(4, h(3)), (5, h(9))]
    assert store.revoke_token(h(3), revoked_at=NOW, expires_at=None) is None


TRL_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("revoke"), st.integers(0, 6), st.one_of(st.none(), st.integers(0, 20))),
        st.tuples(st.just("purge"), st.integers(0, 25), st.none()),
        st.tuples(st.just("since"), st.integers(0, 12), st.integers(0, 5)),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(ops=TRL_OPS)
def test_memory_and_sqlite_agree_on_the_trl(tmp_path_factory: pytest.TempPathFactory,
                                            ops: list[tuple[str, int, int | None]]) -> None:
    mem = MemoryAsStore()
    last = 0
    with SqliteAsStore(tmp_path_factory.mktemp("agree") / "as.db") as sql:
        for op, a, b in ops:
            if op == "revoke":
                got = [s.revoke_token(h(a), revoked_at=1, expires_at=b) for s in (mem, sql)]
                assert got[0] == got[1]
                if got[0] is not None:
                    assert got[0] > last
                    last = got[0]
            elif op == "purge":
                assert mem.purge_revoked(a) == sql.purge_revoked(a)
            else:
                assert b is not None and mem.revoked_since(a, b) == sql.revoked_since(a, b)
        assert mem.revoked_since(0, 100) == sql.revoked_since(0, 100)


# --- find_tokens ------------------------------------------------------------------------


def test_find_tokens_filters_newest_first(store: AsStore) -> None:
    assert store.find_tokens() == [] and store.find_tokens("e1") == []
    for t in V3_TOKENS:
        store.log_token(t)
    late = v3_token(6, "e1", "rs4", expires=None)
    store.log_token(late)
    newest_first = [late, *V3_TOKENS[::-1]]
    assert store.find_tokens() == newest_first == store.issued_tokens()
    assert store.find_tokens("e1") == [late, V3_TOKENS[3], V3_TOKENS[2], V3_TOKENS[0]]
    assert store.find_tokens(client_id="e1", audience="rs4") == [late, V3_TOKENS[3], V3_TOKENS[0]]
    assert store.find_tokens(audience="rs4") == [late, V3_TOKENS[3], V3_TOKENS[1], V3_TOKENS[0]]
    assert store.find_tokens(audience="rs5") == [V3_TOKENS[4], V3_TOKENS[2]]
    assert store.find_tokens("p2", "rs5") == [V3_TOKENS[4]]
    for client, aud in [("p2", "rs4"), ("E1", None), (None, "rs"), ("", None), (None, ""), ("rs4", None)]:
        assert store.find_tokens(client, aud) == []


BAD_CALLS: list[tuple[str, Callable[[AsStore], object], type[Exception]]] = [
    ("empty counter name", lambda s: s.next_counter(""), ValueError),
    ("bytes counter name", lambda s: s.next_counter(b"rs1"), TypeError),  # type: ignore[arg-type]
    ("empty hash", lambda s: s.revoke_token(b"", revoked_at=NOW, expires_at=None), ValueError),
    ("65-byte hash", lambda s: s.revoke_token(b"\x5e" * 65, revoked_at=NOW, expires_at=None), ValueError),
    ("str hash", lambda s: s.revoke_token("ab", revoked_at=NOW, expires_at=None), TypeError),  # type: ignore[arg-type]
    ("bytearray hash", lambda s: s.revoke_token(bytearray(b"\x5e" * 32), revoked_at=NOW, expires_at=None),  # type: ignore[arg-type]
     TypeError),
    ("negative revoked_at", lambda s: s.revoke_token(b"\x5e" * 32, revoked_at=-1, expires_at=None), ValueError),
    ("float expires_at", lambda s: s.revoke_token(b"\x5e" * 32, revoked_at=NOW, expires_at=1.5), TypeError),  # type: ignore[arg-type]
    ("bool revoked_at", lambda s: s.revoke_token(b"\x5e" * 32, revoked_at=True, expires_at=None), TypeError),
    ("huge expires_at", lambda s: s.revoke_token(b"\x5e" * 32, revoked_at=NOW, expires_at=2**63), ValueError),
    ("negative cursor", lambda s: s.revoked_since(-1, 10), ValueError),
    ("negative limit", lambda s: s.revoked_since(0, -1), ValueError),
    ("huge limit", lambda s: s.revoked_since(0, 2**64), ValueError),
    ("str cursor", lambda s: s.revoked_since("0", 10), TypeError),  # type: ignore[arg-type]
    ("negative now", lambda s: s.purge_revoked(-1), ValueError),
    ("bytes client filter", lambda s: s.find_tokens(b"c"), TypeError),  # type: ignore[arg-type]
    ("int audience filter", lambda s: s.find_tokens(audience=1), TypeError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("name", "call", "error"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_calls_refused(store: AsStore, name: str, call: Callable[[AsStore], object],
                           error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        call(store)
    assert "5e5e" not in str(info.value) and "^^" not in str(info.value)  # never the hash itself
    assert store.revoked_since(0, 10) == [] and store.next_counter("rs1") == 1


def test_closed_store_refuses_new_calls(store: AsStore) -> None:
    store.close()
    for call in (lambda: store.next_counter("a"), lambda: store.revoke_token(h(1), revoked_at=0, expires_at=None),
                 lambda: store.revoked_since(0, 1), lambda: store.purge_revoked(0), store.find_tokens):
        with pytest.raises(ValueError, match="closed"):
            call()


# --- the SQLite file --------------------------------------------------------------------


def test_counters_and_trl_survive_reopen(db: Path) -> None:
    with SqliteAsStore(db) as s:
        assert [s.next_counter("rs1") for _ in range(3)] == [1, 2, 3] and s.next_counter("rs2") == 1
        first_cti = s.next_cti()
        for n in (1, 2, 3):
            s.revoke_token(h(n), revoked_at=NOW, expires_at=NOW + n)
        assert s.purge_revoked(NOW + 3) == 2
    with SqliteAsStore(db) as s:
        assert s.next_counter("rs1") == 4 and s.next_counter("rs2") == 2 and s.next_counter("rs3") == 1
        assert s.next_cti() > first_cti
        assert s.revoked_since(0, 10) == [(3, h(3))]
        assert s.purge_revoked(NOW + 4) == 1 and s.revoked_since(0, 10) == []
    with SqliteAsStore(db) as s:  # the TRL emptied by a purge: positions still go on
        assert s.revoke_token(h(4), revoked_at=NOW, expires_at=None) == 4
        assert s.integrity_check()
    with sqlite3.connect(db) as raw:
        counters = dict(raw.execute("SELECT name, value FROM counters").fetchall())
        trl = raw.execute("SELECT * FROM revoked_tokens").fetchall()
    raw.close()
    assert counters == {"cti": 128, "counter:rs1": 4, "counter:rs2": 2, "counter:rs3": 1}
    assert trl == [(4, h(4), NOW, None)]


def test_trl_constraints_kept_by_the_file(db: Path) -> None:
    with SqliteAsStore(db) as s:
        s.revoke_token(h(1), revoked_at=NOW, expires_at=None)
    with sqlite3.connect(db) as raw:
        for sql, params, match in [
            ("INSERT INTO revoked_tokens (token_hash, revoked_at) VALUES (?, 0)", (h(1),), "UNIQUE"),
            ("INSERT INTO revoked_tokens (token_hash, revoked_at) VALUES (?, 0)", (b"",), "CHECK"),
            ("INSERT INTO revoked_tokens (token_hash, revoked_at) VALUES (?, 0)", (bytes(65),), "CHECK"),
            ("INSERT INTO revoked_tokens (token_hash, revoked_at) VALUES (?, 0)", ("ab",), "cannot store TEXT"),
            ("INSERT INTO revoked_tokens (token_hash, revoked_at, expires_at) VALUES (?, 0, 'x')", (h(2),),
             "cannot store TEXT"),
        ]:
            with pytest.raises(sqlite3.IntegrityError, match=match):
                raw.execute(sql, params)
    raw.close()


def test_lookups_use_the_indexes(db: Path) -> None:
    plans: list[tuple[str, tuple[object, ...], str]] = [
        (sqlite_mod.FIND_TOKENS_SQL[True, False], ("c",), "USING INDEX issued_tokens_client"),
        (sqlite_mod.FIND_TOKENS_SQL[False, True], ("rs1",), "USING INDEX issued_tokens_audience"),
        (sqlite_mod.FIND_TOKENS_SQL[True, True], ("c", "rs1"), "USING INDEX issued_tokens_"),
        (sqlite_mod.REVOKED_SINCE_SQL, (0, 10), "USING INTEGER PRIMARY KEY"),
        (sqlite_mod.PURGE_REVOKED_SQL, (NOW,), "USING INDEX revoked_tokens_expires_at"),
    ]
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        for sql, params, index in plans:
            plan = str(raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            assert index in plan and "TEMP B-TREE" not in plan, (sql, plan)
    raw.close()


COUNTER_CHILD = """
import sys, time
from ace.store.sqlite import SqliteAsStore

store = SqliteAsStore(sys.argv[1])
deadline = time.monotonic() + 25
while time.monotonic() < deadline:
    value = store.next_counter("rs1")
    position = store.revoke_token(value.to_bytes(8, "big"), revoked_at=value, expires_at=None)
    print(value, position, flush=True)
"""


def test_sigkill_never_repeats_a_counter_value(db: Path) -> None:
    """Each line is printed once both writes returned: after the kill, every printed value is
    below the next one handed out, and every printed revocation is listed at its position."""
    seen: list[int] = []
    listed: list[tuple[int, bytes]] = []
    for _ in range(2):  # the second writer starts from the file the killed one left
        lines = [tuple(int(x) for x in line.split()) for line in run_and_kill_lines(db, COUNTER_CHILD)]
        values = [v for v, _ in lines]
        assert values == list(range(values[0], values[0] + len(values)))  # no gaps: no blocks
        assert not seen or values[0] in (seen[-1] + 1, seen[-1] + 2)  # at most one committed, never printed
        with SqliteAsStore(db) as s:
            assert s.integrity_check()
            after = s.next_counter("rs1")
            assert after in (values[-1] + 1, values[-1] + 2)
            trl = s.revoked_since(0, 10**6)
        printed = [(p, v.to_bytes(8, "big")) for v, p in lines]
        assert set(printed) <= set(trl) and all(a < b for a, b in itertools.pairwise(p for p, _ in trl))
        seen += [*values, after]
        listed += printed
    assert len(set(seen)) == len(seen) and len(set(listed)) == len(listed)


# --- migration of version-3 and version-1 files -----------------------------------------


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


def test_every_file_has_the_fresh_schema(tmp_path: Path) -> None:
    files = [copy_private(f, tmp_path / f.name) for f in (V1_FILE, V2_FILE, V3_FILE)]
    fresh = tmp_path / "new.db"
    for f in (*files, fresh):
        SqliteAsStore(f).close()
    assert all(schema(f) == schema(fresh) for f in files)
    names = {row[1] for row in schema(fresh)}
    assert {"revoked_tokens", "revoked_tokens_expires_at", "issued_tokens_client", "issued_tokens_audience",
            "sqlite_sequence"} <= names
