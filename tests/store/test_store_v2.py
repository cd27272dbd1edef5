"""Schema version 2 of the AS stores: clients authenticating with a DTLS pre-shared key
(RFC 9202 §3.1, tinydtls limits) and the PoP kid of issued tokens, in ``memory`` and
``sqlite`` alike, plus the SQLite side: index use, reopen, and the migration of a
version-1 file (``data/as_v1.db``, written by the schema-1 code of commit 722ba47 with
``populate_v1`` below and ``V1_CLOCK``) keeping every record.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import NOW, fixed_clock

from ace.cbor.labels import KeyType
from ace.errors import ConfigError
from ace.store import sqlite as sqlite_mod
from ace.store.base import AsStore, ClientRecord, DtlsPsk, Grant, IssuedToken, RsRecord
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.keys import CoseKey
from ace.tokens.oscore_params import OscoreContextParams

V1_FILE = Path(__file__).parent / "data" / "as_v1.db"

V1_CLOCK = 1_600_000_000
V1_SECRET = OscoreContextParams(
    master_secret=b"\xaa" * 32, sender_id=b"\x00", recipient_id=b"\x02", master_salt=b"salt",
    id_context=b"\x37\xcb", alg=11, hkdf="sha512",
)


def populate_v1(s: AsStore) -> None:
    """What ``data/as_v1.db`` holds (frozen: the file was written with exactly this)."""
    s.put_client(ClientRecord(client_id="c1", oscore=V1_SECRET, profiles=(2, 1)))
    s.put_client(ClientRecord(client_id="c2", oscore=OscoreContextParams(master_secret=bytes(16), sender_id=b"",
                                                                  recipient_id=b"\x01")))
    s.put_client(ClientRecord(client_id="c3", profiles=()))
    key = CoseKey(kty=KeyType.SYMMETRIC, k=b"\x07" * 32, kid=b"m", alg=5, key_ops=(9, 10), base_iv=b"\x01" * 7,
                  extra=((-70000, "note"),))
    s.put_rs(RsRecord(audience="rs1", rs_id="one", token_key=key, token_kind="mac0", token_alg=5))
    s.put_rs(RsRecord(audience="rs2", rs_id="two", token_key=key, profiles=(1, 2), token_lifetime=1,
                      oscore=V1_SECRET))
    for g in [Grant(client_id="c1", audience="rs1", scope="r w", default=True),
              Grant(client_id="c1", audience="rs1", scope=b"\x82\x61/\x01"),
              Grant(client_id="c2", audience="rs2", scope="")]:
        s.add_grant(g)
    s.log_token(IssuedToken(cti=b"\x00\x01", client_id="c1", audience="rs1", scope=None, issued_at=V1_CLOCK,
                            expires_at=None, token_hash=b"\x11" * 32))
    s.log_token(IssuedToken(cti=b"\x02", client_id="c2", audience="rs2", scope=b"\xa0", issued_at=0,
                            expires_at=2**40, token_hash=b""))
    s.log_token(IssuedToken(cti=b"\x03", client_id="c1", audience="rs1", scope="r", issued_at=V1_CLOCK + 1,
                            expires_at=V1_CLOCK + 3601, token_hash=b"\x22" * 32))
    s.persist_sequence_number("ctx", 123)
    for _ in range(5):
        s.next_cti()


KEY = b"\x5e" * 16
PSK = DtlsPsk(identity=b"client-1", key=KEY)
OSCORE = OscoreContextParams(master_secret=b"\x33" * 16, sender_id=b"", recipient_id=b"\x05")


# --- DTLS PSK clients -------------------------------------------------------------------


def test_psk_clients_round_trip(store: AsStore) -> None:
    psk = ClientRecord(client_id="p", psk=PSK, profiles=(1,))
    both = ClientRecord(client_id="b", oscore=OSCORE, psk=DtlsPsk(identity=b"\x00", key=b"\x01"), profiles=(1, 2))
    plain = ClientRecord(client_id="o", oscore=V1_SECRET)
    for c in (psk, both, plain):
        store.put_client(c)
    assert store.get_client("p") == psk and store.get_client("b") == both and store.get_client("o") == plain
    assert store.list_clients() == [both, plain, psk]
    assert store.find_client_by_oscore_kid(b"\x05", None) == both
    assert store.find_client_by_oscore_kid(V1_SECRET.recipient_id, V1_SECRET.id_context) == plain
    moved = ClientRecord(client_id="p", psk=DtlsPsk(identity=b"client-1b", key=b"\x77" * 7))  # an update
    store.put_client(moved)
    assert store.get_client("p") == moved
    dropped = ClientRecord(client_id="b", oscore=OSCORE)  # PSK removed, OSCORE kept
    store.put_client(dropped)
    assert store.get_client("b") == dropped and store.find_client_by_psk_identity(b"\x00") is None


def test_find_client_by_psk_identity(store: AsStore) -> None:
    a = ClientRecord(client_id="a", psk=PSK)
    b = ClientRecord(client_id="b", oscore=OSCORE, psk=DtlsPsk(identity=b"client-2", key=KEY))
    for c in (a, b, ClientRecord(client_id="c"), ClientRecord(client_id="d", oscore=V1_SECRET)):
        store.put_client(c)
    assert store.find_client_by_psk_identity(b"client-1") == a
    assert store.find_client_by_psk_identity(b"client-2") == b
    assert store.find_client_by_oscore_kid(b"\x05", None) == b  # both ways lead to the same client
    for unknown in (b"client-3", b"client-", b"client-10", b"", b"\x01", KEY):
        assert store.find_client_by_psk_identity(unknown) is None
    store.put_client(ClientRecord(client_id="a", psk=DtlsPsk(identity=b"client-9", key=KEY)))
    assert store.find_client_by_psk_identity(b"client-1") is None
    assert store.find_client_by_psk_identity(b"client-9") == store.get_client("a")
    assert store.remove_client("b")
    assert store.find_client_by_psk_identity(b"client-2") is None
    with pytest.raises(TypeError, match="psk identity must be bytes"):
        store.find_client_by_psk_identity("client-1")  # type: ignore[arg-type]


def test_second_client_with_same_psk_identity_is_refused(store: AsStore) -> None:
    store.put_client(ClientRecord(client_id="a", psk=PSK))
    store.put_client(ClientRecord(client_id="a", psk=PSK, profiles=(1,)))  # same client: an update
    other_key = DtlsPsk(identity=PSK.identity, key=b"\x01" * 16)
    for dup in (ClientRecord(client_id="b", psk=other_key), ClientRecord(client_id="b", oscore=OSCORE, psk=PSK)):
        with pytest.raises(ValueError, match="PSK identity is already used by 'a'") as info:
            store.put_client(dup)
        assert KEY.hex() not in str(info.value) and repr(KEY) not in str(info.value)
    assert [c.client_id for c in store.list_clients()] == ["a"]
    # the OSCORE kid is checked too, whichever of the two collides
    store.put_client(ClientRecord(client_id="o", oscore=OSCORE))
    with pytest.raises(ValueError, match="OSCORE recipient id and id context are already used by 'o'"):
        store.put_client(ClientRecord(client_id="n", oscore=OSCORE, psk=DtlsPsk(identity=b"new", key=KEY)))
    assert store.find_client_by_psk_identity(b"new") is None
    # an identity given up (moved or removed) is free again
    store.put_client(ClientRecord(client_id="a", psk=DtlsPsk(identity=b"moved", key=KEY)))
    store.put_client(ClientRecord(client_id="b", psk=other_key))
    assert store.find_client_by_psk_identity(PSK.identity) == ClientRecord(client_id="b", psk=other_key)
    store.remove_client("a")
    store.put_client(ClientRecord(client_id="c", psk=DtlsPsk(identity=b"moved", key=KEY)))


PSK_LIMITS: list[tuple[str, bytes | str, bytes | bytearray, type[Exception], str]] = [
    ("empty identity", b"", KEY, ValueError, "identity must be 1 to 32"),
    ("33-byte identity", b"i" * 33, KEY, ValueError, "identity must be 1 to 32"),
    ("empty key", b"id", b"", ValueError, "key must be 1 to 16"),
    ("17-byte key", b"id", b"\x5e" * 17, ValueError, "key must be 1 to 16"),
    ("32-byte key", b"id", b"\x5e" * 32, ValueError, "key must be 1 to 16"),
    ("str identity", "id", KEY, TypeError, "identity must be bytes"),
    ("bytearray key", b"id", bytearray(KEY), TypeError, "key must be bytes"),
]


@pytest.mark.parametrize(("name", "identity", "key", "error", "match"), PSK_LIMITS, ids=[x[0] for x in PSK_LIMITS])
def test_psk_limits(store: AsStore, name: str, identity: bytes, key: bytes, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as info:
        store.put_client(ClientRecord(client_id="c", psk=DtlsPsk(identity=identity, key=key)))
    assert KEY.hex() not in str(info.value) and "5e5e" not in str(info.value) and "^^" not in str(info.value)
    assert store.list_clients() == []


def test_psk_limit_boundaries_accepted(store: AsStore) -> None:
    small = ClientRecord(client_id="s", psk=DtlsPsk(identity=b"\x00", key=b"\x00"))
    big = ClientRecord(client_id="b", psk=DtlsPsk(identity=b"\xff" * 32, key=b"\xff" * 16))
    store.put_client(small)
    store.put_client(big)
    assert store.find_client_by_psk_identity(b"\xff" * 32) == big and store.find_client_by_psk_identity(b"\0") == small


def test_psk_key_not_in_repr() -> None:
    client = ClientRecord(client_id="c", psk=PSK)
    assert "client-1" in repr(client) and KEY.hex() not in repr(client) and repr(KEY) not in repr(client)


# --- PoP kid of issued tokens -----------------------------------------------------------


def tok(cti: int, pop_kid: bytes | None, client_id: str = "c", audience: str = "rs1", at: int = NOW) -> IssuedToken:
    return IssuedToken(cti=bytes([cti]), client_id=client_id, audience=audience, scope="r", issued_at=at,
                       expires_at=at + 60, token_hash=bytes([cti]) * 32, pop_kid=pop_kid)


def test_find_token_by_pop_kid_returns_the_newest(store: AsStore) -> None:
    tokens = [
        tok(1, b"k1"), tok(2, b"k1", at=NOW + 10), tok(3, b"k2"), tok(4, b"k1", client_id="d"),
        tok(5, b"k1", audience="rs2"), tok(6, None), tok(7, b""),
        tok(8, b"k1", at=NOW - 100),  # logged last, so the newest, whatever its iat says
    ]
    for t in tokens:
        store.log_token(t)
    assert store.issued_tokens() == tokens[::-1]  # pop_kid round-trips, None and b"" kept apart
    assert store.find_token_by_pop_kid("c", "rs1", b"k1") == tokens[7]
    assert store.find_token_by_pop_kid("c", "rs1", b"k2") == tokens[2]
    assert store.find_token_by_pop_kid("d", "rs1", b"k1") == tokens[3]
    assert store.find_token_by_pop_kid("c", "rs2", b"k1") == tokens[4]
    assert store.find_token_by_pop_kid("c", "rs1", b"") == tokens[6]
    for client, aud, kid in [("c", "rs1", b"k3"), ("d", "rs1", b"k2"), ("d", "rs2", b"k1"), ("e", "rs1", b"k1"),
                             ("c", "rs3", b"k1"), ("c", "rs1", b"k"), ("c", "rs1", b"k1\x00")]:
        assert store.find_token_by_pop_kid(client, aud, kid) is None
    store.log_token(tok(9, b"k2"))
    assert store.find_token_by_pop_kid("c", "rs1", b"k2") == tok(9, b"k2")


def test_find_token_by_pop_kid_on_empty_log(store: AsStore) -> None:
    assert store.find_token_by_pop_kid("c", "rs1", b"k1") is None


def test_bad_pop_kid_refused(store: AsStore) -> None:
    with pytest.raises(TypeError, match="pop_kid must be bytes"):
        store.log_token(tok(1, "k1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pop_kid must be bytes"):
        store.find_token_by_pop_kid("c", "rs1", None)  # type: ignore[arg-type]
    assert store.issued_tokens() == []


CLIENT_OPS = st.lists(
    st.tuples(st.sampled_from(["put", "remove"]), st.sampled_from(["a", "b", "c"]),
              st.one_of(st.none(), st.sampled_from([b"i1", b"i2", b"i" * 33])), st.sampled_from([KEY, b"\x01"]),
              st.booleans()),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(ops=CLIENT_OPS)
def test_memory_and_sqlite_agree_on_psk_clients(tmp_path_factory: pytest.TempPathFactory,
                                                ops: list[tuple[str, str, bytes | None, bytes, bool]]) -> None:
    mem = MemoryAsStore()
    with SqliteAsStore(tmp_path_factory.mktemp("agree") / "as.db") as sql:
        for op, client_id, identity, key, with_oscore in ops:
            if op == "remove":
                assert mem.remove_client(client_id) == sql.remove_client(client_id)
                continue
            psk = None if identity is None else DtlsPsk(identity=identity, key=key)
            client = ClientRecord(client_id=client_id, psk=psk, oscore=OSCORE if with_oscore else None)
            outcomes = []
            for s in (mem, sql):
                try:
                    s.put_client(client)
                    outcomes.append("ok")
                except ValueError as exc:
                    outcomes.append(str(exc))
            assert outcomes[0] == outcomes[1]
        assert mem.list_clients() == sql.list_clients()
        for identity in (b"i1", b"i2"):
            assert mem.find_client_by_psk_identity(identity) == sql.find_client_by_psk_identity(identity)


# --- the SQLite file --------------------------------------------------------------------


def populate_v2(s: AsStore) -> None:
    s.put_client(ClientRecord(client_id="p1", psk=PSK, profiles=(1,)))
    s.put_client(ClientRecord(client_id="p2", oscore=OSCORE, psk=DtlsPsk(identity=b"\xff" * 32, key=b"\x01")))
    for t in (tok(0x41, b"k1"), tok(0x42, b"k1", client_id="p1"), tok(0x43, None, client_id="p2"), tok(0x44, b"k1")):
        s.log_token(t)


def snapshot(s: AsStore) -> tuple[object, ...]:
    return (
        s.list_clients(), s.list_rs(), s.list_grants(), s.issued_tokens(1000), s.load_sequence_number("ctx"),
        s.find_client_by_oscore_kid(b"\x02", b"\x37\xcb"), s.find_client_by_oscore_kid(b"\x01", None),
        s.find_client_by_oscore_kid(b"\x05", None),
        s.find_client_by_psk_identity(PSK.identity), s.find_client_by_psk_identity(b"\xff" * 32),
        s.find_token_by_pop_kid("c", "rs1", b"k1"), s.find_token_by_pop_kid("p1", "rs1", b"k1"),
    )


def test_every_v2_field_survives_reopen(db: Path) -> None:
    mem = MemoryAsStore()
    populate_v1(mem)
    populate_v2(mem)
    with SqliteAsStore(db) as s:
        populate_v1(s)
        populate_v2(s)
        before = snapshot(s)
    assert before == snapshot(mem)
    with SqliteAsStore(db) as s:
        assert snapshot(s) == before and s.integrity_check()
        with pytest.raises(ValueError, match="already used by 'p1'"):  # the uniqueness holds after reopen too
            s.put_client(ClientRecord(client_id="x", psk=PSK))


def test_lookups_use_the_indexes(db: Path) -> None:
    plans = {
        sqlite_mod.FIND_BY_PSK_SQL: ((b"client-1",), "USING INDEX clients_psk_identity"),
        sqlite_mod.FIND_TOKEN_BY_POP_KID_SQL: (("c", "rs1", b"k1"), "USING INDEX issued_tokens_pop_kid"),
    }
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        for sql, (params, index) in plans.items():
            plan = str(raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
            assert index in plan and "TEMP B-TREE" not in plan  # newest first straight from the index


def test_psk_columns_pair_kept_by_the_file(db: Path) -> None:
    with SqliteAsStore(db) as s:
        s.put_client(ClientRecord(client_id="c", psk=PSK))
        s.put_client(ClientRecord(client_id="d"))
    with sqlite3.connect(db) as raw:
        for sql, match in [("UPDATE clients SET psk = NULL WHERE client_id = 'c'", "both NULL or both set"),
                           ("UPDATE clients SET psk_identity = x'01' WHERE client_id = 'd'", "both NULL or both set"),
                           ("INSERT INTO clients (client_id, profiles, psk, updated_at) VALUES ('e', x'80', x'01', 0)",
                            "both NULL or both set"),
                           ("UPDATE clients SET psk_identity = x'636c69656e742d31', psk = x'01' WHERE client_id = 'd'",
                            "UNIQUE constraint failed: clients.psk_identity")]:  # b"client-1", c's identity
            with pytest.raises(sqlite3.IntegrityError, match=match):
                raw.execute(sql)
        # a file damaged past the triggers: read as damaged, the key not shown
        raw.execute("DROP TRIGGER clients_psk_pair_update")
        raw.execute("UPDATE clients SET psk_identity = NULL WHERE client_id = 'c'")
    with SqliteAsStore(db) as s, pytest.raises(ConfigError, match="psk_identity and psk") as info:
        s.get_client("c")
    assert KEY.hex() not in str(info.value) and repr(KEY) not in str(info.value)


# --- migration of a version-1 file ------------------------------------------------------


Dump = dict[str, tuple[list[str], list[tuple[object, ...]]]]


def dump(path: Path, only: Dump | None = None) -> Dump:
    """Every table's columns and rows in rowid order (``only``: just those tables and columns)."""
    raw = sqlite3.connect(path)
    try:
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")]
        out: Dump = {}
        for t in tables if only is None else list(only):
            cols = [r[1] for r in raw.execute(f"PRAGMA table_info({t})")] if only is None else only[t][0]
            out[t] = (cols, raw.execute(f"SELECT {', '.join(cols)} FROM {t} ORDER BY rowid").fetchall())
        return out
    finally:
        raw.close()


@pytest.fixture
def v1_file(db: Path) -> Path:
    shutil.copyfile(V1_FILE, db)
    db.chmod(0o600)
    return db


def test_v1_fixture_is_a_schema_1_file(v1_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = tmp_path / "fresh.db"
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", 1)  # apply MIGRATIONS[1] only
    with SqliteAsStore(fresh) as s:
        assert s.schema_version() == 1
    schema = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name"
    with sqlite3.connect(v1_file) as a, sqlite3.connect(fresh) as b:
        assert a.execute(schema).fetchall() == b.execute(schema).fetchall()
        assert a.execute("PRAGMA user_version").fetchone() == (1,)
        assert a.execute("SELECT * FROM schema_migrations").fetchall() == [(1, V1_CLOCK)]
    a.close()
    b.close()


def test_v1_file_is_migrated_keeping_everything(v1_file: Path) -> None:
    v1_rows = dump(v1_file)
    expected = MemoryAsStore()
    populate_v1(expected)
    with SqliteAsStore(v1_file, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 2 and s.integrity_check()
        assert snapshot(s) == snapshot(expected)  # every record identical, read through the store
        assert s.next_cti() > 64  # past the block the version-1 file had reserved
    with sqlite3.connect(v1_file) as raw:
        assert raw.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall() == [
            (1, V1_CLOCK), *((v, NOW) for v in range(2, sqlite_mod.SCHEMA_VERSION + 1))]  # on to the newest
        assert raw.execute("PRAGMA user_version").fetchone() == (sqlite_mod.SCHEMA_VERSION,)
        assert raw.execute("SELECT count(*) FROM clients WHERE psk_identity IS NOT NULL OR psk IS NOT NULL"
                           ).fetchone() == (0,)
        assert raw.execute("SELECT count(*) FROM issued_tokens WHERE pop_kid IS NOT NULL").fetchone() == (0,)
    raw.close()
    # and row by row, the version-1 columns hold exactly what they held (bar the cti counter and migrations)
    after = dump(v1_file, v1_rows)
    assert {t for t in v1_rows if v1_rows[t] != after[t]} == {"counters", "schema_migrations"}
    assert after["schema_migrations"][1][:1] == v1_rows["schema_migrations"][1]
    assert len(v1_rows["clients"][1]) == 3 and len(v1_rows["issued_tokens"][1]) == 3


def test_migrated_file_takes_v2_records(v1_file: Path) -> None:
    expected = MemoryAsStore()
    populate_v1(expected)
    populate_v2(expected)
    with SqliteAsStore(v1_file) as s:
        populate_v2(s)
        with pytest.raises(ValueError, match="already used by 'c1'"):  # v1 OSCORE kids still unique
            s.put_client(ClientRecord(client_id="x", oscore=V1_SECRET))
    with SqliteAsStore(v1_file) as s:
        assert snapshot(s) == snapshot(expected) and s.schema_version() == sqlite_mod.SCHEMA_VERSION
