"""Per-RS token format at the token endpoint and at /introspect (issue 11), sans I/O.

Each ``TokenFormat`` option of an RS, one at a time and as RISE ace-java's RS needs them all
(``ACE_JAVA``): a COSE tag, a CWT tag, no sub, exp/exi in ms, exi tokens with either cti layout,
an rs id other than the audience, a salt length of the RS's own. The defaults issue what the AS
always issued (RFC 8392, 9200, 9203 as written).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cbor2
import pytest
from support import NOW, counter_rng, fixed_clock

from ace.authz_server.identity import find_issued, verified_claims
from ace.authz_server.introspect import IntrospectionEndpoint
from ace.authz_server.token import EXI_SEQ_LEN, TokenEndpoint, TokenPolicy, exi_cti
from ace.errors import AceError
from ace.messages import AccessTokenRequest, AccessTokenResponse, IntrospectionRequest
from ace.store.base import ACE_JAVA, RFC_FORMAT, ClientRecord, Grant, RsRecord, TokenFormat
from ace.store.memory import MemoryAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf
from ace.tokens.cwt import KeyRing, verify_token
from ace.tokens.keys import symmetric_key

TOKEN_KEY = symmetric_key(bytes.fromhex("a1a2a30405060708090a0b0c0d0e0f10"))  # ace-java's rs1 key: no kid
LIFETIME = 30


class Clock:
    def __init__(self) -> None:
        self.t = float(NOW)

    def __call__(self) -> float:
        return self.t


def make_store(fmt: TokenFormat = RFC_FORMAT, *, rs_id: str = "rs1") -> MemoryAsStore:
    s = MemoryAsStore()
    s.put_client(ClientRecord(client_id="clientA"))
    s.put_rs(RsRecord(audience="aud1", rs_id=rs_id, token_key=TOKEN_KEY, token_lifetime=LIFETIME, format=fmt))
    s.add_grant(Grant(client_id="clientA", audience="aud1", scope="r_temp rw_config"))
    return s


def issue(store: MemoryAsStore, policy: TokenPolicy | None = None, clock: Any = None) -> AccessTokenResponse:
    endpoint = TokenEndpoint(store, clock=clock or fixed_clock(), rng=counter_rng(), policy=policy)
    payload = AccessTokenRequest(audience="aud1", scope="r_temp rw_config foobar").encode()
    return AccessTokenResponse.decode(endpoint.issue(payload, store.get_client("clientA")).response.encode())


def claims_of(token: bytes, per_second: int = 1) -> AccessTokenClaims:
    """The claims as the RS reads them, its clock in its own unit."""
    return verify_token(token, KeyRing([TOKEN_KEY], try_all_without_kid=True), audience="aud1",
                        clock=lambda: NOW * per_second)


def test_default_format_is_what_the_as_always_issued() -> None:
    token = issue(make_store()).access_token
    assert not isinstance(cbor2.loads(token), cbor2.CBORTag) and token[0] == 0x83  # a bare COSE_Encrypt0 array
    c = claims_of(token)
    assert (c.sub, c.exp, c.exi, c.iat) == ("clientA", NOW + LIFETIME, None, NOW)
    assert c.cti is not None and len(c.cti) == 1  # the AS's counter, not an exi cti
    assert isinstance(c.cnf, OscoreCnf) and c.cnf.material.salt is None  # as.toml salt_len 0


def test_cose_tag() -> None:
    token = issue(make_store(TokenFormat(cose_tag=True))).access_token
    decoded = cbor2.loads(token)
    assert isinstance(decoded, cbor2.CBORTag) and decoded.tag == 16 and token[0] == 0xD0  # COSE_Encrypt0 tag
    assert claims_of(token).sub == "clientA"


def test_cwt_tag_wraps_a_tagged_cose_message() -> None:
    token = issue(make_store(TokenFormat(cwt_tag=True))).access_token
    outer = cbor2.loads(token)
    assert isinstance(outer, cbor2.CBORTag) and outer.tag == 61
    assert isinstance(outer.value, cbor2.CBORTag) and outer.value.tag == 16
    assert claims_of(token).aud == "aud1"


@pytest.mark.parametrize(("rs_sub", "as_sub", "expected"), [(True, True, "clientA"), (False, True, None),
                                                             (True, False, None), (False, False, None)])
def test_sub_per_rs_and_per_as(rs_sub: bool, as_sub: bool, expected: str | None) -> None:
    token = issue(make_store(TokenFormat(sub=rs_sub)), TokenPolicy(include_sub=as_sub)).access_token
    assert claims_of(token).sub == expected


def test_exp_in_milliseconds() -> None:
    response = issue(make_store(TokenFormat(time_unit="ms")))
    c = claims_of(response.access_token, per_second=1000)
    assert c.exp == (NOW + LIFETIME) * 1000 and c.iat == NOW  # iat stays in seconds (ace-java ignores it)
    assert response.expires_in == LIFETIME  # RFC 9200 §5.8.2: expires_in is in seconds, always


def test_exp_in_milliseconds_expires_on_a_milliseconds_clock() -> None:
    token = issue(make_store(TokenFormat(time_unit="ms"))).access_token
    with pytest.raises(AceError, match="expired"):
        verify_token(token, KeyRing([TOKEN_KEY], try_all_without_kid=True), audience="aud1",
                     clock=lambda: (NOW + LIFETIME + 1) * 1000, skew=0.0)


@pytest.mark.parametrize(("fmt", "rs_id", "ctis", "exi"), [
    (TokenFormat(exi=True), "rs1", [b"rs1" + (n).to_bytes(EXI_SEQ_LEN, "big") for n in (1, 2)], LIFETIME),
    (TokenFormat(exi=True, exi_cti="text"), "rs1", [b"rs11", b"rs12"], LIFETIME),
    (TokenFormat(exi=True, exi_cti="text", time_unit="ms"), "rs1", [b"rs11", b"rs12"], LIFETIME * 1000),
    (TokenFormat(exi=True, exi_cti="text"), "sensor-7", [b"sensor-71", b"sensor-72"], LIFETIME),
], ids=["bytes", "text", "text-ms", "rs-id"])
def test_exi_tokens_per_rs(fmt: TokenFormat, rs_id: str, ctis: list[bytes], exi: int) -> None:
    store = make_store(fmt, rs_id=rs_id)
    for cti in ctis:
        c = claims_of(issue(store).access_token)
        assert (c.exp, c.exi, c.cti) == (None, exi, cti)
    [logged, _] = store.issued_tokens()
    assert logged.expires_at == NOW + LIFETIME  # the AS's own log is in seconds whatever the RS reads


def test_exi_cti_layouts() -> None:
    assert exi_cti("rs1", 10) == b"rs1\x00\x00\x00\x0a" and exi_cti("rs1", 10, "text") == b"rs110"


def test_rs_id_other_than_the_audience_names_exi_ctis() -> None:
    c = claims_of(issue(make_store(TokenFormat(exi=True), rs_id="rs1")).access_token)
    assert c.aud == "aud1" and c.cti is not None and c.cti.startswith(b"rs1")


def test_exi_from_as_toml_still_works() -> None:
    c = claims_of(issue(make_store(), TokenPolicy(exi_audiences=frozenset({"aud1"}))).access_token)
    assert c.exp is None and c.exi == LIFETIME


@pytest.mark.parametrize(("rs_salt", "as_salt", "expected"), [(None, 0, 0), (None, 8, 8), (1, 0, 1), (0, 8, 0),
                                                              (16, 2, 16)])
def test_salt_len_per_rs(rs_salt: int | None, as_salt: int, expected: int) -> None:
    response = issue(make_store(TokenFormat(salt_len=rs_salt)), TokenPolicy(salt_len=as_salt))
    c = claims_of(response.access_token)
    assert isinstance(c.cnf, OscoreCnf) and response.cnf == c.cnf
    assert len(c.cnf.material.salt or b"") == expected and (c.cnf.material.salt is None) == (expected == 0)


def test_ace_java_format_all_at_once() -> None:
    """What their RS checks (issue 11, measured): tagged COSE_Encrypt0, no sub, exi in ms with the cti
    "rs1" + decimal, a 1-byte salt; the client's copy of the material matches the token's."""
    response = issue(make_store(ACE_JAVA))
    assert cbor2.loads(response.access_token).tag == 16
    c = claims_of(response.access_token, per_second=1000)
    assert (c.sub, c.exp, c.exi, c.cti) == (None, None, LIFETIME * 1000, b"rs11")
    assert isinstance(c.cnf, OscoreCnf) and len(c.cnf.material.salt or b"") == 1 and response.cnf == c.cnf
    assert response.scope == "r_temp rw_config"  # narrowed, as their AS does


# --- the AS reads its own tokens in the RS's unit ---------------------------------------------------


def test_introspection_reads_exp_in_the_rs_unit() -> None:
    clock = Clock()
    store = make_store(TokenFormat(time_unit="ms", cose_tag=True))
    token = issue(store, clock=clock).access_token
    endpoint = IntrospectionEndpoint(store, clock=clock)

    def active() -> bool:
        return endpoint.handle(IntrospectionRequest(token=token).encode(), store.get_rs("aud1")).response.active

    clock.t = NOW + LIFETIME - 1
    assert active()
    answer = endpoint.handle(IntrospectionRequest(token=token).encode(), store.get_rs("aud1")).response
    assert answer.exp == (NOW + LIFETIME) * 1000 and answer.sub == "clientA"  # as the token carries them
    clock.t = NOW + LIFETIME
    assert not active()


def test_revocation_finds_tokens_of_every_format() -> None:
    """``ace revoke --token``: a token found by its identity, whatever its unit and tags."""
    for fmt in (RFC_FORMAT, ACE_JAVA, replace(ACE_JAVA, exi=False), TokenFormat(cwt_tag=True, sub=False)):
        store = make_store(fmt)
        token = issue(store).access_token
        found = find_issued(store, token, clock=fixed_clock(NOW + 1))
        assert found is not None and found.audience == "aud1", fmt
        rs = store.get_rs("aud1")
        assert rs is not None
        if not fmt.exi:  # exp read in the RS's unit: valid up to it, expired after
            assert verified_claims(token, rs, clock=fixed_clock(NOW + LIFETIME)) is not None
            assert verified_claims(token, rs, clock=fixed_clock(NOW + LIFETIME + 1)) is None
