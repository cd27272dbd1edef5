"""Reference tokens in both AS stores (RFC 9200 §5.9: the AS keeps the claims behind an opaque
token; ``put_reference``, ``get_reference``, the bounded ``purge_references``), stored once, the
claims never shown; ``memory`` and ``sqlite`` agree; and the SQLite side: reopen, the file's
constraints, a damaged row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_support import h, ref
from support import NOW, fixed_clock

from ace.errors import ConfigError
from ace.store.base import AsStore, ReferenceToken
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore

# --- reference tokens ---------------------------------------------------------------------


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


# --- the SQLite file ----------------------------------------------------------------------


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
