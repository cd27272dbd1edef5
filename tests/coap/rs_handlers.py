"""Handlers that tests/coap/test_rs_resources.py configures in rs.toml (``handler = "rs_handlers:..."``)."""

from __future__ import annotations

import aiocoap
import aiocoap.resource

from ace.rs.store import Binding


async def hello(request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
    """GET: the token's scope, as the handler sees its claims."""
    return aiocoap.Message(code=aiocoap.CONTENT, payload=f"hello {binding.claims.scope}".encode())


class Counter:
    """An async callable with ``observed``: each PUT counts and notifies the observers."""

    def __init__(self) -> None:
        self.count, self.notify = 0, None

    def observed(self, notify):  # type: ignore[no-untyped-def]
        self.notify = notify

    async def __call__(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        if request.code == aiocoap.PUT:
            self.count += 1
            if self.notify is not None:
                self.notify()
            return aiocoap.Message(code=aiocoap.CHANGED)
        return aiocoap.Message(code=aiocoap.CONTENT, payload=str(self.count).encode())


counter = Counter()


class Echo(aiocoap.resource.Resource):
    """An aiocoap resource: GET and POST answered by its own render methods."""

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(payload=b"echo")

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.CHANGED, payload=request.payload[::-1])


not_async = print
