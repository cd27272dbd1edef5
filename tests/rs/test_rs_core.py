"""The RS core of the OSCORE profile: POST /authz-info (RFC 9203 §4.1–4.3) and access
decisions (RFC 9200 §5.10.2), sans I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import cbor2
import pytest
from rs_support import (
    AS_URI,
    GET,
    MEANING,
    N1,
    OTHER_KEY,
    POST,
    PUT,
    RS_KEY,
    Clock,
    make_rs,
    material,
    post,
    token,
)
from support import NOW

from ace.authz_server.trl import token_hash as trl_hash
from ace.cbor.labels import ContentFormat, Param
from ace.cbor.scope import AifScope, TextScope
from ace.errors import (
    ClaimsError,
    DecodeError,
    ErrorCode,
    InvalidScope,
    RemoteError,
    UnknownKeyError,
    UnsupportedContentFormat,
    UnsupportedPopKey,
    VerificationError,
    WrongAudience,
)
from ace.messages import AuthzInfoResponse, CreationHints
from ace.profiles import oscore
from ace.rs.outcomes import AuthzInfoOutcome
from ace.rs.server import AccessDenied, ResourceServer, RsConfig
from ace.rs.store import Binding, BindingStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import KidCnf, OscoreCnf, OscoreInputMaterial
from ace.tokens.cwt import DEFAULT_SKEW, KeyRing, issue_token
from ace.tokens.keys import symmetric_key


def client_side(mat: OscoreInputMaterial, outcome: AuthzInfoOutcome, nonce1: bytes,
                rid: bytes) -> oscore.OscoreContextParams:
    answer = AuthzInfoResponse.decode(outcome.payload)
    return oscore.derive(mat, nonce1=nonce1, nonce2=answer.nonce2, sender_id=answer.ace_server_recipientid,
                         recipient_id=rid)


def snapshot(rs: ResourceServer) -> tuple[list[Binding], int]:
    return list(rs.bindings), len(rs.ids)


# -- E: POST /authz-info ----------------------------------------------------------------


def test_happy_authz_info() -> None:
    rs = make_rs()
    outcome = rs.authz_info(post(token()), ContentFormat.ACE_CBOR)
    answer = AuthzInfoResponse.decode(outcome.payload)
    assert len(answer.nonce2) == 8
    assert answer.ace_server_recipientid != b"\x01"
    assert outcome.new and outcome.dropped == []
    b = outcome.binding
    assert b.label == answer.ace_server_recipientid
    assert rs.bindings.get(b.label) is b and rs.live_labels() == {b.label}
    assert b.label in rs.ids
    assert b.nonce1 == N1 and b.response == outcome.payload
    assert b.expires_at == NOW + 3600 + DEFAULT_SKEW and b.pop_id == b"\x01"  # the skew that admitted it
    assert b.scope == TextScope(("r_temp",))
    # the client derives the mirror image of the RS's context
    client = client_side(material(), outcome, N1, b"\x01")
    rs_ctx = b.context
    assert (client.sender_id, client.recipient_id) == (rs_ctx.recipient_id, rs_ctx.sender_id)
    assert rs_ctx.sender_id == b"\x01"
    assert client.master_secret == rs_ctx.master_secret == bytes([1]) * 16
    assert client.master_salt == rs_ctx.master_salt == oscore.master_salt(None, N1, answer.nonce2)
    assert (client.id_context, client.alg, client.hkdf) == (rs_ctx.id_context, rs_ctx.alg, rs_ctx.hkdf)


def test_content_format_may_be_absent() -> None:
    assert make_rs().authz_info(post(token()), None).new


def test_material_parameters_reach_the_context() -> None:
    mat = material(salt=b"\x5a" * 4, context_id=b"\xc1", alg=30, hkdf=-11)
    outcome = make_rs().authz_info(post(token(cnf=OscoreCnf(mat))))
    ctx = outcome.binding.context
    nonce2 = AuthzInfoResponse.decode(outcome.payload).nonce2
    assert ctx.master_salt == oscore.master_salt(b"\x5a" * 4, N1, nonce2)
    assert (ctx.id_context, ctx.alg, ctx.hkdf) == (b"\xc1", 30, "sha512")


def test_server_id_differs_from_client_id_even_when_rng_insists() -> None:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING)
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=Clock(), rng=lambda n: b"\x07" * n)
    outcome = rs.authz_info(post(token(), rid=b"\x07"))
    assert outcome.binding.label != b"\x07"


def test_empty_client_recipient_id_is_allowed() -> None:
    outcome = make_rs().authz_info(post(token(), rid=b""))
    assert outcome.binding.context.sender_id == b""
    assert outcome.binding.label != b""


def test_retransmission_gets_the_same_answer() -> None:
    rs = make_rs()
    payload = post(token())
    first = rs.authz_info(payload)
    before = snapshot(rs)
    again = rs.authz_info(payload)
    assert again.payload == first.payload
    assert again.binding is first.binding
    assert not again.new and again.dropped == []
    assert snapshot(rs) == before


def test_same_token_new_nonce_replaces_the_binding() -> None:
    rs = make_rs()
    tok = token()
    first = rs.authz_info(post(tok, nonce1=N1))
    second = rs.authz_info(post(tok, nonce1=b"\x22" * 8))
    assert second.new
    assert [b.label for b in second.dropped] == [first.binding.label]
    assert second.payload != first.payload
    assert list(rs.bindings) == [second.binding]
    assert second.binding.nonce1 == b"\x22" * 8
    assert second.binding.label in rs.ids


def test_new_token_for_the_same_material_supersedes() -> None:
    rs = make_rs()
    first = rs.authz_info(post(token(b"\x01", cti=b"\x01", scope="r_temp")))
    second = rs.authz_info(post(token(b"\x01", cti=b"\x02", scope="rw_config")))
    assert second.dropped == [first.binding]
    assert list(rs.bindings) == [second.binding]
    if first.binding.label != second.binding.label:
        assert rs.bindings.get(first.binding.label) is None
    with pytest.raises(AccessDenied) as err:  # the old scope went with the old binding
        rs.authorize(second.binding.label, "/temp", "GET")
    assert err.value.coap_code == (4, 3)
    assert rs.authorize(second.binding.label, "/config", "PUT").binding is second.binding


def test_new_token_for_the_same_client_supersedes() -> None:
    # RFC 9203 §6: one token per client; the client is named by sub
    rs = make_rs()
    first = rs.authz_info(post(token(b"\x01", cti=b"\x01", sub="c1")))
    other = rs.authz_info(post(token(b"\x03", cti=b"\x03", sub="c2")))
    second = rs.authz_info(post(token(b"\x02", cti=b"\x02", sub="c1", scope="rw_config")))
    assert second.dropped == [first.binding]
    assert {b.label for b in rs.bindings} == {other.binding.label, second.binding.label}
    assert rs.authorize(other.binding.label, "/temp", "GET").binding is other.binding


def test_tokens_without_sub_for_different_material_coexist() -> None:
    rs = make_rs()
    a = rs.authz_info(post(token(b"\x01", cti=b"\x01")))
    b = rs.authz_info(post(token(b"\x02", cti=b"\x02")))
    assert b.dropped == [] and len(rs.bindings) == 2 and a.binding in rs.bindings


def test_different_clients_coexist() -> None:
    rs = make_rs()
    a = rs.authz_info(post(token(b"\x01", cti=b"\x01", scope="r_temp", sub="c1"), rid=b"\x01"))
    b = rs.authz_info(post(token(b"\x02", cti=b"\x02", scope="rw_config", sub="c2"), rid=b"\x01"))
    assert b.dropped == [] and a.binding.label != b.binding.label
    assert len(rs.bindings) == 2 and len(rs.ids) == 2
    assert rs.authorize(a.binding.label, "/temp", "GET").binding is a.binding
    assert rs.authorize(b.binding.label, "/config", "GET").binding is b.binding
    with pytest.raises(AccessDenied) as err:
        rs.authorize(a.binding.label, "/config", "GET")
    assert err.value.coap_code == (4, 3)


def test_superseding_keeps_the_new_recipient_id_reserved() -> None:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING)
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=Clock(), rng=lambda n: b"\x05" * n)
    tok = token(b"\x01")
    rs.authz_info(post(tok, nonce1=b"\x11" * 8, rid=b"\x00"))
    second = rs.authz_info(post(tok, nonce1=b"\x22" * 8, rid=b"\x00"))
    assert second.binding.label in rs.ids
    third = rs.authz_info(post(token(b"\x02", cti=b"\x02"), rid=b"\x00"))  # another client
    assert third.binding.label != second.binding.label
    assert len(rs.bindings) == 2


# -- F: authorize -----------------------------------------------------------------------


@pytest.mark.parametrize("label", [None, b"\x99", b""])
def test_no_or_unknown_label_is_401_with_hints(label: bytes | None) -> None:
    rs = make_rs()
    rs.authz_info(post(token()))
    with pytest.raises(AccessDenied) as err:
        rs.authorize(label, "/temp", "GET")
    exc = err.value
    assert exc.coap_code == (4, 1) and exc.error_code is None
    assert exc.hints == CreationHints(as_uri=AS_URI, audience="rs1", scope="r_temp")
    assert CreationHints.decode(exc.hints.encode()) == exc.hints


def test_allowed_request_returns_the_binding() -> None:
    rs = make_rs()
    b = rs.authz_info(post(token(scope="r_temp rw_config"))).binding
    cases: list[tuple[str, str | int]] = [
        ("/temp", "GET"), ("temp", "get"), ("/config", "GET"), ("/config", "PUT"), ("/temp", 1)]
    for path, method in cases:
        assert rs.authorize(b.label, path, method).binding is b


def test_resource_not_in_scope_is_403() -> None:
    rs = make_rs()
    b = rs.authz_info(post(token(scope="r_temp"))).binding
    with pytest.raises(AccessDenied) as err:
        rs.authorize(b.label, "/config", "GET")
    assert err.value.coap_code == (4, 3) and err.value.hints == rs.hints()  # where to get more rights


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "FETCH"])
def test_method_not_in_scope_is_405(method: str) -> None:
    # RFC 9200 §5.10.2: resource covered, action not: 4.05 Method Not Allowed
    rs = make_rs()
    b = rs.authz_info(post(token(scope="r_temp"))).binding
    with pytest.raises(AccessDenied) as err:
        rs.authorize(b.label, "/temp", method)
    assert err.value.coap_code == (4, 5) and err.value.hints == rs.hints()


def test_aif_scoped_token() -> None:
    rs = make_rs()
    scope = AifScope.of([("/led", PUT | POST), ("/temp", GET)]).encode()
    b = rs.authz_info(post(token(scope=scope))).binding
    assert isinstance(b.scope, AifScope)
    assert rs.authorize(b.label, "/led", "PUT").binding is b
    assert rs.authorize(b.label, "/led", "POST").binding is b
    assert rs.authorize(b.label, "/temp", "GET").binding is b
    with pytest.raises(AccessDenied) as e405:
        rs.authorize(b.label, "/led", "GET")
    assert e405.value.coap_code == (4, 5)
    with pytest.raises(AccessDenied) as e403:
        rs.authorize(b.label, "/config", "GET")
    assert e403.value.coap_code == (4, 3)


def test_expired_token_is_401_and_binding_dropped() -> None:
    clock = Clock()
    rs = make_rs(clock)
    b = rs.authz_info(post(token(exp=NOW + 10))).binding
    assert rs.authorize(b.label, "/temp", "GET").binding is b
    clock.t = NOW + 10 + DEFAULT_SKEW  # expiry is judged with the skew that admitted the token
    with pytest.raises(AccessDenied) as err:
        rs.authorize(b.label, "/temp", "GET")
    assert err.value.coap_code == (4, 1) and err.value.hints is not None
    assert len(rs.bindings) == 0 and b.label not in rs.ids
    with pytest.raises(AccessDenied) as again:  # and it stays gone
        rs.authorize(b.label, "/temp", "GET")
    assert again.value.coap_code == (4, 1)


def test_sweep_drops_expired_bindings() -> None:
    clock = Clock()
    rs = make_rs(clock)
    short = rs.authz_info(post(token(b"\x01", cti=b"\x01", exp=NOW + 10))).binding
    long = rs.authz_info(post(token(b"\x02", cti=b"\x02", exp=NOW + 100))).binding
    clock.t = NOW + 50
    assert rs.sweep() == [short]
    assert rs.live_labels() == {long.label}
    assert short.label not in rs.ids and long.label in rs.ids


def test_token_without_exp_never_expires() -> None:
    clock = Clock()
    rs = make_rs(clock)
    b = rs.authz_info(post(token(exp=None))).binding
    clock.t = NOW + 10**9
    assert rs.authorize(b.label, "/temp", "GET").binding is b
    assert rs.sweep() == []


# -- refusals at /authz-info -------------------------------------------------------------


def raw_post(**labels: object) -> bytes:
    m: dict[int, object] = {int(Param.ACCESS_TOKEN): token(), int(Param.NONCE1): N1,
                            int(Param.ACE_CLIENT_RECIPIENTID): b"\x01"}
    for name, value in labels.items():
        label = int(Param[name.upper()])
        if value is None:
            del m[label]
        else:
            m[label] = value
    return cbor2.dumps(m)


def tampered() -> bytes:
    tok = bytearray(token())
    tok[-3] ^= 0x01
    return bytes(tok)


@dataclass(frozen=True)
class Bad:
    id: str
    payload: bytes
    exc: type[RemoteError]
    error: ErrorCode | None
    coap: tuple[int, int]
    content_format: int | None = ContentFormat.ACE_CBOR


INVALID = ErrorCode.INVALID_REQUEST
BAD_INPUT = [
    Bad("not-cbor", b"\xff\xfe", DecodeError, INVALID, (4, 0)),
    Bad("empty", b"", DecodeError, INVALID, (4, 0)),
    Bad("not-a-map", cbor2.dumps([1, 2, 3]), DecodeError, INVALID, (4, 0)),
    Bad("duplicate-key", b"\xa3\x01\x41\x00\x18\x28\x48" + N1 + b"\x18\x28\x48" + N1,  # nonce1 twice
        DecodeError, INVALID, (4, 0)),
    Bad("missing-nonce1", raw_post(nonce1=None), DecodeError, INVALID, (4, 0)),
    Bad("missing-recipient-id", raw_post(ace_client_recipientid=None), DecodeError, INVALID, (4, 0)),
    Bad("missing-token", raw_post(access_token=None), DecodeError, INVALID, (4, 0)),
    Bad("nonce1-text", raw_post(nonce1="01234567"), DecodeError, INVALID, (4, 0)),
    Bad("nonce1-too-short", raw_post(nonce1=bytes(7)), DecodeError, INVALID, (4, 0)),
    Bad("nonce1-too-long", raw_post(nonce1=bytes(33)), DecodeError, INVALID, (4, 0)),
    Bad("recipient-id-too-long", raw_post(ace_client_recipientid=bytes(8)), DecodeError, INVALID, (4, 0)),
    Bad("token-not-cose", raw_post(access_token=b"\x01"), DecodeError, INVALID, (4, 0)),
    Bad("expired-token", post(token(exp=NOW - 3600)), ClaimsError, None, (4, 1)),
    Bad("not-yet-valid", post(token(nbf=NOW + 3600)), ClaimsError, None, (4, 1)),
    Bad("wrong-audience", post(token(aud="rs2")), WrongAudience, None, (4, 3)),
    Bad("tampered-token", post(tampered()), VerificationError, None, (4, 1)),
    Bad("wrong-key-same-kid", post(token(key=OTHER_KEY)), VerificationError, None, (4, 1)),
    Bad("unknown-kid", post(token(key=symmetric_key(bytes(16), kid=b"zz"))), UnknownKeyError, None, (4, 1)),
    Bad("cnf-kid-not-osc", post(token(cnf=KidCnf(b"\x01"))), DecodeError, INVALID, (4, 0)),
    Bad("osc-unsupported-alg", post(token(cnf=OscoreCnf(material(alg=99)))), UnsupportedPopKey,
        ErrorCode.UNSUPPORTED_POP_KEY, (4, 0)),
    Bad("no-scope", post(token(scope=None)), InvalidScope, ErrorCode.INVALID_SCOPE, (4, 0)),
    Bad("unknown-text-scope", post(token(scope="foobar")), InvalidScope, ErrorCode.INVALID_SCOPE, (4, 0)),
    Bad("wrong-content-format", post(token()), UnsupportedContentFormat, None, (4, 15), ContentFormat.CBOR),
    # application/cwt announces a bare token (the DTLS profile, RFC 9202 §3.3): a map is no token
    Bad("content-format-cwt", post(token()), DecodeError, ErrorCode.INVALID_REQUEST, (4, 0), ContentFormat.CWT),
]


def test_bad_input_table_is_large_enough() -> None:
    assert len(BAD_INPUT) >= 15
    assert len({b.id for b in BAD_INPUT}) == len(BAD_INPUT)


@pytest.mark.parametrize("bad", BAD_INPUT, ids=lambda b: b.id)
def test_bad_authz_info_is_refused_and_changes_nothing(bad: Bad) -> None:
    rs = make_rs()
    existing = rs.authz_info(post(token(b"\x09", cti=b"\x09"), rid=b"\x01")).binding
    before = snapshot(rs)
    with pytest.raises(RemoteError) as info:
        rs.authz_info(bad.payload, bad.content_format)
    exc = info.value
    assert type(exc) is bad.exc, repr(exc)
    assert exc.error_code == bad.error, repr(exc)
    assert exc.coap_code == bad.coap, repr(exc)
    assert snapshot(rs) == before
    assert rs.authorize(existing.label, "/temp", "GET").binding is existing


def test_refused_repost_of_the_same_client_keeps_its_binding() -> None:
    # a token for the same material that fails verification must not drop the working one
    rs = make_rs()
    good = rs.authz_info(post(token(b"\x01"))).binding
    with pytest.raises(ClaimsError):
        rs.authz_info(post(token(b"\x01", cti=b"\x02", aud="rs2"), nonce1=b"\x33" * 8))
    assert list(rs.bindings) == [good]


# -- bounded store ----------------------------------------------------------------------


def test_store_full_of_tokens_in_use_is_503() -> None:
    rs = make_rs(max_tokens=3)
    live = [rs.authz_info(post(token(bytes([i]), cti=bytes([i])))).binding for i in range(1, 4)]
    for b in live:  # each protected a request: in use
        assert rs.authorize(b.label, "/temp", "GET").binding is b
    before = snapshot(rs)
    with pytest.raises(RemoteError) as err:
        rs.authz_info(post(token(b"\x04", cti=b"\x04")))
    assert err.value.coap_code == (5, 3) and err.value.error_code is None
    assert snapshot(rs) == before
    for b in live:
        assert rs.authorize(b.label, "/temp", "GET").binding is b


def test_a_flood_displaces_only_unused_tokens() -> None:
    # RFC 9200 §6: /authz-info is unauthenticated; a flood must not evict tokens in use
    rs = make_rs(max_tokens=3)
    used = rs.authz_info(post(token(b"\x01", cti=b"\x01"))).binding
    assert rs.authorize(used.label, "/temp", "GET").binding is used
    for i in range(2, 12):  # ten more, never used
        rs.authz_info(post(token(bytes([i]), cti=bytes([i]))))
    assert len(rs.bindings) == 3 and rs.bindings.get(used.label) is used
    assert rs.authorize(used.label, "/temp", "GET").binding is used


def test_byte_budget() -> None:
    rs = ResourceServer(RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, max_bytes=100),
                        KeyRing([RS_KEY]), clock=Clock())
    with pytest.raises(RemoteError) as err:  # one binding alone exceeds the budget
        rs.authz_info(post(token()))
    assert err.value.coap_code == (4, 13) and len(rs.bindings) == 0


def test_full_store_purges_expired_tokens() -> None:
    clock = Clock()
    rs = make_rs(clock, max_tokens=3)
    short = [rs.authz_info(post(token(bytes([i]), cti=bytes([i]), exp=NOW + 10))).binding for i in (1, 2)]
    keep = rs.authz_info(post(token(b"\x03", cti=b"\x03", exp=NOW + 1000))).binding
    clock.t = NOW + 20 + DEFAULT_SKEW
    outcome = rs.authz_info(post(token(b"\x04", cti=b"\x04", exp=NOW + 1000)))
    assert sorted(b.label for b in outcome.dropped) == sorted(b.label for b in short)
    assert {b.label for b in rs.bindings} == {keep.label, outcome.binding.label}
    assert len(rs.ids) == 2
    assert all(b.label not in rs.ids for b in short if b.label != outcome.binding.label)


def test_superseding_in_a_full_store_is_not_refused() -> None:
    rs = make_rs(max_tokens=2)
    rs.authz_info(post(token(b"\x01", cti=b"\x01")))
    rs.authz_info(post(token(b"\x02", cti=b"\x02")))
    outcome = rs.authz_info(post(token(b"\x01", cti=b"\x03")))
    assert len(outcome.dropped) == 1 and len(rs.bindings) == 2


# -- cnonce (RFC 9200 §5.3.1, §5.10.1.1) -------------------------------------------------------


def cnonce_rs(clock: Clock) -> ResourceServer:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, cnonce=True, cnonce_lifetime=60)
    return ResourceServer(config, KeyRing([RS_KEY]), clock=clock, rng=random.Random(5).randbytes)


def test_cnonce_is_required_fresh_and_single_use() -> None:
    clock = Clock()
    rs = cnonce_rs(clock)
    with pytest.raises(AccessDenied) as denied:
        rs.authorize(None, "/temp", "GET")
    cnonce = denied.value.hints.cnonce if denied.value.hints else None
    assert cnonce is not None and len(cnonce) == 14  # stamp (6 bytes) and tag (8): ace.rs.freshness
    with pytest.raises(AccessDenied) as missing:  # no cnonce: 4.01 with a new one
        rs.authz_info(post(token(b"\x01", cti=b"\x01")))
    assert missing.value.coap_code == (4, 1) and missing.value.hints and missing.value.hints.cnonce
    ok = rs.authz_info(post(token(b"\x02", cti=b"\x02", cnonce=cnonce)))
    assert ok.new
    with pytest.raises(AccessDenied):  # the same cnonce in another token: used up
        rs.authz_info(post(token(b"\x03", cti=b"\x03", cnonce=cnonce)))
    with pytest.raises(AccessDenied):  # one the RS never gave out
        rs.authz_info(post(token(b"\x04", cti=b"\x04", cnonce=b"\x00" * 8)))
    stale = rs.hints().cnonce
    clock.t += 61
    with pytest.raises(AccessDenied):  # too old
        rs.authz_info(post(token(b"\x05", cti=b"\x05", cnonce=stale, exp=clock.t + 3600)))


# -- exi with per-RS sequence numbers (RFC 9200 §5.10.3) ---------------------------------------


def exi_token(seq: int, mid: bytes, exi: int = 60) -> bytes:
    claims = AccessTokenClaims(aud="rs1", exi=exi, cti=b"rs1" + seq.to_bytes(4, "big"), scope="r_temp",
                               cnf=OscoreCnf(material(mid)))
    return issue_token(claims, RS_KEY, rng=random.Random(seq).randbytes)


def test_exi_sequence_numbers_survive_an_rs_restart(tmp_path: Any) -> None:
    from ace.store.seqno import FileSequenceStore

    state = FileSequenceStore(tmp_path / "rs-state.json")
    clock = Clock()
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING)
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=clock, state=state)
    first = rs.authz_info(post(exi_token(1, b"\x01"), rid=b"\x01")).binding
    rs.authz_info(post(exi_token(2, b"\x02"), rid=b"\x02"))
    assert first.expires_at == clock.t + 60  # counted from reception, no exp needed
    clock.t += 61
    assert len(rs.sweep()) == 2  # both expired: the highest expired sequence number is 2
    state.close()
    # the RS restarts; its clock starts over (no RTC): only the sequence numbers tell what is old
    state = FileSequenceStore(tmp_path / "rs-state.json")
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=Clock(), state=state)
    with pytest.raises(RemoteError) as old:
        rs.authz_info(post(exi_token(2, b"\x02"), rid=b"\x02"))
    assert old.value.coap_code == (4, 1)
    assert rs.authz_info(post(exi_token(3, b"\x03"), rid=b"\x03")).new
    state.close()


def test_exi_in_milliseconds_for_peers_that_send_them() -> None:
    clock = Clock()
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, exi_unit=0.001)
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=clock)
    binding = rs.authz_info(post(exi_token(1, b"\x01", exi=30_000))).binding  # ace-java: 30 s as 30000
    assert binding.expires_at == clock.t + 30


def test_revoking_a_token_posted_twice_drops_every_binding_of_it() -> None:
    # the token is visible on the wire: POSTed again with a new nonce1 it makes a second binding
    # while the first (in use) waits for its successor's first request; revocation ends both
    rs = make_rs()
    tok = token()
    first = rs.authz_info(post(tok, nonce1=N1)).binding
    assert rs.authorize(first.label, "/temp", "GET").binding is first
    second = rs.authz_info(post(tok, nonce1=b"\x22" * 8)).binding
    assert rs.bindings.get(first.label) is first and rs.bindings.get(second.label) is second
    gone = rs.revoke([trl_hash(tok)])
    assert {b.label for b in gone} == {first.label, second.label} and len(rs.bindings) == 0
    for label in (first.label, second.label):
        with pytest.raises(AccessDenied) as err:
            rs.authorize(label, "/temp", "GET")
        assert err.value.coap_code == (4, 1)


def _bare(label: bytes, cost: int) -> Binding:
    return Binding(label=label, token_hash=label, claims=AccessTokenClaims(), scope=TextScope(("r_temp",)),
                   expires_at=None, nonce1=b"", response=b"", context=oscore.OscoreContextParams.__new__(
                       oscore.OscoreContextParams), client_key=label, pop_id=label, cost=cost)


@pytest.mark.parametrize("how", ["add", "replace"])
def test_a_503_evicts_nothing(how: str) -> None:
    # the store decides what must go before anything goes: a refused binding changes nothing,
    # so no binding leaves the store unreported (its id and channel would leak)
    store = BindingStore(max_tokens=10, max_bytes=10_000)
    store.add(_bare(b"used", 5000), 0)
    store.mark_used(b"used")
    store.add(_bare(b"flood", 2000), 0)  # never used: evictable
    store.add(_bare(b"me", 2000), 0)
    store.mark_used(b"me")
    before = (list(store), store.bytes)
    with pytest.raises(RemoteError) as err:
        if how == "add":
            store.add(_bare(b"new", 6000), 0)
        else:
            store.replace(_bare(b"me", 6000), 0)
    assert err.value.coap_code == (5, 3)
    assert (list(store), store.bytes) == before and store.used(b"me") and store.used(b"used")
    # with room after evicting the unused one, it goes and is reported
    assert [b.label for b in store.replace(_bare(b"me", 4000), 0)] == [b"flood"]
    assert store.used(b"me") and store.bytes == 9000
