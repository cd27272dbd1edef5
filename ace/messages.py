"""The messages of RFC 9200 §5 (+ RFC 9201, RFC 9203 §4.1) as frozen dataclasses.

Each message declares its fields once (name, label, CBOR type); one generic encoder and one
decoder map them to and from CBOR maps. Decoding is strict about types and names the field
and label in every error (``DecodeError``: 4.00 invalid_request); unknown labels are kept in
``extra`` (see ``ace.cbor.codec``). Required fields are those the RFCs mark REQUIRED.
Semantics (grants, profiles, nonce lengths) are checked by the roles, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Self

from ace.cbor import codec
from ace.cbor.codec import MapReader
from ace.cbor.labels import (
    UPDATED_RIGHTS_KEY as UPDATED_RIGHTS_KEY,  # re-exported: the AS and the RS name it here
)
from ace.cbor.labels import (
    AceProfile,
    ContentFormat,
    GrantType,
    IntrospectionParam,
    Param,
    TokenType,
)
from ace.errors import DecodeError, ErrorCode, UnsupportedContentFormat
from ace.hints import _F, Extra, _Message  # the field table: there with the hints an RS answers first
from ace.hints import CreationHints as CreationHints  # re-exported, as before
from ace.tokens.cnf import Cnf
from ace.tokens.edhoc_info import EdhocInfo


def require_ace_cbor(content_format: int | None) -> None:
    """The AS's endpoints take application/ace+cbor (RFC 9200 §5.8, §5.9.1); absent is taken as
    it. Anything else: 4.15."""
    if content_format not in (None, ContentFormat.ACE_CBOR):
        raise UnsupportedContentFormat("content format must be application/ace+cbor")


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessTokenRequest(_Message):
    """POST /token payload (RFC 9200 §5.8.1, RFC 9201 §3.1 req_cnf).

    ``ace_profile`` with ``ask_ace_profile``: RFC 9200 §5.8.1 lets the client send
    ace_profile as CBOR null to ask which profile the AS chose; an integer names one.
    """

    grant_type: GrantType | int | None = None
    client_id: str | None = None
    audience: str | None = None
    scope: str | bytes | None = None
    req_cnf: Cnf | None = None
    ace_profile: AceProfile | int | None = None
    ask_ace_profile: bool = False
    cnonce: bytes | None = None
    edhoc_info: EdhocInfo | None = None  # EDHOC profile §3.1: {0: session_id} asks for an update
    token_upload: int | None = None  # WF §3.1: 0 nothing back, 1 the token hash, 2 the token
    to_rs: bytes | None = None  # WF §3.3
    token_series_id: bytes | None = None  # WF §3.6: an update of the series
    extra: Extra = ()

    _what = "token request"
    _labels = Param
    _fields = (
        _F("grant_type", Param.GRANT_TYPE, "grant"),
        _F("client_id", Param.CLIENT_ID, "text"),
        _F("audience", Param.AUDIENCE, "text"),
        _F("scope", Param.SCOPE, "scope"),
        _F("req_cnf", Param.REQ_CNF, "cnf"),
        _F("ace_profile", Param.ACE_PROFILE, "profile"),
        _F("cnonce", Param.CNONCE, "bytes"),
        _F("edhoc_info", Param.EDHOC_INFO, "edhoc_info"),
        _F("token_upload", Param.TOKEN_UPLOAD, "uint"),
        _F("to_rs", Param.TO_RS, "bytes"),
        _F("token_series_id", Param.TOKEN_SERIES_ID, "bytes"),
    )

    def to_map(self) -> dict[Any, Any]:
        m = _Message.to_map(self)  # no zero-argument super() in slotted dataclasses
        if self.ace_profile is None and self.ask_ace_profile:
            m[int(Param.ACE_PROFILE)] = None
        return m

    @classmethod
    def from_map(cls, value: object) -> Self:
        label = int(Param.ACE_PROFILE)
        ask = isinstance(value, Mapping) and label in value and value[label] is None
        if ask and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k != label}
        msg = _Message.from_map.__func__(cls, value)  # type: ignore[attr-defined]
        if ask or msg.ace_profile is not None:
            return replace(msg, ask_ace_profile=True)  # type: ignore[no-any-return]
        return msg  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessTokenResponse(_Message):
    """2.01 from /token (RFC 9200 §5.8.2, RFC 9201 §3.2 cnf/rs_cnf)."""

    access_token: bytes
    token_type: TokenType | int | None = None
    expires_in: int | None = None
    scope: str | bytes | None = None
    cnf: Cnf | None = None
    rs_cnf: Cnf | None = None
    ace_profile: AceProfile | int | None = None
    refresh_token: bytes | None = None
    edhoc_info: EdhocInfo | None = None  # EDHOC profile §3.3
    token_upload: int | None = None  # WF §3.1: 0 uploaded, 1 failed, 2 a new series on the fly
    token_hash: bytes | None = None  # WF §3.2
    from_rs: bytes | None = None  # WF §3.3
    token_series_id: bytes | None = None  # WF §3.6
    extra: Extra = ()

    _what = "token response"
    _labels = Param
    _fields = (
        _F("access_token", Param.ACCESS_TOKEN, "bytes", required=True),  # WF §3.1: absent after an upload
        _F("token_type", Param.TOKEN_TYPE, "token_type"),
        _F("ace_profile", Param.ACE_PROFILE, "profile"),
        _F("expires_in", Param.EXPIRES_IN, "uint"),
        _F("scope", Param.SCOPE, "scope"),
        _F("cnf", Param.CNF, "cnf"),
        _F("rs_cnf", Param.RS_CNF, "cnf"),
        _F("refresh_token", Param.REFRESH_TOKEN, "bytes"),
        _F("edhoc_info", Param.EDHOC_INFO, "edhoc_info"),
        _F("token_upload", Param.TOKEN_UPLOAD, "uint"),
        _F("token_hash", Param.TOKEN_HASH, "bytes"),
        _F("from_rs", Param.FROM_RS, "bytes"),
        _F("token_series_id", Param.TOKEN_SERIES_ID, "bytes"),
    )

    # WF §3.1.2: after an upload (token_upload present) the response may carry no access_token;
    # that is access_token b"" here, and only then
    def to_map(self) -> dict[Any, Any]:
        m = _Message.to_map(self)
        if self.token_upload is not None and not self.access_token:
            del m[int(Param.ACCESS_TOKEN)]
        return m

    @classmethod
    def from_map(cls, value: object) -> Self:
        label, upload = int(Param.ACCESS_TOKEN), int(Param.TOKEN_UPLOAD)
        if isinstance(value, Mapping) and label not in value and upload in value:
            value = {label: b"", **value}
        return _Message.from_map.__func__(cls, value)  # type: ignore[attr-defined,no-any-return]


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorResponse(_Message):
    """Error map of /token and /introspect (RFC 9200 §5.8.3)."""

    error: ErrorCode | int
    error_description: str | None = None
    error_uri: str | None = None
    extra: Extra = ()

    _what = "error response"
    _labels = Param
    _fields = (
        _F("error", Param.ERROR, "error", required=True),
        _F("error_description", Param.ERROR_DESCRIPTION, "text"),
        _F("error_uri", Param.ERROR_URI, "text"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class IntrospectionRequest(_Message):
    """POST /introspect payload (RFC 9200 §5.9.1)."""

    token: bytes
    token_type_hint: TokenType | int | None = None
    client_id: str | None = None
    extra: Extra = ()

    _what = "introspection request"
    _labels = IntrospectionParam
    _fields = (
        _F("token", IntrospectionParam.TOKEN, "bytes", required=True),
        _F("token_type_hint", IntrospectionParam.TOKEN_TYPE_HINT, "token_type"),
        _F("client_id", IntrospectionParam.CLIENT_ID, "text"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class IntrospectionResponse(_Message):
    """Introspection answer (RFC 9200 §5.9.2, RFC 9201 §4 cnf/rs_cnf)."""

    active: bool
    scope: str | bytes | None = None
    client_id: str | None = None
    username: str | None = None
    token_type: TokenType | int | None = None
    iss: str | None = None
    sub: str | None = None
    aud: str | None = None
    exp: int | None = None
    nbf: int | None = None
    iat: int | None = None
    cti: bytes | None = None
    cnf: Cnf | None = None
    rs_cnf: Cnf | None = None
    ace_profile: AceProfile | int | None = None
    cnonce: bytes | None = None
    exi: int | None = None
    extra: Extra = ()

    _what = "introspection response"
    _labels = IntrospectionParam
    _fields = (
        _F("active", IntrospectionParam.ACTIVE, "bool", required=True),
        _F("iss", IntrospectionParam.ISS, "text"),
        _F("sub", IntrospectionParam.SUB, "text"),
        _F("aud", IntrospectionParam.AUD, "text"),
        _F("scope", IntrospectionParam.SCOPE, "scope"),
        _F("exp", IntrospectionParam.EXP, "uint"),
        _F("nbf", IntrospectionParam.NBF, "uint"),
        _F("iat", IntrospectionParam.IAT, "uint"),
        _F("cti", IntrospectionParam.CTI, "bytes"),
        _F("client_id", IntrospectionParam.CLIENT_ID, "text"),
        _F("username", IntrospectionParam.USERNAME, "text"),
        _F("token_type", IntrospectionParam.TOKEN_TYPE, "token_type"),
        _F("ace_profile", IntrospectionParam.ACE_PROFILE, "profile"),
        _F("cnonce", IntrospectionParam.CNONCE, "bytes"),
        _F("exi", IntrospectionParam.EXI, "uint"),
        _F("cnf", IntrospectionParam.CNF, "cnf"),
        _F("rs_cnf", IntrospectionParam.RS_CNF, "cnf"),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthzInfoRequest(_Message):
    """POST /authz-info of the OSCORE profile (RFC 9203 §4.1, Figure 11)."""

    access_token: bytes
    nonce1: bytes
    ace_client_recipientid: bytes
    extra: Extra = ()

    _what = "authz-info request"
    _labels = Param
    _fields = (
        _F("access_token", Param.ACCESS_TOKEN, "bytes", required=True),
        _F("nonce1", Param.NONCE1, "bytes", required=True),
        _F("ace_client_recipientid", Param.ACE_CLIENT_RECIPIENTID, "bytes", required=True),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthzInfoResponse(_Message):
    """2.01 from /authz-info of the OSCORE profile (RFC 9203 §4.2, Figure 12)."""

    nonce2: bytes
    ace_server_recipientid: bytes
    extra: Extra = ()

    _what = "authz-info response"
    _labels = Param
    _fields = (
        _F("nonce2", Param.NONCE2, "bytes", required=True),
        _F("ace_server_recipientid", Param.ACE_SERVER_RECIPIENTID, "bytes", required=True),
    )




@dataclass(frozen=True, slots=True, kw_only=True)
class AuthzInfoUpdate:
    """The AS's protected POST /authz-info of a token upload (WF §3.7.1): application/ace+cbor
    ``{1: token, updated_rights: true}``; ``updated_rights`` None: the first token of a series.
    ``key``: the label updated_rights goes under (TBD at IANA)."""

    access_token: bytes
    updated_rights: bool | None = None
    extra: Extra = ()

    def encode(self, key: int = UPDATED_RIGHTS_KEY) -> bytes:
        m: dict[Any, Any] = {int(Param.ACCESS_TOKEN): self.access_token}
        if self.updated_rights is not None:
            m[key] = self.updated_rights
        m.update(self.extra)
        return codec.dumps(m)

    @classmethod
    def decode(cls, data: bytes, key: int = UPDATED_RIGHTS_KEY) -> AuthzInfoUpdate:
        r = MapReader(codec.loads(data, what="authz-info upload"), "authz-info upload", Param)
        token = r.bytes_(Param.ACCESS_TOKEN, required=True)
        rights = r.items.get(key)
        if rights is not None and rights is not True:  # WF §3.7.1: only true is defined
            raise DecodeError(f"authz-info upload: updated_rights({key}) must be true")
        extra = {k: v for k, v in r.extra().items() if k != key}
        return cls(access_token=token, updated_rights=rights, extra=codec.freeze_extra(extra))


MESSAGE_TYPES: tuple[type[_Message], ...] = (
    AccessTokenRequest, AccessTokenResponse, ErrorResponse, CreationHints,
    IntrospectionRequest, IntrospectionResponse, AuthzInfoRequest, AuthzInfoResponse,
)
