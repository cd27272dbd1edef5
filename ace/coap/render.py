"""Errors and ACE payloads as CoAP responses: the one place RemoteError meets aiocoap.

A ``RemoteError`` with an RFC 9200 error code becomes its CoAP code with an
application/ace+cbor error map (RFC 9200 §5.8.3); an ``AccessDenied`` carrying AS Request
Creation Hints becomes 4.01 with the hints (§5.3); any other becomes its CoAP code with a
short diagnostic payload. Nothing secret is in any of them: descriptions are written for
peers.
"""

from __future__ import annotations

from typing import Any

import aiocoap
import aiocoap.blockwise
from aiocoap.numbers.codes import Code

from ace.cbor.labels import ContentFormat
from ace.cbor.messages import ErrorResponse
from ace.errors import RemoteError

MAX_BODY = 4096 + 256  # the largest token we take (ace.tokens.cwt.MAX_TOKEN_SIZE) plus map overhead


class _Block1Spool(aiocoap.blockwise.Block1Spool):  # type: ignore[misc]
    """aiocoap 0.4.17 lets a Block1 block that does not continue the assembly escape as a bare
    ValueError (5.00 and a traceback); RFC 7959 §2.9.2 has that answered 4.08."""

    def feed_and_take(self, req: Any) -> Any:
        try:
            return super().feed_and_take(req)
        except ValueError:
            raise aiocoap.blockwise.IncompleteException from None


class BoundedBody:
    """Mixin for our resources: a block-wise request body larger than ``MAX_BODY`` is refused
    with 4.13 and Size1 (RFC 7959 §2.9.3) as soon as a block shows it, before aiocoap
    reassembles it (it buffers any size otherwise, for any unauthenticated peer); a block out
    of sequence gets 4.08 (not aiocoap's 5.00)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._block1 = _Block1Spool()

    async def render_to_pipe(self, pipe: Any) -> None:
        request = pipe.request
        block1 = request.opt.block1
        too_big = (request.opt.size1 or 0) > MAX_BODY or (
            block1 is not None and block1.start + len(request.payload) > MAX_BODY)
        if too_big:
            pipe.add_response(aiocoap.Message(code=aiocoap.REQUEST_ENTITY_TOO_LARGE, size1=MAX_BODY),
                              is_last=True)
            return
        await super().render_to_pipe(pipe)  # type: ignore[misc]


def code_of(pair: tuple[int, int]) -> Code:
    return Code((pair[0] << 5) | pair[1])


def pair_of(code: Code) -> tuple[int, int]:
    return (int(code) >> 5, int(code) & 0x1F)


def ace_message(code: tuple[int, int], payload: bytes) -> aiocoap.Message:
    return aiocoap.Message(code=code_of(code), payload=payload, content_format=int(ContentFormat.ACE_CBOR))


def error_message(exc: RemoteError) -> aiocoap.Message:
    hints = getattr(exc, "hints", None)
    if hints is not None:
        return ace_message(exc.coap_code, hints.encode())
    if exc.error_code is not None:
        body = ErrorResponse(error=exc.error_code, error_description=exc.description)
        return ace_message(exc.coap_code, body.encode())
    return aiocoap.Message(code=code_of(exc.coap_code), payload=exc.description.encode()[:80])
