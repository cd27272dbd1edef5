"""What the store tests share: the records every file uses, the frozen contents of the old schema
files in ``data/`` (``populate_vN`` wrote ``data/as_vN.db`` with the schema-N code of the commit its
``write_vN_fixture`` names; frozen: never change them), the snapshots that read them back through
the store, and helpers that read a file raw (``dump``, ``schema``) or copy one (``copy_private``).
Not a test module: test modules import from here, never from each other.
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

from support import NOW, fixed_clock

from ace.cbor.labels import Curve, KeyType
from ace.store.base import AsStore, ClientRecord, DtlsPsk, Grant, IssuedToken, ReferenceToken, RsRecord
from ace.store.sqlite import SqliteAsStore
from ace.tokens.crypto import generate
from ace.tokens.keys import CoseKey, symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

# --- records several files use ------------------------------------------------------------------------------

MS = bytes(range(16))
SECRET = OscoreContextParams(master_secret=MS, sender_id=b"", recipient_id=b"\x01")
FULL_SECRET = OscoreContextParams(
    master_secret=b"\xaa" * 32, sender_id=b"\x00", recipient_id=b"\x02", master_salt=b"salt",
    id_context=b"\x37\xcb", alg=11, hkdf="sha512",
)
EC_KEY = generate(Curve.P_256, kid=b"ec", alg=-7)


def token(cti: bytes, scope: str | bytes | None = "r") -> IssuedToken:
    return IssuedToken(cti=cti, client_id="c", audience="rs1", scope=scope, issued_at=NOW, expires_at=None,
                       token_hash=b"\x11" * 32)


# --- data/as_v1.db: written by the schema-1 code of commit 722ba47 (populate_v1, V1_CLOCK) ------------------

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


# --- schema 2: DTLS PSK clients, PoP kids; reading a file raw -----------------------------------------------

KEY = b"\x5e" * 16
PSK = DtlsPsk(identity=b"client-1", key=KEY)
OSCORE = OscoreContextParams(master_secret=b"\x33" * 16, sender_id=b"", recipient_id=b"\x05")


def kid_tok(cti: int, pop_kid: bytes | None, client_id: str = "c", audience: str = "rs1", at: int = NOW) -> IssuedToken:
    return IssuedToken(cti=bytes([cti]), client_id=client_id, audience=audience, scope="r", issued_at=at,
                       expires_at=at + 60, token_hash=bytes([cti]) * 32, pop_kid=pop_kid)


def populate_v2(s: AsStore) -> None:
    s.put_client(ClientRecord(client_id="p1", psk=PSK, profiles=(1,)))
    s.put_client(ClientRecord(client_id="p2", oscore=OSCORE, psk=DtlsPsk(identity=b"\xff" * 32, key=b"\x01")))
    for t in (kid_tok(0x41, b"k1"), kid_tok(0x42, b"k1", client_id="p1"), kid_tok(0x43, None, client_id="p2"),
              kid_tok(0x44, b"k1")):
        s.log_token(t)


def snapshot(s: AsStore) -> tuple[object, ...]:
    return (
        s.list_clients(), s.list_rs(), s.list_grants(), s.issued_tokens(1000), s.load_sequence_number("ctx"),
        s.find_client_by_oscore_kid(b"\x02", b"\x37\xcb"), s.find_client_by_oscore_kid(b"\x01", None),
        s.find_client_by_oscore_kid(b"\x05", None),
        s.find_client_by_psk_identity(PSK.identity), s.find_client_by_psk_identity(b"\xff" * 32),
        s.find_token_by_pop_kid("c", "rs1", b"k1"), s.find_token_by_pop_kid("p1", "rs1", b"k1"),
    )


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


# --- data/as_v2.db: schema-2 code of commit 5839198 (populate_v2_file, V2_CLOCK) ----------------------------

V2_FILE = Path(__file__).parent / "data" / "as_v2.db"
V2_CLOCK = 1_650_000_000
SIGN_KEY = CoseKey(
    kty=KeyType.EC2, crv=Curve.P_256, kid=b"as-sign", alg=-7,
    x=bytes.fromhex("d9948d6aa31dce1191b17c2364e9539b88f7e7d010a346c500005aa8f8a083a4"),
    y=bytes.fromhex("654342828a5a799792f0b982654e6bf967e3483f3a7377d238b31cbcee7b9af8"),
    d=bytes.fromhex("780a22fa1a98353139ce20ac7734f652ebb269c1c994b8803f277d3d37a318d1"),
)
AUTH_D = bytes.fromhex("846dfe65fabddd32b0bd235c1c4f1b742dc514081888381cad3ce879e1969818")
AUTH = CoseKey(
    kty=KeyType.EC2, crv=Curve.P_256, kid=b"rs-edhoc",
    x=bytes.fromhex("793b58c4ca4d03af790ba011b9072325504cc10615231e40b517ba731f8635e5"),
    y=bytes.fromhex("611c9a1716e292b986b52e65bdcf8a4937ca422b81019fa66d7fc1ebf92dd4cb"),
)
AUTH_PRIVATE = replace(AUTH, d=AUTH_D)
OKP_AUTH = CoseKey(kty=KeyType.OKP, crv=Curve.ED25519, kid=b"\x01", x=b"\x42" * 32)
TOKEN_KEY = symmetric_key(b"\x07" * 16, kid=b"t")


def populate_v2_file(s: AsStore) -> None:
    """What ``data/as_v2.db`` holds (frozen: the file was written with exactly this)."""
    populate_v1(s)
    populate_v2(s)
    s.put_rs(RsRecord(audience="rs3", rs_id="three", token_key=SIGN_KEY, token_kind="sign1", token_alg=-7,
                      profiles=(2, 1), token_lifetime=600))
    s.add_grant(Grant(client_id="p1", audience="rs3", scope=b"\x82\x61/\x03", default=True))
    s.persist_sequence_number("ctx-2", 2**40 - 1)


def snapshot3(s: AsStore) -> tuple[object, ...]:
    return (*snapshot(s), s.load_sequence_number("ctx-2"), s.get_rs("rs3"), s.grants_for("p1", "rs3"))


def copy_private(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    dst.chmod(0o600)
    return dst


SCHEMA_SQL = "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name"


def schema(path: Path) -> list[tuple[object, ...]]:
    raw = sqlite3.connect(path)
    try:
        return raw.execute(SCHEMA_SQL).fetchall()
    finally:
        raw.close()


# --- data/as_v3.db: schema-3 code of commit b1ac9cd (write_v3_fixture) --------------------------------------

V3_FILE = Path(__file__).parent / "data" / "as_v3.db"
V3_CLOCK = 1_690_000_000
E1_SECRET = OscoreContextParams(master_secret=b"\x44" * 16, sender_id=b"\x01", recipient_id=b"\x09")


def v3_token(cti: int, client_id: str, audience: str, *, expires: int | None = 600,
             pop_kid: bytes | None = None) -> IssuedToken:
    return IssuedToken(cti=bytes([0x50, cti]), client_id=client_id, audience=audience, scope="r",
                       issued_at=V3_CLOCK + cti, expires_at=None if expires is None else V3_CLOCK + cti + expires,
                       token_hash=bytes([0x50 + cti]) * 32, pop_kid=pop_kid)


V3_TOKENS = [
    v3_token(1, "e1", "rs4", pop_kid=b"\x09"), v3_token(2, "p1", "rs4"), v3_token(3, "e1", "rs5", expires=None),
    v3_token(4, "e1", "rs4", pop_kid=b"\x09"), v3_token(5, "p2", "rs5", expires=1),
]


def populate_v3_file(s: AsStore) -> None:
    """What ``data/as_v3.db`` holds (frozen: the file was written with exactly this)."""
    populate_v2_file(s)
    s.put_rs(RsRecord(audience="rs4", rs_id="four", token_key=TOKEN_KEY, auth_key=AUTH, profiles=(2,)))
    s.put_rs(RsRecord(audience="rs5", rs_id="five", token_key=TOKEN_KEY, token_kind="mac0", auth_key=OKP_AUTH))
    s.put_client(ClientRecord(client_id="e1", oscore=E1_SECRET, profiles=(2,)))
    s.add_grant(Grant(client_id="e1", audience="rs4", scope="r", default=True))
    for t in V3_TOKENS:
        s.log_token(t)
    s.persist_sequence_number("ctx-3", 5)
    for _ in range(3):
        s.next_cti()


def write_v3_fixture(path: str) -> None:
    """How ``data/as_v3.db`` was made (with the schema-3 code: the assertion fails on later ones)."""
    with SqliteAsStore(path, clock=fixed_clock(V3_CLOCK)) as s:
        assert s.schema_version() == 3
        populate_v3_file(s)


def snapshot4(s: AsStore) -> tuple[object, ...]:
    return (
        *snapshot3(s), s.get_rs("rs4"), s.get_rs("rs5"), s.get_client("e1"), s.grants_for("e1", "rs4"),
        s.load_sequence_number("ctx-3"), s.find_client_by_oscore_kid(b"\x09", None),
        s.find_token_by_pop_kid("e1", "rs4", b"\x09"), *(s.find_tokens(c, a) for c, a in FILTERS),
    )


FILTERS = [(None, None), ("e1", None), (None, "rs4"), ("e1", "rs4"), ("p1", None), ("c", "rs1"), ("zz", None)]
# --- data/as_v4.db: schema-4 code of commit 04c3195 (write_v4_fixture) --------------------------------------

V4_FILE = Path(__file__).parent / "data" / "as_v4.db"
V4_CLOCK = 1_695_000_000
RS6_SECRET = OscoreContextParams(master_secret=b"\x66" * 16, sender_id=b"as", recipient_id=b"rs6")
V4_TOKEN = IssuedToken(cti=b"\x60\x01", client_id="e1", audience="rs6", scope="r", issued_at=V4_CLOCK,
                       expires_at=V4_CLOCK + 60, token_hash=b"\x01" + b"\x66" * 32, pop_kid=b"\x60\x01")
V4_REVOKED = [V3_TOKENS[1].token_hash, b"\x01" + b"\x77" * 32]


def populate_v4_file(s: AsStore) -> None:
    """What ``data/as_v4.db`` holds (frozen: the file was written with exactly this)."""
    populate_v3_file(s)
    s.put_rs(RsRecord(audience="rs6", rs_id="six", token_key=TOKEN_KEY, profiles=(2, 1), oscore=RS6_SECRET))
    s.log_token(V4_TOKEN)
    s.revoke_token(V4_REVOKED[0], revoked_at=V4_CLOCK, expires_at=V3_TOKENS[1].expires_at)
    s.revoke_token(V4_REVOKED[1], revoked_at=V4_CLOCK, expires_at=None)
    for _ in range(3):
        s.next_counter("exi:rs6")


def write_v4_fixture(path: str) -> None:
    """How ``data/as_v4.db`` was made (with the schema-4 code: the assertion fails on later ones)."""
    with SqliteAsStore(path, clock=fixed_clock(V4_CLOCK)) as s:
        assert s.schema_version() == 4
        populate_v4_file(s)


def snapshot5(s: AsStore) -> tuple[object, ...]:
    return (*snapshot4(s), s.get_rs("rs6"), s.find_tokens(audience="rs6"), s.revoked_since(0, 10),
            [s.is_revoked(h) for h in (*V4_REVOKED, V4_TOKEN.token_hash)])


def h(n: int) -> bytes:
    return b"\x01" + n.to_bytes(2, "big") * 16  # a 33-byte RFC 9770 "hash"


def ref(n: int, expires_at: int | None = NOW + 60, audience: str = "rs1") -> ReferenceToken:
    return ReferenceToken(token_hash=h(n), audience=audience, claims=b"\xa1\x03\x63rs1" + bytes([n % 24]),
                          expires_at=expires_at)


# --- data/as_v5.db: schema-5 code of commit 42264c1 (write_v5_fixture) --------------------------------------

V5_FILE = Path(__file__).parent / "data" / "as_v5.db"
V5_CLOCK = 1_698_000_000


def tok(n: int, client: str = "c1", audience: str = "rs1", expires_at: int | None = NOW + 60, *,
        kid: bytes | None = None, thumb: bytes | None = None) -> IssuedToken:
    extra = {} if thumb is None else {"pop_thumbprint": thumb}  # (the V5 ones: made by the schema-5 code too)
    return IssuedToken(cti=n.to_bytes(2, "big"), client_id=client, audience=audience, scope="r", issued_at=NOW,
                       expires_at=expires_at, token_hash=h(n), pop_kid=kid, **extra)


V5_TOKENS = [tok(0x71, "e1", "rs6", V5_CLOCK + 60, kid=b"\x71"), tok(0x72, "e1", "rs6", V5_CLOCK - 1),
             tok(0x73, "p1", "rs6", None)]


def populate_v5_file(s: AsStore) -> None:
    """What ``data/as_v5.db`` holds (frozen: the file was written with exactly this)."""
    populate_v4_file(s)
    for t in V5_TOKENS:
        s.log_token(t)
    s.revoke_token(V5_TOKENS[0].token_hash, revoked_at=V5_CLOCK, expires_at=V5_TOKENS[0].expires_at)
    s.put_reference(ref(5, expires_at=V5_CLOCK + 60))


def write_v5_fixture(path: str) -> None:
    """How ``data/as_v5.db`` was made (with the schema-5 code: the assertion fails on later ones)."""
    with SqliteAsStore(path, clock=fixed_clock(V5_CLOCK)) as s:
        assert s.schema_version() == 5
        populate_v5_file(s)


def snapshot6(s: AsStore) -> tuple[object, ...]:
    return (*snapshot5(s), s.find_tokens(audience="rs6"), s.get_reference(ref(5).token_hash))


# --- data/as_v6.db: schema-6 code of commit 3d4db06 (write_v6_fixture) --------------------------------------

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


# --- data/as_v7.db: schema-7 code of commit cbaa4f1 (write_v7_fixture) --------------------------------------

V7_FILE = Path(__file__).parent / "data" / "as_v7.db"
V7_CLOCK = 1_700_500_000
RS_AS = OscoreContextParams(master_secret=bytes(range(16)), sender_id=b"\x01", recipient_id=b"\x77",
                            master_salt=b"\x09")
V7_RS = RsRecord(audience="aud9", rs_id="rs9", token_key=TOKEN_KEY, token_alg=10, profiles=(2, 4),
                 token_lifetime=30, oscore=RS_AS, auth_key=AUTH)


def populate_v7_file(s: AsStore) -> None:
    """What ``data/as_v7.db`` holds (frozen: the file was written with exactly this)."""
    populate_v6_file(s)
    s.put_rs(V7_RS)
    s.register_edhoc_credential("e1", kid=b"kR", thumbprint=TA, now=V7_CLOCK)
    s.next_counter("exi:aud9")


def write_v7_fixture(path: str) -> None:
    """How ``data/as_v7.db`` was made (with the schema-7 code: the assertion fails on later ones)."""
    with SqliteAsStore(path, clock=fixed_clock(V7_CLOCK)) as s:
        assert s.schema_version() == 7
        populate_v7_file(s)


def snapshot8(s: AsStore) -> tuple[object, ...]:
    return (*snapshot6(s), s.list_rs(), s.edhoc_credentials("e1"), s.edhoc_credentials("e2"))


# --- data/as_v8.db: schema-8 code of commit 0a0dd3d (write_v8_fixture) --------------------------------------

V8_FILE = Path(__file__).parent / "data" / "as_v8.db"
V8_CLOCK = 1_700_600_000
TX, TY, TZ = b"\x1a" * 32, b"\x2b" * 32, b"\x3c" * 32
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
