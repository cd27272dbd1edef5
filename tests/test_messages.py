"""ACE messages: RFC 9200/9203 figures decode to dataclasses and re-encode to equal
structures (exact bytes where our field order matches the figure), hypothesis round trips
for every message type, and arbitrary CBOR into every decoder raising only RemoteError."""

from __future__ import annotations

import contextlib
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors import load_vector

from ace.cbor import codec
from ace.cbor.labels import AceProfile, GrantType, TokenType
from ace.errors import DecodeError, ErrorCode, RemoteError
from ace.messages import (
    MESSAGE_TYPES,
    AccessTokenRequest,
    AccessTokenResponse,
    AuthzInfoRequest,
    AuthzInfoResponse,
    CreationHints,
    ErrorResponse,
    IntrospectionRequest,
    IntrospectionResponse,
)
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, KidCnf, OscoreCnf, OscoreInputMaterial

RFC9200 = load_vector("ace_rfc9200_examples.json")["examples"]
RFC9203 = load_vector("ace_rfc9203_examples.json")["examples"]

# (figure, payload index, message type, our encoding equals the figure's bytes)
FIGURES: list[tuple[str, dict[str, Any], int, type[Any], bool]] = [
    ("9200 fig 2", RFC9200["figure_2"], 0, CreationHints, True),
    ("9200 fig 4", RFC9200["figure_4"], 0, AccessTokenRequest, True),
    ("9200 fig 5", RFC9200["figure_5"], 0, AccessTokenRequest, True),
    ("9200 fig 6", RFC9200["figure_6"], 0, AccessTokenRequest, True),
    ("9200 fig 9", RFC9200["figure_9"], 0, IntrospectionRequest, True),
    ("9200 fig 10", RFC9200["figure_10"], 0, IntrospectionResponse, True),
    ("9200 fig 12 request", RFC9200["figure_12"], 0, AccessTokenRequest, False),  # audience first; kid before kty
    ("9200 fig 12 response", RFC9200["figure_12"], 1, AccessTokenResponse, False),
    ("9200 fig 17 request", RFC9200["figure_17"], 0, AccessTokenRequest, True),
    ("9200 fig 17 response", RFC9200["figure_17"], 1, AccessTokenResponse, False),
    ("9200 fig 19 request", RFC9200["figure_19"], 0, IntrospectionRequest, True),
    ("9200 fig 19 response", RFC9200["figure_19"], 1, IntrospectionResponse, True),
    ("9203 fig 2", RFC9203["figure_2"], 0, AccessTokenRequest, True),
    ("9203 fig 3", RFC9203["figure_3"], 0, AccessTokenRequest, True),
    ("9203 fig 4", RFC9203["figure_4"], 0, AccessTokenResponse, True),
    ("9203 fig 7", RFC9203["figure_7"], 0, AccessTokenResponse, True),
    ("9203 fig 11", RFC9203["figure_11"], 0, AuthzInfoRequest, True),
    ("9203 fig 12", RFC9203["figure_12"], 0, AuthzInfoResponse, True),
]


@pytest.mark.parametrize(("name", "figure", "index", "cls", "exact"), FIGURES, ids=[f[0] for f in FIGURES])
def test_rfc_figures(name: str, figure: dict[str, Any], index: int, cls: type[Any], exact: bool) -> None:
    raw = bytes.fromhex(figure["payloads"][index]["cbor_hex"])
    msg = cls.decode(raw)
    assert msg.extra == ()
    assert codec.loads(msg.encode()) == codec.loads(raw)
    assert (msg.encode() == raw) is exact
    assert cls.decode(msg.encode()) == msg


def test_rfc9200_figure_3_bytes_are_our_creation_hints() -> None:
    hints = CreationHints(as_uri="coaps://as.example.com/token", audience="coaps://rs.example.com",
                          scope="rTempC", cnonce=bytes.fromhex("e0a156bb3f"))
    assert hints.encode().hex() == RFC9200["figure_3"]["cbor_hex_from_rfc"]


def test_decoded_values_of_selected_figures() -> None:
    req = AccessTokenRequest.decode(bytes.fromhex(RFC9200["figure_6"]["payloads"][0]["cbor_hex"]))
    assert (req.client_id, req.audience, req.scope) == ("myclient", "valve424", "read")
    assert isinstance(req.req_cnf, KidCnf)
    resp = AccessTokenResponse.decode(bytes.fromhex(RFC9203["figure_4"]["payloads"][0]["cbor_hex"]))
    assert resp.ace_profile is AceProfile.COAP_OSCORE and resp.expires_in == 3600
    assert resp.cnf == OscoreCnf(OscoreInputMaterial(id=b"\x01", ms=bytes.fromhex("f9af838368e353e78888e1426bd94e6f")))
    intro = IntrospectionResponse.decode(bytes.fromhex(RFC9200["figure_10"]["payloads"][0]["cbor_hex"]))
    assert intro.active and intro.ace_profile is AceProfile.COAP_DTLS and isinstance(intro.cnf, CoseKeyCnf)
    hint = IntrospectionRequest.decode(bytes.fromhex(RFC9200["figure_9"]["payloads"][0]["cbor_hex"]))
    assert hint.token_type_hint is TokenType.POP
    authz = AuthzInfoRequest.decode(bytes.fromhex(RFC9203["figure_11"]["payloads"][0]["cbor_hex"]))
    assert (authz.nonce1, authz.ace_client_recipientid) == (bytes.fromhex("018a278f7faab55a"), b"\x16\x45")


def test_rfc9203_figure_6_claims() -> None:
    raw = bytes.fromhex(RFC9203["figure_6"]["cbor_hex_from_rfc"])
    claims = AccessTokenClaims.decode(raw)
    assert claims.aud == "tempSensorInLivingRoom" and claims.scope == "temperature_g firmware_p"
    assert claims.iat == 1360189224 and claims.exp == 1360289224
    ms = bytes.fromhex("f9af838368e353e78888e1426bd94e6f")
    assert claims.cnf == OscoreCnf(OscoreInputMaterial(id=b"\x01", ms=ms))
    assert codec.loads(claims.encode()) == codec.loads(raw)


def test_rfc9200_figure_7_text_profile_is_refused() -> None:
    # Figure 7 prints ace_profile as "coap_dtls" (text); the registry and Figure 10 use integers.
    raw = bytes.fromhex(RFC9200["figure_7"]["payloads"][0]["cbor_hex"])
    with pytest.raises(DecodeError, match=r"ace_profile\(38\)"):
        AccessTokenResponse.decode(raw)


def test_ace_profile_null_asks_for_the_profile() -> None:
    raw = codec.dumps({5: "rs1", 38: None})
    req = AccessTokenRequest.decode(raw)
    assert req.ask_ace_profile and req.ace_profile is None
    assert req.encode() == raw
    named = AccessTokenRequest.decode(codec.dumps({38: 2}))
    assert named.ace_profile is AceProfile.COAP_OSCORE and named.ask_ace_profile


def test_unknown_labels_are_kept_and_reencoded() -> None:
    raw = codec.dumps({1: b"tok", 2: 60, 99: "future", "x": [1]})
    resp = AccessTokenResponse.decode(raw)
    assert resp.extra == ((99, "future"), ("x", [1]))
    assert resp.encode() == raw


def test_unregistered_enum_values_pass_through() -> None:
    req = AccessTokenRequest.decode(codec.dumps({33: 77}))
    assert req.grant_type == 77 and not isinstance(req.grant_type, GrantType)
    assert ErrorResponse.decode(codec.dumps({30: 200})).error == 200


BAD_MESSAGES: list[tuple[str, type[Any], object]] = [
    ("response without access_token", AccessTokenResponse, {2: 3600}),
    ("access_token as text", AccessTokenResponse, {1: "tok"}),
    ("expires_in negative", AccessTokenResponse, {1: b"t", 2: -1}),
    ("expires_in bool", AccessTokenResponse, {1: b"t", 2: True}),
    ("audience as bytes", AccessTokenRequest, {5: b"rs"}),
    ("scope as int", AccessTokenRequest, {9: 1}),
    ("req_cnf not a map", AccessTokenRequest, {4: b"k"}),
    ("req_cnf empty", AccessTokenRequest, {4: {}}),
    ("grant_type text", AccessTokenRequest, {33: "client_credentials"}),
    ("error missing", ErrorResponse, {31: "why"}),
    ("error text", ErrorResponse, {30: "invalid_request"}),
    ("hints AS as bytes", CreationHints, {1: b"coap://as"}),
    ("active missing", IntrospectionResponse, {9: "r"}),
    ("active as int", IntrospectionResponse, {10: 1}),
    ("introspection token missing", IntrospectionRequest, {24: "c"}),
    ("nonce1 missing", AuthzInfoRequest, {1: b"t", 43: b"\x01"}),
    ("recipient id missing", AuthzInfoRequest, {1: b"t", 40: bytes(8)}),
    ("nonce1 as text", AuthzInfoRequest, {1: b"t", 40: "n", 43: b"\x01"}),
    ("nonce2 missing", AuthzInfoResponse, {44: b"\x00"}),
    ("not a map", AccessTokenRequest, [5, "rs"]),
    ("osc without ms", AccessTokenResponse, {1: b"t", 8: {4: {0: b"\x01"}}}),
    ("osc id as text", AccessTokenResponse, {1: b"t", 8: {4: {0: "1", 2: bytes(16)}}}),
]


@pytest.mark.parametrize(("name", "cls", "value"), BAD_MESSAGES, ids=[b[0] for b in BAD_MESSAGES])
def test_bad_messages(name: str, cls: type[Any], value: object) -> None:
    with pytest.raises(DecodeError) as info:
        cls.decode(codec.dumps(value))
    assert info.value.coap_code == (4, 0)
    assert info.value.error_code in (ErrorCode.INVALID_REQUEST, ErrorCode.UNSUPPORTED_POP_KEY)


def test_duplicate_keys_in_a_message() -> None:
    with pytest.raises(DecodeError, match="duplicate"):
        # {1: h'00', 40: h'0000000000000000', 43: h'01', 1: h'01'}
        AuthzInfoRequest.decode(bytes.fromhex("a4" "0141 00" "1828 48 0000000000000000" "182b 41 01" "0141 01"))


def test_error_names_field_and_label() -> None:
    with pytest.raises(DecodeError, match=r"req_cnf\(4\)"):
        AccessTokenRequest.decode(codec.dumps({4: b"k"}))


# --- hypothesis -----------------------------------------------------------------------

def _oscore() -> st.SearchStrategy[OscoreInputMaterial]:
    return st.builds(OscoreInputMaterial, id=st.binary(max_size=7), ms=st.binary(min_size=16, max_size=32),
                     salt=st.none() | st.binary(max_size=8), context_id=st.none() | st.binary(max_size=8),
                     alg=st.none() | st.integers(-50, 50), hkdf=st.none() | st.integers(-20, 0))


CNF = st.one_of(st.builds(KidCnf, st.binary(min_size=1, max_size=8)), st.builds(OscoreCnf, _oscore()))
TEXT = st.none() | st.text(max_size=12)
BYTES = st.none() | st.binary(max_size=12)
SCOPE = st.none() | st.text(min_size=1, max_size=12) | st.binary(max_size=12)
UINT = st.none() | st.integers(0, 2**32)

STRATEGIES: dict[type[Any], st.SearchStrategy[Any]] = {
    AccessTokenRequest: st.builds(AccessTokenRequest, grant_type=st.none() | st.sampled_from(GrantType),
                                  client_id=TEXT, audience=TEXT, scope=SCOPE, req_cnf=st.none() | CNF,
                                  cnonce=BYTES),
    AccessTokenResponse: st.builds(AccessTokenResponse, access_token=st.binary(max_size=40),
                                   token_type=st.none() | st.sampled_from(TokenType), expires_in=UINT, scope=SCOPE,
                                   cnf=st.none() | CNF, rs_cnf=st.none() | CNF,
                                   ace_profile=st.none() | st.sampled_from(AceProfile)),
    ErrorResponse: st.builds(ErrorResponse, error=st.sampled_from(ErrorCode), error_description=TEXT),
    CreationHints: st.builds(CreationHints, as_uri=TEXT, kid=BYTES, audience=TEXT, scope=SCOPE, cnonce=BYTES),
    IntrospectionRequest: st.builds(IntrospectionRequest, token=st.binary(max_size=20), client_id=TEXT),
    IntrospectionResponse: st.builds(IntrospectionResponse, active=st.booleans(), scope=SCOPE, aud=TEXT, exp=UINT,
                                     cti=BYTES, cnf=st.none() | CNF, exi=UINT),
    AuthzInfoRequest: st.builds(AuthzInfoRequest, access_token=st.binary(max_size=40), nonce1=st.binary(max_size=16),
                                ace_client_recipientid=st.binary(max_size=7)),
    AuthzInfoResponse: st.builds(AuthzInfoResponse, nonce2=st.binary(max_size=16),
                                 ace_server_recipientid=st.binary(max_size=7)),
}
assert set(STRATEGIES) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("cls", MESSAGE_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_round_trip(cls: type[Any], data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[cls])
    encoded = msg.encode()
    assert cls.decode(encoded) == msg
    assert cls.decode(encoded).encode() == encoded


ARBITRARY_CBOR = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=10) | st.text(max_size=6)
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.integers(-5, 45) | st.text(max_size=2), inner, max_size=6),
    max_leaves=25,
)
DECODERS = [*MESSAGE_TYPES, AccessTokenClaims]


@pytest.mark.parametrize("cls", DECODERS, ids=lambda c: c.__name__)
@settings(max_examples=300, deadline=None)
@given(value=ARBITRARY_CBOR)
def test_arbitrary_cbor_raises_only_remote_errors(cls: type[Any], value: object) -> None:
    with contextlib.suppress(RemoteError):
        cls.decode(cbor2.dumps(value))
