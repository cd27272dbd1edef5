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
from ace.client.flow import ClientConfig, ClientFlow, Session
from ace.errors import ConfigError, DecodeError, RemoteError
from ace.messages import AccessTokenRequest, AccessTokenResponse, AuthzInfoRequest
from ace.rs.server import ResourceServer, RsConfig
from ace.store.base import ClientRecord, Grant, IssuedToken, RsRecord
from ace.store.memory import MemoryAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial
from ace.tokens.cwt import KeyRing, issue_token
from ace.tokens.keys import symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

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
    result = endpoint.issue(AccessTokenRequest(audience=audience).encode(), store.get_client(client))
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
    assert ep.handle("c1") == bytes.fromhex("a2008002f6")  # {0: [], 2 / cursor /: null}
    trl.revoke_token(store, token, clock=fixed_clock())
    h = trl.token_hash(token)
    # {0 / full_set /: [h'01...'], 2 / cursor /: 0}: the cursor (RFC 9770 §9.1) is the last item's index
    assert ep.handle("c1") == bytes.fromhex("a200815821") + h + bytes.fromhex("0200")
    assert cbor2.loads(ep.handle(RsPeer("rs1"))) == {0: [h], 2: 0}  # the RS's collection is new: seeded
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
    for query in (["diff=-1"], ["diff=x"], ["diff"], ["diff=1", "diff=2"], ["cursor=3"],
                  ["diff=1", "cursor=99999999999"]):
        with pytest.raises(RemoteError) as e:
            ep.handle("c1", query)
        assert e.value.coap_code == (4, 0) and e.value.error_code is None, query
    # an empty collection answers any cursor with {1: [], 2: null, 3: false} (RFC 9770 §9.2)
    assert ep.handle("c1", ["diff=1", "cursor=0"]) == bytes.fromhex("a3018002f603f4")
    # diff=0 and a diff above MAX_N are valid: as many items as kept (RFC 9770 §6.2)
    assert cbor2.loads(ep.handle("c1", ["diff=0"])) == {1: [], 2: None, 3: False}
    assert ep.handle("c1", ["diff=99999999999"]) == ep.handle("c1", ["diff=0"])


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
    assert b1.token_hash == trl.token_hash(t1)
    assert rs.revoke([trl.token_hash(t1), b"\x01" + bytes(32)]) == [b1]  # what went: its channel goes too
    assert rs.live_labels() == {b2.label}
    for payload in (post[0], AuthzInfoRequest(access_token=t1, nonce1=b"\x09" * 8,
                                              ace_client_recipientid=b"\x05").encode()):
        with pytest.raises(RemoteError) as e:
            rs.authz_info(payload)
        assert e.value.coap_code == (4, 1)
    assert rs.authorize(b2.label, "/temp", "GET").binding == b2


def test_rs_remembers_revocations_bounded() -> None:
    from ace.rs import server as rs_server
    rs = ResourceServer(RsConfig(audience="rs1", as_uri="coap://as/token"), KeyRing([RS_KEY]), clock=fixed_clock())
    rs.revoke(bytes([1]) + i.to_bytes(32, "big") for i in range(rs_server.MAX_REVOKED + 10))
    assert len(rs.retired.hashes) == rs_server.MAX_REVOKED


def test_client_drops_sessions_with_revoked_tokens() -> None:
    flow = ClientFlow(ClientConfig(), clock=fixed_clock())
    params = OscoreContextParams(master_secret=bytes(16), master_salt=b"", sender_id=b"\x01", recipient_id=b"\x02",
                                 id_context=None, alg=10, hkdf="sha256")
    for origin, tok in (("coap://a", b"token-a"), ("coap://b", b"token-b")):
        flow.sessions[origin] = Session(origin=origin, token=tok, context=params, expires_at=None, scope=None)
    assert flow.drop_revoked([trl.token_hash(b"token-a"), VECTOR_HASH]) == ["coap://a"]
    assert list(flow.sessions) == ["coap://b"]
    assert flow.drop_revoked([]) == []


# -- diff queries and the Cursor extension (RFC 9770 §6.2, §8, §9) ------------------------------

def fake_token(store: MemoryAsStore, i: int, client: str = "c1", audience: str = "rs1",
               expires_at: int | None = NOW + 600) -> bytes:
    """Log an issued token (hash only) and return its hash."""
    h = b"\x01" + i.to_bytes(32, "big")
    store.log_token(IssuedToken(cti=i.to_bytes(4, "big"), client_id=client, audience=audience, scope="r",
                                issued_at=NOW, expires_at=expires_at, token_hash=h))
    return h


def revoke_hashes(store: MemoryAsStore, *hashes: bytes) -> None:
    by_hash = {t.token_hash: t for t in store.find_tokens()}
    tokens = [by_hash[h] for h in hashes]  # in this order
    assert len(trl.revoke_issued(store, tokens, now=NOW)) == len(hashes)


def diff(ep: TrlEndpoint, who: trl.Requester, *query: str) -> trl.DiffSet:
    payload = ep.handle(who, query)
    assert set(cbor2.loads(payload)) == {1, 2, 3}
    return trl.decode_diff_set(payload)


def test_diff_query_payload_exact(store: MemoryAsStore) -> None:
    h1, h2, h3, h4 = (fake_token(store, i, expires_at=NOW + (5 if i == 4 else 600)) for i in (1, 2, 3, 4))
    ep = TrlEndpoint(store, clock=fixed_clock())
    # an empty collection: {1 / diff_set /: [], 2 / cursor /: null, 3 / more /: false}
    assert ep.handle("c1", ["diff=3"]) == bytes.fromhex("a3018002f603f4")
    revoke_hashes(store, h1)
    ep.ingest()  # what the AS's poll does
    # {1: [[[], [h1]]], 2: 0, 3: false}
    item0 = bytes.fromhex("82 80 81 5821".replace(" ", "")) + h1
    assert ep.handle("c1", ["diff=3"]) == bytes.fromhex("a30181") + item0 + bytes.fromhex("0200 03f4")
    revoke_hashes(store, h2, h3, h4)  # one batch: one item, the hashes in revocation order
    ep.ingest()
    item1 = bytes.fromhex("8280835821") + h2 + b"\x58\x21" + h3 + b"\x58\x21" + h4
    assert ep.handle("c1", ["diff=0"]) == bytes.fromhex("a30182") + item1 + item0 + bytes.fromhex("0201 03f4")
    assert ep.purge(NOW + 6) == 1  # h4's token expired: an item with 'removed' only
    item2 = bytes.fromhex("82815821") + h4 + b"\x80"
    assert ep.handle("c1", ["diff=1"]) == bytes.fromhex("a30181") + item2 + bytes.fromhex("0202 03f4")
    assert cbor2.loads(ep.handle("c1", ["diff=2"])) == {1: [[[h4], []], [[], [h2, h3, h4]]], 2: 2, 3: False}
    assert cbor2.loads(ep.handle("c1")) == {0: [h1, h2, h3], 2: 2}  # full query: cursor = last_index
    # the cursor: nothing after the last index
    assert ep.handle("c1", ["diff=0", "cursor=2"]) == bytes.fromhex("a301800202 03f4".replace(" ", ""))
    assert cbor2.loads(ep.handle("c1", ["diff=0", "cursor=0"])) == {1: [[[h4], []], [[], [h2, h3, h4]]],
                                                                    2: 2, 3: False}
    # the RS of the audience sees the same revocations (its collection is new: seeded with its portion)
    assert cbor2.loads(ep.handle(RsPeer("rs1"), ["diff=0"])) == {1: [[[], [h1, h2, h3]]], 2: 0, 3: False}


def test_many_revocations_paged_with_cursor(store: MemoryAsStore) -> None:
    assert trl.MAX_N >= 50 and trl.MAX_DIFF_BATCH == 8
    ep = TrlEndpoint(store, clock=fixed_clock())
    for who in ("c1", "c2", RsPeer("rs1"), RsPeer("rs2")):
        ep.handle(who)  # known to the AS before the revocations: their collections start empty
    mine, others = [], []
    for i in range(50):
        mine.append(fake_token(store, 1000 + i, "c1", "rs1"))
        others.append(fake_token(store, 2000 + i, "c2", "rs2"))
        revoke_hashes(store, mine[-1])
        revoke_hashes(store, others[-1])
        ep.ingest()  # one batch each: one item per requester
    for who, expected, foreign in (("c1", mine, others), (RsPeer("rs1"), mine, others),
                                   ("c2", others, mine), (RsPeer("rs2"), others, mine)):
        seen: list[bytes] = []
        page = diff(ep, who, "diff=0")  # no cursor: the eldest MAX_DIFF_BATCH of the last MAX_N
        pages = 1
        while True:
            assert len(page.entries) == (8 if page.more else 50 % 8)
            assert all(removed == [] for removed, _ in page.entries)
            for _, added in reversed(page.entries):  # each page is newest first
                seen += added
            assert page.cursor == len(seen) - 1
            if not page.more:
                break
            page = diff(ep, who, "diff=0", f"cursor={page.cursor}")
            pages += 1
        assert seen == expected and len(set(seen)) == 50 and not set(seen) & set(foreign)
        assert pages == 7
        # asked again from the last cursor: nothing new
        assert diff(ep, who, "diff=0", "cursor=49") == trl.DiffSet([], 49, False)
    # diff=N: the last N items, newest first, in one answer when N <= MAX_DIFF_BATCH
    assert diff(ep, "c1", "diff=3") == trl.DiffSet([([], [h]) for h in mine[:-4:-1]], 49, False)
    # U > MAX_DIFF_BATCH: the eldest 8 of the last 20
    page = diff(ep, "c1", "diff=20")
    assert page.more and page.cursor == 37 and [a[0] for _, a in page.entries] == mine[37:29:-1]
    assert cbor2.loads(ep.handle("c2")) == {0: others, 2: 49}


def test_items_gone_and_out_of_bound_cursor(store: MemoryAsStore) -> None:
    ep = TrlEndpoint(store, clock=fixed_clock(), max_n=4, max_diff_batch=2)
    ep.handle("c1")
    hashes = [fake_token(store, i) for i in range(6)]
    for h in hashes:
        revoke_hashes(store, h)
        ep.ingest()
    # indexes 0..5 made, 2..5 kept
    assert diff(ep, "c1", "diff=0").cursor == 3  # eldest two of the four kept: 2, 3
    # item 1 is gone: {1: [], 2: null, 3: true}, the requester SHOULD do a full query
    assert ep.handle("c1", ["diff=0", "cursor=0"]) == bytes.fromhex("a3018002f603f5")
    assert diff(ep, "c1", "diff=0", "cursor=1") == trl.DiffSet([([], [hashes[3]]), ([], [hashes[2]])], 3, True)
    assert diff(ep, "c1", "diff=0", "cursor=3") == trl.DiffSet([([], [hashes[5]]), ([], [hashes[4]])], 5, False)
    # diff=N with a cursor: the N most recent of the items after it (RFC 9770 §9.2 Case B:
    # SUB_U = min(NUM, SUB_SIZE), the last SUB_U items)
    assert diff(ep, "c1", "diff=1", "cursor=1") == trl.DiffSet([([], [hashes[5]])], 5, False)
    with pytest.raises(trl.TrlError) as e:  # beyond last_index, no wrap-around
        ep.handle("c1", ["diff=0", "cursor=6"])
    assert e.value.coap_code == (4, 0) and e.value.error_id == trl.TrlErrorId.OUT_OF_BOUND_CURSOR_VALUE
    # {-1 / title /: "Out of bound cursor value", 1 / ace-trl-error /: {0 / error-id /: 2}} (no cursor: §6.3)
    assert cbor2.loads(e.value.problem_details()) == {-1: "Out of bound cursor value", 1: {0: 2}}
    assert e.value.problem_details() == bytes.fromhex("a220") + cbor2.dumps("Out of bound cursor value") + \
        bytes.fromhex("01a10002")
    # an empty collection: {1: [], 2: null, 3: false} whatever the cursor (RFC 9770 §9.2)
    assert ep.handle("c2", ["diff=0", "cursor=0"]) == bytes.fromhex("a3018002f603f4")
    with pytest.raises(trl.TrlError) as e:  # above MAX_INDEX: error-id 0 with cursor null
        ep.handle("c2", ["diff=0", "cursor=4294967296"])
    assert cbor2.loads(e.value.problem_details()) == {-1: "Invalid parameter value", 1: {0: 0, 1: None}}


def test_indexes_wrap_around(store: MemoryAsStore) -> None:
    ep = TrlEndpoint(store, clock=fixed_clock(), max_n=4, max_diff_batch=2, max_index=7)
    ep.handle("c1")
    hashes = [fake_token(store, i) for i in range(10)]
    for h in hashes:
        revoke_hashes(store, h)
        ep.ingest()
    # indexes 0..7, 0, 1: kept 6, 7, 0, 1 (hashes 6..9); last_index 1
    assert cbor2.loads(ep.handle("c1"))[2] == 1
    assert diff(ep, "c1", "diff=0", "cursor=7") == trl.DiffSet([([], [hashes[9]]), ([], [hashes[8]])], 1, False)
    assert diff(ep, "c1", "diff=0", "cursor=5") == trl.DiffSet([([], [hashes[7]]), ([], [hashes[6]])], 7, True)
    assert diff(ep, "c1", "diff=0", "cursor=3") == trl.DiffSet([], None, True)  # wrapped: gone, not out of bound
    assert diff(ep, "c1", "diff=0", "cursor=1") == trl.DiffSet([], 1, False)
    with pytest.raises(trl.TrlError):
        ep.handle("c1", ["diff=0", "cursor=8"])  # above MAX_INDEX


@pytest.mark.parametrize(("query", "error_id"), [
    (["diff=-1"], 0), (["diff=x"], 0), (["diff"], 0), (["diff="], 0), (["diff=+1"], 0), (["diff=１"], 0),
    (["diff=1", "cursor=x"], 0), (["diff=1", "cursor=-1"], 0), (["diff=1", "cursor=" + "9" * 65], 0),
    (["diff=1", "diff=2"], 1), (["cursor=3"], 1), (["cursor=x"], 1), (["cursor=0", "cursor=0"], 1),
    (["diff=x", "cursor=3"], 0), (["diff=1", "cursor=4294967296"], 0), (["diff=1", "cursor=7"], 2),
])
def test_query_errors_have_problem_details(store: MemoryAsStore, query: list[str], error_id: int) -> None:
    ep = TrlEndpoint(store, clock=fixed_clock())
    revoke_hashes(store, fake_token(store, 1))
    ep.handle("c1")
    with pytest.raises(trl.TrlError) as e:
        ep.handle("c1", query)
    assert e.value.coap_code == (4, 0) and e.value.error_id == error_id
    details = cbor2.loads(e.value.problem_details())
    # RFC 9770 §6.3: a bad cursor value comes with last_index (0); out of bound and the rest without
    with_cursor = any(q.startswith("cursor=") for q in query) and error_id == 0 and "diff=x" not in query
    assert details[1] == ({0: 0, 1: 0} if with_cursor else {0: error_id})
    # RFC 9770 §6: unknown query parameters are silently ignored
    assert ep.handle("c1", ["pmax=1"]) == ep.handle("c1")
    assert ep.handle("c1", ["pmax=1", "diff=0"]) == ep.handle("c1", ["diff=0"])


def test_collections_are_bounded_and_seeded(store: MemoryAsStore) -> None:
    ep = TrlEndpoint(store, clock=fixed_clock(), max_requesters=2)
    h1, h2 = fake_token(store, 1, "c1"), fake_token(store, 2, "c2", "rs2")
    ep.handle("c1")
    revoke_hashes(store, h1)
    ep.ingest()
    ep.handle("c2")
    ep.handle(RsPeer("rs2"))  # c1's collection is the least recently used: dropped
    assert list(ep.collections) == ["c2", RsPeer("rs2")]
    # back: a new collection whose one item adds c1's whole portion of the TRL; its index goes on
    # from the lost collection's (the store's counter), so a stale cursor (0) gets it, not "nothing new"
    assert diff(ep, "c1", "diff=0") == trl.DiffSet([([], [h1])], 1, False)
    assert diff(ep, "c1", "diff=0", "cursor=0") == trl.DiffSet([([], [h1])], 1, False)
    assert list(ep.collections) == [RsPeer("rs2"), "c1"]
    revoke_hashes(store, h2)
    assert diff(ep, "c1", "diff=0", "cursor=1") == trl.DiffSet([], 1, False)  # not c1's
    assert diff(ep, RsPeer("rs2"), "diff=0") == trl.DiffSet([([], [h2])], 0, False)  # an item of the batch
    assert diff(ep, "c2", "diff=0") == trl.DiffSet([([], [h2])], 0, False)  # c2 was dropped: new, seeded
    # an AS restart: the entries already in the store are taken as known, collections start again
    again = TrlEndpoint(store, clock=fixed_clock())
    assert again.position == 2 and not again.collections
    assert diff(again, RsPeer("rs2"), "diff=0") == trl.DiffSet([([], [h2])], 1, False)
    # rs2's cursor from before the restart (0, all it had seen) is answered with the seed item
    assert diff(again, RsPeer("rs2"), "diff=0", "cursor=0") == trl.DiffSet([([], [h2])], 1, False)


def test_collection_bounds_hashes_and_items() -> None:
    c = trl.UpdateCollection(max_n=3)
    hashes = [b"\x01" + i.to_bytes(32, "big") for i in range(trl.MAX_ITEM_HASHES * 2 + 1)]
    assert c.add((), hashes) == 3  # split at MAX_ITEM_HASHES
    assert [len(i.added) for i in c.items] == [trl.MAX_ITEM_HASHES, trl.MAX_ITEM_HASHES, 1]
    c.add([hashes[0]], ())
    assert [i.index for i in c.items] == [1, 2, 3] and c.hashes == trl.MAX_ITEM_HASHES + 2
    with pytest.raises(ValueError):
        trl.UpdateCollection(max_n=0)
    with pytest.raises(ValueError):
        TrlEndpoint(MemoryAsStore(), clock=fixed_clock(), max_n=4, max_diff_batch=5)


@pytest.mark.parametrize("payload", [b"\xa0", b"\xa1\x01\x81\x80", b"\xa1\x01\x81\x82\x80\x01",
                                     b"\xa2\x01\x80\x02\x20", b"\xa2\x01\x80\x03\x01"])
def test_decode_diff_set_is_strict(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        trl.decode_diff_set(payload)


def test_cursor_diff_gives_the_most_recent_items() -> None:
    # RFC 9770 §9.2 Case B: L = min(SUB_U, MAX_DIFF_BATCH) of the last SUB_U items after P, the
    # eldest first taken when SUB_U > MAX_DIFF_BATCH; cursor = the newest one returned
    c = trl.UpdateCollection(max_n=64)
    for i in range(10):
        c.add((), (bytes([i]),))
    two = c.diff(2, 0, batch=8)
    assert [i.index for i in two.items] == [8, 9] and two.cursor == 9 and two.more is False
    many = c.diff(0, 0, batch=4)  # SUB_U 9 > 4: the eldest four of the nine, more to come
    assert [i.index for i in many.items] == [1, 2, 3, 4] and many.cursor == 4 and many.more is True
    rest = c.diff(0, many.cursor, batch=4)
    assert [i.index for i in rest.items] == [5, 6, 7, 8] and rest.more is True


def test_a_cursor_from_before_a_restart_never_hides_a_revocation(store: MemoryAsStore) -> None:
    # the requester saw items 0..1, then the AS restarted and more revocations came: the new
    # collection's indexes go on (2, 3), so its old cursor leads to them, or to Case A once gone
    ep = TrlEndpoint(store, clock=fixed_clock())
    ep.handle("c1")
    old = [fake_token(store, i, "c1") for i in range(2)]
    for h in old:
        revoke_hashes(store, h)
        ep.ingest()
    assert diff(ep, "c1", "diff=0").cursor == 1
    again = TrlEndpoint(store, clock=fixed_clock())
    new = fake_token(store, 7, "c1")
    again.handle("c1")  # the collection is made again: its seed item (index 2) lists both old hashes
    revoke_hashes(store, new)
    got = diff(again, "c1", "diff=0", "cursor=1")
    assert got.cursor == 3 and [set(added) for _, added in got.entries] == [{new}, set(old)]
    # a cursor whose next item the new collection lacks: Case A (do a full query), not "nothing new"
    assert diff(again, "c1", "diff=0", "cursor=0") == trl.DiffSet([], None, True)
