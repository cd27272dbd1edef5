"""EDHOC_Information (draft-ietf-ace-edhoc-oscore-profile-11 §3.4): strict decoding, exact round trips."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ace.errors import DecodeError
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.edhoc_info import EdhocInfo

ints = st.none() | st.lists(st.integers(-24, 300), min_size=1, max_size=4).map(tuple)
bools = st.none() | st.booleans()


@given(session_id=st.binary(min_size=1, max_size=16), methods=ints, suites=ints, m4=bools, comb=bools,
       uri=st.none() | st.text(max_size=30), creds=ints, ids=ints, eads=ints, ini=bools, resp=bools)
def test_round_trip(session_id: bytes, methods: tuple[int, ...] | None, suites: tuple[int, ...] | None,
                    m4: bool | None, comb: bool | None, uri: str | None, creds: tuple[int, ...] | None,
                    ids: tuple[int, ...] | None, eads: tuple[int, ...] | None, ini: bool | None,
                    resp: bool | None) -> None:
    info = EdhocInfo(session_id=session_id, methods=methods, cipher_suites=suites, message_4=m4, comb_req=comb,
                     uri_path=uri, cred_types=creds, id_cred_types=ids, eads=eads, initiator=ini, responder=resp)
    assert EdhocInfo.decode(info.encode()) == info
    assert EdhocInfo.decode(info.encode()).encode() == info.encode()


def test_wire_form() -> None:
    info = EdhocInfo(session_id=b"\x01\x02", methods=(3,), cipher_suites=(2, 6), message_4=False)
    assert info.encode() == cbor2.dumps({0: b"\x01\x02", 1: 3, 2: [2, 6], 3: False})
    assert EdhocInfo.decode(cbor2.dumps({0: b"\x01", 1: [3], 12: "x"})).extra == ((12, "x"),)


def test_in_messages_and_claims() -> None:
    info = EdhocInfo(session_id=b"\x07", uri_path="/.well-known/edhoc")
    request = AccessTokenRequest(audience="rs1", edhoc_info=EdhocInfo(session_id=b"\x07"))
    assert cbor2.loads(request.encode())[47] == {0: b"\x07"}
    assert AccessTokenRequest.decode(request.encode()) == request
    response = AccessTokenResponse(access_token=b"t", edhoc_info=info)
    assert AccessTokenResponse.decode(response.encode()).edhoc_info == info
    claims = AccessTokenClaims(aud="rs1", edhoc_info=EdhocInfo(session_id=b"\x07"))
    assert cbor2.loads(claims.encode())[41] == {0: b"\x07"}
    assert AccessTokenClaims.decode(claims.encode()) == claims


@pytest.mark.parametrize("value", [
    {}, {1: 3}, {0: "text"}, {0: b""}, {0: b"\x00" * 17}, {0: b"\x01", 1: "x"}, {0: b"\x01", 2: []},
    {0: b"\x01", 3: 1}, {0: b"\x01", 5: b"/p"}, {0: b"\x01", 8: [True]}, [0],
])
def test_malformed_is_refused(value: object) -> None:
    with pytest.raises(DecodeError):
        EdhocInfo.decode(cbor2.dumps(value))
