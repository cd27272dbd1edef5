"""The RS's refusal of a request to a protected resource (RFC 9200 §5.10.2)."""

from __future__ import annotations

from ace.cbor.messages import CreationHints
from ace.errors import RemoteError
from ace.rs.store import Binding


class AccessDenied(RemoteError):
    """4.01, 4.03 or 4.05 with AS Request Creation Hints (RFC 9200 §5.3, §5.10.2), rendered as
    application/ace+cbor by ``ace.coap.render.error_message``; without hints, a short text.
    ``dropped``: the binding refused because it expired, gone now (its channel goes too)."""

    default_error_code = None

    def __init__(self, description: str, *, coap_code: tuple[int, int], hints: CreationHints | None = None,
                 dropped: tuple[Binding, ...] = ()) -> None:
        super().__init__(description, error_code=None, coap_code=coap_code)
        self.hints = hints
        self.dropped = dropped
