"""POST /authz-info protected by the AS (draft-ietf-ace-workflow-and-params-08 §3.7): a first token as
if the client had sent it, an update with updated_rights over T_OLD's channel, else missing_old_token."""

from __future__ import annotations

import random

import cbor2
import pytest
from rs_support import AS_URI, MEANING, RS_KEY, Clock, make_rs, post, token
from support import NOW
from test_rs_edhoc import BY_KID, CRED, edhoc_token

from ace.cbor.labels import AceProfile, ContentFormat
from ace.errors import MissingOldToken
from ace.messages import UPDATED_RIGHTS_KEY, AuthzInfoUpdate
from ace.replies import reply_of
from ace.rs.server import ResourceServer, RsConfig
from ace.rs.upload import as_upload
from ace.tokens.cnf import KidCnf
from ace.tokens.cwt import KeyRing

ACE = int(ContentFormat.ACE_CBOR)


def test_oscore_first_token_and_update() -> None:
    rs = make_rs()
    first = as_upload(rs, post(token()), ACE)  # as the client would have sent it, N1 and ID1 (to_rs)
    assert not hasattr(first, "token") and first.new  # type: ignore[union-attr]
    update = AuthzInfoUpdate(access_token=token(cnf=KidCnf(b"\x01"), cti=b"\x02", scope="rw_config"),
                             updated_rights=True).encode()
    out = as_upload(rs, update, ACE)
    assert out.binding.label == first.binding.label and out.binding.claims.scope == "rw_config"  # type: ignore[union-attr]
    orphan = AuthzInfoUpdate(access_token=token(cnf=KidCnf(b"\x09"), cti=b"\x03"), updated_rights=True).encode()
    before = [(b.label, b.token_hash) for b in rs.bindings]
    with pytest.raises(MissingOldToken) as info:
        as_upload(rs, orphan, ACE)
    assert reply_of(info.value)[0] == (5, 0) and [(b.label, b.token_hash) for b in rs.bindings] == before


def test_edhoc_upload_dispatch() -> None:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, profiles=(AceProfile.COAP_EDHOC_OSCORE,))
    rs = ResourceServer(config, KeyRing([RS_KEY]), clock=Clock(), rng=random.Random(1).randbytes)
    first = as_upload(rs, edhoc_token(), int(ContentFormat.CWT))
    assert rs.accept_session_id(b"\x05", BY_KID).label == first.binding.label  # type: ignore[union-attr]
    assert first.binding.context.cred == CRED.raw  # type: ignore[union-attr]
    update = cbor2.dumps({1: edhoc_token(cti=b"\x02", iat=NOW + 1, scope="rw_config"), UPDATED_RIGHTS_KEY: True})
    assert as_upload(rs, update, ACE).binding.claims.scope == "rw_config"  # type: ignore[union-attr]
    with pytest.raises(MissingOldToken):
        as_upload(rs, cbor2.dumps({1: edhoc_token(cti=b"\x03", session_id=b"\x08"), UPDATED_RIGHTS_KEY: True}), ACE)


def test_updated_rights_not_from_the_as_is_refused() -> None:
    """WF §3.7.1: updated_rights in a POST the AS did not protect (unprotected, or over a client's
    channel) is 4.00 invalid_request; nothing is stored or changed."""
    from ace.errors import DecodeError

    rs = make_rs()
    first = rs.authz_info(post(token()), ACE)
    update = AuthzInfoUpdate(access_token=token(cnf=KidCnf(b"\x01"), cti=b"\x02", scope="rw_config"),
                             updated_rights=True).encode()
    before = [(b.label, b.token_hash) for b in rs.bindings]
    for channel in (None, first.binding.label):  # type: ignore[union-attr]
        with pytest.raises(DecodeError) as info:
            rs.authz_info(update, ACE, channel_label=channel)
        assert reply_of(info.value)[0] == (4, 0)
    fresh = cbor2.loads(post(token(cti=b"\x04")))
    with pytest.raises(DecodeError):  # a first token with updated_rights, unprotected
        rs.authz_info(cbor2.dumps({**fresh, UPDATED_RIGHTS_KEY: False}), ACE)
    assert [(b.label, b.token_hash) for b in rs.bindings] == before
