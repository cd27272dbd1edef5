"""What a ``RemoteError`` answers, without I/O: ``reply_of(error) -> (code, payload, content format)``.

The error's own payload if it has one (``RemoteError.reply_body``: AS Request Creation Hints of
an RS's 4.01/4.03/4.05, RFC 9200 §5.3; RFC 9770 problem details); else, with an RFC 9200 error
code, the application/ace+cbor error map (§5.8.3); else a short diagnostic text without a
content format. Descriptions are written for peers: nothing secret goes out. ``ace.coap.boundary``
turns the triple into a CoAP response; in-memory tests use it as it is.
"""

from __future__ import annotations

from ace.cbor.labels import ContentFormat
from ace.errors import CoapCode, RemoteError

Reply = tuple[CoapCode, bytes, int | None]
DIAGNOSTIC_MAX = 80  # bytes of description a reply without an error map carries


def reply_of(error: RemoteError) -> Reply:
    """The CoAP code, payload and content format (None: no Content-Format option) of ``error``'s reply."""
    body = error.reply_body()
    if body is not None:
        return error.coap_code, body[0], body[1]
    if error.error_code is not None:
        from ace.messages import ErrorResponse  # the error map's code: loaded with the first one

        error_map = ErrorResponse(error=error.error_code, error_description=error.description)
        return error.coap_code, error_map.encode(), int(ContentFormat.ACE_CBOR)
    return error.coap_code, error.description.encode()[:DIAGNOSTIC_MAX], None
