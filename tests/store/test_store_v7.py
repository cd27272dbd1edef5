"""Schema version 7 of the AS stores: EDHOC credentials (kid, RFC 9679 thumbprint) that belong for
good to one client (registered by the operator, else the first presenter at an audience; issue 17
review item 1), in ``memory`` and ``sqlite`` alike; the migration of a version-6 file
(``data/as_v6.db``, written by the schema-6 code of commit 3d4db06 with ``write_v6_fixture`` below),
which seeds the table from the token log; and two processes opening an old file at once (the
migration race: the version is read again inside the migration's transaction).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from support import NOW, fixed_clock
from test_store_v2 import dump
from test_store_v3 import copy_private, schema
from test_store_v5 import V4_FILE
from test_store_v6 import V5_FILE, populate_v5_file, snapshot6, tok

from ace.store import sqlite as sqlite_mod
from ace.store.base import AsStore, ClientRecord
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore

V6_FILE = Path(__file__).parent / "data" / "as_v6.db"
V6_CLOCK = 1_699_000_000
TA, TB, TC = b"\xa1" * 32, b"\xb2" * 32, b"\xc3" * 32

V6_TOKENS = [
    tok(0x81, "e1", "rs7", V6_CLOCK + 60, kid=b"kA", thumb=TA),
    tok(0x82, "e2", "rs7", V6_CLOCK + 60, kid=b"kB", thumb=TB),
    tok(0x83, "e2", "rs7", V6_CLOCK - 1, kid=b"kA", thumb=TC),  # e1's kid, later: not e2's
    tok(0x84, "e1", "rs7", V6_CLOCK + 90, kid=b"kA", thumb=TA),  # e1 again: one row
    tok(0x85, "o1", "rs7", V6_CLOCK + 60, kid=b"\x05"),  # an OSCORE material id: no credential
    tok(0x86, "e2", "rs8", V6_CLOCK + 60, kid=b"kA", thumb=TC),  # another audience: e2's there
]


def populate_v6_file(s: AsStore) -> None:
    """What ``data/as_v6.db`` holds (frozen: the file was written with exactly this)."""
    populate_v5_file(s)
    for t in V6_TOKENS:
        s.log_token(t)


def write_v6_fixture(path: str) -> None:
    """How ``data/as_v6.db`` was made (with the schema-6 code: the assertion fails on later ones)."""
    with SqliteAsStore(path, clock=fixed_clock(V6_CLOCK)) as s:
        assert s.schema_version() == 6
        populate_v6_file(s)


def claim(s: AsStore, client: str, kid: bytes, thumb: bytes, audience: str = "rs1", now: int = NOW,
          limit: int = 4) -> str | None:
    return s.claim_edhoc_credential(client, audience, kid=kid, thumbprint=thumb, now=now, limit=limit)


# --- the first presenter keeps it ---------------------------------------------------------------


def test_first_presenter_keeps_kid_and_key_for_good(store: AsStore) -> None:
    assert claim(store, "b", b"kA", TB) is None  # b squats a's kid first
    assert claim(store, "a", b"kA", TA) == "b"  # by kid
    assert claim(store, "a", b"kX", TB) == "b"  # by key
    assert claim(store, "b", b"kA", TB, now=NOW + 10**6) is None  # b's still, however long after
    assert claim(store, "a", b"kA", TA, now=NOW + 10**6) == "b"
    assert claim(store, "a", b"kA", TA, audience="rs2") is None  # per audience
    assert claim(store, "b", b"kA", TB, audience="rs2") == "a"
    assert claim(store, "a", b"kZ", TA) is None  # a's own new key and kid at rs1: a's
    assert store.edhoc_credentials("a") == [("rs1", b"kZ", TA), ("rs2", b"kA", TA)]


def test_registration_wins_over_first_presenters(store: AsStore) -> None:
    assert claim(store, "b", b"kA", TB) is None
    store.register_edhoc_credential("a", kid=b"kA", thumbprint=TA, now=NOW)
    assert store.edhoc_credentials("b") == []  # b's squatting row went
    assert claim(store, "a", b"kA", TA) is None and claim(store, "a", b"kA", TA, audience="rs9") is None
    assert store.edhoc_credentials("a") == [(None, b"kA", TA)]  # registered: nothing recorded per audience
    for kid, thumb in ((b"kA", TB), (b"kB", TA), (b"kA", TA)):
        assert claim(store, "b", kid, thumb) == "a" and claim(store, "b", kid, thumb, audience="rs9") == "a"
    with pytest.raises(ValueError, match="registered for 'a'"):
        store.register_edhoc_credential("b", kid=b"kA", thumbprint=TB, now=NOW)
    store.register_edhoc_credential("a", kid=b"kA", thumbprint=TA, now=NOW)  # idempotent
    assert store.edhoc_credentials("a") == [(None, b"kA", TA)]


def test_credentials_are_bounded_and_go_with_their_client(store: AsStore) -> None:
    for n in range(6):  # limit 4: the least recently used go
        assert claim(store, "a", b"k%d" % n, bytes([n]) * 32, now=NOW + n) is None
    assert claim(store, "a", b"k2", bytes([2]) * 32, now=NOW + 9) is None  # used again
    assert claim(store, "a", b"k6", bytes([6]) * 32, now=NOW + 10) is None
    assert {kid for _, kid, _ in store.edhoc_credentials("a")} == {b"k2", b"k4", b"k5", b"k6"}
    assert claim(store, "b", b"k0", TB) is None  # a's evicted one: free
    store.put_client(ClientRecord(client_id="a"))
    store.register_edhoc_credential("a", kid=b"kR", thumbprint=TA, now=NOW)
    assert store.remove_client("a")
    assert store.edhoc_credentials("a") == []
    assert claim(store, "b", b"k5", TA) is None  # a's kid and registered key are free now


BAD_CALLS: list[tuple[str, Callable[[AsStore], object], type[Exception]]] = [
    ("empty kid", lambda s: claim(s, "a", b"", TA), ValueError),
    ("long kid", lambda s: claim(s, "a", b"k" * 65, TA), ValueError),
    ("short thumbprint", lambda s: claim(s, "a", b"k", b"t"), ValueError),
    ("str kid", lambda s: claim(s, "a", "k", TA), TypeError),  # type: ignore[arg-type]
    ("negative limit", lambda s: claim(s, "a", b"k", TA, limit=-1), ValueError),
    ("register bytearray", lambda s: s.register_edhoc_credential("a", kid=b"k", thumbprint=bytearray(TA),
                                                                 now=0), TypeError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("name", "call", "error"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_calls_refused(store: AsStore, name: str, call: Callable[[AsStore], object],
                           error: type[Exception]) -> None:
    with pytest.raises(error):
        call(store)
    assert store.edhoc_credentials("a") == []


# --- the SQLite file --------------------------------------------------------------------------


def test_lookups_use_the_indexes(db: Path) -> None:
    from ace.store import sqlite_cred  # (not at the top: write_v6_fixture runs on the schema-6 code)
    plans = [(sqlite_cred.REGISTERED_SQL, (TA, b"k")), (sqlite_cred.OTHER_PRESENTER_SQL, (TA, "c", "a", b"k", "c")),
             (sqlite_cred.EVICT_SQL, ("c", "a", 4))]  # (FORGET_PRESENTED_SQL scans: the operator's, rare)
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        for sql, params in plans:
            plan = str(raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            assert "INDEX edhoc_credentials" in plan and "SCAN edhoc_credentials" not in plan, (sql, plan)
    raw.close()


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


def test_every_file_has_the_fresh_schema(tmp_path: Path) -> None:
    files = [copy_private(f, tmp_path / f.name) for f in (V4_FILE, V5_FILE, V6_FILE)]
    fresh = tmp_path / "new.db"
    for f in (*files, fresh):
        SqliteAsStore(f).close()
    assert all(schema(f) == schema(fresh) for f in files)
    assert "edhoc_credentials_kid" in {row[1] for row in schema(fresh)}


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
