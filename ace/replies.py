"""What a ``RemoteError`` answers, without I/O: ``reply_of(error) -> (code, payload, content format)``.

The error's own payload if it has one (``RemoteError.reply_body``: AS Request Creation Hints of
an RS's 4.01/4.03/4.05, RFC 9200 §5.3; RFC 9770 problem details); else, with an error code of
draft-ietf-ace-workflow-and-params (``WorkflowError``), RFC 9290 problem details (WF §6: the only
form it has); else, with an RFC 9200 error code, the application/ace+cbor error map (§5.8.3), or
problem details with ``problem=True`` (WF §6; the old map stays the default, as ace-java peers
read it); else a short diagnostic text without a content format. Descriptions are written for
peers: nothing secret goes out. ``ErrorForm`` is a party's choice (``error_format`` and
``[workflow_codes]`` in as.toml / rs.toml); ``ace.coap.boundary`` renders every refusal with the
resource's form and turns the triple into a CoAP response; in-memory tests use it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ace.cbor.labels import ContentFormat
from ace.errors import CoapCode, RemoteError, WorkflowError
from ace.problem import DEFAULT_CODES, WorkflowCodes, problem_of

Reply = tuple[CoapCode, bytes, int | None]
DIAGNOSTIC_MAX = 80  # bytes of description a reply without an error map carries
ERROR_FORMATS = ("ace", "problem-details")  # as the config files spell them; the first is the default


@dataclass(frozen=True, slots=True)
class ErrorForm:
    """How a party answers errors with an error code: ``problem``, as problem details all of them
    (WF §6: whoever supports the format MUST use it), else the RFC 9200 map for theirs; ``codes``:
    the numbers of the workflow error codes."""

    problem: bool = False
    codes: WorkflowCodes = DEFAULT_CODES

    @classmethod
    def named(cls, error_format: str, codes: WorkflowCodes = DEFAULT_CODES) -> ErrorForm:
        return cls(problem=error_format == "problem-details", codes=codes)

    def reply(self, error: RemoteError) -> Reply:
        return reply_of(error, problem=self.problem, codes=self.codes)


DEFAULT_FORM = ErrorForm()  # today's wire: ace-java reads the RFC 9200 error map


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
