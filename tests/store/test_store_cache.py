"""The SQLite store's record cache never serves a record another process has changed."""

from __future__ import annotations

from pathlib import Path

from ace.store.base import ClientRecord, RsRecord
from ace.store.sqlite import SqliteAsStore
from ace.tokens.keys import symmetric_key


def test_records_written_by_another_connection_are_seen(tmp_path: Path) -> None:
    db = tmp_path / "as.db"
    with SqliteAsStore(db) as a, SqliteAsStore(db) as b:
        a.put_rs(RsRecord(audience="rs1", rs_id="rs1", token_key=symmetric_key(bytes(16)), token_lifetime=60))
        a.put_client(ClientRecord(client_id="c1"))
        assert a.get_rs("rs1") is a.get_rs("rs1")  # cached
        assert a.get_client("c1") is not None
        b.put_rs(RsRecord(audience="rs1", rs_id="rs1", token_key=symmetric_key(bytes(16)), token_lifetime=120))
        b.remove_client("c1")
        rs = a.get_rs("rs1")
        assert rs is not None and rs.token_lifetime == 120
        assert a.get_client("c1") is None
        a.put_rs(RsRecord(audience="rs1", rs_id="rs1", token_key=symmetric_key(bytes(16)), token_lifetime=7))
        rs = a.get_rs("rs1")  # our own write too
        assert rs is not None and rs.token_lifetime == 7
        assert a.get_rs("nope") is None
