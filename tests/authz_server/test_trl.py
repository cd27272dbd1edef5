"""The Token Revocation List (RFC 9770), sans I/O: token hashes, per-requester full queries,
query parameters, revocation, and what the RS and client cores do with a TRL."""

from __future__ import annotations

import random

import cbor2
import pytest
from support import NOW, counter_rng, fixed_clock

from ace.authz_server import trl
from ace.authz_server.token import TokenEndpoint
from ace.authz_server.trl import RsPeer, TrlEndpoint
from ace.cbor.messages import AccessTokenRequest, AccessTokenResponse, AuthzInfoRequest
from ace.client.flow import ClientConfig, ClientFlow, Session
from ace.errors import ConfigError, DecodeError, RemoteError
from ace.profiles.oscore import OscoreContextParams
from ace.rs.server import ResourceServer, RsConfig
from ace.store.base import ClientRecord, Grant, IssuedToken, RsRecord
from ace.store.memory import MemoryAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial
from ace.tokens.cwt import KeyRing, issue_token
from ace.tokens.keys import symmetric_key

RS_KEY = symmetric_key(bytes(range(16)), kid=b"rs1")
VECTOR_TOKEN = bytes.fromhex(
    "d83dd0835820a3010a044c53796d6d6574726963313238054d99a0d7846e762c49ffe8a63e0ba05858b918a11fd81e438b7f973d9e2e"
    "119bcb22424ba0f38a80f27562f400ee1d0d6c0fdb559c02421fd384fc2ebe22d7071378b0ea7428fff157444d45f7e6afcda1aae5f64"
    "95830c58627087fc5b4974f319a8707a635dd643b")
VECTOR_HASH = bytes.fromhex("011a06427bcbe5d29385202b8255820b8370ae481065a1e94017c0185bfbd51707")


def test_token_hash_vector() -> None:  # RFC 9770 §4.4 (editor's copy of -09)
    assert trl.token_hash(VECTOR_TOKEN) == VECTOR_HASH
    assert len(VECTOR_HASH) == trl.HASH_LEN and VECTOR_HASH[0] == trl.SHA256_SUITE


def test_token_hash_is_over_base64url_text() -> None:
    import base64
    import hashlib
    token = b"\xfb\xff\xfe"  # base64url "-__-" (no padding), where base64 would differ
    assert trl.token_hash(token) == b"\x01" + hashlib.sha256(base64.urlsafe_b64encode(token).rstrip(b"=")).digest()
    assert trl.token_hash(b"") == b"\x01" + hashlib.sha256(b"").digest()
    with pytest.raises(TypeError):
        trl.token_hash("abc")  # type: ignore[arg-type]


@pytest.fixture
def store() -> MemoryAsStore:
    s = MemoryAsStore()
    for c in ("c1", "c2"):
        s.put_client(ClientRecord(client_id=c))
    for aud in ("rs1", "rs2"):
        s.put_rs(RsRecord(audience=aud, rs_id=aud, token_key=RS_KEY, token_lifetime=600))
        for c in ("c1", "c2"):
            s.add_grant(Grant(client_id=c, audience=aud, scope="r_temp", default=True))
    return s


def issue(store: MemoryAsStore, client: str, audience: str, now: float = NOW) -> bytes:
    endpoint = TokenEndpoint(store, clock=fixed_clock(now), rng=counter_rng(store.next_counter("test-rng") * 100))
    result = endpoint.handle(AccessTokenRequest(audience=audience).encode(), client)
    return AccessTokenResponse.decode(result.response.encode()).access_token


def test_the_token_endpoint_logs_the_rfc9770_hash(store: MemoryAsStore) -> None:
    token = issue(store, "c1", "rs1")
    [logged] = store.find_tokens(client_id="c1")
    assert logged.token_hash == trl.token_hash(token)


def test_full_set_per_requester(store: MemoryAsStore) -> None:
    t11, t12, t21, t22 = (issue(store, c, a) for c, a in (("c1", "rs1"), ("c1", "rs2"), ("c2", "rs1"), ("c2", "rs2")))
    h = {k: trl.token_hash(t) for k, t in (("11", t11), ("12", t12), ("21", t21), ("22", t22))}
    ep = TrlEndpoint(store, clock=fixed_clock())
    assert ep.full_set("c1") == [] and ep.full_set(RsPeer("rs1")) == []
    assert trl.revoke_tokens(store, client_id="c2", audience="rs1", clock=fixed_clock()) == [h["21"]]
    assert trl.revoke_tokens(store, client_id="c1", clock=fixed_clock()) == [h["12"], h["11"]]  # newest first
    assert ep.full_set("c1") == [h["12"], h["11"]]  # in revocation order
    assert ep.full_set("c2") == [h["21"]]
    assert ep.full_set(RsPeer("rs1")) == [h["21"], h["11"]]
    assert ep.full_set(RsPeer("rs2")) == [h["12"]]
    assert ep.full_set("stranger") == [] and ep.full_set(RsPeer("nobody")) == []
    # a client named like an RS's audience sees its own tokens, not the RS's
    assert ep.full_set("rs1") == []
    # revoking again changes nothing
    assert trl.revoke_tokens(store, client_id="c1", clock=fixed_clock()) == []


def test_full_query_payload_exact(store: MemoryAsStore) -> None:
    token = issue(store, "c1", "rs1")
    ep = TrlEndpoint(store, clock=fixed_clock())
    assert ep.handle("c1") == bytes.fromhex("a10080")  # {0: []}
    trl.revoke_token(store, token, clock=fixed_clock())
    h = trl.token_hash(token)
    assert ep.handle("c1") == bytes.fromhex("a100815821") + h  # {0 / full_set /: [h'01...']}
    assert cbor2.loads(ep.handle(RsPeer("rs1"))) == {0: [h]}
    assert trl.decode_full_set(ep.handle("c1")) == [h]


def test_expired_tokens_leave_the_trl(store: MemoryAsStore) -> None:
    token = issue(store, "c1", "rs1")
    trl.revoke_tokens(store, client_id="c1", clock=fixed_clock())
    assert TrlEndpoint(store, clock=fixed_clock(NOW + 599)).full_set("c1") == [trl.token_hash(token)]
    assert TrlEndpoint(store, clock=fixed_clock(NOW + 600)).full_set("c1") == []
    assert store.purge_revoked(NOW + 601) == 1
    issue(store, "c1", "rs1")  # an expired token is not put on the list at all
    assert trl.revoke_tokens(store, client_id="c1", clock=fixed_clock(NOW + 700)) == []


def test_unauthenticated_and_bad_queries(store: MemoryAsStore) -> None:
    ep = TrlEndpoint(store, clock=fixed_clock())
    with pytest.raises(RemoteError) as e:
        ep.handle(None)
    assert e.value.coap_code == (4, 1)
    for query in (["diff=0"], ["diff=-1"], ["diff=x"], ["diff"], ["diff=1", "diff=2"], ["cursor=3"],
                  ["diff=1", "cursor=0"], ["pmax=1"], ["diff=99999999999"]):
        with pytest.raises(RemoteError) as e:
            ep.handle("c1", query)
        assert e.value.coap_code == (4, 0) and e.value.error_code is None, query
    # diff queries are not supported: a valid one is answered as a full query (RFC 9770 §6.2)
    assert ep.handle("c1", ["diff=3"]) == ep.handle("c1")


def test_revoke_one_token(store: MemoryAsStore) -> None:
    token = issue(store, "c1", "rs1")
    assert trl.revoke_token(store, token, clock=fixed_clock()) == trl.token_hash(token)
    assert trl.revoke_token(store, token, clock=fixed_clock()) is None
    assert store.revoked_since(0, 10) == [(1, trl.token_hash(token))]
    with pytest.raises(ConfigError):
        trl.revoke_token(store, b"not issued here", clock=fixed_clock())
    with pytest.raises(ValueError):
        trl.revoke_tokens(store, clock=fixed_clock())


def test_revoke_uses_the_token_expiry(store: MemoryAsStore) -> None:
    store.log_token(IssuedToken(cti=b"\x77", client_id="c1", audience="rs1", scope="r", issued_at=NOW,
                                expires_at=NOW + 5, token_hash=b"\x01" + bytes(32)))
    trl.revoke_tokens(store, client_id="c1", audience="rs1", clock=fixed_clock())
    assert store.purge_revoked(NOW + 4) == 0 and store.purge_revoked(NOW + 6) == 1


@pytest.mark.parametrize("payload", [b"\xa0", b"\xa1\x00\xa0", b"\xa1\x00\x81\x01", b"\x80", b"\xa1\x01\x80"])
def test_decode_full_set_is_strict(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        trl.decode_full_set(payload)


# -- the RS and client cores ---------------------------------------------------------------

def rs_token(mid: bytes, cti: bytes) -> bytes:
    claims = AccessTokenClaims(aud="rs1", exp=NOW + 600, cti=cti, scope="r_temp",
                               cnf=OscoreCnf(OscoreInputMaterial(id=mid, ms=bytes([mid[0]]) * 16)))
    return issue_token(claims, RS_KEY, rng=random.Random(cti).randbytes)


def test_rs_drops_revoked_tokens_and_refuses_them() -> None:
    clock = fixed_clock()
    rs = ResourceServer(RsConfig(audience="rs1", as_uri="coap://as/token", scope_meaning={"r_temp": [("/temp", 1)]}),
                        KeyRing([RS_KEY]), clock=clock, rng=random.Random(1).randbytes)
    t1, t2 = rs_token(b"\x01", b"\x01"), rs_token(b"\x02", b"\x02")
    post = [AuthzInfoRequest(access_token=t, nonce1=bytes(8), ace_client_recipientid=bytes([i])).encode()
            for i, t in ((1, t1), (2, t2))]
    b1, b2 = (rs.authz_info(p).binding for p in post)
    rs.take_dropped()
    assert b1.token_hash == trl.token_hash(t1)
    assert rs.revoke([trl.token_hash(t1), b"\x01" + bytes(32)]) == [b1]
    assert rs.take_dropped() == [b1] and rs.live_labels() == {b2.label}
    for payload in (post[0], AuthzInfoRequest(access_token=t1, nonce1=b"\x09" * 8,
                                              ace_client_recipientid=b"\x05").encode()):
        with pytest.raises(RemoteError) as e:
            rs.authz_info(payload)
        assert e.value.coap_code == (4, 1)
    assert rs.authorize(b2.label, "/temp", "GET") == b2


def test_rs_remembers_revocations_bounded() -> None:
    from ace.rs import server as rs_server
    rs = ResourceServer(RsConfig(audience="rs1", as_uri="coap://as/token"), KeyRing([RS_KEY]), clock=fixed_clock())
    rs.revoke(bytes([1]) + i.to_bytes(32, "big") for i in range(rs_server.MAX_REVOKED + 10))
    assert len(rs._revoked) == rs_server.MAX_REVOKED


def test_client_drops_sessions_with_revoked_tokens() -> None:
    flow = ClientFlow(ClientConfig(), clock=fixed_clock())
    params = OscoreContextParams(master_secret=bytes(16), master_salt=b"", sender_id=b"\x01", recipient_id=b"\x02",
                                 id_context=None, alg=10, hkdf="sha256")
    for origin, tok in (("coap://a", b"token-a"), ("coap://b", b"token-b")):
        flow.sessions[origin] = Session(origin=origin, token=tok, context=params, expires_at=None, scope=None)
    assert flow.drop_revoked([trl.token_hash(b"token-a"), VECTOR_HASH]) == ["coap://a"]
    assert list(flow.sessions) == ["coap://b"]
    assert flow.drop_revoked([]) == []
