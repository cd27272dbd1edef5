"""Schema version 9 of the AS stores: an EDHOC key (its RFC 9679 thumbprint) has one owner across
all audiences (the client the operator registered it for, else its first presenter at any
audience), a kid one per audience; ``edhoc_owner`` reads that without writing, and ``log_token``
records the claim (``EdhocClaim``) in the token's own write, or refuses both (issue 17, second
review), in ``memory`` and ``sqlite`` alike; and the migration of a version-8 file
(``data/as_v8.db``, written by the schema-8 code of commit 0a0dd3d with ``write_v8_fixture``
below): squats of a key another client presented first elsewhere go, every other row is kept.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from support import NOW, fixed_clock
from test_store_v2 import dump
from test_store_v3 import copy_private, schema
from test_store_v7 import TA, TB, TC, claim
from test_store_v8 import V7_FILE, populate_v7_file, snapshot8

from ace.store import base
from ace.store import sqlite as sqlite_mod
from ace.store.base import AsStore, IssuedToken
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore

V8_FILE = Path(__file__).parent / "data" / "as_v8.db"
V8_CLOCK = 1_700_600_000
TX, TY, TZ = b"\x1a" * 32, b"\x2b" * 32, b"\x3c" * 32
# (client, audience, kid, thumbprint) claimed in this order by the schema-8 code, per audience
V8_CLAIMS = [("a", "rs1", b"kA", TX), ("b", "rs2", b"kB", TX),  # b squats a's key at rs2 (schema 8: allowed)
             ("b", "rs2", b"kA", TY), ("a", "rs3", b"kA", TX), ("c", "rs1", b"kC", TZ)]


def populate_v8_file(s: AsStore) -> None:
    """What ``data/as_v8.db`` holds (frozen: the file was written with exactly this)."""
    populate_v7_file(s)
    for n, (client, audience, kid, thumb) in enumerate(V8_CLAIMS):
        assert s.claim_edhoc_credential(client, audience, kid=kid, thumbprint=thumb, now=V8_CLOCK + n, limit=64) \
            is None


def write_v8_fixture(path: str) -> None:
    """How ``data/as_v8.db`` was made (with the schema-8 code: the assertion fails on later ones)."""
    with SqliteAsStore(path, clock=fixed_clock(V8_CLOCK)) as s:
        assert s.schema_version() == 8
        populate_v8_file(s)


def tok(n: int, client: str, audience: str = "rs1") -> IssuedToken:
    return IssuedToken(cti=bytes([n]), client_id=client, audience=audience, scope="r", issued_at=NOW,
                       expires_at=NOW + 60, token_hash=bytes([n]) * 32, pop_kid=b"k%d" % n, pop_thumbprint=TA)


def edhoc(kid: bytes, thumb: bytes, limit: int = 4) -> base.EdhocClaim:
    return base.EdhocClaim(kid=kid, thumbprint=thumb, limit=limit)  # (base.: write_v8_fixture runs on schema 8)


# --- one owner per key, one per kid and audience --------------------------------------------------


def test_a_key_has_one_owner_at_every_audience(store: AsStore) -> None:
    assert claim(store, "a", b"kA", TA) is None  # a's key, first presented at rs1
    assert claim(store, "b", b"kA", TA, audience="rs2") == "a"  # old: None, b's at rs2 for good
    assert claim(store, "b", b"kB", TA, audience="rs2") == "a"  # under another kid too
    assert claim(store, "a", b"kA", TA, audience="rs2") is None  # a, where it had not been yet
    assert claim(store, "a", b"kZ", TA, audience="rs3") is None  # its key under another kid elsewhere
    assert store.edhoc_credentials("a") == [("rs1", b"kA", TA), ("rs2", b"kA", TA), ("rs3", b"kZ", TA)]
    assert store.edhoc_credentials("b") == []


def test_a_kid_has_one_owner_per_audience(store: AsStore) -> None:
    assert claim(store, "a", b"k", TA) is None
    assert claim(store, "b", b"k", TB) == "a"  # a's kid at rs1
    assert claim(store, "b", b"k", TB, audience="rs2") is None  # short kids repeat across RSs
    assert claim(store, "a", b"k", TA, audience="rs2") == "b"  # ... and there it is b's
    assert claim(store, "c", b"k", TC, audience="rs3") is None


def test_edhoc_owner_only_reads(store: AsStore) -> None:
    assert store.edhoc_owner("a", "rs1", kid=b"kA", thumbprint=TA) is None
    assert store.edhoc_credentials("a") == []  # nothing recorded
    assert claim(store, "a", b"kA", TA) is None
    for audience, kid, thumb in (("rs1", b"kA", TB), ("rs2", b"kB", TA), ("rs1", b"kX", TA)):
        assert store.edhoc_owner("b", audience, kid=kid, thumbprint=thumb) == "a", (audience, kid)
    assert store.edhoc_owner("b", "rs2", kid=b"kA", thumbprint=TB) is None
    assert store.edhoc_owner("a", "rs2", kid=b"kA", thumbprint=TA) is None
    store.register_edhoc_credential("r", kid=b"kR", thumbprint=TC, now=NOW)
    assert store.edhoc_owner("b", "rs9", kid=b"kR", thumbprint=TB) == "r"
    assert store.edhoc_owner("r", "rs9", kid=b"kR", thumbprint=TC) is None
    assert store.edhoc_credentials("b") == []


def test_log_token_claims_with_the_token_or_writes_nothing(store: AsStore) -> None:
    assert store.log_token(tok(1, "a"), edhoc_claim=edhoc(b"kA", TA)) is None
    assert store.edhoc_credentials("a") == [("rs1", b"kA", TA)]
    assert store.log_token(tok(2, "b", "rs2"), purge_before=NOW + 10**6, purge_limit=8,
                           edhoc_claim=edhoc(b"kB", TA)) == "a"  # a's key: refused, nothing written
    assert [t.cti for t in store.issued_tokens()] == [b"\x01"] and store.edhoc_credentials("b") == []
    assert store.find_token_by_cti(b"\x02") is None
    assert store.log_token(tok(2, "b", "rs2"), edhoc_claim=edhoc(b"kB", TB)) is None
    assert store.edhoc_credentials("b") == [("rs2", b"kB", TB)]
    assert store.log_token(tok(3, "a"), edhoc_claim=edhoc(b"kA", TA)) is None  # its own again
    with pytest.raises(ValueError, match="cti"):  # a logged cti: no claim either
        store.log_token(tok(3, "c"), edhoc_claim=edhoc(b"kC", TC))
    for bad, error in ((edhoc(b"", TC), ValueError), (edhoc(b"kC", b"t"), ValueError),
                       (edhoc(b"kC", TC, limit=-1), ValueError), (edhoc("kC", TC), TypeError)):  # type: ignore[arg-type]
        with pytest.raises(error):
            store.log_token(tok(4, "c"), edhoc_claim=bad)
    assert store.edhoc_credentials("c") == [] and store.find_token_by_cti(b"\x04") is None


def test_the_claim_is_bounded(store: AsStore) -> None:
    for n in range(6):
        assert store.log_token(tok(10 + n, "a"), edhoc_claim=edhoc(b"k%d" % n, bytes([n]) * 32, limit=3)) is None
    assert {kid for _, kid, _ in store.edhoc_credentials("a")} == {b"k3", b"k4", b"k5"}


# --- the SQLite file --------------------------------------------------------------------------


def test_owner_lookups_use_the_indexes(db: Path) -> None:
    from ace.store import sqlite_cred
    with SqliteAsStore(db), sqlite3.connect(db) as raw:
        plan = str(raw.execute("EXPLAIN QUERY PLAN " + sqlite_cred.OTHER_PRESENTER_SQL,
                               (TA, "c", "a", b"k", "c")).fetchall())
    raw.close()
    assert "edhoc_credentials_thumbprint" in plan and "SCAN edhoc_credentials" not in plan, plan


def test_register_edhoc_key(db: Path) -> None:
    from ace.cbor.labels import Curve
    from ace.tokens.crypto import generate
    from ace.tokens.keys import thumbprint
    key = generate(Curve.P_256, kid=b"cA")
    with SqliteAsStore(db, clock=fixed_clock()) as s:
        with pytest.raises(ValueError, match="public key"):
            s.register_edhoc_key("a", key)  # the private part stays with the client
        s.register_edhoc_key("a", key.public())
        assert s.edhoc_credentials("a") == [(None, b"cA", thumbprint(key.public()))]
        assert s.edhoc_owner("b", "rs1", kid=b"cX", thumbprint=thumbprint(key.public())) == "a"


def test_v8_fixture_is_a_schema_8_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v8 = copy_private(V8_FILE, tmp_path / "v8.db")
    fresh = tmp_path / "fresh.db"
    monkeypatch.setattr(sqlite_mod, "SCHEMA_VERSION", 8)  # apply MIGRATIONS[1] to [8] only
    with SqliteAsStore(fresh) as s:
        assert s.schema_version() == 8
    assert schema(v8) == schema(fresh)
    with sqlite3.connect(v8) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (8,)
        squat = "SELECT client_id FROM edhoc_credentials WHERE audience = 'rs2' AND kid = x'6b42'"  # kB
        assert raw.execute(squat).fetchone() == ("b",)  # the squat schema 8 let through
    raw.close()


def test_v8_file_is_migrated_dropping_only_squats(tmp_path: Path) -> None:
    v8 = copy_private(V8_FILE, tmp_path / "v8.db")
    v8_rows = dump(v8)
    expected = MemoryAsStore()
    populate_v7_file(expected)
    SqliteAsStore(v8, clock=fixed_clock()).close()  # only the migration writes
    after = dump(v8, v8_rows)
    assert {t for t in v8_rows if v8_rows[t] != after[t]} == {"schema_migrations", "edhoc_credentials"}
    cols, before = v8_rows["edhoc_credentials"]
    squat = [r for r in before if dict(zip(cols, r, strict=True))["kid"] == b"kB"]
    assert len(squat) == 1 and after["edhoc_credentials"][1] == [r for r in before if r not in squat]
    assert (9, NOW) in after["schema_migrations"][1]
    with SqliteAsStore(v8, clock=fixed_clock()) as s:
        assert s.schema_version() == sqlite_mod.SCHEMA_VERSION >= 9 and s.integrity_check()
        assert snapshot8(s) == snapshot8(expected)  # every other record identical, read through the store
        assert s.edhoc_credentials("a") == [("rs1", b"kA", TX), ("rs3", b"kA", TX)]
        assert s.edhoc_credentials("b") == [("rs2", b"kA", TY)]  # its own key, a's kid at rs2 (per audience)
        assert s.edhoc_credentials("c") == [("rs1", b"kC", TZ)]
        assert claim(s, "b", b"kB", TX, audience="rs2") == "a"  # the squat stays refused
        assert claim(s, "a", b"kA", TX, audience="rs2") == "b"  # kid kA is b's at rs2


def test_every_file_has_the_fresh_schema(tmp_path: Path) -> None:
    files = [copy_private(f, tmp_path / f.name) for f in (V7_FILE, V8_FILE)]
    fresh = tmp_path / "new.db"
    for f in (*files, fresh):
        SqliteAsStore(f).close()
    assert all(schema(f) == schema(fresh) for f in files)
