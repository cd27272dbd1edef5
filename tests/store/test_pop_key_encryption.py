"""How a secret PoP key reaches an RS with readable tokens (``RsRecord.pop_key_encryption``, schema
10), in both AS stores: none (the default, every RS migrated from schema 9), shared (a symmetric
key) or rs_public (the RS's public key), each with its key and a kid; the calls both refuse, and
the SQLite side: reopen, a file of schema 8 migrated, damaged columns read back as ConfigError.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_support import TOKEN_KEY, V8_FILE, copy_private

from ace.cbor.labels import Alg, Curve, KeyType
from ace.errors import ConfigError
from ace.store.base import AsStore, RsRecord
from ace.store.sqlite import SqliteAsStore
from ace.tokens.crypto import generate
from ace.tokens.keys import CoseKey, symmetric_key

SHARED = symmetric_key(bytes(range(16)), kid=b"sh")
RS_PAIR = generate(Curve.P_256, kid=b"rs-ecdh")
RS_PUBLIC = RS_PAIR.public()
X_PUBLIC = generate(Curve.X25519, kid=b"rs-x").public()


def rs(audience: str, how: str = "none", key: CoseKey | None = None) -> RsRecord:
    return RsRecord(audience=audience, rs_id=audience, token_key=TOKEN_KEY, token_kind="sign1",
                    pop_key_encryption=how, encryption_key=key)


def test_round_trip(store: AsStore) -> None:
    records = [rs("a"), rs("b", "shared", SHARED), rs("c", "rs_public", RS_PUBLIC), rs("d", "rs_public", X_PUBLIC)]
    for r in records:
        store.put_rs(r)
    assert store.list_rs() == records
    assert store.get_rs("b") == records[1] and store.get_rs("c") == records[2]


BAD = [
    ("unknown choice", "aes", SHARED, ValueError, "pop_key_encryption must be one of"),
    ("none with a key", "none", SHARED, ValueError, "takes no encryption_key"),
    ("shared without key", "shared", None, TypeError, "needs an encryption_key"),
    ("shared with a public key", "shared", RS_PUBLIC, ValueError, "needs a symmetric encryption_key"),
    ("rs_public with a private key", "rs_public", RS_PAIR, ValueError, "has a private part"),
    ("rs_public with a symmetric key", "rs_public", SHARED, ValueError, "not a symmetric key"),
    ("no kid", "shared", symmetric_key(bytes(16)), ValueError, "needs a kid"),
    ("not a key", "shared", b"k" * 16, TypeError, "needs an encryption_key"),
]


@pytest.mark.parametrize(("name", "how", "key", "exc", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_records_refused(store: AsStore, name: str, how: str, key: object, exc: type[Exception],
                             match: str) -> None:
    with pytest.raises(exc, match=match) as info:
        store.put_rs(rs("a", how, key))  # type: ignore[arg-type]
    assert bytes(range(16)).hex() not in str(info.value)
    assert store.list_rs() == []


AS_PAIR = generate(Curve.P_256, kid=b"as", alg=int(Alg.ES256))
MAC = symmetric_key(bytes(range(32)), kid=b"mac")
UNFIT = [  # (id, token key, kind, choice, encryption key, what the refusal says): as ``add-rs`` refuses them
    ("ed25519 signing key", AS_PAIR, "sign1", "rs_public", generate(Curve.ED25519, kid=b"ed").public(),
     "key agreement"),
    ("ES256 key", AS_PAIR, "sign1", "rs_public", generate(Curve.P_256, kid=b"es", alg=int(Alg.ES256)).public(),
     "ES256"),
    ("20-byte shared key", AS_PAIR, "sign1", "shared", symmetric_key(bytes(20), kid=b"s20"), "does not fit"),
    ("MAC key reused", MAC, "mac0", "shared", MAC, "is the token key"),
    ("AS signing key reused", AS_PAIR, "sign1", "rs_public", AS_PAIR.public(), "is the token key"),
    ("kid of the token key", AS_PAIR, "sign1", "rs_public", generate(Curve.P_256, kid=b"as").public(), "kid"),
    ("X25519 low-order point", AS_PAIR, "sign1", "rs_public",
     CoseKey(kty=KeyType.OKP, crv=Curve.X25519, x=bytes(32), kid=b"x0"), "not a valid point"),
    ("P-256 point off the curve", AS_PAIR, "sign1", "rs_public",
     CoseKey(kty=KeyType.EC2, crv=Curve.P_256, x=bytes(32), y=bytes(31) + b"\x01", kid=b"p0"), "not a valid point"),
]


@pytest.mark.parametrize(("token_key", "kind", "how", "enc", "match"), [u[1:] for u in UNFIT],
                         ids=[u[0] for u in UNFIT])
def test_unfit_encryption_key_refused(store: AsStore, token_key: CoseKey, kind: str, how: str, enc: CoseKey,
                                      match: str) -> None:
    """``put_rs`` refuses what ``add-rs`` refuses (``checks.check_encryption_fits``): a key the AS cannot
    encrypt to, or the token key (its kid), so it is not a 5.00 at /token; a new record or an update."""
    good = RsRecord(audience="b", rs_id="b", token_key=token_key, token_kind=kind, pop_key_encryption="shared",
                    encryption_key=SHARED)
    store.put_rs(good)
    for audience in ("a", "b"):
        with pytest.raises(ValueError, match=match) as info:
            store.put_rs(RsRecord(audience=audience, rs_id=audience, token_key=token_key, token_kind=kind,
                                  pop_key_encryption=how, encryption_key=enc))
        assert bytes(range(32)).hex() not in str(info.value)
        assert store.list_rs() == [good] and store.get_rs(audience) == (good if audience == "b" else None)


def test_survives_reopen(db: Path) -> None:
    records = [rs("a", "shared", SHARED), rs("b", "rs_public", RS_PUBLIC)]
    with SqliteAsStore(db) as s:
        for r in records:
            s.put_rs(r)
    with SqliteAsStore(db) as s:
        assert s.list_rs() == records and s.schema_version() == 11
    with sqlite3.connect(db) as raw:
        rows = raw.execute("SELECT pop_key_encryption, encryption_key FROM rs ORDER BY audience").fetchall()
    raw.close()
    assert rows == [("shared", SHARED.encode()), ("rs_public", RS_PUBLIC.encode())]


def test_schema_8_file_migrates_to_none(tmp_path: Path) -> None:
    v8 = copy_private(V8_FILE, tmp_path / "v8.db")
    with SqliteAsStore(v8) as s:
        records = s.list_rs()
        assert records and all(r.pop_key_encryption == "none" and r.encryption_key is None for r in records)
        assert s.schema_version() == 11


DAMAGE = [
    ("private key stored", "rs_public", RS_PAIR.encode(), "has a private part"),
    ("key without choice", "none", SHARED.encode(), "takes no encryption_key"),
    ("choice without key", "shared", None, "needs an encryption_key"),
    ("not a COSE_Key", "shared", b"\xa0", "encryption_key is not a COSE_Key"),
]


@pytest.mark.parametrize(("name", "how", "value", "match"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_columns(db: Path, name: str, how: str, value: object, match: str) -> None:
    with SqliteAsStore(db) as s:
        s.put_rs(rs("a", "shared", SHARED))
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE rs SET pop_key_encryption = ?, encryption_key = ?", (how, value))
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute("UPDATE rs SET pop_key_encryption = 'aes'")  # the column's CHECK
    raw.close()
    with SqliteAsStore(db) as s:
        with pytest.raises(ConfigError, match=match) as info:
            s.get_rs("a")
        assert RS_PAIR.d is not None and RS_PAIR.d.hex() not in str(info.value)
