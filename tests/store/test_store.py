"""Both AS stores (``memory``, ``sqlite``) against the same table of behaviours, plus what only
the SQLite file has to show: every field identical after close/reopen, mode 0600, the schema
version and migrations, refusal (ConfigError) of newer, foreign, damaged and garbage files.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import NOW, fixed_clock

from ace.cbor.labels import Curve, KeyType
from ace.errors import ConfigError
from ace.store import sqlite as sqlite_mod
from ace.store.base import AsStore, ClientRecord, Grant, IssuedToken, RsRecord
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SCHEMA_VERSION, SqliteAsStore
from ace.tokens.crypto import generate
from ace.tokens.keys import CoseKey, symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

MS = bytes(range(16))
SECRET = OscoreContextParams(master_secret=MS, sender_id=b"", recipient_id=b"\x01")
FULL_SECRET = OscoreContextParams(
    master_secret=b"\xaa" * 32, sender_id=b"\x00", recipient_id=b"\x02", master_salt=b"salt",
    id_context=b"\x37\xcb", alg=11, hkdf="sha512",
)
EC_KEY = generate(Curve.P_256, kid=b"ec", alg=-7)


def rs_record(audience: str = "rs1", **kw: object) -> RsRecord:
    return RsRecord(audience=audience, rs_id=f"{audience}-id", token_key=symmetric_key(bytes(16), kid=b"k"), **kw)  # type: ignore[arg-type]


# --- clients ----------------------------------------------------------------------------


def test_client_crud(store: AsStore) -> None:
    b, a = ClientRecord(client_id="b", oscore=SECRET), ClientRecord(client_id="a", profiles=(1, 2))
    store.put_client(b)
    store.put_client(a)
    assert store.get_client("a") == a and store.get_client("b") == b and store.get_client("c") is None
    assert store.list_clients() == [a, b]  # ordered by client_id
    a2 = ClientRecord(client_id="a", profiles=(1,), oscore=FULL_SECRET)
    store.put_client(a2)
    assert store.get_client("a") == a2
    assert store.remove_client("a") is True and store.remove_client("a") is False
    assert store.list_clients() == [b]


def test_find_client_by_oscore_kid_distinguishes_id_context(store: AsStore) -> None:
    none_ctx = ClientRecord(client_id="none", oscore=SECRET)
    empty = OscoreContextParams(master_secret=MS, sender_id=b"", recipient_id=b"\x01", id_context=b"")
    empty_ctx = ClientRecord(client_id="empty", oscore=empty)
    full = ClientRecord(client_id="full", oscore=FULL_SECRET)
    for c in (none_ctx, empty_ctx, full, ClientRecord(client_id="plain")):
        store.put_client(c)
    assert store.find_client_by_oscore_kid(b"\x01", None) == none_ctx
    assert store.find_client_by_oscore_kid(b"\x01", b"") == empty_ctx
    assert store.find_client_by_oscore_kid(b"\x02", b"\x37\xcb") == full
    assert store.find_client_by_oscore_kid(b"\x02", None) is None
    assert store.find_client_by_oscore_kid(b"\x03", None) is None
    store.remove_client("none")
    assert store.find_client_by_oscore_kid(b"\x01", None) is None


def test_second_client_with_same_oscore_kid_is_refused(store: AsStore) -> None:
    store.put_client(ClientRecord(client_id="a", oscore=SECRET))
    store.put_client(ClientRecord(client_id="a", oscore=SECRET, profiles=(2, 1)))  # same client: an update
    with pytest.raises(ValueError, match="already used by 'a'") as info:
        store.put_client(ClientRecord(client_id="b", oscore=SECRET))
    assert MS.hex() not in str(info.value)
    assert store.get_client("b") is None and [c.client_id for c in store.list_clients()] == ["a"]


# --- resource servers -------------------------------------------------------------------


def test_rs_crud(store: AsStore) -> None:
    ec = generate(Curve.P_256, kid=b"ec", alg=-7)
    r2 = RsRecord(audience="rs2", rs_id="two", token_key=ec, token_kind="sign1", token_alg=-7, profiles=(1,),
                  token_lifetime=60, oscore=FULL_SECRET)
    r1 = rs_record()
    store.put_rs(r2)
    store.put_rs(r1)
    assert store.get_rs("rs1") == r1 and store.get_rs("rs2") == r2 and store.get_rs("rs3") is None
    assert store.list_rs() == [r1, r2]
    r1b = rs_record(token_kind="mac0")
    store.put_rs(r1b)
    assert store.get_rs("rs1") == r1b
    assert store.remove_rs("rs2") is True and store.remove_rs("rs2") is False
    assert store.list_rs() == [r1b]


# --- grants -----------------------------------------------------------------------------


def test_grants_keep_text_and_bytes_scopes_apart(store: AsStore) -> None:
    text, aif = Grant(client_id="c", audience="rs1", scope="r"), Grant(client_id="c", audience="rs1", scope=b"r")
    store.add_grant(text)
    store.add_grant(aif)
    got = store.grants_for("c", "rs1")
    assert got == [text, aif] and type(got[0].scope) is str and type(got[1].scope) is bytes
    assert store.grants_for("c", "rs2") == [] and store.grants_for("d", "rs1") == []
    assert store.revoke_grant("c", "rs1", b"r") == 1
    assert store.grants_for("c", "rs1") == [text]


def test_add_grant_is_idempotent_and_updates_default(store: AsStore) -> None:
    g = Grant(client_id="c", audience="rs1", scope="r w")
    other = Grant(client_id="c", audience="rs1", scope=b"\x82\x61/\x01")
    for _ in range(3):
        store.add_grant(g)
    store.add_grant(other)
    assert store.list_grants() == [g, other]
    g_default = Grant(client_id="c", audience="rs1", scope="r w", default=True)
    store.add_grant(g_default)
    assert store.list_grants() == [g_default, other]  # updated in place, still first


def test_revoke_grant_counts(store: AsStore) -> None:
    rows: list[tuple[str, str, str | bytes]] = [("c", "a", "x"), ("c", "a", "y"), ("c", "a", b"x"), ("c", "b", "x"),
                                                ("d", "a", "x")]
    for client, aud, scope in rows:
        store.add_grant(Grant(client_id=client, audience=aud, scope=scope))
    assert store.revoke_grant("c", "a", "zz") == 0
    assert store.revoke_grant("c", "a", "x") == 1
    assert store.revoke_grant("c", "a") == 2
    assert store.revoke_grant("c", "a") == 0
    assert [(g.client_id, g.audience) for g in store.list_grants()] == [("c", "b"), ("d", "a")]


SCOPES = st.one_of(st.text(max_size=40), st.binary(max_size=40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scopes=st.lists(SCOPES, max_size=6), default=st.booleans())
def test_scope_round_trips_exactly(store: AsStore, scopes: list[str | bytes], default: bool) -> None:
    store.revoke_grant("c", "rs")
    grants = [Grant(client_id="c", audience="rs", scope=s, default=default) for s in dict.fromkeys(scopes)]
    for g in grants:
        store.add_grant(g)
    got = store.grants_for("c", "rs")
    assert got == grants and [type(g.scope) for g in got] == [type(g.scope) for g in grants]


GRANT_OPS = st.lists(
    st.tuples(st.sampled_from(["add", "revoke"]), st.sampled_from(["c", "d"]), st.sampled_from(["a", "b"]),
              st.one_of(st.none(), st.sampled_from(["r", "w", b"r", b"\x01"])), st.booleans()),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(ops=GRANT_OPS)
def test_memory_and_sqlite_agree_on_grants(tmp_path_factory: pytest.TempPathFactory,
                                           ops: list[tuple[str, str, str, str | bytes | None, bool]]) -> None:
    mem = MemoryAsStore()
    with SqliteAsStore(tmp_path_factory.mktemp("agree") / "as.db") as sql:
        for op, client, aud, scope, default in ops:
            if op == "add":
                grant = Grant(client_id=client, audience=aud, scope=scope or "r", default=default)
                mem.add_grant(grant)
                sql.add_grant(grant)
            else:
                assert mem.revoke_grant(client, aud, scope) == sql.revoke_grant(client, aud, scope)
        assert mem.list_grants() == sql.list_grants()


# --- cti, token log, sequence numbers ---------------------------------------------------


def test_next_cti_strictly_increasing(store: AsStore) -> None:
    values = [store.next_cti() for _ in range(50)]
    assert all(a < b for a, b in itertools.pairwise(values))


def test_next_cti_unique_across_threads(store: AsStore) -> None:
    seen: list[int] = []

    def work() -> None:
        seen.extend(store.next_cti() for _ in range(25))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 100 and len(set(seen)) == 100


def token(cti: bytes, scope: str | bytes | None = "r") -> IssuedToken:
    return IssuedToken(cti=cti, client_id="c", audience="rs1", scope=scope, issued_at=NOW, expires_at=None,
                       token_hash=b"\x11" * 32)


def test_token_log_newest_first(store: AsStore) -> None:
    tokens = [token(b"\x01", "r"), token(b"\x02", b"\x83"), token(b"\x03", None)]
    for t in tokens:
        store.log_token(t)
    assert store.issued_tokens() == tokens[::-1]
    assert store.issued_tokens(limit=2) == tokens[:0:-1]
    assert store.issued_tokens(limit=0) == []
    with pytest.raises(ValueError, match="already logged"):
        store.log_token(token(b"\x01"))
    assert len(store.issued_tokens()) == 3


def test_sequence_numbers(store: AsStore) -> None:
    assert store.load_sequence_number("as-c1") is None
    store.persist_sequence_number("as-c1", 0)
    assert store.load_sequence_number("as-c1") == 0
    store.persist_sequence_number("as-c1", 2**40 - 1)
    store.persist_sequence_number("as-c1", 7)  # a late, smaller value never lowers the mark
    store.persist_sequence_number("as-c2", 20)
    assert store.load_sequence_number("as-c1") == 2**40 - 1 and store.load_sequence_number("as-c2") == 20


BAD_CALLS: list[tuple[str, Callable[[AsStore], object], type[Exception]]] = [
    ("int scope", lambda s: s.add_grant(Grant(client_id="c", audience="a", scope=1)), TypeError),  # type: ignore[arg-type]
    ("bytearray scope", lambda s: s.revoke_grant("c", "a", bytearray(b"r")), TypeError),  # type: ignore[arg-type]
    ("empty client_id", lambda s: s.put_client(ClientRecord(client_id="")), ValueError),
    ("list profiles", lambda s: s.put_client(ClientRecord(client_id="c", profiles=[2])), TypeError),  # type: ignore[arg-type]
    ("bad token_kind", lambda s: s.put_rs(rs_record(token_kind="jwt")), ValueError),
    ("zero lifetime", lambda s: s.put_rs(rs_record(token_lifetime=0)), ValueError),
    ("negative seqno", lambda s: s.persist_sequence_number("x", -1), ValueError),
    ("huge seqno", lambda s: s.persist_sequence_number("x", 2**63), ValueError),
    ("negative limit", lambda s: s.issued_tokens(-1), ValueError),
]


@pytest.mark.parametrize(("name", "call", "error"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_calls_refused(
    store: AsStore, name: str, call: Callable[[AsStore], object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        call(store)
    assert store.list_clients() == [] and store.list_rs() == [] and store.list_grants() == []


def test_closed_store_refuses_calls(store: AsStore) -> None:
    store.close()
    store.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        store.next_cti()


# --- the SQLite file --------------------------------------------------------------------


def populate(s: AsStore) -> None:
    s.put_client(ClientRecord(client_id="c1", oscore=FULL_SECRET, profiles=(2, 1)))
    s.put_client(ClientRecord(client_id="c2", oscore=SECRET))
    s.put_client(ClientRecord(client_id="c3"))
    odd = CoseKey(kty=KeyType.SYMMETRIC, k=b"\x07" * 32, kid=b"m", alg=5, key_ops=(9, 10), base_iv=b"\x01" * 7,
                  extra=((-70000, "note"),))
    s.put_rs(RsRecord(audience="rs1", rs_id="one", token_key=odd, token_kind="mac0", token_alg=5))
    s.put_rs(RsRecord(audience="rs2", rs_id="two", token_key=EC_KEY, token_kind="sign1", token_alg=None,
                      profiles=(1, 2), token_lifetime=1, oscore=FULL_SECRET))
    for g in [Grant(client_id="c1", audience="rs1", scope="r w", default=True),
              Grant(client_id="c1", audience="rs1", scope=b"\x82\x61/\x01"),
              Grant(client_id="c2", audience="rs2", scope="")]:
        s.add_grant(g)
    s.log_token(token(b"\x00\x01", None))
    s.log_token(IssuedToken(cti=b"\x02", client_id="c2", audience="rs2", scope=b"\xa0", issued_at=0, expires_at=2**40,
                            token_hash=b""))
    s.persist_sequence_number("ctx", 123)
    for _ in range(5):
        s.next_cti()


def snapshot(s: AsStore) -> tuple[object, ...]:
    return (s.list_clients(), s.list_rs(), s.list_grants(), s.issued_tokens(),
            s.load_sequence_number("ctx"), s.find_client_by_oscore_kid(b"\x02", b"\x37\xcb"))


def test_every_field_survives_reopen(db: Path) -> None:
    mem = MemoryAsStore()
    populate(mem)
    with SqliteAsStore(db) as s:
        populate(s)
        before = snapshot(s)
    assert before == snapshot(mem)
    with SqliteAsStore(db) as s:
        assert snapshot(s) == before
        # after a reopen the counter continues past the reserved block: never a value given before
        assert s.next_cti() > 5 and s.integrity_check()


def test_file_and_journal_are_private(db: Path) -> None:
    old = os.umask(0)
    try:
        with SqliteAsStore(db) as s:
            s.put_client(ClientRecord(client_id="c", oscore=SECRET))
            files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
            assert {p.name for p in files} >= {"as.db", "as.db-wal"}
            assert all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    finally:
        os.umask(old)


def test_schema_version_and_migrations_recorded(db: Path) -> None:
    with SqliteAsStore(db, clock=fixed_clock()) as s:
        assert s.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("PRAGMA application_id").fetchone() == (sqlite_mod.APPLICATION_ID,)
        rows = raw.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert rows == [(v, NOW) for v in range(1, SCHEMA_VERSION + 1)]


def test_older_file_is_migrated(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SqliteAsStore(db) as s:
        s.add_grant(Grant(client_id="c", audience="a", scope=b"\x01"))
    nxt = SCHEMA_VERSION + 1
    monkeypatch.setitem(sqlite_mod.MIGRATIONS, nxt, ("ALTER TABLE grants ADD COLUMN note TEXT",))
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", nxt)
    with SqliteAsStore(db) as s:
        assert s.schema_version() == nxt
        assert s.list_grants() == [Grant(client_id="c", audience="a", scope=b"\x01")]


def test_find_by_kid_uses_the_index(db: Path) -> None:
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        plan = raw.execute("EXPLAIN QUERY PLAN " + sqlite_mod.FIND_BY_KID_SQL, (b"\x01", True, b"")).fetchall()
    assert "USING INDEX clients_oscore_kid" in str(plan)


def test_newer_schema_version_refused(db: Path) -> None:
    SqliteAsStore(db).close()
    with sqlite3.connect(db) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match="newer than this ace knows"):
        SqliteAsStore(db)


def private_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def test_garbage_file_refused(db: Path) -> None:
    private_file(db, b"not a database, just some bytes " * 200)
    with pytest.raises(ConfigError, match="not a readable ace store"):
        SqliteAsStore(db)


def test_foreign_sqlite_database_refused(db: Path) -> None:
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE t (x)")
    db.chmod(0o600)
    with pytest.raises(ConfigError, match="not an ace store"):
        SqliteAsStore(db)


def test_readable_by_others_refused(db: Path) -> None:
    SqliteAsStore(db).close()
    db.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        SqliteAsStore(db)


def test_missing_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot create store"):
        SqliteAsStore(tmp_path / "nope" / "as.db")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_refused(db: Path) -> None:
    SqliteAsStore(db).close()
    db.chmod(0o000)
    with pytest.raises(ConfigError):
        SqliteAsStore(db)


def test_damaged_row_raises_config_error_without_secrets(db: Path) -> None:
    with SqliteAsStore(db) as s:
        s.put_client(ClientRecord(client_id="c", oscore=SECRET))
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE clients SET profiles = x'ff'")
    with SqliteAsStore(db) as s, pytest.raises(ConfigError, match="profiles") as info:
        s.get_client("c")
    assert MS.hex() not in str(info.value) and repr(MS) not in str(info.value)
