"""The one error tree of ace.

``AceError`` is the root. ``RemoteError`` is raised for anything a peer sent wrong and
carries what the reply must say: the RFC 9200 §5.8.3 error code (``error_code``, ``None``
where the RFC prescribes no ace+cbor error map) and a CoAP response code (``coap_code``,
an ``(class, detail)`` pair such as ``(4, 0)``); a named subclass says what happened and carries
both (``TokenRefused``: 4.01 without an error map, ``ServiceUnavailable``: 5.03, ...), and
``ace.replies.reply_of`` says what the reply is. ``ConfigError`` is our own misconfiguration.
Caller misuse stays plain ``ValueError``/``TypeError``. cbor2 and pycose exceptions never
leave the core unwrapped.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """RFC 9200 §8.4 "OAuth Error Code CBOR Mappings" (Figure 10 of §5.8.3)."""

    INVALID_REQUEST = 1
    INVALID_CLIENT = 2
    INVALID_GRANT = 3
    UNAUTHORIZED_CLIENT = 4
    UNSUPPORTED_GRANT_TYPE = 5
    INVALID_SCOPE = 6
    UNSUPPORTED_POP_KEY = 7
    INCOMPATIBLE_ACE_PROFILES = 8


CoapCode = tuple[int, int]

BAD_REQUEST: CoapCode = (4, 0)
UNAUTHORIZED: CoapCode = (4, 1)
FORBIDDEN: CoapCode = (4, 3)
NOT_FOUND: CoapCode = (4, 4)
REQUEST_ENTITY_TOO_LARGE: CoapCode = (4, 13)
UNSUPPORTED_CONTENT_FORMAT: CoapCode = (4, 15)
INTERNAL_SERVER_ERROR: CoapCode = (5, 0)
SERVICE_UNAVAILABLE: CoapCode = (5, 3)


def coap_code_text(code: CoapCode) -> str:
    """``(4, 1)`` -> ``"4.01"``."""
    return f"{code[0]}.{code[1]:02d}"


class AceError(Exception):
    """Root of every error ace raises on purpose."""


class ConfigError(AceError):
    """Our own configuration is wrong (missing key file, bad TOML value, ...)."""


class _Unset:
    pass


_UNSET = _Unset()


class RemoteError(AceError, ValueError):
    """A peer sent something wrong; carries what to answer.

    ``error_code=None`` means the reply carries no ace+cbor error map; leaving it out
    takes the class default. Where a named subclass fits, raise that instead of overriding.
    """

    default_error_code: ErrorCode | None = ErrorCode.INVALID_REQUEST
    default_coap_code: CoapCode = BAD_REQUEST

    def __init__(
        self,
        description: str,
        *,
        error_code: ErrorCode | _Unset | None = _UNSET,
        coap_code: CoapCode | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.error_code: ErrorCode | None = (
            self.default_error_code if isinstance(error_code, _Unset) else error_code
        )
        self.coap_code: CoapCode = self.default_coap_code if coap_code is None else coap_code

    def reply_body(self) -> tuple[bytes, int] | None:
        """A payload and its content format other than the default reply (``ace.replies.reply_of``):
        AS Request Creation Hints, problem details. None: the default."""
        return None

    def __repr__(self) -> str:
        code = self.error_code.name.lower() if self.error_code is not None else "-"
        return (
            f"{type(self).__name__}({self.description!r}, "
            f"error={code}, coap={coap_code_text(self.coap_code)})"
        )


class DecodeError(RemoteError):
    """Malformed CBOR or a message that does not match its CDDL: 4.00 invalid_request."""


class UnsupportedGrantType(DecodeError):
    """4.00 unsupported_grant_type (RFC 9200 §5.8.3): the AS does not serve this grant."""

    default_error_code = ErrorCode.UNSUPPORTED_GRANT_TYPE


class InvalidScope(DecodeError):
    """4.00 invalid_scope (RFC 9200 §5.8.3): a scope missing, malformed or not granted."""

    default_error_code = ErrorCode.INVALID_SCOPE


class UnsupportedPopKey(DecodeError):
    """4.00 unsupported_pop_key (RFC 9200 §5.8.3): a PoP key or its parameters this side cannot use."""

    default_error_code = ErrorCode.UNSUPPORTED_POP_KEY


class IncompatibleProfiles(DecodeError):
    """4.00 incompatible_ace_profiles (RFC 9200 §5.8.3): no profile both sides can serve."""

    default_error_code = ErrorCode.INCOMPATIBLE_ACE_PROFILES


class Unauthorized(RemoteError):
    """4.01 without an error map: the peer may not ask this (e.g. the TRL, RFC 9770 §6.1)."""

    default_error_code = None
    default_coap_code = UNAUTHORIZED


class TokenRefused(Unauthorized):
    """4.01 without an error map: the RS takes this token no further (revoked, inactive,
    bound to another key or client, not newer; RFC 9200 §5.10.1)."""


class InvalidClient(RemoteError):
    """4.01 invalid_client (RFC 9200 §5.8.3): the requester is not a registered, authenticated peer."""

    default_error_code = ErrorCode.INVALID_CLIENT
    default_coap_code = UNAUTHORIZED


class UnsupportedContentFormat(RemoteError):
    """4.15 without an error map: the payload's Content-Format is not one this endpoint takes."""

    default_error_code = None
    default_coap_code = UNSUPPORTED_CONTENT_FORMAT


class PayloadTooLarge(RemoteError):
    """4.13 without an error map: more than this server will hold."""

    default_error_code = None
    default_coap_code = REQUEST_ENTITY_TOO_LARGE


class ServiceUnavailable(RemoteError):
    """5.03 without an error map: the request may succeed later (a store full, the AS unreachable)."""

    default_error_code = None
    default_coap_code = SERVICE_UNAVAILABLE


class IdsExhausted(ServiceUnavailable, DecodeError):
    """5.03: no free OSCORE Recipient ID is left (a DecodeError, as it always was)."""


class TokenError(RemoteError):
    """A token failed verification (RFC 9200 §5.10.1.1: 4.01 by default)."""

    default_error_code = None
    default_coap_code = UNAUTHORIZED


class UnknownKeyError(TokenError):
    """No key is known for the kid the token names."""


class VerificationError(TokenError):
    """Signature, MAC or decryption failed, or the alg does not fit the key."""


class ClaimsError(TokenError):
    """The claims are well formed but not acceptable (expired, wrong aud, ...)."""


class WrongAudience(ClaimsError):
    """4.03: the token's audience is not this RS (RFC 9200 §5.10.1.1)."""

    default_coap_code = FORBIDDEN


class WorkflowError(RemoteError):
    """An error of draft-ietf-ace-workflow-and-params-08 whose code has no number yet (TBD at IANA,
    configurable: ``ace.problem.WorkflowCodes``); answered as RFC 9290 problem details."""

    default_error_code = None
    wf_error: str = ""


class MissingOldToken(WorkflowError):
    """5.00 missing_old_token (WF §3.7.1): an update uploaded by the AS, and the RS holds no T_OLD."""

    default_coap_code = INTERNAL_SERVER_ERROR
    wf_error = "missing_old_token"


class UnknownCredentialReferenced(WorkflowError):
    """5.00 unknown_credential_referenced (WF §5.1): the AS does not know the credential named."""

    default_coap_code = INTERNAL_SERVER_ERROR
    wf_error = "unknown_credential_referenced"


class FailedPopVerification(WorkflowError):
    """4.00 failed_pop_verification (WF §6)."""

    default_coap_code = BAD_REQUEST
    wf_error = "failed_pop_verification"
