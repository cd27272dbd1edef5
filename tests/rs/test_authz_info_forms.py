"""The forms of POST /authz-info the RS core takes (issue 11, DTLS interop with ace-java).

RFC 9200 §5.10.1 / RFC 9202: the DTLS profile POSTs the token itself (application/cwt, or no
Content-Format). ace-java's DTLS client POSTs the token itself as application/ace+cbor (measured:
Content-Format 19, payload D0 83 … a tagged COSE_Encrypt0); RFC 9594 §3.3 application profiles
POST an ace+cbor map with access_token. An RS offering coap_dtls takes all of them; the OSCORE
map (RFC 9203 §4.1) keeps its path, and an OSCORE-only RS keeps refusing non-map ace+cbor.
"""

from __future__ import annotations

import random

import cbor2
import pytest
from rs_support import AS_URI, MEANING, N1, RS_KEY, Clock, post, token
from support import NOW

from ace.cbor.labels import AceProfile, ContentFormat, Param
from ace.errors import DecodeError, RemoteError
from ace.profiles import dtls
from ace.rs.server import ResourceServer, RsConfig
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf
from ace.tokens.cwt import KeyRing, issue_token
from ace.tokens.keys import symmetric_key

PSK = symmetric_key(bytes(range(1, 17)), kid=b"rs10")
BOTH = (AceProfile.COAP_OSCORE, AceProfile.COAP_DTLS)


def make_rs(profiles: tuple[int, ...] = BOTH) -> ResourceServer:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, hint_scope="r_temp",
                      profiles=profiles)
    return ResourceServer(config, KeyRing([RS_KEY]), clock=Clock(), rng=random.Random(1).randbytes)


def dtls_token(cti: bytes = b"\x07", *, tagged: bool = True) -> bytes:
    claims = AccessTokenClaims(aud="rs1", exp=NOW + 3600, cti=cti, scope="r_temp", cnf=CoseKeyCnf(PSK))
    raw = issue_token(claims, RS_KEY, rng=random.Random(cti).randbytes)
    return cbor2.dumps(cbor2.CBORTag(16, cbor2.loads(raw))) if tagged and raw[0] != 0xD0 else raw


FORMS = [
    ("cwt", ContentFormat.CWT, lambda t: t),
    ("no-content-format", None, lambda t: t),
    ("ace-cbor-bare-token(ace-java)", ContentFormat.ACE_CBOR, lambda t: t),
    ("ace-cbor-map(RFC 9594)", ContentFormat.ACE_CBOR, lambda t: cbor2.dumps({int(Param.ACCESS_TOKEN): t})),
]


@pytest.mark.parametrize(("name", "cf", "wrap"), FORMS, ids=[f[0] for f in FORMS])
def test_dtls_rs_takes_each_form_of_the_token(name: str, cf: int | None, wrap) -> None:  # type: ignore[no-untyped-def]
    rs = make_rs()
    outcome = rs.authz_info(wrap(dtls_token()), cf)
    assert outcome.new and outcome.payload == b""  # RFC 9202 §3.3: 2.01, no payload
    assert outcome.binding.label == dtls.label_for(b"rs10")
    assert isinstance(outcome.binding.context, dtls.DtlsChannel) and outcome.binding.context.key == PSK.k
    assert rs.authorize(outcome.binding.label, "/temp", "GET").binding is outcome.binding


def test_the_oscore_map_keeps_its_path_on_an_rs_offering_both() -> None:
    rs = make_rs()
    outcome = rs.authz_info(post(token()), ContentFormat.ACE_CBOR)
    assert outcome.payload and outcome.binding.nonce1 == N1  # 2.01 with nonce2 and the RS's recipient id


def test_an_oscore_map_without_the_client_id_is_still_an_oscore_request() -> None:
    body = cbor2.dumps({int(Param.ACCESS_TOKEN): token(), int(Param.NONCE1): N1})
    with pytest.raises(DecodeError, match="ace_client_recipientid"):
        make_rs().authz_info(body, ContentFormat.ACE_CBOR)


def test_an_oscore_only_rs_refuses_a_bare_token_as_ace_cbor() -> None:
    with pytest.raises(DecodeError, match="must be a CBOR map"):
        make_rs((AceProfile.COAP_OSCORE,)).authz_info(dtls_token(), ContentFormat.ACE_CBOR)


def test_a_map_without_access_token_is_refused() -> None:
    with pytest.raises(DecodeError, match="access_token"):
        make_rs().authz_info(cbor2.dumps({int(Param.NONCE2): N1}), ContentFormat.ACE_CBOR)


@pytest.mark.parametrize("cf", [ContentFormat.CBOR, 0])
def test_other_content_formats_are_4_15(cf: int) -> None:
    with pytest.raises(RemoteError) as info:
        make_rs().authz_info(dtls_token(), cf)
    assert info.value.coap_code == (4, 15)


def test_the_same_token_in_two_forms_is_one_token() -> None:
    rs = make_rs()
    first = rs.authz_info(dtls_token(), ContentFormat.CWT)
    again = rs.authz_info(dtls_token(), ContentFormat.ACE_CBOR)
    assert not again.new and again.binding is first.binding and len(list(rs.bindings)) == 1
