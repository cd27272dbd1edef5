"""Token upload (draft-ietf-ace-workflow-and-params-08 §2, §3.1): a token POSTed to an RS's
/authz-info on the client's behalf, over the AS–RS secure association.

``upload`` is the POST itself: over an OSCORE context with the RS (the AS's side of
``RsRecord.oscore``, the very context object the AS serves the RS's /introspect and TRL requests
with: one context, one sequence of sender numbers), or unprotected (``ace token upload`` to a
bare-token profile's RS). An unprotected answer to a protected request is never taken (WF §2:
all AS–RS traffic MUST be protected). ``accept_uploads`` is the RS's side: its context with the AS
(shared with its TRL observer and introspection client) also unprotects requests, so the AS's POST
reaches /authz-info, whose core processes the token as if the client had sent it (the context's
claims name no binding).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiocoap
from aiocoap import oscore

from ace.coap.contexts import origin_key
from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.render import pair_of

log = logging.getLogger(__name__)
UPLOAD_TIMEOUT = 10.0  # seconds the AS waits for the RS (the client waits for the AS meanwhile)
AS_CREDENTIALS_KEY = ":as-upload"  # where the RS's context with the AS sits among its server credentials


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    """The RS's answer: its CoAP code (None: no protected answer in time), payload and Content-Format."""

    code: tuple[int, int] | None
    payload: bytes = b""
    content_format: int | None = None
    detail: str = ""

    @property
    def created(self) -> bool:
        return self.code == (2, 1)


async def upload(coap: Any, uri: str, payload: bytes, content_format: int, *,
                 security: MemoryOscoreContext | None, timeout: float = UPLOAD_TIMEOUT) -> UploadOutcome:
    """POST ``payload`` to ``uri`` over ``coap`` (an aiocoap context), protected with ``security``
    (installed as the client credential of the RS's origin) or, with None, unprotected."""
    if security is not None:
        coap.client_credentials[origin_key(uri)] = security
    msg = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=payload, content_format=content_format)
    try:
        answer = await asyncio.wait_for(coap.request(msg).response, timeout)
    except oscore.NotAProtectedMessage as exc:  # WF §2: AS-RS traffic MUST be protected; never taken
        log.warning("token upload to %s answered unprotected: %s", uri, exc.plain_message.code)
        return UploadOutcome(None, detail=f"unprotected answer {exc.plain_message.code}")
    except (TimeoutError, aiocoap.error.Error, OSError) as exc:
        log.warning("token upload to %s failed: %s", uri, type(exc).__name__)
        return UploadOutcome(None, detail=type(exc).__name__)
    return UploadOutcome(pair_of(answer.code), answer.payload, answer.opt.content_format, str(answer.code))


def _as_context(coap: Any) -> MemoryOscoreContext | None:
    values = coap.client_credentials.values() if coap is not None else ()
    return next((c for c in values if isinstance(c, MemoryOscoreContext) and "as" in c.authenticated_claims), None)


async def accept_uploads(server: Any) -> bool:
    """The RS (an ``ace.coap.rs_server.RsServer``: its credentials, TRL link, introspector) takes
    requests protected with its context with the AS (its TRL observer's or
    introspection client's, the one object: never a second copy of a sender context); returns
    whether it has one."""
    coap = server.trl.context if server.trl is not None else None
    if coap is None and server.introspector is not None:
        coap = await server.introspector.ensure_context()  # (its own client context, made now)
    ctx = _as_context(coap)
    if ctx is None:
        return False
    server.credentials[AS_CREDENTIALS_KEY] = ctx
    return True
