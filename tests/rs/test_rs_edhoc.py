"""The RS core's EDHOC half (draft-ietf-ace-edhoc-oscore-profile-11 §4.2, §4.6; workflow-and-params
-08 §3.7, §9), in memory: a token from EAD_3 checked against ID_CRED_I and the preset's limits, bound
to (session_id, CRED_I) once EDHOC completes, superseded over its context, uploaded by the AS."""

from __future__ import annotations

import random

import cbor2
import pytest
from rs_support import AS_URI, GET, MEANING, RS_KEY, Clock
from support import NOW

from ace.cbor.labels import AceProfile, Alg, Curve
from ace.errors import DecodeError, MissingOldToken, RemoteError, ServiceUnavailable, TokenRefused, UnsupportedPopKey
from ace.messages import AuthzInfoUpdate
from ace.profiles.edhoc import EdhocChannel, credential, session_label
from ace.profiles.edhoc_presets import preset
from ace.replies import reply_of
from ace.rs.server import ResourceServer, RsConfig
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import Cnf, CoseKeyCnf, KidCnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token
from ace.tokens.edhoc_info import EdhocInfo
from ace.tokens.keys import symmetric_key

DRAFT, ARIEL = preset("draft-11"), preset("ariel-os")
KEY_31 = symmetric_key(bytes(range(32)), kid=b"a31", alg=int(Alg.AES_CCM_16_128_256))
CLIENT = generate(Curve.P_256, kid=b"\x2b").public()
OTHER = generate(Curve.P_256, kid=b"\x2c").public()
CRED = credential(CLIENT, "client")
AIF = cbor2.dumps([["/temp", GET]])
BY_KID = bytes.fromhex("a104412b")  # {4: h'2b'}


def make_rs(clock: Clock | None = None) -> ResourceServer:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, profiles=(AceProfile.COAP_EDHOC_OSCORE,))
    return ResourceServer(config, KeyRing([RS_KEY, KEY_31]), clock=clock or Clock(), rng=random.Random(1).randbytes)


def edhoc_token(*, cnf: Cnf | None = CRED, session_id: bytes | None = b"\x05", cti: bytes = b"\x01",
                scope: str | bytes = "r_temp", iat: int | None = NOW, ariel: bool = False, pad: int = 0) -> bytes:
    claims = AccessTokenClaims(aud="rs1", exp=NOW + 3600, iat=iat, cti=cti, scope=scope, cnf=cnf,
                               edhoc_info=EdhocInfo(session_id=session_id) if session_id is not None else None,
                               extra=((-70000, b"\x00" * pad),) if pad else ())
    if ariel:
        return issue_token(claims, KEY_31, tagged=True, rng=random.Random(cti).randbytes)
    return issue_token(claims, RS_KEY, rng=random.Random(cti).randbytes)


def test_forward_flow_binds_session_and_credential() -> None:
    rs = make_rs()
    accept = rs.accept_edhoc_token(edhoc_token(), BY_KID, DRAFT)
    assert accept.cred_raw == CRED.raw and accept.session_id == b"\x05"
    assert accept.label == session_label(b"\x05", CRED.raw) and len(rs.bindings) == 0  # nothing stored yet
    outcome = rs.commit_edhoc(accept)
    assert outcome.new and outcome.binding.label == accept.label and len(rs.bindings) == 1
    assert isinstance(outcome.binding.context, EdhocChannel) and outcome.binding.context.cred == CRED.raw
    assert rs.authorize(accept.label, "/temp", "GET").binding is outcome.binding
    by_value = cbor2.dumps({14: cbor2.loads(CRED.raw)})  # ID_CRED_I by value
    again = rs.accept_edhoc_token(edhoc_token(), by_value, DRAFT)
    second = rs.commit_edhoc(again)  # EP §4.2: the earlier session of the same pair goes
    assert [b.label for b in second.dropped] == [accept.label] and len(rs.bindings) == 1


def test_a_newer_token_of_the_same_pair_replaces_and_an_older_is_refused() -> None:
    rs = make_rs()
    rs.commit_edhoc(rs.accept_edhoc_token(edhoc_token(cti=b"\x02"), BY_KID, DRAFT))
    with pytest.raises(TokenRefused):
        rs.accept_edhoc_token(edhoc_token(cti=b"\x01", iat=NOW - 10), BY_KID, DRAFT)
    out = rs.commit_edhoc(rs.accept_edhoc_token(edhoc_token(cti=b"\x03", iat=NOW + 1), BY_KID, DRAFT))
    assert out.binding.claims.cti == b"\x03" and len(rs.bindings) == 1


BAD = [
    ("cred mismatch by kid", lambda: edhoc_token(), bytes.fromhex("a104412c"), DRAFT, TokenRefused),
    ("cred mismatch by value", lambda: edhoc_token(), cbor2.dumps({14: cbor2.loads(credential(OTHER).raw)}), DRAFT,
     TokenRefused),
    ("ID_CRED_I neither form", lambda: edhoc_token(), cbor2.dumps({5: b"x"}), DRAFT, DecodeError),
    ("bare COSE_Key cnf", lambda: edhoc_token(cnf=CoseKeyCnf(CLIENT)), BY_KID, DRAFT, UnsupportedPopKey),
    ("kccs cnf for ariel", lambda: edhoc_token(ariel=True, scope=AIF), BY_KID, ARIEL, UnsupportedPopKey),
    ("no session_id", lambda: edhoc_token(session_id=None), BY_KID, DRAFT, DecodeError),
    ("malformed token", lambda: b"\x84\x40\xa0\x41\x00", BY_KID, DRAFT, DecodeError),
    ("not for us", lambda: issue_token(AccessTokenClaims(aud="rs1", cnf=CRED, edhoc_info=EdhocInfo(session_id=b"\x05")),
                                       symmetric_key(bytes(16), kid=b"zz")), BY_KID, DRAFT, RemoteError),
    ("ariel: untagged", lambda: issue_token(AccessTokenClaims(aud="rs1", iat=NOW, scope=AIF, cnf=CoseKeyCnf(CLIENT)),
                                            KEY_31), BY_KID, ARIEL, TokenRefused),
    ("ariel: alg 10", lambda: issue_token(AccessTokenClaims(aud="rs1", iat=NOW, scope=AIF, cnf=CoseKeyCnf(CLIENT)),
                                          RS_KEY, tagged=True), BY_KID, ARIEL, TokenRefused),
    ("ariel: no iat", lambda: edhoc_token(cnf=CoseKeyCnf(CLIENT), scope=AIF, iat=None, ariel=True), BY_KID, ARIEL,
     TokenRefused),
    ("ariel: text scope", lambda: edhoc_token(cnf=CoseKeyCnf(CLIENT), ariel=True), BY_KID, ARIEL, TokenRefused),
    ("ariel: AIF > 64", lambda: edhoc_token(cnf=CoseKeyCnf(CLIENT), ariel=True,
                                            scope=cbor2.dumps([["/temp" + "x" * 60, GET]])), BY_KID, ARIEL,
     TokenRefused),
    ("ariel: > 256 bytes", lambda: edhoc_token(cnf=CoseKeyCnf(CLIENT), ariel=True, scope=AIF, pad=120), BY_KID,
     ARIEL, TokenRefused),
]


@pytest.mark.parametrize(("make", "id_cred", "points", "error"), [row[1:] for row in BAD], ids=[r[0] for r in BAD])
def test_refusals_change_nothing(make, id_cred, points, error) -> None:  # type: ignore[no-untyped-def]
    rs = make_rs()
    rs.commit_edhoc(rs.accept_edhoc_token(edhoc_token(session_id=b"\x99"), BY_KID, DRAFT))
    before = [(b.label, b.token_hash) for b in rs.bindings]
    with pytest.raises(error) as info:
        rs.accept_edhoc_token(make(), id_cred, points)
    assert [(b.label, b.token_hash) for b in rs.bindings] == before
    code = reply_of(info.value)[0]
    assert code == (4, 1) if isinstance(info.value, TokenRefused) else code[0] in (4, 5)


def test_the_ariel_preset_takes_what_coapcore_takes() -> None:
    rs = make_rs()
    tok = edhoc_token(cnf=CoseKeyCnf(CLIENT), ariel=True, scope=AIF, session_id=None)
    assert len(tok) <= 256 and tok[0] == 0xD0  # a tagged COSE_Encrypt0
    accept = rs.accept_edhoc_token(tok, BY_KID, ARIEL)
    assert accept.cred_raw == credential(CLIENT).raw  # a1 08 a1 01 || COSE_Key, no sub
    assert accept.session_id == b""
    assert rs.commit_edhoc(accept).new


def test_update_over_the_context() -> None:
    rs = make_rs()
    label = rs.commit_edhoc(rs.accept_edhoc_token(edhoc_token(), BY_KID, DRAFT)).binding.label
    new = edhoc_token(cti=b"\x02", iat=NOW + 1, scope="rw_config")
    out = rs.update_edhoc_token(new, 61, label)  # EP §4.6.1: application/cwt, the token itself
    assert out.new and out.binding.label == label and out.binding.claims.scope == "rw_config"
    assert rs.authorize(label, "/config", "PUT")
    by_kid = edhoc_token(cti=b"\x05", iat=NOW + 3, scope="r_temp", cnf=KidCnf(b"\x2b"))  # by reference
    assert rs.update_edhoc_token(by_kid, 61, label).binding.claims.cti == b"\x05"
    new = edhoc_token(cti=b"\x06", iat=NOW + 4, scope="rw_config")
    assert rs.update_edhoc_token(new, 61, label).new
    again = rs.authz_info(new, 61, channel_label=label)  # the generic protected POST takes the same path
    assert not again.new
    for bad in (edhoc_token(cti=b"\x03", iat=NOW + 2, session_id=b"\x06"),  # another session
                edhoc_token(cti=b"\x04", iat=NOW + 5, cnf=credential(OTHER)),  # another credential
                edhoc_token(cti=b"\x07", iat=NOW + 5, cnf=KidCnf(b"\x2c"))):  # another kid
        before = [(b.label, b.token_hash) for b in rs.bindings]
        with pytest.raises(TokenRefused) as info:  # EP §4.6.2: 4.01
            rs.update_edhoc_token(bad, 61, label)
        assert reply_of(info.value)[0] == (4, 1) and [(b.label, b.token_hash) for b in rs.bindings] == before
    with pytest.raises(TokenRefused):
        rs.update_edhoc_token(new, 61, b"edhoc-s:unknown")


def test_upload_by_the_as_then_session_id_then_update() -> None:
    rs = make_rs()
    first = rs.upload_edhoc_token(edhoc_token(), 61, DRAFT)  # WF §3.7: as if the client had sent it
    found = rs.accept_session_id(b"\x05", BY_KID)  # WF §9: EAD Session ID
    assert found.label == first.binding.label and found.cred_raw == CRED.raw
    with pytest.raises(TokenRefused):
        rs.accept_session_id(b"\x06", BY_KID)
    with pytest.raises(TokenRefused):
        rs.accept_session_id(b"\x05", bytes.fromhex("a104412c"))
    update = AuthzInfoUpdate(access_token=edhoc_token(cti=b"\x02", iat=NOW + 1, scope="rw_config"),
                             updated_rights=True)
    out = rs.upload_edhoc_token(update.encode(), 19, DRAFT)
    assert out.binding.label == first.binding.label and out.binding.claims.scope == "rw_config"
    by_kid = AuthzInfoUpdate(access_token=edhoc_token(cti=b"\x04", iat=NOW + 2, cnf=KidCnf(b"\x2b")),
                             updated_rights=True)
    assert rs.upload_edhoc_token(by_kid.encode(), 19, DRAFT).binding.claims.cti == b"\x04"
    orphan = AuthzInfoUpdate(access_token=edhoc_token(cti=b"\x03", session_id=b"\x07"), updated_rights=True)
    with pytest.raises(MissingOldToken) as info:  # WF §3.7.1: 5.00 missing_old_token
        rs.upload_edhoc_token(orphan.encode(), 19, DRAFT)
    code, _, cf = reply_of(info.value)
    assert code == (5, 0) and cf == 257 and len(rs.bindings) == 1


def test_an_unprotected_bare_token_is_no_longer_taken() -> None:
    rs = make_rs()
    with pytest.raises(RemoteError):
        rs.authz_info(edhoc_token(), 61)
    assert len(rs.bindings) == 0


def test_an_rs_without_the_profile_refuses() -> None:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING)
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=Clock())
    with pytest.raises(UnsupportedPopKey):
        rs.accept_edhoc_token(edhoc_token(), BY_KID, DRAFT)


def test_sign1_tokens_are_verified_too() -> None:
    signer = generate(Curve.P_256, kid=b"as")
    rs = ResourceServer(RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING,
                                 profiles=(AceProfile.COAP_EDHOC_OSCORE,)),
                        KeyRing([signer.public()]), clock=Clock())
    claims = AccessTokenClaims(aud="rs1", exp=NOW + 60, iat=NOW, cti=b"\x01", scope=AIF, cnf=CoseKeyCnf(CLIENT))
    tok = issue_token(claims, signer, kind=Kind.SIGN, tagged=True)
    assert rs.accept_edhoc_token(tok, BY_KID, ARIEL).cred_raw == credential(CLIENT).raw


def test_a_token_that_needs_introspection_is_503_inside_edhoc() -> None:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, introspect=True,
                      profiles=(AceProfile.COAP_EDHOC_OSCORE,))
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=Clock())
    with pytest.raises(ServiceUnavailable):
        rs.accept_edhoc_token(edhoc_token(), BY_KID)  # RsConfig.edhoc_preset: draft-11
    assert len(rs.bindings) == 0


def test_a_cnonce_is_spent_only_when_edhoc_commits() -> None:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, profiles=(AceProfile.COAP_EDHOC_OSCORE,),
                      cnonce=True, cnonce_lifetime=60)
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=Clock(), rng=random.Random(1).randbytes)
    cnonce = rs.hints().cnonce
    claims = AccessTokenClaims(aud="rs1", exp=NOW + 3600, iat=NOW, cti=b"\x01", scope="r_temp", cnf=CRED,
                               cnonce=cnonce, edhoc_info=EdhocInfo(session_id=b"\x05"))
    token = issue_token(claims, RS_KEY, rng=random.Random(1).randbytes)
    rs.accept_edhoc_token(token, BY_KID, DRAFT)  # message_3 then fails to verify: nothing commits
    accept = rs.accept_edhoc_token(token, BY_KID, DRAFT)  # the cnonce is still good for the next run
    assert rs.commit_edhoc(accept).new
    with pytest.raises(RemoteError, match="cnonce used before"):  # RFC 9200 §5.10.1.1: once
        rs.accept_edhoc_token(token, BY_KID, DRAFT)
    with pytest.raises(RemoteError, match="cnonce used before"):  # two runs admitted at once: one commits
        rs.commit_edhoc(accept)
