"""What the RS core never takes again, however the token is encoded (issue 17 items 2, 6, 8, 9):
revoked tokens (by RFC 9770 hash of the canonical encoding, and by cti), tokens a newer one of the
same client replaced, tokens older than the client's current one, another client's token for a
key in use, and junk that is no reference token (refused without an introspection)."""

from __future__ import annotations

import random

import cbor2
import pytest
from support import NOW
from test_rs_core import MEANING, RS_KEY, Clock, make_rs, material, post, token

from ace.cbor.labels import AceProfile, ContentFormat
from ace.errors import DecodeError, RemoteError
from ace.rs.server import ResourceServer, RsConfig
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, OscoreCnf
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
    with pytest.raises(RemoteError) as info:
        rs.authz_info(post(older, nonce1=b"\x04" * 8, rid=b"\x03"))
    assert info.value.coap_code == (4, 1)
    assert rs.bindings.get(newer.binding.label) is newer.binding


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
    with pytest.raises(NeedsIntrospection):
        rs.authz_info(b"\x01" * 40, CWT)
