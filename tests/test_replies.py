"""``reply_of``: what each error answers (code, payload, content format), without aiocoap; the
named error classes keep the codes the keyword overrides gave."""

from __future__ import annotations

import pytest

from ace.cbor import codec
from ace.cbor.labels import ContentFormat
from ace.errors import (
    ClaimsError,
    DecodeError,
    ErrorCode,
    IdsExhausted,
    IncompatibleProfiles,
    InvalidClient,
    InvalidScope,
    PayloadTooLarge,
    RemoteError,
    ServiceUnavailable,
    TokenError,
    TokenRefused,
    Unauthorized,
    UnsupportedContentFormat,
    UnsupportedGrantType,
    UnsupportedPopKey,
    WrongAudience,
)
from ace.messages import CreationHints, ErrorResponse
from ace.replies import reply_of
from ace.rs.denied import AccessDenied
from ace.trl_wire import PROBLEM_DETAILS_CF, TrlError, TrlErrorId

CF = int(ContentFormat.ACE_CBOR)


def test_error_code_gives_the_error_map() -> None:
    code, payload, cf = reply_of(DecodeError("no scope", error_code=ErrorCode.INVALID_SCOPE))
    assert (code, cf) == ((4, 0), CF)
    assert ErrorResponse.decode(payload) == ErrorResponse(error=ErrorCode.INVALID_SCOPE, error_description="no scope")


def test_no_error_code_gives_a_short_text() -> None:
    assert reply_of(TokenRefused("x" * 200)) == ((4, 1), b"x" * 80, None)


def test_hints_are_the_payload() -> None:
    hints = CreationHints(as_uri="coap://as.example/token", audience="rs1")
    assert reply_of(AccessDenied("no token", coap_code=(4, 1), hints=hints)) == ((4, 1), hints.encode(), CF)
    assert reply_of(AccessDenied("scope", coap_code=(4, 5))) == ((4, 5), b"scope", None)


def test_trl_errors_are_problem_details() -> None:
    code, payload, cf = reply_of(TrlError("bad", TrlErrorId.OUT_OF_BOUND_CURSOR_VALUE, cursor=3, with_cursor=True))
    assert (code, cf) == ((4, 0), PROBLEM_DETAILS_CF)
    assert codec.loads(payload) == {-1: "Out of bound cursor value", 1: {0: 2, 1: 3}}


@pytest.mark.parametrize(("cls", "bases", "error_code", "coap_code"), [
    (Unauthorized, (RemoteError,), None, (4, 1)),
    (TokenRefused, (Unauthorized,), None, (4, 1)),
    (InvalidClient, (RemoteError,), ErrorCode.INVALID_CLIENT, (4, 1)),
    (UnsupportedContentFormat, (RemoteError,), None, (4, 15)),
    (PayloadTooLarge, (RemoteError,), None, (4, 13)),
    (ServiceUnavailable, (RemoteError,), None, (5, 3)),
    (IdsExhausted, (ServiceUnavailable, DecodeError), None, (5, 3)),
    (WrongAudience, (ClaimsError, TokenError), None, (4, 3)),
    (UnsupportedGrantType, (DecodeError,), ErrorCode.UNSUPPORTED_GRANT_TYPE, (4, 0)),
    (InvalidScope, (DecodeError,), ErrorCode.INVALID_SCOPE, (4, 0)),
    (UnsupportedPopKey, (DecodeError,), ErrorCode.UNSUPPORTED_POP_KEY, (4, 0)),
    (IncompatibleProfiles, (DecodeError,), ErrorCode.INCOMPATIBLE_ACE_PROFILES, (4, 0)),
])
def test_named_classes(cls: type[RemoteError], bases: tuple[type[RemoteError], ...], error_code: ErrorCode | None,
                       coap_code: tuple[int, int]) -> None:
    exc = cls("what happened")
    assert all(isinstance(exc, base) for base in bases)
    assert (exc.error_code, exc.coap_code, exc.description) == (error_code, coap_code, "what happened")


@pytest.mark.parametrize("cls", [UnsupportedGrantType, InvalidScope, UnsupportedPopKey, IncompatibleProfiles])
def test_named_decode_errors_answer_as_the_keyword_override_did(cls: type[DecodeError]) -> None:
    assert cls.default_error_code is not None
    assert reply_of(cls("why")) == reply_of(DecodeError("why", error_code=cls.default_error_code))
