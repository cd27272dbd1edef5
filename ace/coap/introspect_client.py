"""The RS's token introspection client (RFC 9200 §5.9): it POSTs the core's
``NeedsIntrospection.payload`` to the AS's /introspect (``ace.coap.introspect``) over the RS's
pre-established OSCORE context with the AS (``RsRecord.oscore`` there, ``as_context`` in rs.toml).
When the RS also observes the TRL, the two share one aiocoap context (``share``), hence one
security context: two copies of a sender context would reuse sequence numbers. Otherwise the
client makes its own on first use (sequence numbers persisted in the RS's state file). Requests
are bounded in time and in number in flight (a flood of reference tokens at the unauthenticated
/authz-info cannot queue unbounded work: beyond the bound the RS answers 5.03).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiocoap
from aiocoap import oscore

from ace.cbor.labels import ContentFormat
from ace.coap import contexts
from ace.coap.render import pair_of
from ace.tokens.oscore_params import OscoreContextParams

if TYPE_CHECKING:
    from ace.store.base import SequenceNumberStore

log = logging.getLogger(__name__)
REQUEST_TIMEOUT = 5.0  # seconds the RS waits for the AS (the client's POST /authz-info waits too)
MAX_IN_FLIGHT = 8  # introspection requests outstanding at once


def uri_at_as(as_uri: str, path: str) -> str:
    """The URI of ``path`` at the AS whose token endpoint (or any URI) is ``as_uri``."""
    parts = urlsplit(as_uri)
    return f"{parts.scheme}://{parts.netloc}/{path.lstrip('/')}"


async def as_client_context(uri: str, secret: OscoreContextParams, seqno_store: SequenceNumberStore) -> Any:
    """A client context whose requests to the origin of ``uri`` (the AS's) are protected with ``secret``."""
    ctx = await aiocoap.Context.create_client_context(transports=["oscore", "udp6"])
    ctx.client_credentials[contexts.origin_key(uri)] = contexts.from_secret(secret, store=seqno_store, claims=["as"])
    return ctx


class IntrospectionClient:
    """The RS's introspection requests to the AS at ``uri``, protected with ``secret``."""

    def __init__(self, uri: str, secret: OscoreContextParams, seqno_store: SequenceNumberStore, *,
                 timeout: float = REQUEST_TIMEOUT, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.uri, self.secret, self.seqno_store, self.timeout = uri, secret, seqno_store, timeout
        self.max_in_flight = max_in_flight
        self.context: Any = None
        self._own = False  # whether ``context`` is ours to shut down
        self._in_flight = 0
        self._lock = asyncio.Lock()
        self.requests = 0  # sent (tests look)

    def share(self, context: Any) -> None:
        """Use ``context`` (whose credentials already protect the AS's origin with ``secret``)."""
        self.context, self._own = context, False

    async def ensure_context(self) -> Any:
        """The aiocoap context the requests go over: the shared one, or our own, made on first use."""
        async with self._lock:
            if self.context is None:
                self.context = await as_client_context(self.uri, self.secret, self.seqno_store)
                self._own = True
            return self.context

    async def introspect(self, payload: bytes) -> tuple[tuple[int, int] | None, bytes]:
        """POST ``payload`` to /introspect: (CoAP code, payload), or (None, b"") when no answer came
        in time, the AS could not be reached, or too many requests are in flight."""
        if self._in_flight >= self.max_in_flight:
            log.warning("introspection refused: %d requests already in flight", self._in_flight)
            return None, b""
        self._in_flight += 1
        try:
            ctx = await self.ensure_context()
            msg = aiocoap.Message(code=aiocoap.POST, uri=self.uri, payload=payload,
                                  content_format=int(ContentFormat.ACE_CBOR))
            self.requests += 1
            try:
                raw = await asyncio.wait_for(ctx.request(msg).response, self.timeout)
            except oscore.NotAProtectedMessage as exc:  # e.g. the AS does not know our context: 4.01
                # never taken: an unprotected answer could come from anyone (RFC 9200 §5.9: the
                # AS-RS channel MUST be protected)
                log.warning("the AS answered introspection unprotected: %s", exc.plain_message.code)
                return None, b""
            return pair_of(raw.code), raw.payload
        except (TimeoutError, aiocoap.error.Error, OSError) as exc:
            log.warning("introspection at %s failed: %s", self.uri, type(exc).__name__)
            return None, b""
        finally:
            self._in_flight -= 1

    async def stop(self) -> None:
        if self.context is not None and self._own:
            await self.context.shutdown()
        self.context, self._own = None, False
