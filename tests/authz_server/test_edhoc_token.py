"""The AS for the EDHOC profile at draft-ietf-ace-edhoc-oscore-profile-11, sans I/O: session_id
(§3.2: unique per client and audience over every profile and series), edhoc_info in the response
(47) and the token (41), the client's kccs copied verbatim into cnf (§3.3.1), rs_cnf by value, by
reference or not at all (WF §5.2), no cnf in the response (§3.3), update requests (§3.1, §3.3.3),
the ariel-os preset's token shape and limits, and bad inputs with their RFC 9200 error codes."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from support import NOW, counter_rng, fixed_clock

from ace.authz_server.token import IssueResult, TokenEndpoint
from ace.cbor.labels import AceProfile, Alg, Claim, ContentFormat, Curve, Param
from ace.cbor.scope import AifScope
from ace.errors import DecodeError, ErrorCode, IncompatibleProfiles, InvalidScope, RemoteError
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.memory import MemoryAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, KccsCnf, KidCnf
from ace.tokens.crypto import generate
from ace.tokens.cwt import KeyRing, verify_token
from ace.tokens.edhoc_info import EdhocInfo
from ace.tokens.hashing import token_hash
from ace.tokens.keys import CoseKey, symmetric_key

RS_KEY = symmetric_key(bytes(range(16)), kid=b"rs1")
ARIEL_KEY = symmetric_key(bytes(range(32)), kid=b"as", alg=int(Alg.AES_CCM_16_128_256))
RS_AUTH = generate(Curve.P_256, kid=b"\x0a").public()
EDHOC = int(AceProfile.COAP_EDHOC_OSCORE)
AIF = AifScope.of([("/temp", 1)]).encode()


def ccs(key: CoseKey, sub: str = "client") -> bytes:
    """A CCS as a peer may encode it: sub after cnf, the key's x before its kty (not our order)."""
    m = key.to_map()
    cose = {-2: m[-2], -3: m[-3], 1: m[1], 2: m[2], -1: m[-1]}
    return cbor2.dumps({8: {1: cose}, 2: sub})


CLIENT = generate(Curve.P_256, kid=b"\x2b")
CLIENT_CCS = ccs(CLIENT.public())
RS_CCS = ccs(RS_AUTH, "rs")


@pytest.fixture
def store() -> MemoryAsStore:
    s = MemoryAsStore()
    for c in ("a", "b"):
        s.put_client(ClientRecord(client_id=c, profiles=(EDHOC, 2)))
    s.put_rs(RsRecord(audience="rs_e", rs_id="rs_e", token_key=RS_KEY, profiles=(EDHOC, 2), auth_key=RS_AUTH,
                      auth_cred=RS_CCS, edhoc_params=cbor2.dumps({1: 3, 3: True, 5: "edhoc"})))
    s.put_rs(RsRecord(audience="rs_ariel", rs_id="rs_ariel", token_key=ARIEL_KEY, profiles=(EDHOC,),
                      auth_key=RS_AUTH, edhoc_preset="ariel-os"))
    for aud, scope in (("rs_e", "r_temp"), ("rs_ariel", AIF)):
        for c in ("a", "b"):
            s.add_grant(Grant(client_id=c, audience=aud, scope=scope, default=True))
    return s


@pytest.fixture
def endpoint(store: MemoryAsStore) -> TokenEndpoint:
    return TokenEndpoint(store, clock=fixed_clock(), rng=counter_rng())


def ask(endpoint: TokenEndpoint, client: str = "a", **kw: Any) -> IssueResult:
    kw.setdefault("audience", "rs_e")
    kw.setdefault("ace_profile", EDHOC)
    payload = AccessTokenRequest(**kw).encode()
    return endpoint.issue(payload, endpoint.store.get_client(client), int(ContentFormat.ACE_CBOR))


def first(endpoint: TokenEndpoint, client: str = "a", cred: bytes = CLIENT_CCS, **kw: Any) -> IssueResult:
    return ask(endpoint, client, req_cnf=KccsCnf(cred), **kw)


def wire(result: IssueResult) -> AccessTokenResponse:
    return AccessTokenResponse.decode(result.response.encode())


def token_map(token: bytes, key: CoseKey = RS_KEY) -> dict[Any, Any]:
    claims = verify_token(token, KeyRing([key]), audience=None, clock=fixed_clock())
    assert isinstance(claims, AccessTokenClaims)
    return cbor2.loads(claims.encode())


def test_first_token_response_and_claims(endpoint: TokenEndpoint) -> None:
    result = first(endpoint)
    resp = wire(result)
    assert resp.cnf is None  # §3.3: MUST NOT
    assert resp.ace_profile == EDHOC
    assert isinstance(resp.edhoc_info, EdhocInfo) and resp.edhoc_info.session_id
    assert resp.edhoc_info.methods == (3,) and resp.edhoc_info.message_4 is True and resp.edhoc_info.uri_path == "edhoc"
    assert isinstance(resp.rs_cnf, KccsCnf) and resp.rs_cnf.raw == RS_CCS  # the RS's CCS, as registered
    claims = token_map(resp.access_token)
    assert claims[int(Claim.EDHOC_INFO)] == {0: resp.edhoc_info.session_id}
    # §3.3.1: exactly the bytes the client sent (not our canonical order)
    assert result.claims.cnf == KccsCnf(CLIENT_CCS) and isinstance(result.claims.cnf, KccsCnf)
    assert cbor2.dumps(claims[int(Claim.CNF)][11]) == CLIENT_CCS
    log = endpoint.store.find_token_by_session_id("a", "rs_e", resp.edhoc_info.session_id)
    assert log is not None and log.pop_kid == b"\x2b"


def test_session_ids_unique_per_client_and_audience_over_profiles(endpoint: TokenEndpoint,
                                                                 store: MemoryAsStore) -> None:
    ids = []
    for i in range(20):
        key = generate(Curve.P_256, kid=bytes([i + 1])).public()
        resp = wire(first(endpoint, cred=ccs(key)))
        assert resp.edhoc_info is not None
        ids.append(resp.edhoc_info.session_id)
        oscore = wire(ask(endpoint, ace_profile=2))  # the OSCORE profile's series id: its material id
        assert oscore.cnf is not None
        ids.append(oscore.cnf.material.id)  # type: ignore[union-attr]
    assert len(set(ids)) == len(ids)
    store.purge_tokens(NOW + 10**6, 1000)  # ended series are forgotten by the log, their ids never reused
    again = wire(first(endpoint, cred=ccs(generate(Curve.P_256, kid=b"z").public())))
    assert again.edhoc_info is not None and again.edhoc_info.session_id not in ids


def test_rs_cnf_by_reference_or_none(endpoint: TokenEndpoint) -> None:
    by_ref = wire(first(endpoint, extra=((int(Param.RS_CNF), False),)))
    assert by_ref.rs_cnf == KidCnf(b"\x0a")
    none = wire(first(endpoint, "b", cred=ccs(generate(Curve.P_256, kid=b"\x07").public()),
                      extra=((int(Param.RS_CNF), None),)))
    assert none.rs_cnf is None
    with pytest.raises(DecodeError):
        first(endpoint, "b", extra=((int(Param.RS_CNF), 7),))


def test_update_request(endpoint: TokenEndpoint) -> None:
    one = wire(first(endpoint))
    assert one.edhoc_info is not None
    sid = one.edhoc_info.session_id
    result = ask(endpoint, edhoc_info=EdhocInfo(session_id=sid), scope="r_temp")
    upd = wire(result)
    assert upd.edhoc_info is None and upd.rs_cnf is None and upd.cnf is None  # §3.3.3
    claims = token_map(upd.access_token)
    assert claims[int(Claim.EDHOC_INFO)] == {0: sid}
    assert result.claims.cnf == KidCnf(b"\x2b")  # the series' credential, by reference
    assert token_map(one.access_token)[int(Claim.CTI)] != claims[int(Claim.CTI)]


@pytest.mark.parametrize("revoked", ["previous", "older"])
def test_update_of_revoked_series_is_invalid_request(endpoint: TokenEndpoint, revoked: str) -> None:
    """An update naming a series with a revoked token is refused as the kid path refuses one (its key may
    have leaked), and nothing is logged or claimed."""
    one = wire(first(endpoint))
    assert one.edhoc_info is not None
    sid = one.edhoc_info.session_id
    two = wire(ask(endpoint, edhoc_info=EdhocInfo(session_id=sid), scope="r_temp"))
    gone = one.access_token if revoked == "older" else two.access_token
    endpoint.store.revoke_token(token_hash(gone), revoked_at=NOW, expires_at=None)
    before = endpoint.store.find_tokens("a", "rs_e")
    with pytest.raises(DecodeError) as info:
        ask(endpoint, edhoc_info=EdhocInfo(session_id=sid), scope="r_temp")
    assert info.value.error_code == ErrorCode.INVALID_REQUEST and info.value.coap_code == (4, 0)
    assert endpoint.store.find_tokens("a", "rs_e") == before


@pytest.mark.parametrize("case", ["unknown", "other client", "with req_cnf"])
def test_bad_update_is_invalid_request(endpoint: TokenEndpoint, case: str) -> None:
    one = wire(first(endpoint))
    assert one.edhoc_info is not None
    sid = one.edhoc_info.session_id if case != "unknown" else b"\xff\xff"
    kw: dict[str, Any] = {"req_cnf": KccsCnf(CLIENT_CCS)} if case == "with req_cnf" else {}
    with pytest.raises(DecodeError) as info:
        ask(endpoint, "b" if case == "other client" else "a", edhoc_info=EdhocInfo(session_id=sid), **kw)
    assert info.value.error_code == ErrorCode.INVALID_REQUEST and info.value.coap_code == (4, 0)


def test_bare_cose_key_req_cnf_refused(endpoint: TokenEndpoint) -> None:
    with pytest.raises(RemoteError) as info:  # §3.1: MUST NOT use COSE_Key
        ask(endpoint, req_cnf=CoseKeyCnf(CLIENT.public()))
    assert info.value.error_code in (ErrorCode.INVALID_REQUEST, ErrorCode.UNSUPPORTED_POP_KEY)


def test_ariel_os_token_shape(endpoint: TokenEndpoint) -> None:
    plain = cbor2.dumps({8: {1: CLIENT.public().to_map()}})  # Ariel's CRED_I has no sub
    resp = wire(first(endpoint, cred=plain, audience="rs_ariel"))
    token = resp.access_token
    assert token[0] == 0xD0 and len(token) <= 256  # tagged COSE_Encrypt0
    claims = token_map(token, ARIEL_KEY)
    assert 4 in claims and 6 in claims and claims[9] == AIF
    key_bytes = cbor2.dumps(claims[8][1])
    assert bytes.fromhex("a108a101") + key_bytes == plain  # the RS rebuilds CRED_I byte for byte


def test_ariel_os_limits(store: MemoryAsStore, endpoint: TokenEndpoint) -> None:
    store.add_grant(Grant(client_id="b", audience="rs_ariel", scope="r_temp"))
    with pytest.raises(InvalidScope, match="AIF scopes only"):
        first(endpoint, "b", audience="rs_ariel", scope="r_temp")
    big = AifScope.of([(f"/r{i:03d}", 1) for i in range(12)]).encode()
    store.add_grant(Grant(client_id="a", audience="rs_ariel", scope=big))
    with pytest.raises(InvalidScope, match="at most 64 bytes"):
        first(endpoint, audience="rs_ariel", scope=big)
    store.put_rs(RsRecord(audience="rs_ariel10", rs_id="rs_ariel10", token_key=RS_KEY, profiles=(EDHOC,),
                          auth_key=RS_AUTH, edhoc_preset="ariel-os"))
    store.add_grant(Grant(client_id="a", audience="rs_ariel10", scope=AIF, default=True))
    with pytest.raises(IncompatibleProfiles, match=r"alg \[-7, 31\] only"):
        first(endpoint, audience="rs_ariel10")
    long_aud = "rs_" + "x" * 200
    store.put_rs(RsRecord(audience=long_aud, rs_id="r", token_key=ARIEL_KEY, profiles=(EDHOC,), auth_key=RS_AUTH,
                          edhoc_preset="ariel-os"))
    store.add_grant(Grant(client_id="a", audience=long_aud, scope=AIF, default=True))
    with pytest.raises(DecodeError, match="takes at most 256") as info:
        first(endpoint, audience=long_aud)
    assert info.value.error_code == ErrorCode.INVALID_REQUEST
    assert store.find_tokens("a", long_aud) == []  # refused before anything was logged


def test_token_series_id_not_with_edhoc_or_oscore(endpoint: TokenEndpoint) -> None:
    for profile in (EDHOC, 2):
        with pytest.raises(DecodeError, match="token_series_id"):
            ask(endpoint, ace_profile=profile, token_series_id=b"\x01")
    with pytest.raises(DecodeError, match="edhoc_info is for the EDHOC profile"):
        ask(endpoint, ace_profile=2, edhoc_info=EdhocInfo(session_id=b"\x01"))


def test_upload_plan_and_response_table(endpoint: TokenEndpoint, store: MemoryAsStore) -> None:
    from dataclasses import replace

    from ace.authz_server import upload
    from ace.messages import AuthzInfoUpdate
    from ace.tokens.hashing import token_hash
    from ace.tokens.oscore_params import OscoreContextParams

    rs = store.get_rs("rs_e")
    assert rs is not None
    assert first(endpoint, token_upload=1).upload is None  # no upload URI: not tried, no token_upload
    store.put_rs(replace(rs, upload_uri="coap://rs/authz-info",
                         oscore=OscoreContextParams(master_secret=bytes(16), sender_id=b"a", recipient_id=b"r")))
    result = first(endpoint, token_upload=1)
    plan = result.upload
    token = result.response.access_token
    assert plan is not None and plan.payload == token and plan.content_format == int(ContentFormat.CWT)
    done = upload.finish(result.response, plan.asked, True)  # WF §3.1.2: 0 and, for 1, the hash only
    wired = AccessTokenResponse.decode(done.encode())
    assert wired.token_upload == 0 and not wired.access_token and wired.token_hash == token_hash(token)
    assert wired.from_rs == b"" and 1 not in cbor2.loads(done.encode())
    for asked, has_token, has_hash in ((0, False, False), (2, True, False)):
        m = cbor2.loads(upload.finish(result.response, asked, True).encode())
        assert (1 in m, int(Param.TOKEN_HASH) in m) == (has_token, has_hash)
    failed = cbor2.loads(upload.finish(result.response, 1, False).encode())
    assert failed[int(Param.TOKEN_UPLOAD)] == 1 and failed[1] == token and int(Param.TOKEN_HASH) not in failed
    assert wire(result).edhoc_info is not None
    sid = wire(result).edhoc_info.session_id  # type: ignore[union-attr]
    update = ask(endpoint, edhoc_info=EdhocInfo(session_id=sid), token_upload=2)
    assert update.upload is not None  # WF §3.7.1: {1: token, updated_rights: true}
    sent = AuthzInfoUpdate.decode(update.upload.payload)
    assert sent.updated_rights is True and sent.access_token == update.response.access_token
    with pytest.raises(DecodeError):
        ask(endpoint, edhoc_info=EdhocInfo(session_id=sid), token_upload=2, to_rs=b"\xa0")
    with pytest.raises(DecodeError):
        first(endpoint, token_upload=3)
    with pytest.raises(DecodeError):
        first(endpoint, to_rs=b"\xa0")
