"""The client reads an ACE error from RFC 9290 problem details as from the error map
(draft-ietf-ace-workflow-and-params-08 §6)."""

from __future__ import annotations

from ace.cbor.labels import ContentFormat
from ace.client.reasons import error_of, payload_text
from ace.errors import ErrorCode
from ace.messages import ErrorResponse
from ace.problem import ProblemDetails

PROBLEM = int(ContentFormat.CONCISE_PROBLEM_DETAILS)


def test_problem_details_and_error_map_read_alike() -> None:
    details = ProblemDetails(ace_error=int(ErrorCode.INVALID_SCOPE), detail="not granted").encode()
    as_map = ErrorResponse(error=ErrorCode.INVALID_SCOPE, error_description="not granted").encode()
    assert error_of(details, PROBLEM) == error_of(as_map, int(ContentFormat.ACE_CBOR))
    assert payload_text(details, PROBLEM) == payload_text(as_map, int(ContentFormat.ACE_CBOR))


def test_unknown_code_kept_as_a_number_and_bad_payloads_are_none() -> None:
    err = error_of(ProblemDetails(ace_error=200).encode(), PROBLEM)
    assert err is not None and err.error == 200
    assert error_of(ProblemDetails(title="no ace-error").encode(), PROBLEM) is None
    assert error_of(b"\xff", PROBLEM) is None
    assert error_of(b"", PROBLEM) is None
    assert "without an ACE error" in payload_text(ProblemDetails(title="x").encode(), PROBLEM)
