"""Token introspection (RFC 9200 §5.9) on CoAP: the AS's /introspect resource (the RS's client
is ``ace.coap.introspect_client``).

``IntrospectResource`` answers POST /introspect (application/ace+cbor, 2.01 as RFC 9200 §5.9.2
says; our RS takes 2.01 and 2.05) with the core's
``IntrospectionEndpoint``, handed the RS whose *current* OSCORE context with the AS protected the
request (``ace.coap.peers``: its ``RsRecord``); anyone else gets 4.01 invalid_client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiocoap
import aiocoap.resource

from ace.authz_server.introspect import IntrospectionEndpoint
from ace.coap.boundary import refusing
from ace.coap.peers import Peer
from ace.coap.render import BoundedBody, ace_message

log = logging.getLogger(__name__)


class IntrospectResource(BoundedBody, aiocoap.resource.Resource):  # type: ignore[misc]
    """POST /introspect at the AS (RFC 9200 §5.9)."""

    path = "/introspect"

    def __init__(self, endpoint: IntrospectionEndpoint,
                 requester: Callable[[aiocoap.Message], Peer | None]) -> None:
        super().__init__()
        self.endpoint, self.requester = endpoint, requester

    # anyone may POST here: refusals are logged rate limited
    @refusing(log, peer=lambda self, request: self.requester(request))
    async def render_post(self, request: aiocoap.Message, who: Peer | None) -> aiocoap.Message:
        result = self.endpoint.handle(request.payload, who, request.opt.content_format)
        return ace_message((2, 1), result.response.encode())  # RFC 9200 §5.9.2: 2.01 (Created)
