"""to_rs (WF §3.3): the AS relays into its upload only the keys the client's profile defines for
the RS (RFC 9203 §4.1: nonce1, ace_client_recipientid); updated_rights, which the RS takes from the
AS alone (WF §3.7.1), or any other key, and any tag but ace+cbor's, are refused (invalid_request)."""

from __future__ import annotations

import cbor2
import pytest

from ace.authz_server import upload
from ace.cbor.labels import UPDATED_RIGHTS_KEY, AceProfile, ContentFormat
from ace.errors import DecodeError, ErrorCode
from ace.messages import AccessTokenRequest
from ace.store.base import RsRecord
from ace.tokens.keys import symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

OSCORE = int(AceProfile.COAP_OSCORE)
EDHOC = int(AceProfile.COAP_EDHOC_OSCORE)
RS = RsRecord(audience="rs1", rs_id="rs1", token_key=symmetric_key(bytes(16), kid=b"k"), profiles=(OSCORE, EDHOC),
              upload_uri="coap://rs/authz-info",
              oscore=OscoreContextParams(master_secret=bytes(16), sender_id=b"a", recipient_id=b"r"))
GOOD = {40: b"\x01" * 8, 43: b"\x21"}


def plan(to_rs: object, profile: int = OSCORE) -> upload.UploadPlan | None:
    request = AccessTokenRequest(audience="rs1", token_upload=0, to_rs=cbor2.dumps(to_rs))
    return upload.plan(request, RS, b"tok", profile)


@pytest.mark.parametrize("to_rs", [GOOD, cbor2.CBORTag(1668546836, GOOD)])
def test_oscore_keys_pass(to_rs: object) -> None:
    sent = plan(to_rs)
    assert sent is not None and sent.content_format == int(ContentFormat.ACE_CBOR)
    assert cbor2.loads(sent.payload) == {1: b"tok", **GOOD}


@pytest.mark.parametrize("to_rs, profile", [
    ({**GOOD, UPDATED_RIGHTS_KEY: True}, OSCORE),  # WF §3.7.1: from the AS alone
    ({**GOOD, 7: 1}, OSCORE),
    ({1: b"other", **GOOD}, OSCORE),
    (cbor2.CBORTag(1668546817 + 60, GOOD), OSCORE),  # not ace+cbor's tag
    (cbor2.CBORTag(16, GOOD), OSCORE),  # a COSE tag
    (cbor2.CBORTag(1668546836, cbor2.CBORTag(1668546836, GOOD)), OSCORE),
    (GOOD, EDHOC),  # the EDHOC profile defines no to_rs keys
    ([40], OSCORE),
])
def test_other_keys_refused(to_rs: object, profile: int) -> None:
    with pytest.raises(DecodeError) as info:
        plan(to_rs, profile)
    assert info.value.error_code == ErrorCode.INVALID_REQUEST and info.value.coap_code == (4, 0)
