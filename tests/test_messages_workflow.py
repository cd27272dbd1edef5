"""The token request/response parameters of draft-ietf-ace-workflow-and-params-08 and the EDHOC
profile -11, and the AS's token upload to /authz-info (WF §3.7.1)."""

from __future__ import annotations

import cbor2
import pytest

from ace.errors import DecodeError
from ace.messages import UPDATED_RIGHTS_KEY, AccessTokenRequest, AccessTokenResponse, AuthzInfoUpdate


def test_request_fields_and_labels() -> None:
    request = AccessTokenRequest(audience="rs1", token_upload=2, to_rs=b"\xa0", token_series_id=b"\x01")
    assert cbor2.loads(request.encode()) == {5: "rs1", 49: 2, 51: b"\xa0", 56: b"\x01"}
    assert AccessTokenRequest.decode(request.encode()) == request


def test_response_without_token_after_an_upload() -> None:
    response = AccessTokenResponse(access_token=b"", token_upload=0, token_hash=b"\x01" + bytes(32), from_rs=b"")
    wire = cbor2.loads(response.encode())
    assert 1 not in wire and wire == {49: 0, 50: b"\x01" + bytes(32), 52: b""}  # WF §3.1.2
    assert AccessTokenResponse.decode(response.encode()) == response
    with pytest.raises(DecodeError):  # without token_upload access_token stays required
        AccessTokenResponse.decode(cbor2.dumps({2: 3600}))
    full = AccessTokenResponse(access_token=b"tok", token_upload=1, token_series_id=b"\x09")
    assert cbor2.loads(full.encode()) == {1: b"tok", 49: 1, 56: b"\x09"}


@pytest.mark.parametrize("value", [{49: -1}, {49: "2"}, {47: 1}, {51: "x"}, {56: 3}])
def test_wrong_types_are_refused(value: dict[int, object]) -> None:
    with pytest.raises(DecodeError):
        AccessTokenRequest.decode(cbor2.dumps(value))


def test_authz_info_update_under_a_configurable_key() -> None:
    update = AuthzInfoUpdate(access_token=b"tok", updated_rights=True)
    assert cbor2.loads(update.encode()) == {1: b"tok", UPDATED_RIGHTS_KEY: True}
    assert AuthzInfoUpdate.decode(update.encode()) == update
    assert cbor2.loads(update.encode(key=200)) == {1: b"tok", 200: True}
    assert AuthzInfoUpdate.decode(update.encode(key=200), key=200) == update
    assert AuthzInfoUpdate.decode(update.encode(key=200)).updated_rights is None  # another key: just extra
    assert AuthzInfoUpdate.decode(cbor2.dumps({1: b"tok"})) == AuthzInfoUpdate(access_token=b"tok")
    with pytest.raises(DecodeError):  # WF §3.7.1: only true
        AuthzInfoUpdate.decode(cbor2.dumps({1: b"tok", UPDATED_RIGHTS_KEY: False}))
    with pytest.raises(DecodeError):
        AuthzInfoUpdate.decode(cbor2.dumps({UPDATED_RIGHTS_KEY: True}))
