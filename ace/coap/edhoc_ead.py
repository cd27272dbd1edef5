"""What the RS's EDHOC responder and initiator share (``edhoc_server``, ``edhoc_reverse``): the
EDHOC error message as a CoAP response (RFC 9528 §6, App. A.2) and the access-token item of an EAD
field (draft-ietf-ace-edhoc-oscore-profile-11 §4.3.3, §4.4.5; WF §9 Session ID)."""

from __future__ import annotations

import logging
from typing import Any

import aiocoap
import aiocoap.error
import cbor2

from ace.cbor.labels import ContentFormat
from ace.coap.ratelog import RateLimitedLog
from ace.errors import RemoteError
from ace.profiles.edhoc_presets import EdhocCodePoints

log = logging.getLogger(__name__)
peer_log = RateLimitedLog(log)

EDHOC_CBOR_SEQ = int(ContentFormat.EDHOC_CBOR_SEQ)  # 64 at IANA (RFC 9528 §10.9)
ABBREV_EDHOC = 2  # Uri-Path-Abbrev value for /.well-known/edhoc (draft-ietf-core-uri-path-abbrev)
ERR_UNSPECIFIED = 1  # RFC 9528 §6.2; EP §4.3.3 names it for a bad token


class EdhocError(aiocoap.error.RenderableError):  # type: ignore[misc]
    """An EDHOC error message (RFC 9528 §6): 4.00, ``cbor(ERR_CODE) || cbor(ERR_INFO)`` (RFC 9528 App. A.2)."""

    def __init__(self, reason: str, err_code: int = ERR_UNSPECIFIED) -> None:
        super().__init__(reason)
        self.reason, self.err_code = reason, err_code

    def to_message(self) -> aiocoap.Message:
        payload = cbor2.dumps(self.err_code) + cbor2.dumps(self.reason)
        return aiocoap.Message(code=aiocoap.BAD_REQUEST, content_format=EDHOC_CBOR_SEQ, payload=payload)


def token_of(ead_3: list[Any], preset: EdhocCodePoints) -> tuple[str, bytes]:
    """("token"|"session", value) of the one token (or Session ID) item in EAD_3 (EP §4.3.3); EdhocError
    for none, several, or any other critical item."""
    wanted = {preset.ead_token: "token"}
    if preset.ead_session_id is not None:
        wanted[preset.ead_session_id] = "session"
    found = [(wanted[e.label()], bytes(e.value() or b"")) for e in ead_3 if e.label() in wanted]
    if len(found) != 1:  # EP §4.3.3: exactly one access-token item
        raise EdhocError("EAD_3 must carry exactly one access token item")
    if any(e.is_critical() and e.label() not in wanted for e in ead_3):  # RFC 9528 §3.8
        raise EdhocError("unsupported critical EAD_3 item")
    if preset.single_ead_item and len(ead_3) != 1:
        raise EdhocError("EAD_3 must carry the access token item alone")
    return found[0]


def bind(gate: Any, admission: Any) -> None:
    """``gate.bound``, a refusal (the binding store full: 4.13, 5.03; a cnonce spent meanwhile) an EDHOC error."""
    try:
        gate.bound(admission)
    except RemoteError as exc:
        peer_log.log(logging.INFO, "EDHOC: binding refused: %s", exc)
        raise EdhocError("access token refused") from None
