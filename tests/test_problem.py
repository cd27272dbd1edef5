"""RFC 9290 problem details with the ace-error key (draft-ietf-ace-workflow-and-params-08 §6)."""

from __future__ import annotations

import cbor2
import pytest

from ace.cbor.labels import ContentFormat
from ace.errors import (
    ClaimsError,
    DecodeError,
    ErrorCode,
    FailedPopVerification,
    MissingOldToken,
    TokenRefused,
    UnknownCredentialReferenced,
)
from ace.problem import ProblemDetails, WorkflowCodes, problem_of
from ace.replies import reply_of


def test_the_drafts_example() -> None:
    assert ProblemDetails(detail="token expired", ace_error=1).encode() == bytes.fromhex(
        "a2216d746f6b656e206578706972656402a10001")


def test_workflow_errors_are_always_problem_details() -> None:
    code, payload, cf = reply_of(MissingOldToken("no T_OLD"))
    assert code == (5, 0) and cf == ContentFormat.CONCISE_PROBLEM_DETAILS == 257
    assert cbor2.loads(payload) == {-2: "no T_OLD", 2: {0: 9}}
    codes = WorkflowCodes(missing_old_token=200)
    assert cbor2.loads(reply_of(MissingOldToken("x"), codes=codes)[1])[2] == {0: 200}
    assert reply_of(UnknownCredentialReferenced("x"))[0] == (5, 0)
    assert reply_of(FailedPopVerification("x"))[0] == (4, 0)


def test_rfc9200_errors_keep_the_error_map_unless_asked() -> None:
    error = DecodeError("bad")
    assert reply_of(error)[2] == ContentFormat.ACE_CBOR
    code, payload, cf = reply_of(error, problem=True)
    assert (code, cf) == ((4, 0), 257) and ProblemDetails.decode(payload).ace_error == ErrorCode.INVALID_REQUEST
    assert reply_of(TokenRefused("no"), problem=True)[2] is None  # no error code: no problem details either
    assert problem_of(ClaimsError("x")) is None


@pytest.mark.parametrize("payload", [b"\x80", cbor2.dumps({2: {0: "x"}}), cbor2.dumps({-2: 3})])
def test_malformed_problem_details(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        ProblemDetails.decode(payload)
