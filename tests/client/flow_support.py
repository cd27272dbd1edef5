"""What the client flow tests share: the AS and RS addresses, the first resource request and the
hints answering it, and an EDHOC-profile flow (draft -11) with the client's own key and the RS's
CCS. Not a test module."""

from __future__ import annotations

import random

from support import NOW

from ace.cbor.labels import AceProfile, ContentFormat, Curve
from ace.client.flow import ClientConfig, ClientFlow, ResourceRequest, Response, SendResource, SendTokenRequest
from ace.messages import CreationHints
from ace.tokens.cnf import KccsCnf
from ace.tokens.crypto import generate

AS_URI = "coap://as.example/token"
RS = "coap://rs.example"
REQ = ResourceRequest(method="GET", uri=RS + "/temp")
HINTS = CreationHints(as_uri=AS_URI, audience="rs1", scope="r_temp")
CF = ContentFormat.ACE_CBOR
EDHOC = int(AceProfile.COAP_EDHOC_OSCORE)
OWN = generate(Curve.P_256, kid=b"\x2b")
RS_CCS = KccsCnf.of_key(generate(Curve.P_256, kid=b"\x0a").public(), "rs1")
SESSION_ID = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def edhoc_flow(token_upload: int | None = None) -> ClientFlow:
    return ClientFlow(ClientConfig(profile=EDHOC, edhoc_key=OWN, as_uri=AS_URI, token_upload=token_upload),
                      clock=lambda: NOW, rng=random.Random(3).randbytes)


def token_request(flow: ClientFlow) -> SendTokenRequest:
    """The first request unprotected, its 4.01 with the hints: the token request (RFC 9200 §5.3)."""
    assert flow.start(REQ) == SendResource(REQ, None)
    ask = flow.on_response(Response((4, 1), HINTS.encode(), CF))
    assert isinstance(ask, SendTokenRequest)
    return ask
