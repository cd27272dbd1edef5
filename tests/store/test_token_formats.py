"""The token format of each RS (``RsRecord.format``: COSE and CWT tags, ``sub``, exp/exi time
unit, exi tokens and their cti layout, OSCORE_Input_Material salt length; the options a peer such
as RISE ace-java needs, issue 11) in both AS stores, RFC behaviour by default; and the SQLite side:
damaged format columns are a ConfigError, the table's checks refuse bad values.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_support import RS_AS, TOKEN_KEY

from ace.errors import ConfigError
from ace.store.base import ACE_JAVA, MAX_SALT_LEN, RFC_FORMAT, AsStore, RsRecord, TokenFormat
from ace.store.sqlite import SqliteAsStore


def rs(audience: str = "aud1", fmt: TokenFormat = RFC_FORMAT, **kw: object) -> RsRecord:
    return RsRecord(audience=audience, rs_id="rs1", token_key=TOKEN_KEY, format=fmt, **kw)  # type: ignore[arg-type]


FORMATS = [
    RFC_FORMAT, ACE_JAVA, TokenFormat(cwt_tag=True), TokenFormat(sub=False, salt_len=0),
    TokenFormat(exi=True, time_unit="ms", salt_len=MAX_SALT_LEN), TokenFormat(cose_tag=True, exi_cti="text"),
]


@pytest.mark.parametrize("fmt", FORMATS, ids=range(len(FORMATS)))
def test_format_round_trip(store: AsStore, fmt: TokenFormat) -> None:
    store.put_rs(rs(fmt=fmt, oscore=RS_AS))
    assert store.get_rs("aud1") == rs(fmt=fmt, oscore=RS_AS)
    assert store.list_rs() == [rs(fmt=fmt, oscore=RS_AS)]
    store.put_rs(rs())  # back to the RFC's
    assert store.get_rs("aud1") == rs() and rs().format == RFC_FORMAT


def test_defaults_are_the_rfcs() -> None:
    f = RsRecord(audience="a", rs_id="a", token_key=TOKEN_KEY).format
    assert (f.cose_tag, f.cwt_tag, f.sub, f.time_unit, f.exi, f.exi_cti, f.salt_len) == (
        False, False, True, "s", False, "bytes", None)
    assert f.per_second == 1 and ACE_JAVA.per_second == 1000


BAD_FORMATS: list[tuple[dict[str, object], type[Exception]]] = [
    ({"time_unit": "h"}, ValueError), ({"time_unit": "milliseconds"}, ValueError),
    ({"exi_cti": "hex"}, ValueError), ({"salt_len": -1}, ValueError), ({"salt_len": MAX_SALT_LEN + 1}, ValueError),
    ({"salt_len": True}, ValueError), ({"cose_tag": 1}, TypeError), ({"sub": "no"}, TypeError),
]


@pytest.mark.parametrize(("kw", "error"), BAD_FORMATS, ids=[str(k) for k, _ in BAD_FORMATS])
def test_bad_formats_refused(kw: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        TokenFormat(**kw)  # type: ignore[arg-type]


def test_put_rs_needs_a_token_format(store: AsStore) -> None:
    with pytest.raises(TypeError, match="TokenFormat"):
        store.put_rs(rs(fmt={"cose_tag": True}))  # type: ignore[arg-type]
    assert store.list_rs() == []


@pytest.mark.parametrize(("column", "value"), [("time_unit", "'h'"), ("exi_cti", "'hex'"), ("time_unit", "1")])
def test_damaged_format_column_is_a_config_error(db: Path, column: str, value: str) -> None:
    with SqliteAsStore(db) as s:
        s.put_rs(rs())
    with sqlite3.connect(db) as raw:
        raw.execute(f"UPDATE rs SET {column} = {value}")
    raw.close()
    with SqliteAsStore(db) as s, pytest.raises(ConfigError, match="store damaged") as info:
        s.get_rs("aud1")
    assert "TOKEN_KEY" not in str(info.value)


@pytest.mark.parametrize(("column", "value"), [("cose_tag", 2), ("include_sub", -1), ("salt_len", 65),
                                               ("exi", None)])
def test_format_columns_are_checked_by_the_table(db: Path, column: str, value: object) -> None:
    with SqliteAsStore(db) as s:
        s.put_rs(rs())
    with sqlite3.connect(db) as raw, pytest.raises(sqlite3.IntegrityError):
        raw.execute(f"UPDATE rs SET {column} = ?", (value,))
    raw.close()
