"""The RS's refusal of a request to a protected resource (RFC 9200 §5.10.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ace.cbor.labels import ContentFormat
from ace.errors import CoapCode, RemoteError

if TYPE_CHECKING:
    from ace.messages import CreationHints
    from ace.rs.store import Binding


class AccessDenied(RemoteError):
    """4.01, 4.03 or 4.05 with AS Request Creation Hints (RFC 9200 §5.3, §5.10.2), answered as
    application/ace+cbor (``ace.replies.reply_of``); without hints, a short text.
    ``dropped``: the binding refused because it expired, gone now (its channel goes too)."""

    default_error_code = None

    def __init__(self, description: str, *, coap_code: CoapCode, hints: CreationHints | None = None,
                 dropped: tuple[Binding, ...] = ()) -> None:
        super().__init__(description, coap_code=coap_code)
        self.hints = hints
        self.dropped = dropped

    def reply_body(self) -> tuple[bytes, int] | None:
        return None if self.hints is None else (self.hints.encode(), int(ContentFormat.ACE_CBOR))
