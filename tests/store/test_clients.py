"""Clients in both AS stores (``memory``, ``sqlite``): records, lookup by OSCORE kid and id
context and by DTLS PSK identity (RFC 9202 §3.1, tinydtls limits), each unique to one client, the
PSK never shown; and the SQLite side: reopen, the PSK column pair kept by the file, damaged rows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_support import FULL_SECRET, KEY, MS, OSCORE, PSK, SECRET, V1_SECRET, populate_v1, populate_v2, snapshot

from ace.errors import ConfigError
from ace.store.base import AsStore, ClientRecord, DtlsPsk
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.oscore_params import OscoreContextParams

# --- OSCORE clients -----------------------------------------------------------------------


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


# --- DTLS PSK clients ---------------------------------------------------------------------


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


# --- the SQLite file ----------------------------------------------------------------------


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


def test_damaged_row_raises_config_error_without_secrets(db: Path) -> None:
    with SqliteAsStore(db) as s:
        s.put_client(ClientRecord(client_id="c", oscore=SECRET))
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE clients SET profiles = x'ff'")
    with SqliteAsStore(db) as s, pytest.raises(ConfigError, match="profiles") as info:
        s.get_client("c")
    assert MS.hex() not in str(info.value) and repr(MS) not in str(info.value)
