"""Resource servers in both AS stores: records, the RS's public authentication key
(``RsRecord.auth_key``, sent to clients as rs_cnf in the EDHOC profile; never a private or
symmetric key), the calls both stores refuse and a closed store; and the SQLite side: reopen and
a damaged ``auth_key`` column.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from store_support import AUTH, AUTH_D, AUTH_PRIVATE, FULL_SECRET, OKP_AUTH, TOKEN_KEY

from ace.cbor.labels import Curve
from ace.errors import ConfigError
from ace.store.base import AsStore, ClientRecord, Grant, RsRecord
from ace.store.sqlite import SqliteAsStore
from ace.tokens.crypto import generate
from ace.tokens.keys import CoseKey, symmetric_key

# --- records ------------------------------------------------------------------------------


def rs_record(audience: str = "rs1", **kw: object) -> RsRecord:
    return RsRecord(audience=audience, rs_id=f"{audience}-id", token_key=symmetric_key(bytes(16), kid=b"k"), **kw)  # type: ignore[arg-type]


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


# --- RS authentication keys ---------------------------------------------------------------


def rs(audience: str, auth_key: CoseKey | None, **kw: object) -> RsRecord:
    return RsRecord(audience=audience, rs_id=f"{audience}-id", token_key=TOKEN_KEY, auth_key=auth_key, **kw)  # type: ignore[arg-type]


def test_rs_auth_key_round_trip(store: AsStore) -> None:
    plain, ec, okp = rs("a", None), rs("b", AUTH, profiles=(1, 2), oscore=None), rs("c", OKP_AUTH)
    for r in (okp, plain, ec):
        store.put_rs(r)
    assert store.get_rs("a") == plain and store.get_rs("b") == ec and store.get_rs("c") == okp
    assert store.list_rs() == [plain, ec, okp]
    got = store.get_rs("b")
    assert got is not None and got.auth_key == AUTH and not got.auth_key.has_private and got.auth_key.kid == b"rs-edhoc"
    # updates: a key added, a key replaced, a key removed
    store.put_rs(rs("a", AUTH))
    store.put_rs(rs("b", None))
    store.put_rs(rs("c", AUTH, token_kind="mac0"))
    assert store.list_rs() == [rs("a", AUTH), rs("b", None), rs("c", AUTH, token_kind="mac0")]
    assert store.remove_rs("a") and store.get_rs("a") is None


def test_public_half_of_a_generated_pair_accepted(store: AsStore) -> None:
    store.put_rs(rs("a", AUTH_PRIVATE.public()))
    assert store.get_rs("a") == rs("a", AUTH)


PRIVATE_KEYS = [
    ("EC2 with d", AUTH_PRIVATE, "private part"),
    ("OKP with d", replace(OKP_AUTH, d=AUTH_D), "private part"),
    ("symmetric", symmetric_key(AUTH_D, kid=b"s"), "not a symmetric key"),
]


@pytest.mark.parametrize(("name", "key", "match"), PRIVATE_KEYS, ids=[x[0] for x in PRIVATE_KEYS])
def test_private_auth_key_refused(store: AsStore, name: str, key: CoseKey, match: str) -> None:
    store.put_rs(rs("a", AUTH))
    for record in (rs("a", key), rs("b", key)):  # neither an update nor a new RS
        with pytest.raises(ValueError, match=f"auth_key .*{match}") as info:
            store.put_rs(record)
        assert AUTH_D.hex() not in str(info.value) and repr(AUTH_D) not in str(info.value)
    assert store.list_rs() == [rs("a", AUTH)]


def test_auth_key_must_be_a_cose_key(store: AsStore) -> None:
    with pytest.raises(TypeError, match="auth_key must be a CoseKey"):
        store.put_rs(rs("a", AUTH.encode()))  # type: ignore[arg-type]
    assert store.list_rs() == []


# --- refused calls ------------------------------------------------------------------------


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


# --- the SQLite file ----------------------------------------------------------------------


def test_auth_key_survives_reopen(db: Path) -> None:
    records = [rs("a", AUTH), rs("b", None), rs("c", OKP_AUTH, token_alg=5)]
    with SqliteAsStore(db) as s:
        for r in records:
            s.put_rs(r)
    with SqliteAsStore(db) as s:
        assert s.list_rs() == records and s.integrity_check()
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT audience, auth_key FROM rs ORDER BY audience").fetchall()
    raw.close()
    assert rows == [("a", AUTH.encode()), ("b", None), ("c", OKP_AUTH.encode())]  # COSE_Key CBOR, as token_key


DAMAGE = [
    ("not CBOR", b"\xff", "auth_key is not a COSE_Key"),
    ("not a COSE_Key", b"\xa0", "auth_key is not a COSE_Key"),
    ("a private key", AUTH_PRIVATE.encode(), "auth_key holds a private key"),
    ("a symmetric key", symmetric_key(AUTH_D).encode(), "auth_key holds a private key"),
]


@pytest.mark.parametrize(("name", "value", "match"), DAMAGE, ids=[x[0] for x in DAMAGE])
def test_damaged_auth_key_column(db: Path, name: str, value: object, match: str) -> None:
    with SqliteAsStore(db) as s:
        s.put_rs(rs("a", AUTH))
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE rs SET auth_key = ?", (value,))
        with pytest.raises(sqlite3.IntegrityError, match=r"cannot store TEXT value in BLOB column rs\.auth_key"):
            raw.execute("UPDATE rs SET auth_key = 'k'")  # STRICT: only a BLOB (or NULL) gets in
    raw.close()
    with SqliteAsStore(db) as s:
        for read in (lambda: s.get_rs("a"), s.list_rs):
            with pytest.raises(ConfigError, match=match) as info:
                read()
            assert AUTH_D.hex() not in str(info.value) and repr(AUTH_D) not in str(info.value)
