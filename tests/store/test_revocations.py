"""The Token Revocation List of RFC 9770 in both AS stores (``revoke_token``, ``revoked_since``,
``purge_revoked``, ``is_revoked``): positions that only grow, cursors across purges, refused
calls, a closed store; ``memory`` and ``sqlite`` agree; and the SQLite side: counters and TRL
survive reopen, the file keeps the TRL's constraints.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_support import h as h33
from support import NOW

from ace.store.base import AsStore
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore

# --- the token revocation list ------------------------------------------------------------


def h(n: int) -> bytes:
    return n.to_bytes(2, "big") * 16  # a 32-byte "hash"


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


def test_is_revoked(store: AsStore) -> None:
    assert not store.is_revoked(h33(1))
    store.revoke_token(h33(1), revoked_at=NOW, expires_at=NOW + 1)
    assert store.is_revoked(h33(1)) and not store.is_revoked(h33(2))
    store.purge_revoked(NOW + 2)
    assert not store.is_revoked(h33(1))


# --- refused calls ------------------------------------------------------------------------


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


# --- the SQLite file ----------------------------------------------------------------------


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
