"""Answers in words, for people: CoAP codes by name ("4.03 Forbidden", RFC 7252 §12.1.2), RFC 9200
error codes by name ("invalid_scope", §5.8.3), AS Request Creation Hints (§5.3) decoded, and what to
do about a refusal. Sans-I/O: the client's flow and the CLI both use it.
"""

from __future__ import annotations

import io

import cbor2

from ace.cbor import codec
from ace.cbor.labels import ContentFormat, Param
from ace.errors import ErrorCode, RemoteError
from ace.messages import CreationHints, ErrorResponse

COAP_NAMES = {  # RFC 7252 §12.1.2, RFC 7959, RFC 8132, RFC 8516
    (2, 1): "Created", (2, 2): "Deleted", (2, 3): "Valid", (2, 4): "Changed", (2, 5): "Content",
    (2, 31): "Continue", (4, 0): "Bad Request", (4, 1): "Unauthorized", (4, 2): "Bad Option",
    (4, 3): "Forbidden", (4, 4): "Not Found", (4, 5): "Method Not Allowed", (4, 6): "Not Acceptable",
    (4, 8): "Request Entity Incomplete", (4, 9): "Conflict", (4, 12): "Precondition Failed",
    (4, 13): "Request Entity Too Large", (4, 15): "Unsupported Content-Format", (4, 22): "Unprocessable Entity",
    (4, 29): "Too Many Requests", (5, 0): "Internal Server Error", (5, 1): "Not Implemented",
    (5, 2): "Bad Gateway", (5, 3): "Service Unavailable", (5, 4): "Gateway Timeout",
    (5, 5): "Proxying Not Supported",
}
MAX_TEXT = 120  # characters of a peer's diagnostic payload shown

# RFC 9200 §5.8.3: what the client can do about each error of the AS
_ADVICE = {
    ErrorCode.INVALID_SCOPE: "the AS grants this client no such scope at that audience: ask for a granted one "
                             "(--scope), or grant it (`ace policy grant`)",
    ErrorCode.INVALID_CLIENT: "the AS does not know this client or its security context "
                              "(`ace policy add-client`; check as_context in the client's config)",
    ErrorCode.UNAUTHORIZED_CLIENT: "this client may not ask for tokens this way (`ace policy list`)",
    ErrorCode.INCOMPATIBLE_ACE_PROFILES: "the AS and the RS share no profile with this client: try another "
                                         "--profile",
    ErrorCode.UNSUPPORTED_POP_KEY: "the AS cannot use this client's PoP key for that profile",
    ErrorCode.INVALID_REQUEST: "the AS could not take the request (see its log with -v)",
}


def code_text(code: tuple[int, int]) -> str:
    """``(4, 3)`` -> ``"4.03 Forbidden"``."""
    name = COAP_NAMES.get(code)
    return f"{code[0]}.{code[1]:02d}" + (f" {name}" if name else "")


def error_name(error: int) -> str:
    """An RFC 9200 error code by its OAuth name (``6`` -> ``"invalid_scope"``)."""
    try:
        return ErrorCode(error).name.lower()
    except ValueError:
        return f"error {error}"


def advice(error: int) -> str | None:
    try:
        return _ADVICE.get(ErrorCode(error))
    except ValueError:
        return None


def hints_text(hints: CreationHints) -> str:
    parts = [f"AS {hints.as_uri}" if hints.as_uri else "",
             f"audience {hints.audience!r}" if hints.audience is not None else "",
             f"scope {_scope(hints.scope)}" if hints.scope is not None else "",
             "kid h'" + hints.kid.hex() + "'" if hints.kid is not None else "",
             "a cnonce" if hints.cnonce is not None else ""]
    return "creation hints: " + (", ".join(p for p in parts if p) or "(empty)")


def _scope(scope: str | bytes) -> str:
    return repr(scope) if isinstance(scope, str) else f"h'{scope.hex()}'"


def error_text(err: ErrorResponse) -> str:
    text = error_name(int(err.error))
    if err.error_description:
        text += f" ({err.error_description[:MAX_TEXT]})"
    return text


def error_of(payload: bytes, content_format: int | None) -> ErrorResponse | None:
    """The ACE error of an answer: the ace+cbor error map (RFC 9200 §5.8.3), or the ace-error entry
    of RFC 9290 problem details (draft-ietf-ace-workflow-and-params §6) as that map; else None."""
    if not payload:
        return None
    try:
        if content_format == ContentFormat.ACE_CBOR:
            return ErrorResponse.decode(payload)
        if content_format == ContentFormat.CONCISE_PROBLEM_DETAILS:
            from ace.problem import ProblemDetails

            details = ProblemDetails.decode(payload)
            if details.ace_error is None:
                return None
            code = details.ace_error
            return ErrorResponse(error=ErrorCode(code) if code in ErrorCode._value2member_map_ else code,
                                 error_description=details.detail)
    except RemoteError:
        return None
    return None


def payload_text(payload: bytes, content_format: int | None) -> str:
    """An answer's payload for a person: an ace+cbor error map, problem details or creation hints
    decoded, else text."""
    if not payload:
        return ""
    if content_format == ContentFormat.CONCISE_PROBLEM_DETAILS:
        err = error_of(payload, content_format)
        return error_text(err) if err is not None else f"{len(payload)} B of problem details without an ACE error"
    if content_format == EDHOC_CBOR_SEQ:
        return edhoc_error_text(payload)
    if content_format == ContentFormat.ACE_CBOR:
        try:
            value = codec.loads(payload, what="ace+cbor payload")
            if isinstance(value, dict) and int(Param.ERROR) in value:
                return error_text(ErrorResponse.decode(payload))
            return hints_text(CreationHints.decode(payload))
        except RemoteError:
            return f"{len(payload)} B of ace+cbor that does not decode"
    text = payload.decode("utf-8", "replace")
    if not text.isprintable():
        return f"{len(payload)} B, h'{payload[:32].hex()}{'...' if len(payload) > 32 else ''}'"
    return repr(text[:MAX_TEXT]) if len(text) > MAX_TEXT else text


EDHOC_ERRORS = {1: "Unspecified Error", 2: "Wrong Selected Cipher Suite", 3: "Unknown Credential Referenced"}
EDHOC_CBOR_SEQ = 64  # application/edhoc+cbor-seq (RFC 9528 §9.9)


def edhoc_error(payload: bytes) -> tuple[int, object] | None:
    """(ERR_CODE, ERR_INFO) of an EDHOC error message (RFC 9528 §6: a CBOR sequence), None if not one."""
    items: list[object] = []
    rest = payload
    try:
        while rest and len(items) < 2:
            decoder = cbor2.CBORDecoder(io.BytesIO(rest))
            items.append(decoder.decode())
            rest = rest[decoder.fp.tell():]
    except Exception:  # untrusted bytes of any shape
        return None
    if not items or not isinstance(items[0], int) or isinstance(items[0], bool):
        return None
    return items[0], items[1] if len(items) > 1 else None


def edhoc_error_text(payload: bytes) -> str:
    """``ERR_CODE 1 (Unspecified Error): 'Access token refused'``."""
    parsed = edhoc_error(payload)
    if parsed is None:
        return f"an EDHOC error that does not decode ({len(payload)} B)"
    code, info = parsed
    text = f"ERR_CODE {code} ({EDHOC_ERRORS.get(code, 'unknown')})"
    if isinstance(info, str):
        text += f": {info[:MAX_TEXT]!r}"
    return text


def answer_text(code: tuple[int, int], payload: bytes, content_format: int | None) -> str:
    """``4.03 Forbidden: creation hints: AS coap://..., audience 'rs1'``."""
    described = payload_text(payload, content_format)
    return code_text(code) + (f": {described}" if described else "")


__all__ = ["COAP_NAMES", "EDHOC_CBOR_SEQ", "advice", "answer_text", "code_text", "edhoc_error", "edhoc_error_text",
           "error_name", "error_text", "hints_text", "payload_text"]
