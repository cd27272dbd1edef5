"""What the RS core never takes again, however the token is encoded (issue 17 items 2, 6, 8, 9):
revoked tokens (by RFC 9770 hash of the canonical encoding, and by cti), tokens a newer one of the
same client replaced, tokens older than the client's current one, another client's token for a
key in use, and junk that is no reference token (refused without an introspection)."""

from __future__ import annotations

import random

import cbor2
import pytest
from rs_support import MEANING, RS_KEY, Clock, make_rs, material, post, token
from support import NOW

from ace.cbor.labels import AceProfile, ContentFormat
from ace.errors import DecodeError, RemoteError
from ace.rs.server import ResourceServer, RsConfig
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, KidCnf, OscoreCnf
from ace.tokens.cwt import KeyRing, issue_token
from ace.tokens.hashing import token_hash
from ace.tokens.keys import symmetric_key

CWT = ContentFormat.CWT
PSK = symmetric_key(bytes(range(16)), kid=b"pskkid01")


def tag16(tok: bytes) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(16, cbor2.loads(tok)))


def dtls_rs(clock: Clock | None = None, **kw: object) -> ResourceServer:
    config = RsConfig(audience="rs1", as_uri="coap://as", scope_meaning=MEANING,
                      profiles=(AceProfile.COAP_DTLS,), **kw)  # type: ignore[arg-type]
    return ResourceServer(config, KeyRing([RS_KEY]), clock=clock or Clock(), rng=random.Random(3).randbytes)


def dtls_token(*, sub: str | None = "clientA", cti: bytes = b"\x10", exp: float = NOW + 3600) -> bytes:
    claims = AccessTokenClaims(sub=sub, aud="rs1", exp=exp, cti=cti, scope="r_temp", cnf=CoseKeyCnf(PSK))
    return issue_token(claims, RS_KEY, rng=random.Random(cti).randbytes)


def test_revoked_token_is_refused_in_any_tag_form() -> None:
    rs = make_rs()
    tok = token(sub="clientA")
    rs.revoke([token_hash(tok)])  # revoked before it ever came here
    for form in (tok, tag16(tok), b"\xd8\x3d" + tag16(tok)):
        with pytest.raises(RemoteError) as info:
            rs.authz_info(post(form))
        assert info.value.coap_code == (4, 1)
    assert not list(rs.bindings)


def test_revoked_binding_is_remembered_by_cti() -> None:
    rs = make_rs()
    tok = token(sub="clientA")
    outcome = rs.authz_info(post(tok))
    assert rs.revoke([outcome.binding.token_hash]) == [outcome.binding]
    # the same claims (cti) under another IV: other bytes, other hash, the same token
    claims = AccessTokenClaims(sub="clientA", aud="rs1", exp=NOW + 3600, cti=b"\x01", scope="r_temp",
                               cnf=OscoreCnf(material()))
    other_bytes = issue_token(claims, RS_KEY, rng=random.Random(99).randbytes)
    assert token_hash(other_bytes) != token_hash(tok)
    with pytest.raises(RemoteError) as info:
        rs.authz_info(post(other_bytes, nonce1=b"\x02" * 8))
    assert info.value.coap_code == (4, 1) and "revoked" in info.value.description


def test_re_encoded_dtls_token_is_the_same_token() -> None:
    rs = dtls_rs()
    tok = dtls_token()
    first = rs.authz_info(tok, CWT)
    rs.authorize(first.binding.label, "/temp", "GET")  # in use
    again = rs.authz_info(tag16(tok), CWT)
    assert not again.new and again.binding is first.binding and rs.bindings.used(first.binding.label)


def test_token_replaced_by_a_newer_one_never_comes_back() -> None:
    rs = make_rs()
    old = rs.authz_info(post(token(b"\x01", sub="clientA", cti=b"\x01", exp=NOW + 100), rid=b"\x01"))
    rs.authorize(old.binding.label, "/temp", "GET")
    new = rs.authz_info(post(token(b"\x02", sub="clientA", cti=b"\x02", exp=NOW + 200), rid=b"\x02"))
    rs.authorize(new.binding.label, "/temp", "GET")  # first use: the old one goes, retired
    assert rs.bindings.get(old.binding.label) is None
    with pytest.raises(RemoteError) as info:  # replayed with a fresh nonce1
        rs.authz_info(post(token(b"\x01", sub="clientA", cti=b"\x01", exp=NOW + 100), nonce1=b"\x03" * 8))
    assert info.value.coap_code == (4, 1)
    assert rs.bindings.get(new.binding.label) is not None


def test_older_token_cannot_displace_a_newer_unused_one() -> None:
    rs = make_rs()
    older = token(b"\x01", sub="clientA", cti=b"\x01", exp=NOW + 100)
    rs.authz_info(post(older, rid=b"\x01"))
    newer = rs.authz_info(post(token(b"\x02", sub="clientA", cti=b"\x02", exp=NOW + 200), rid=b"\x02"))
    replayed = rs.authz_info(post(older, nonce1=b"\x04" * 8, rid=b"\x03"))  # a channel nobody can use
    assert rs.bindings.get(newer.binding.label) is newer.binding  # the newer one was not displaced
    assert replayed.binding.label != newer.binding.label


def iat_token(cti: bytes, iat: int, exp: int) -> bytes:
    claims = AccessTokenClaims(sub="clientA", aud="rs1", iat=iat, exp=exp, cti=cti, scope="r_temp",
                               cnf=CoseKeyCnf(PSK))
    return issue_token(claims, RS_KEY, rng=random.Random(cti).randbytes)


def test_a_shorter_lifetime_does_not_make_a_newer_token_older() -> None:
    """The AS's token lifetime was shortened: the new token ends earlier but was issued later."""
    rs = dtls_rs()
    rs.authz_info(iat_token(b"\x01", NOW - 60, NOW + 3600), CWT)
    assert rs.authz_info(iat_token(b"\x02", NOW, NOW + 600), CWT).new


def test_a_key_in_use_moves_only_to_a_newer_token() -> None:
    rs = dtls_rs()
    first = rs.authz_info(iat_token(b"\x05", NOW, NOW + 600), CWT)
    rs.authorize(first.binding.label, "/temp", "GET")
    for cti, iat in ((b"\x04", NOW), (b"\x09", NOW - 1)):  # the same second with a lower cti; earlier
        with pytest.raises(RemoteError) as info:
            rs.authz_info(iat_token(cti, iat, NOW + 600), CWT)
        assert info.value.coap_code == (4, 1)
    second = rs.authz_info(iat_token(b"\x06", NOW, NOW + 600), CWT)  # the same second, counted up
    assert second.new and rs.bindings.get(first.binding.label) is second.binding
    with pytest.raises(RemoteError):  # the replaced token never comes back
        rs.authz_info(tag16(iat_token(b"\x05", NOW, NOW + 600)), CWT)


def test_another_clients_token_for_a_key_in_use_is_refused() -> None:
    rs = dtls_rs()
    mine = rs.authz_info(dtls_token(sub="clientA"), CWT)
    with pytest.raises(RemoteError) as info:
        rs.authz_info(dtls_token(sub="clientB", cti=b"\x11", exp=NOW + 7200), CWT)
    assert info.value.coap_code == (4, 1)
    assert rs.bindings.get(mine.binding.label) is mine.binding


@pytest.mark.parametrize("junk", [b"\x41" + bytes(35), b"\x01" * 15, b"\x01" * 17, bytes(70)])
def test_junk_is_refused_without_introspection(junk: bytes) -> None:
    config = RsConfig(audience="rs1", as_uri="coap://as", scope_meaning=MEANING, reference_tokens=True)
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=Clock())
    with pytest.raises(DecodeError) as info:
        rs.authz_info(junk, CWT)
    assert info.value.coap_code == (4, 0)


def test_any_reference_length_when_configured() -> None:
    from ace.rs.introspection import NeedsIntrospection
    config = RsConfig(audience="rs1", as_uri="coap://as", scope_meaning=MEANING, reference_tokens=True,
                      reference_len=None)
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=Clock())
    assert isinstance(rs.authz_info(b"\x01" * 40, CWT), NeedsIntrospection)


def test_an_update_posted_again_does_not_move_the_end_and_the_replaced_token_is_retired() -> None:
    clock = Clock()
    rs = make_rs(clock)
    first = rs.authz_info(post(token(b"\x01", sub="clientA", cti=b"\x01")))
    label = first.binding.label
    rs.authorize(label, "/temp", "GET")
    update = issue_token(AccessTokenClaims(sub="clientA", aud="rs1", exi=60, cti=b"rs1" + bytes(3) + b"\x07",
                                           scope="r_temp", cnf=KidCnf(b"\x01")), RS_KEY,
                         rng=random.Random(7).randbytes)
    body = cbor2.dumps({1: update})
    assert rs.authz_info(body, ContentFormat.ACE_CBOR, channel_label=label).new
    ends = rs.bindings.get(label).expires_at  # type: ignore[union-attr]
    clock.t += 55
    again = rs.authz_info(body, ContentFormat.ACE_CBOR, channel_label=label)  # RFC 9200 §5.10.3: exi once
    assert not again.new and rs.bindings.get(label).expires_at == ends  # type: ignore[union-attr]
    with pytest.raises(RemoteError) as info:  # the token the update replaced: never again
        rs.authz_info(post(token(b"\x01", sub="clientA", cti=b"\x01"), nonce1=b"\x05" * 8))
    assert info.value.coap_code == (4, 1)
