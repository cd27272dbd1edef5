"""The RS's refusal of a request to a protected resource (RFC 9200 §5.10.2)."""

from __future__ import annotations

from ace.cbor.labels import ContentFormat
from ace.cbor.messages import CreationHints
from ace.errors import CoapCode, RemoteError


class AccessDenied(RemoteError):
    """4.01, 4.03 or 4.05 with AS Request Creation Hints (RFC 9200 §5.3, §5.10.2), answered as
    application/ace+cbor (``ace.replies.reply_of``); without hints, a short text."""

    default_error_code = None

    def __init__(self, description: str, *, coap_code: CoapCode, hints: CreationHints | None = None) -> None:
        super().__init__(description, coap_code=coap_code)
        self.hints = hints

    def reply_body(self) -> tuple[bytes, int] | None:
        return None if self.hints is None else (self.hints.encode(), int(ContentFormat.ACE_CBOR))
