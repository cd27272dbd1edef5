"""Token introspection (RFC 9200 §5.9) and reference tokens, sans I/O: the AS's
``IntrospectionEndpoint`` over a MemoryAsStore, the token endpoint issuing reference tokens, and
the RS core asking for introspection (``NeedsIntrospection``), caching answers and binding
introspected tokens like self-contained ones (OSCORE and DTLS)."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import cbor2
import pytest
from support import NOW

from ace.authz_server import trl
from ace.authz_server.introspect import IntrospectionEndpoint, IntrospectionResult
from ace.authz_server.token import TokenEndpoint, TokenPolicy, exi_cti
from ace.cbor.labels import AceProfile, ContentFormat, IntrospectionParam
from ace.errors import ErrorCode, RemoteError
from ace.messages import (
    AccessTokenRequest,
    AccessTokenResponse,
    AuthzInfoRequest,
    AuthzInfoResponse,
    IntrospectionRequest,
    IntrospectionResponse,
)
from ace.profiles.dtls import label_for as dtls_label
from ace.rs.introspection import IntrospectionCache, NeedsIntrospection
from ace.rs.server import ResourceServer, RsConfig
from ace.store.base import ClientRecord, Grant, IssuedToken, RsRecord
from ace.store.memory import MemoryAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, OscoreCnf, OscoreInputMaterial
from ace.tokens.crypto import Kind
from ace.tokens.cwt import KeyRing, issue_token, open_envelope
from ace.tokens.keys import symmetric_key
from ace.tokens.reference import REFERENCE_LEN, is_reference

RS1_KEY = symmetric_key(bytes(range(16)), kid=b"rs1")
RS2_KEY = symmetric_key(bytes(range(16, 32)), kid=b"rs2")
LIFETIME = 600
INACTIVE = b"\xa1\x0a\xf4"  # {10: false}
MEANING = {"r_temp": [("/temp", 1)]}


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryAsStore:
    s = MemoryAsStore()
    s.put_client(ClientRecord(client_id="c1", profiles=(2, 1)))
    for aud, key in (("rs1", RS1_KEY), ("rs2", RS2_KEY), ("rs_ref", RS1_KEY), ("rs_exi", RS1_KEY)):
        s.put_rs(RsRecord(audience=aud, rs_id=aud, token_key=key, token_lifetime=LIFETIME, profiles=(2, 1)))
        s.add_grant(Grant(client_id="c1", audience=aud, scope="r_temp", default=True))
    return s


@pytest.fixture
def tokens(store: MemoryAsStore, clock: Clock) -> TokenEndpoint:
    policy = TokenPolicy(reference_audiences=frozenset({"rs_ref"}), exi_audiences=frozenset({"rs_exi"}),
                         include_iat=True)
    return TokenEndpoint(store, clock=clock, policy=policy)


@pytest.fixture
def endpoint(store: MemoryAsStore, clock: Clock) -> IntrospectionEndpoint:
    return IntrospectionEndpoint(store, clock=clock)


def issue(tokens: TokenEndpoint, audience: str, **kw: Any) -> AccessTokenResponse:
    return tokens.issue(AccessTokenRequest(audience=audience, **kw).encode(), tokens.store.get_client("c1")).response


def ask(endpoint: IntrospectionEndpoint, token: bytes, rs: str | None = "rs1", **kw: Any) -> IntrospectionResult:
    requester = None if rs is None else endpoint.store.get_rs(rs)  # as the CoAP layer finds it (None: unknown)
    return endpoint.handle(IntrospectionRequest(token=token, **kw).encode(), requester)


def wire(result: IntrospectionResult) -> dict[int, Any]:
    decoded = cbor2.loads(result.response.encode())
    assert isinstance(decoded, dict)
    return decoded


# --- the AS: who may ask ------------------------------------------------------------------


@pytest.mark.parametrize("requester", [
    lambda s: None, lambda s: s.get_client("c1"), lambda s: ClientRecord(client_id="rs1"), lambda s: s.get_rs("nope"),
], ids=["unauthenticated", "client", "client-named-like-rs", "unknown-rs"])
def test_only_registered_rss_may_introspect(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint,
                                             store: MemoryAsStore, requester: Any) -> None:
    token = issue(tokens, "rs1").access_token
    with pytest.raises(RemoteError) as info:
        endpoint.handle(IntrospectionRequest(token=token).encode(), requester(store))
    assert info.value.error_code == ErrorCode.INVALID_CLIENT and info.value.coap_code == (4, 1)


def test_rs_removed_from_the_store_is_refused(endpoint: IntrospectionEndpoint, store: MemoryAsStore,
                                              tokens: TokenEndpoint) -> None:
    token = issue(tokens, "rs1").access_token
    assert ask(endpoint, token).response.active
    store.remove_rs("rs1")
    with pytest.raises(RemoteError, match="registered"):
        ask(endpoint, token)


def test_bad_requests(endpoint: IntrospectionEndpoint) -> None:
    with pytest.raises(RemoteError) as info:
        endpoint.handle(IntrospectionRequest(token=b"x").encode(), endpoint.store.get_rs("rs1"), int(ContentFormat.CWT))
    assert info.value.coap_code == (4, 15)
    for payload in (b"", b"\xff", cbor2.dumps({11: "text"}), cbor2.dumps({33: 1}), cbor2.dumps([1])):
        with pytest.raises(RemoteError) as info:
            endpoint.handle(payload, endpoint.store.get_rs("rs1"), int(ContentFormat.ACE_CBOR))
        assert info.value.coap_code == (4, 0) and info.value.error_code == ErrorCode.INVALID_REQUEST


# --- the AS: self-contained tokens ---------------------------------------------------------


def test_active_oscore_token(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint, clock: Clock) -> None:
    issued = issue(tokens, "rs1")
    clock.t += 10
    result = ask(endpoint, issued.access_token, token_type_hint=2)
    r = result.response
    assert result.audience == "rs1" and r.active and r.aud == "rs1" and r.scope == "r_temp"
    assert r.exp == NOW + LIFETIME and r.iat == NOW and r.sub == "c1" and r.cti is not None
    assert r.ace_profile == AceProfile.COAP_OSCORE
    assert isinstance(r.cnf, OscoreCnf) and r.cnf == issued.cnf  # the material the RS derives from
    m = wire(result)
    assert m[IntrospectionParam.ACTIVE] is True and m[IntrospectionParam.AUD] == "rs1"
    assert {IntrospectionParam.CNF, IntrospectionParam.EXP, IntrospectionParam.CTI, IntrospectionParam.SCOPE,
            IntrospectionParam.ACE_PROFILE, IntrospectionParam.IAT} <= set(m)


def test_active_dtls_token(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint) -> None:
    issued = issue(tokens, "rs1", ace_profile=AceProfile.COAP_DTLS)
    r = ask(endpoint, issued.access_token).response
    assert r.active and r.ace_profile == AceProfile.COAP_DTLS and isinstance(r.cnf, CoseKeyCnf)
    assert r.cnf == issued.cnf


def test_exi_token_is_active_with_exi(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint, clock: Clock) -> None:
    issued = issue(tokens, "rs_exi")
    clock.t += LIFETIME - 1
    r = ask(endpoint, issued.access_token, "rs_exi").response
    assert r.active and r.exi == LIFETIME and r.exp is None and r.cti == exi_cti("rs_exi", 1)
    # then inactive by the lifetime the AS logged (it used to be active until its row was purged:
    # forever on an AS that issued nothing more; issue 17 review item 3)
    for step in (1, 30 * 86400):
        clock.t += step
        assert ask(endpoint, issued.access_token, "rs_exi").response.encode() == INACTIVE


def test_expired_token_is_inactive(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint, clock: Clock) -> None:
    token = issue(tokens, "rs1").access_token
    clock.t = NOW + LIFETIME - 1
    assert ask(endpoint, token).response.active
    clock.t = NOW + LIFETIME  # no skew at the AS
    assert ask(endpoint, token).response.encode() == INACTIVE


def test_revoked_token_is_inactive(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint,
                                   store: MemoryAsStore, clock: Clock) -> None:
    token, other = issue(tokens, "rs1").access_token, issue(tokens, "rs1").access_token
    assert trl.revoke_token(store, token, clock=clock) == trl.token_hash(token)
    assert ask(endpoint, token).response.encode() == INACTIVE
    assert ask(endpoint, other).response.active


@pytest.mark.parametrize("token", [
    b"\x01" * 16, b"\x83\x40\xa0\x40", b"\xd8\x3d\x83\x40\xa0\x40", b"\xff", b"\x00", b"", b"\x83" * 5000,
    issue_token(AccessTokenClaims(aud="rs1", exp=NOW + 60, scope="r_temp"), symmetric_key(b"\x09" * 16, kid=b"rs1")),
    issue_token(AccessTokenClaims(aud="rs1", exp=NOW + 60, scope="r_temp"), RS1_KEY, kind=Kind.MAC,
                alg=5),  # mac0: not the kind this RS gets
], ids=["random", "cose-garbage", "cwt-garbage", "not-cbor", "one-byte", "empty", "huge", "other-key", "wrong-kind"])
def test_unknown_or_malformed_token_is_inactive(endpoint: IntrospectionEndpoint, token: bytes) -> None:
    assert ask(endpoint, token).response.encode() == INACTIVE


def logged(store: MemoryAsStore, claims: AccessTokenClaims, key: Any = RS1_KEY, audience: str = "rs1") -> bytes:
    """A token made by hand and logged as if this AS had issued it (introspection knows only those)."""
    token = issue_token(claims, key)
    assert claims.cti is not None
    store.log_token(IssuedToken(cti=claims.cti, client_id="c1", audience=audience, scope=claims.scope,
                                issued_at=NOW, expires_at=NOW + 60, token_hash=trl.token_hash(token)))
    return token


def test_token_without_our_audience_is_inactive(endpoint: IntrospectionEndpoint, store: MemoryAsStore) -> None:
    token = logged(store, AccessTokenClaims(aud="rs9", exp=NOW + 60, scope="r_temp", cti=b"a"), audience="rs9")
    assert ask(endpoint, token).response.encode() == INACTIVE
    multi = logged(store, AccessTokenClaims(aud=("rs9", "rs1"), exp=NOW + 60, scope="r_temp", nbf=NOW + 5,
                                            cti=b"b"))
    assert ask(endpoint, multi).response.encode() == INACTIVE  # not yet valid
    multi = logged(store, AccessTokenClaims(aud=("rs9", "rs1"), exp=NOW + 60, scope="r_temp", cti=b"c"))
    assert ask(endpoint, multi).response.aud == "rs1"


def test_a_valid_token_the_as_never_logged_is_inactive(endpoint: IntrospectionEndpoint, store: MemoryAsStore) -> None:
    claims = AccessTokenClaims(aud="rs1", exp=NOW + 60, scope="r_temp", cti=b"unlogged")
    assert ask(endpoint, issue_token(claims, RS1_KEY)).response.encode() == INACTIVE  # verifies, but unknown
    assert ask(endpoint, issue_token(replace(claims, cti=None), RS1_KEY)).response.encode() == INACTIVE
    token = logged(store, claims)
    assert ask(endpoint, token).response.active
    other = logged(store, replace(claims, cti=b"sub", sub="c2"))  # logged for c1, claims another sub
    assert ask(endpoint, other).response.encode() == INACTIVE


def test_revocation_follows_the_cti_not_the_bytes(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint,
                                                  store: MemoryAsStore, clock: Clock) -> None:
    token = issue(tokens, "rs1").access_token
    tagged = cbor2.dumps(cbor2.CBORTag(16, cbor2.loads(token)))  # COSE_Encrypt0 tag: another hash, same token
    assert trl.token_hash(tagged) != trl.token_hash(token) and ask(endpoint, tagged).response.active
    trl.revoke_token(store, token, clock=clock)
    assert ask(endpoint, token).response.encode() == INACTIVE
    assert ask(endpoint, tagged).response.encode() == INACTIVE


def test_rs_cannot_introspect_another_rss_token(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint) -> None:
    for_rs1 = issue(tokens, "rs1").access_token
    assert ask(endpoint, for_rs1, "rs2").response.encode() == INACTIVE  # not its key
    assert ask(endpoint, for_rs1, "rs_ref").response.encode() == INACTIVE  # its key, but not its audience
    reference = issue(tokens, "rs_ref").access_token
    assert ask(endpoint, reference, "rs1").response.encode() == INACTIVE
    assert ask(endpoint, reference, "rs_ref").response.active


# --- the AS: reference tokens --------------------------------------------------------------


def test_reference_token_issued_and_introspected(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint,
                                                 store: MemoryAsStore) -> None:
    issued = issue(tokens, "rs_ref")
    token = issued.access_token
    assert len(token) == REFERENCE_LEN and is_reference(token)
    with pytest.raises(RemoteError):
        open_envelope(token)
    assert isinstance(issued.cnf, OscoreCnf) and issued.expires_in == LIFETIME  # the client's part as usual
    stored = store.get_reference(trl.token_hash(token))
    assert stored is not None and stored.audience == "rs_ref" and stored.expires_at == NOW + LIFETIME
    assert store.find_tokens(audience="rs_ref")[0].token_hash == trl.token_hash(token)  # logged like any
    r = ask(endpoint, token, "rs_ref").response
    assert r.active and r.cnf == issued.cnf and r.scope == "r_temp" and r.ace_profile == AceProfile.COAP_OSCORE
    assert r.exp == NOW + LIFETIME and r.sub == "c1"
    dtls = issue(tokens, "rs_ref", ace_profile=AceProfile.COAP_DTLS)
    r = ask(endpoint, dtls.access_token, "rs_ref").response
    assert r.active and r.ace_profile == AceProfile.COAP_DTLS and r.cnf == dtls.cnf


def test_reference_tokens_never_look_like_cbor_structures(store: MemoryAsStore, clock: Clock) -> None:
    client = store.get_client("c1")
    for first in range(256):  # an rng whose first byte is every value once
        endpoint = TokenEndpoint(store, clock=clock, rng=lambda n, f=first: bytes([f]) + secrets.token_bytes(n - 1),
                                 policy=TokenPolicy(reference_audiences=frozenset({"rs_ref"}), max_live_tokens=256))
        token = endpoint.issue(AccessTokenRequest(audience="rs_ref").encode(), client).response.access_token
        assert token[0] >> 5 not in (4, 5, 6) and token[1:] != b"" and is_reference(token)


def test_reference_expired_revoked_and_purged(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint,
                                              store: MemoryAsStore, clock: Clock) -> None:
    a, b = issue(tokens, "rs_ref").access_token, issue(tokens, "rs_ref").access_token
    trl.revoke_token(store, a, clock=clock)
    assert ask(endpoint, a, "rs_ref").response.encode() == INACTIVE
    assert ask(endpoint, b, "rs_ref").response.active
    clock.t += LIFETIME
    assert ask(endpoint, b, "rs_ref").response.encode() == INACTIVE
    assert store.get_reference(trl.token_hash(b)) is not None
    clock.t += 1
    issue(tokens, "rs_ref")  # each issuance forgets a bounded batch of expired references
    assert store.get_reference(trl.token_hash(a)) is None and store.get_reference(trl.token_hash(b)) is None


# --- the RS core: reference tokens through introspection ----------------------------------


def rs_core(clock: Clock, **kw: Any) -> ResourceServer:
    config = RsConfig(audience="rs_ref", as_uri="coap://as/token", scope_meaning=MEANING, reference_tokens=True,
                      profiles=(AceProfile.COAP_OSCORE, AceProfile.COAP_DTLS), **kw)
    return ResourceServer(config, KeyRing([RS1_KEY]), clock=clock)


def authz_oscore(token: bytes) -> bytes:
    return AuthzInfoRequest(access_token=token, nonce1=secrets.token_bytes(8),
                            ace_client_recipientid=b"\x21").encode()


def post(rs: ResourceServer, endpoint: IntrospectionEndpoint, payload: bytes, cf: int | None = None,
         requester: str = "rs_ref") -> Any:
    """What ``RsServer.authz_info`` does, with the AS's endpoint called in place of CoAP."""
    need = rs.authz_info(payload, cf)
    if not isinstance(need, NeedsIntrospection):
        return need
    try:
        answer = endpoint.handle(need.payload, endpoint.store.get_rs(requester), int(ContentFormat.ACE_CBOR))
    except RemoteError as exc:
        return rs.resume(need, exc.coap_code, b"")
    return rs.resume(need, (2, 5), answer.response.encode())


def test_rs_binds_an_introspected_oscore_reference(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint,
                                                   clock: Clock) -> None:
    rs = rs_core(clock)
    token = issue(tokens, "rs_ref").access_token
    need = rs.authz_info(authz_oscore(token), int(ContentFormat.ACE_CBOR))
    assert isinstance(need, NeedsIntrospection)
    assert IntrospectionRequest.decode(need.payload).token == token and len(rs.bindings) == 0
    outcome = post(rs, endpoint, authz_oscore(token), int(ContentFormat.ACE_CBOR))
    assert outcome.new and AuthzInfoResponse.decode(outcome.payload).nonce2
    assert outcome.binding.claims.scope == "r_temp" and outcome.binding.claims.sub == "c1"
    assert rs.authorize(outcome.binding.label, "/temp", "GET").binding == outcome.binding
    again = rs.authz_info(authz_oscore(token), int(ContentFormat.ACE_CBOR))  # cached: no second question
    assert again.new and len(rs.introspection) == 1


def test_rs_binds_an_introspected_dtls_reference(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint,
                                                 clock: Clock) -> None:
    rs = rs_core(clock)
    issued = issue(tokens, "rs_ref", ace_profile=AceProfile.COAP_DTLS)
    outcome = post(rs, endpoint, issued.access_token, int(ContentFormat.CWT))
    assert isinstance(issued.cnf, CoseKeyCnf) and outcome.binding.label == dtls_label(issued.cnf.key.kid or b"")
    assert rs.authorize(outcome.binding.label, "/temp", "GET").binding is not None


def test_rs_refuses_inactive_and_others_tokens(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint,
                                               store: MemoryAsStore, clock: Clock) -> None:
    rs = rs_core(clock)
    revoked = issue(tokens, "rs_ref").access_token
    trl.revoke_token(store, revoked, clock=clock)
    for token in (revoked, b"\x01" + secrets.token_bytes(15)):
        with pytest.raises(RemoteError) as info:
            post(rs, endpoint, authz_oscore(token), int(ContentFormat.ACE_CBOR))
        assert info.value.coap_code == (4, 1) and "not active" in info.value.description
    with pytest.raises(RemoteError, match="not active"):  # cached inactive for a while: no new question
        rs.authz_info(authz_oscore(revoked), int(ContentFormat.ACE_CBOR))
    clock.t += 60
    assert isinstance(rs.authz_info(authz_oscore(revoked), int(ContentFormat.ACE_CBOR)), NeedsIntrospection)
    # an active answer naming another audience (a confused or lying AS) is still checked
    other = IntrospectionResponse(active=True, aud="rs1", exp=int(clock.t) + 60, scope="r_temp",
                                  cnf=OscoreCnf(OscoreInputMaterial(id=b"\x01", ms=b"\x02" * 16)))
    token = b"\x07" * 16
    need = rs.authz_info(authz_oscore(token), int(ContentFormat.ACE_CBOR))
    with pytest.raises(RemoteError) as info:
        rs.resume(need, (2, 5), other.encode())
    assert info.value.coap_code == (4, 3)


def test_rs_failed_introspection_is_503_and_not_cached(tokens: TokenEndpoint, clock: Clock) -> None:
    rs = rs_core(clock)
    token = issue(tokens, "rs_ref").access_token
    need = rs.authz_info(authz_oscore(token), int(ContentFormat.ACE_CBOR))
    for code, payload in (((4, 1), b""), (None, b""), ((2, 5), b"\xff"), ((2, 5), b"\xa0")):
        with pytest.raises(RemoteError) as info:
            rs.resume(need, code, payload)
        assert info.value.coap_code == (5, 3)
        assert isinstance(rs.authz_info(authz_oscore(token), int(ContentFormat.ACE_CBOR)), NeedsIntrospection)


def test_rs_revocation_drops_the_cached_answer(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint,
                                               clock: Clock) -> None:
    rs = rs_core(clock)
    token = issue(tokens, "rs_ref").access_token
    outcome = post(rs, endpoint, authz_oscore(token), int(ContentFormat.ACE_CBOR))
    assert rs.revoke([trl.token_hash(token)]) == [outcome.binding]  # what the TRL tells it
    assert len(rs.introspection) == 0
    with pytest.raises(RemoteError, match="revoked"):
        rs.authz_info(authz_oscore(token), int(ContentFormat.ACE_CBOR))


def test_rs_cache_expires_with_the_token(endpoint: IntrospectionEndpoint, tokens: TokenEndpoint,
                                         clock: Clock) -> None:
    rs = rs_core(clock, skew=0.0)
    token = issue(tokens, "rs_ref").access_token
    post(rs, endpoint, authz_oscore(token), int(ContentFormat.ACE_CBOR))
    clock.t = NOW + LIFETIME
    # the cached answer ended with exp: asked again (inactive)
    assert isinstance(rs.authz_info(authz_oscore(token), int(ContentFormat.ACE_CBOR)), NeedsIntrospection)
    with pytest.raises(RemoteError, match="not active"):
        post(rs, endpoint, authz_oscore(token), int(ContentFormat.ACE_CBOR))
    clock.t += 3600
    rs.sweep()
    assert len(rs.introspection) == 0


def test_rs_with_introspect_asks_about_self_contained_tokens(endpoint: IntrospectionEndpoint,
                                                             tokens: TokenEndpoint, clock: Clock) -> None:
    rs = ResourceServer(RsConfig(audience="rs1", as_uri="coap://as/token", scope_meaning=MEANING, introspect=True),
                        KeyRing([RS1_KEY]), clock=clock)
    token = issue(tokens, "rs1").access_token
    assert isinstance(rs.authz_info(authz_oscore(token), int(ContentFormat.ACE_CBOR)), NeedsIntrospection)
    assert post(rs, endpoint, authz_oscore(token), int(ContentFormat.ACE_CBOR), requester="rs1").new


def test_rs_without_reference_tokens_refuses_them_locally(tokens: TokenEndpoint, clock: Clock) -> None:
    rs = ResourceServer(RsConfig(audience="rs_ref", as_uri="coap://as/token", scope_meaning=MEANING),
                        KeyRing([RS1_KEY]), clock=clock)
    with pytest.raises(RemoteError) as info:
        rs.authz_info(authz_oscore(issue(tokens, "rs_ref").access_token), int(ContentFormat.ACE_CBOR))
    assert info.value.coap_code == (4, 0)


@pytest.mark.parametrize(("token", "expected"), [
    (b"\x01" * 16, True), (b"\x40" * 8, True), (b"\x01" * 7, False), (b"\x83" + b"\x01" * 15, False),
    (b"\xa1" + b"\x01" * 15, False), (b"\xd8" + b"\x01" * 15, False), (b"\xff" * 16, True),
])
def test_is_reference(token: bytes, expected: bool) -> None:
    assert is_reference(token) is expected


def test_cache_is_bounded_and_keeps_recent_answers() -> None:
    cache = IntrospectionCache(3, inactive_ttl=5.0, default_ttl=50.0)
    active = IntrospectionResponse(active=True, aud="rs1", exp=NOW + 100)
    for n in range(5):
        cache.put(bytes([n]), active, NOW)
    assert len(cache) == 3 and cache.get(b"\x00", NOW) is None and cache.get(b"\x02", NOW) is not None
    cache.put(b"\x09", IntrospectionResponse(active=False), NOW)  # \x03 was least recently used
    assert cache.get(b"\x03", NOW) is None and cache.get(b"\x02", NOW) is not None
    answer = cache.get(b"\x09", NOW + 4)
    assert answer is not None and answer.claims is None and cache.get(b"\x09", NOW + 5) is None
    no_exp = cache.put(b"\x0a", IntrospectionResponse(active=True, aud="rs1"), NOW)
    assert no_exp.until == NOW + 50.0
    assert cache.purge(NOW + 100) == 3 and len(cache) == 0
    with pytest.raises(ValueError):
        IntrospectionCache(0)
