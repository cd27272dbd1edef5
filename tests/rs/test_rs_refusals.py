"""What a refused or repeated POST /authz-info leaves behind at the RS core (issue 13 review):
a refusal for lack of room drops nothing; the same token POSTed bare after it was bound over
OSCORE is a repetition (2.01, nothing changes), as before the profiles became plug-ins."""

from __future__ import annotations

import random

import pytest
from rs_support import AS_URI, MEANING, N1, RS_KEY, Clock, post, token

from ace.cbor.labels import AceProfile, ContentFormat
from ace.errors import PayloadTooLarge
from ace.rs.outcomes import AuthzInfoOutcome
from ace.rs.server import ResourceServer, RsConfig
from ace.rs.store import BINDING_OVERHEAD
from ace.tokens.cwt import KeyRing


def rs_with(**kw: object) -> ResourceServer:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, **kw)  # type: ignore[arg-type]
    return ResourceServer(config, KeyRing([RS_KEY]), clock=Clock(), rng=random.Random(1).randbytes)


def test_a_post_refused_for_room_keeps_the_clients_binding() -> None:
    first = token(b"\x01", sub="c", cti=b"\x01")
    big = token(b"\x02", sub="c", cti=b"\x02", scope="r_temp " + "x" * 300)  # newer, same client
    rs = rs_with(max_bytes=len(first) + BINDING_OVERHEAD + 100)
    bound = rs.authz_info(post(first), ContentFormat.ACE_CBOR).binding
    with pytest.raises(PayloadTooLarge):
        rs.authz_info(post(big, nonce1=bytes(8), rid=b"\x02"), ContentFormat.ACE_CBOR)
    assert rs.bindings.get(bound.label) is bound  # old code: dropped before the refusal
    assert rs.live_labels() == {bound.label}


def test_the_same_token_posted_bare_after_oscore_is_a_repetition() -> None:
    rs = rs_with(profiles=(AceProfile.COAP_OSCORE, AceProfile.COAP_DTLS))
    tok = token()
    bound = rs.authz_info(post(tok, N1), ContentFormat.ACE_CBOR)
    again = rs.authz_info(tok, ContentFormat.CWT)
    assert isinstance(again, AuthzInfoOutcome) and again.binding is bound.binding
    assert (again.payload, again.new, again.dropped) == (b"", False, [])
