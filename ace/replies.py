"""What a ``RemoteError`` answers, without I/O: ``reply_of(error) -> (code, payload, content format)``.

The error's own payload if it has one (``RemoteError.reply_body``: AS Request Creation Hints of
an RS's 4.01/4.03/4.05, RFC 9200 §5.3; RFC 9770 problem details); else, with an error code of
draft-ietf-ace-workflow-and-params (``WorkflowError``), RFC 9290 problem details (WF §6: the only
form it has); else, with an RFC 9200 error code, the application/ace+cbor error map (§5.8.3), or
problem details with ``problem=True`` (WF §6; the old map stays the default, as ace-java peers
read it); else a short diagnostic text without a content format. Descriptions are written for
peers: nothing secret goes out. ``ace.coap.boundary`` turns the triple into a CoAP response;
in-memory tests use it as it is.
"""

from __future__ import annotations

from ace.cbor.labels import ContentFormat
from ace.errors import CoapCode, RemoteError, WorkflowError
from ace.problem import DEFAULT_CODES, WorkflowCodes, problem_of

Reply = tuple[CoapCode, bytes, int | None]
DIAGNOSTIC_MAX = 80  # bytes of description a reply without an error map carries


def reply_of(error: RemoteError, *, problem: bool = False, codes: WorkflowCodes = DEFAULT_CODES) -> Reply:
    """The CoAP code, payload and content format (None: no Content-Format option) of ``error``'s
    reply; ``problem``: RFC 9200 error codes as problem details too."""
    body = error.reply_body()
    if body is not None:
        return error.coap_code, body[0], body[1]
    if problem or isinstance(error, WorkflowError):
        details = problem_of(error, codes)
        if details is not None:
            return error.coap_code, details.encode(), int(ContentFormat.CONCISE_PROBLEM_DETAILS)
    if error.error_code is not None:
        from ace.messages import ErrorResponse  # the error map's code: loaded with the first one

        error_map = ErrorResponse(error=error.error_code, error_description=error.description)
        return error.coap_code, error_map.encode(), int(ContentFormat.ACE_CBOR)
    return error.coap_code, error.description.encode()[:DIAGNOSTIC_MAX], None
