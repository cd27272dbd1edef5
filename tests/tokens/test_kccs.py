"""kccs (draft-ietf-ace-edhoc-oscore-profile-11 §7.10): a CWT Claims Set holding the COSE_Key, kept
as its exact bytes (they are CRED_x in EDHOC), strict and bounded."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ace.cbor import codec
from ace.cbor.labels import Curve
from ace.errors import DecodeError, ErrorCode, UnsupportedPopKey
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import MAX_CCS, CoseKeyCnf, KccsCnf, ccs_of_cose_key, cnf_from_map, cnf_to_map
from ace.tokens.crypto import generate

KEY = generate(Curve.P_256, kid=b"\x2b").public()
COSE_KEY = {1: 2, 2: b"\x2b", -1: 1, -2: KEY.x, -3: KEY.y}


def test_of_key_is_the_ccs_both_ends_build() -> None:
    cnf = KccsCnf.of_key(KEY, "client")
    assert cnf.raw == cbor2.dumps({2: "client", 8: {1: COSE_KEY}}, canonical=True) == cnf.cred
    assert cnf.key == KEY and cnf.kid == b"\x2b" and cnf.sub == "client"


def test_bytes_are_kept_as_received() -> None:
    raw = cbor2.dumps({8: {1: {-3: KEY.y, -2: KEY.x, -1: 1, 2: b"\x2b", 1: 2}}, 2: "c"})  # not deterministic
    cnf = KccsCnf(raw)
    assert codec.dumps(cnf_to_map(cnf)) == b"\xa1\x0b" + raw  # embedded, never re-encoded
    request = AccessTokenRequest(req_cnf=cnf).encode()
    assert raw in request and AccessTokenRequest.decode(request).req_cnf == cnf
    assert isinstance(AccessTokenResponse.decode(AccessTokenResponse(access_token=b"t", rs_cnf=cnf).encode()).rs_cnf,
                      KccsCnf)
    claims = AccessTokenClaims(cnf=cnf, aud="rs1").encode()
    decoded = AccessTokenClaims.decode(claims).cnf
    assert isinstance(decoded, KccsCnf) and decoded.raw == raw and decoded.key == KEY


def test_tagged_ccs_is_accepted_and_cred_is_the_map() -> None:
    inner = cbor2.dumps({8: {1: COSE_KEY}})
    tagged = b"\xd8\x3d" + inner  # #6.61(map), §14.7: map / #6(map)
    cnf = cnf_from_map(cbor2.loads(b"\xa1\x0b" + tagged))
    assert isinstance(cnf, KccsCnf) and cnf.cred == inner
    assert KccsCnf(tagged).cred == inner and KccsCnf(tagged).raw == tagged


def test_cose_key_cnf_keeps_its_bytes_from_token_claims() -> None:
    key_bytes = cbor2.dumps({-3: KEY.y, -2: KEY.x, -1: 1, 2: b"\x2b", 1: 2})
    claims = cbor2.dumps({3: "rs1", 8: {1: cbor2.loads(key_bytes)}})
    cnf = AccessTokenClaims.decode(claims).cnf
    assert isinstance(cnf, CoseKeyCnf) and cnf.key_bytes() == key_bytes
    assert ccs_of_cose_key(cnf.key_bytes()) == b"\xa1\x08\xa1\x01" + key_bytes  # the ariel-os CRED_I


@pytest.mark.parametrize(("raw", "error"), [
    (cbor2.dumps([1, 2]), DecodeError),  # not a map
    (cbor2.dumps({2: "c"}), DecodeError),  # no cnf
    (cbor2.dumps({8: {3: b"k"}}), DecodeError),  # cnf not a COSE_Key
    (cbor2.dumps({8: {1: COSE_KEY, 3: b"k"}}), DecodeError),  # two methods
    (cbor2.dumps({8: {1: {1: 2}}}), DecodeError),  # a COSE_Key without its parameters
    (cbor2.dumps({2: 7, 8: {1: COSE_KEY}}), DecodeError),  # sub not text
    (cbor2.dumps({8: {1: {**COSE_KEY, -4: b"\x01" * 32}}}), UnsupportedPopKey),  # a private key
    (cbor2.dumps({2: "x" * MAX_CCS, 8: {1: COSE_KEY}}), UnsupportedPopKey),  # over MAX_CCS
    (b"\xa1\x08", DecodeError),  # truncated
])
def test_malformed_kccs_is_refused(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        KccsCnf(raw)
    assert isinstance(info.value, DecodeError) and info.value.coap_code == (4, 0)
    assert info.value.error_code in (ErrorCode.INVALID_REQUEST, ErrorCode.UNSUPPORTED_POP_KEY)


def test_kccs_member_must_be_a_map() -> None:
    with pytest.raises(DecodeError):
        cnf_from_map({11: b"\xa0"})


@given(sub=st.none() | st.text(max_size=20), kid=st.binary(min_size=1, max_size=16),
       order=st.permutations([1, 2, -1, -2, -3]), sub_first=st.booleans())
def test_any_encoding_round_trips_byte_for_byte(sub: str | None, kid: bytes, order: list[int],
                                                sub_first: bool) -> None:
    cose_key = {k: {1: 2, 2: kid, -1: 1, -2: KEY.x, -3: KEY.y}[k] for k in order}
    ccs: dict[int, object] = {8: {1: cose_key}}
    if sub is not None:
        ccs = {2: sub, **ccs} if sub_first else {**ccs, 2: sub}
    raw = cbor2.dumps(ccs)
    cnf = KccsCnf(raw)
    assert cnf.kid == kid and cnf.sub == sub
    response = AccessTokenResponse(access_token=b"t", rs_cnf=cnf).encode()
    again = AccessTokenResponse.decode(response)
    assert isinstance(again.rs_cnf, KccsCnf) and again.rs_cnf.raw == raw and again.encode() == response
