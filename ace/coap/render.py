"""Errors and ACE payloads as CoAP responses: the one place RemoteError meets aiocoap.

A ``RemoteError`` with an RFC 9200 error code becomes its CoAP code with an
application/ace+cbor error map (RFC 9200 §5.8.3); an ``AccessDenied`` carrying AS Request
Creation Hints becomes 4.01 with the hints (§5.3); any other becomes its CoAP code with a
short diagnostic payload. Nothing secret is in any of them: descriptions are written for
peers.
"""

from __future__ import annotations

import aiocoap
from aiocoap.numbers.codes import Code

from ace.cbor.labels import ContentFormat
from ace.cbor.messages import ErrorResponse
from ace.errors import RemoteError


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
