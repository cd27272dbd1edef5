"""Every lookup of the SQLite store uses its index (EXPLAIN QUERY PLAN): no table scan, no
temporary B-tree for the newest-first orders.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store_support import TA, h
from support import NOW

from ace.store import sqlite as sqlite_mod
from ace.store.sqlite import SqliteAsStore


def test_find_by_kid_uses_the_index(db: Path) -> None:
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        plan = raw.execute("EXPLAIN QUERY PLAN " + sqlite_mod.FIND_BY_KID_SQL, (b"\x01", True, b"")).fetchall()
    assert "USING INDEX clients_oscore_kid" in str(plan)


def test_psk_and_pop_kid_lookups_use_the_indexes(db: Path) -> None:
    plans = {
        sqlite_mod.FIND_BY_PSK_SQL: ((b"client-1",), "USING INDEX clients_psk_identity"),
        sqlite_mod.FIND_TOKEN_BY_POP_KID_SQL: (("c", "rs1", b"k1"), "USING INDEX issued_tokens_pop_kid"),
    }
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        for sql, (params, index) in plans.items():
            plan = str(raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            assert index in plan and "TEMP B-TREE" not in plan  # newest first straight from the index


def test_token_filters_and_trl_use_the_indexes(db: Path) -> None:
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


def test_reference_lookups_use_the_indexes(db: Path) -> None:
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


def test_token_log_lookups_use_the_indexes(db: Path) -> None:
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


def test_edhoc_credential_lookups_use_the_indexes(db: Path) -> None:
    from ace.store import sqlite_cred  # (not at the top: write_v6_fixture runs on the schema-6 code)
    plans = [(sqlite_cred.REGISTERED_SQL, (TA, b"k")), (sqlite_cred.OTHER_PRESENTER_SQL, (TA, "c", "a", b"k", "c")),
             (sqlite_cred.EVICT_SQL, ("c", "a", 4))]  # (FORGET_PRESENTED_SQL scans: the operator's, rare)
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        for sql, params in plans:
            plan = str(raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            assert "INDEX edhoc_credentials" in plan and "SCAN edhoc_credentials" not in plan, (sql, plan)
    raw.close()


def test_owner_lookups_use_the_indexes(db: Path) -> None:
    from ace.store import sqlite_cred
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        plan = str(raw.execute("EXPLAIN QUERY PLAN " + sqlite_cred.OTHER_PRESENTER_SQL,
                               (TA, "c", "a", b"k", "c")).fetchall())
    raw.close()
    assert "edhoc_credentials_thumbprint" in plan and "SCAN edhoc_credentials" not in plan, plan
