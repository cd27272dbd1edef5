"""The EDHOC profile at draft -11 (sans I/O): presets, kccs credentials, what the AS takes in req_cnf."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ace.cbor import codec
from ace.cbor.labels import AceProfile, CnfMethod, Curve
from ace.errors import ConfigError, ErrorCode, IncompatibleProfiles, UnsupportedPopKey
from ace.messages import AccessTokenResponse
from ace.profiles.edhoc import PROFILE, EdhocChannel, client_cred, cred_of_cnf, credential, rs_channel, session_label
from ace.profiles.edhoc_presets import PRESETS, preset
from ace.tokens.cnf import CoseKeyCnf, KccsCnf, KidCnf
from ace.tokens.crypto import generate
from ace.tokens.edhoc_info import EdhocInfo
from ace.tokens.keys import CoseKey, symmetric_key

CLIENT = generate(Curve.P_256, kid=b"\x2b").public()
RS = generate(Curve.P_256, kid=b"\x0a").public()


@dataclass
class Rs:
    audience: str = "rs1"
    auth_key: CoseKey | None = RS


def test_presets_carry_the_issue_table() -> None:
    d, a, o = preset("draft-11"), preset("ariel-os"), preset("aiocoap")
    assert (d.ead_token, d.ead_cred_by_value, d.ead_rch, d.ead_session_id, d.cnf_method) == (24, 15, 1, 2, 11)
    assert (a.ead_token, a.ead_rch, a.cnf_method, a.max_token, a.max_aif) == (20, None, CnfMethod.COSE_KEY, 256, 64)
    assert a.token_tagged and a.require_iat and a.combined_request_only and a.single_ead_item
    assert a.token_algs == frozenset({31, -7}) and a.suites == (2,)
    assert (o.ead_token, o.ead_rch, o.ead_session_id) == (26, 12, 5)
    assert all(p.profile == AceProfile.COAP_EDHOC_OSCORE == 4 for p in PRESETS.values())


def test_unknown_preset_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="aiocoap, ariel-os, draft-11"):
        preset("draft-10")


def test_req_cnf_must_be_kccs_not_a_bare_cose_key() -> None:
    with pytest.raises(UnsupportedPopKey) as info:  # EP §3.1
        PROFILE.check_req_cnf(CoseKeyCnf(CLIENT), Rs())
    assert info.value.error_code is ErrorCode.UNSUPPORTED_POP_KEY and info.value.coap_code == (4, 0)
    with pytest.raises(UnsupportedPopKey):
        PROFILE.check_req_cnf(None, Rs())
    with pytest.raises(UnsupportedPopKey):  # not suite 2's curve
        PROFILE.check_req_cnf(KccsCnf.of_key(generate(Curve.ED25519, kid=b"e").public()), Rs())
    with pytest.raises(IncompatibleProfiles):
        PROFILE.check_req_cnf(credential(CLIENT), Rs(auth_key=None))
    assert PROFILE.check_req_cnf(KidCnf(b"\x2b"), Rs()) == KidCnf(b"\x2b")
    cnf = credential(CLIENT, "client")
    assert PROFILE.check_req_cnf(cnf, Rs()) is cnf


def test_token_cnf_is_req_cnf_verbatim_and_ariel_gets_the_cose_key() -> None:
    cnf = credential(CLIENT, "client")
    pop = PROFILE.pop_key(cnf, cti=b"1", rng=bytes, salt_len=0, context_id_len=0)
    assert pop.token_cnf is cnf and pop.response_cnf is None  # EP §3.3: no cnf in the response
    ariel = PROFILE.pop_key(credential(CLIENT), cti=b"1", rng=bytes, salt_len=0, context_id_len=0,
                            points=preset("ariel-os"))
    assert isinstance(ariel.token_cnf, CoseKeyCnf) and ariel.token_cnf.key == CLIENT
    # notes §1.10 item 3: the ariel RS builds CRED_I as {8: {1: COSE_Key}} around the token's COSE_Key bytes
    key, cred = cred_of_cnf(ariel.token_cnf, preset("ariel-os"))
    assert cred == credential(CLIENT).cred == client_cred(credential(CLIENT), preset("ariel-os"))
    assert cred.startswith(bytes.fromhex("a108a101")) and key == CLIENT
    assert client_cred(cnf, preset("draft-11")) == cnf.cred
    with pytest.raises(UnsupportedPopKey):
        cred_of_cnf(CoseKeyCnf(CLIENT), preset("draft-11"))
    with pytest.raises(UnsupportedPopKey):
        cred_of_cnf(cnf, preset("ariel-os"))


def test_rs_cnf_and_the_clients_channel() -> None:
    rs_cnf = PROFILE.rs_cnf(Rs())
    assert isinstance(rs_cnf, KccsCnf) and rs_cnf.key == RS
    response = AccessTokenResponse(access_token=b"t", rs_cnf=rs_cnf, edhoc_info=EdhocInfo(session_id=b"\x05"))
    assert PROFILE.implied_by(response) and PROFILE.fits(response)
    channel = rs_channel(AccessTokenResponse.decode(response.encode()))
    assert channel.cred == rs_cnf.cred and channel.session_id == b"\x05" and channel.peer_key == RS
    assert channel.label == session_label(b"\x05", rs_cnf.cred) and len(channel.label) > 7
    assert not PROFILE.fits(AccessTokenResponse(access_token=b"t", rs_cnf=CoseKeyCnf(RS)))


def test_no_bare_token_and_no_symmetric_credential() -> None:
    assert PROFILE.bare_token is False
    assert not PROFILE.rs_takes(CoseKeyCnf(CLIENT)) and PROFILE.rs_takes(credential(CLIENT))
    with pytest.raises(UnsupportedPopKey):
        credential(symmetric_key(bytes(16), kid=b"s"))
    channel = EdhocChannel(CLIENT, credential(CLIENT).cred, b"\x01")
    assert PROFILE.rs_same_key(credential(CLIENT), channel)
    assert not PROFILE.rs_same_key(credential(RS), channel)
    assert codec.loads(channel.cred)[8][1][2] == b"\x2b"
