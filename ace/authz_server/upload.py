"""Token upload, sans I/O (draft-ietf-ace-workflow-and-params-08 §3.1-§3.3): what the AS POSTs to
the RS's /authz-info for a client that asked (``token_upload`` in its request), and the token
response once the RS answered.

The POST (``plan``): the token alone, application/cwt (the bare-token profiles, EDHOC: as the client
would send it), or, with ``to_rs`` (the OSCORE profile's nonce1 and id1, RFC 9203 §4.1), the map
``{1: token, **to_rs}`` as application/ace+cbor (those keys only: others are refused). The response
(``finish``, WF §3.1.2): after a 2.01, token_upload 0 and, by what was asked, nothing (0), the RFC 9770
token hash (1) or the token (2),
with from_rs, the RS's 2.01 payload (h'' when it sent none; tagged with its Content-Format when that
is not the profile's, RFC 9277 App. B); after any other answer, or none, token_upload 1 with the
token (the client uploads it itself). An update of access rights is POSTed as ``{1: token,
updated_rights: true}`` (WF §3.7.1); an RS's 5.00 missing_old_token gets that same answer (token_upload
1 and the token): the new series on the fly of WF §3.7.2.1 (token_upload 2) is not made here.
An RS with no upload URI or no OSCORE context with the AS is not tried: the response is then the
ordinary one, without token_upload.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import cbor2

from ace.cbor import codec
from ace.cbor.labels import ContentFormat, Param
from ace.errors import DecodeError
from ace.messages import AccessTokenRequest, AccessTokenResponse, AuthzInfoUpdate
from ace.store.base import RsRecord
from ace.tokens.hashing import token_hash

UPLOADED, FAILED, NEW_SERIES = 0, 1, 2  # token_upload in the response (WF §3.1.2)
NOTHING, HASH, TOKEN = 0, 1, 2  # token_upload in the request (WF §3.1.1)
CF_TAG_BASE = 1668546817  # RFC 9277 §4: tag = CF_TAG_BASE + Content-Format (ace+cbor 19: 1668546836)
ACE_CBOR_TAG = CF_TAG_BASE + int(ContentFormat.ACE_CBOR)
OSCORE_PROFILE = 2
TO_RS_KEYS = {OSCORE_PROFILE: frozenset({int(Param.NONCE1), int(Param.ACE_CLIENT_RECIPIENTID)})}  # RFC 9203 §4.1


@dataclass(frozen=True, slots=True)
class UploadPlan:
    """The POST to the RS: where, what, and what the client asked to get back."""

    uri: str
    payload: bytes
    content_format: int
    asked: int


def check_request(request: AccessTokenRequest) -> None:
    """WF §3.1.1: token_upload 0, 1 or 2; to_rs only with it (4.00 invalid_request otherwise)."""
    if request.token_upload is not None and request.token_upload not in (NOTHING, HASH, TOKEN):
        raise DecodeError("token_upload must be 0, 1 or 2")
    if request.to_rs is not None and request.token_upload is None:
        raise DecodeError("to_rs only goes with token_upload")


def plan(request: AccessTokenRequest, rs: RsRecord, token: bytes, profile: int, *,
         update: bool = False) -> UploadPlan | None:
    """The POST for a request with token_upload, or None when there is none to try. An update of
    access rights goes as ``{1: token, updated_rights: true}`` (WF §3.7.1)."""
    if request.token_upload is None or rs.upload_uri is None or rs.oscore is None:
        return None
    if update:
        if request.to_rs is not None:
            raise DecodeError("to_rs only goes with the first token of a series")  # WF §3.3
        body = AuthzInfoUpdate(access_token=token, updated_rights=True).encode()
        return UploadPlan(rs.upload_uri, body, int(ContentFormat.ACE_CBOR), request.token_upload)
    if request.to_rs is None:
        return UploadPlan(rs.upload_uri, token, int(ContentFormat.CWT), request.token_upload)
    payload = codec.dumps({int(Param.ACCESS_TOKEN): token, **_to_rs(request.to_rs, profile)})
    return UploadPlan(rs.upload_uri, payload, int(ContentFormat.ACE_CBOR), request.token_upload)


def _to_rs(to_rs: bytes, profile: int) -> dict[int, Any]:
    """WF §3.3: the map the client would have sent, with only the keys its profile defines there (RFC 9203
    §4.1: nonce1, ace_client_recipientid); anything else (updated_rights above all: the RS takes it from
    the AS alone, WF §3.7.1) is refused, as is any tag but ace+cbor's (RFC 9277)."""
    try:
        extra = codec.loads(to_rs, what="to_rs", allowed_tags=frozenset({ACE_CBOR_TAG}))
    except DecodeError:
        raise DecodeError("to_rs must wrap a CBOR map") from None
    if isinstance(extra, cbor2.CBORTag) and extra.tag == ACE_CBOR_TAG:
        extra = extra.value
    allowed = TO_RS_KEYS.get(profile, frozenset())
    if not isinstance(extra, dict) or not allowed.issuperset(extra):
        raise DecodeError("to_rs must wrap a map of the keys its profile defines for the RS")
    return extra


def from_rs(payload: bytes, content_format: int | None, profile: int) -> bytes:
    """WF §3.3: the RS's 2.01 payload, tagged with its Content-Format unless that is the profile's."""
    usual = int(ContentFormat.ACE_CBOR) if profile == OSCORE_PROFILE else None
    if not payload or content_format is None or content_format == usual:
        return payload
    return codec.dumps(cbor2.CBORTag(CF_TAG_BASE + content_format, payload))


def finish(response: AccessTokenResponse, asked: int, created: bool, payload: bytes = b"",
           content_format: int | None = None) -> AccessTokenResponse:
    """The token response after the upload (WF §3.1.2, §3.2, §3.3)."""
    token = response.access_token
    if not created:
        return replace(response, token_upload=FAILED)
    return replace(
        response, token_upload=UPLOADED,
        access_token=token if asked == TOKEN else b"",  # (b"": left out, ``AccessTokenResponse.to_map``)
        token_hash=token_hash(token) if asked == HASH else None,
        from_rs=from_rs(payload, content_format, response.ace_profile or 0),
    )
