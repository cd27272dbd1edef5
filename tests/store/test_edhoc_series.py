"""Schema 11, in both AS stores: an RS's EDHOC preset, own CCS, EDHOC_Information and upload URI
(round trip, refusals, migration defaults), and the token log's series (session_id) found per
client and audience, newest first."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_support import TOKEN_KEY, V8_FILE, copy_private

from ace.store.base import AsStore, IssuedToken, RsRecord
from ace.store.sqlite import SCHEMA_VERSION, SqliteAsStore

CCS = bytes.fromhex("a108a101a40102200121582000")


def rs(audience: str, **kw: object) -> RsRecord:
    return RsRecord(audience=audience, rs_id=audience, token_key=TOKEN_KEY, **kw)  # type: ignore[arg-type]


def test_rs_edhoc_fields_round_trip(store: AsStore) -> None:
    records = [rs("a"), rs("b", edhoc_preset="ariel-os", auth_cred=CCS, edhoc_params=bytes.fromhex("a103f5"),
                            upload_uri="coap://[::1]:5683/authz-info")]
    for r in records:
        store.put_rs(r)
    assert store.list_rs() == records
    assert records[0].edhoc_preset == "draft-11" and records[0].upload_uri is None


@pytest.mark.parametrize(("kw", "match"), [
    ({"edhoc_preset": "draft-10"}, "edhoc_preset must be one of"),
    ({"auth_cred": b""}, "auth_cred must be 1 to"),
    ({"edhoc_params": b"\x01"}, "encoded CBOR map"),
    ({"upload_uri": "http://x/authz-info"}, "coap URI"),
])
def test_rs_edhoc_fields_refused(store: AsStore, kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        store.put_rs(rs("a", **kw))
    assert store.list_rs() == []


def token(cti: bytes, client: str, session_id: bytes | None, audience: str = "rs") -> IssuedToken:
    return IssuedToken(cti=cti, client_id=client, audience=audience, scope="r", issued_at=1, expires_at=None,
                       token_hash=b"h" + cti, session_id=session_id)


def test_series_found_per_client_and_audience(store: AsStore) -> None:
    store.log_token(token(b"1", "c", b"\x01"))
    store.log_token(token(b"2", "c", b"\x01"))
    store.log_token(token(b"3", "d", b"\x01"))
    store.log_token(token(b"4", "c", b"\x01", audience="other"))
    store.log_token(token(b"5", "c", None))
    found = store.find_token_by_session_id("c", "rs", b"\x01")
    assert found is not None and found.cti == b"2" and found.session_id == b"\x01"
    assert store.find_token_by_session_id("c", "rs", b"\x02") is None
    with pytest.raises(TypeError):
        store.find_token_by_session_id("c", "rs", bytearray(b"\x01"))  # type: ignore[arg-type]


def test_schema_8_file_migrates_to_draft_11(tmp_path: Path) -> None:
    v8 = copy_private(V8_FILE, tmp_path / "v8.db")
    with SqliteAsStore(v8) as s:
        records = s.list_rs()
        assert s.schema_version() == SCHEMA_VERSION == 11
        assert records and all(r.edhoc_preset == "draft-11" and r.auth_cred is None and r.upload_uri is None
                               for r in records)
        assert all(t.session_id is None for t in s.issued_tokens())
