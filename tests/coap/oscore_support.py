"""What the OSCORE socket tests share: a fake sequence-number store, an OSCORE-protected
``/whoami`` server on ::1 and a client context for it, each stopped when its context ends, every
await bounded (``TIMEOUT``). Not a test module."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiocoap
from aiocoap import resource
from aiocoap.credentials import CredentialsMap
from aiocoap.numbers import CHANGED, CONTENT, GET
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper
from support import bounded

from ace.coap.oscore_context import (
    MemoryOscoreContext,
)

TIMEOUT = 10.0


class FakeSeqnoStore:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.writes: list[tuple[str, int]] = []
        self.fail = False

    def load_sequence_number(self, context_name: str) -> int | None:
        return self.values.get(context_name)

    def persist_sequence_number(self, context_name: str, value: int) -> None:
        if self.fail:
            raise OSError("disk full")
        self.writes.append((context_name, value))
        self.values[context_name] = value

    def persist_replay_floor(self, context_name: str, value: int) -> None:
        self.persist_sequence_number(context_name, value)


class Whoami(resource.Resource):
    """Echoes the authenticated claims (JSON ``null`` for an unprotected request)."""

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return self._answer(request, CONTENT)

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        return self._answer(request, CHANGED)

    @staticmethod
    def _answer(request: aiocoap.Message, code: Any) -> aiocoap.Message:
        protected = isinstance(request.remote, aiocoap.transports.oscore.OSCOREAddress)
        claims = list(request.remote.authenticated_claims) if protected else None
        body = {"claims": claims, "payload": request.payload.decode()}
        return aiocoap.Message(code=code, payload=json.dumps(body).encode())


class CountingWrapper(OscoreSiteWrapper):  # type: ignore[misc]
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.outer_requests = 0

    async def render_to_pipe(self, pipe: Any) -> None:
        self.outer_requests += 1
        await super().render_to_pipe(pipe)


def _bound_port(ctx: aiocoap.Context) -> int | None:
    for interface in ctx.request_interfaces:
        message_interface = getattr(getattr(interface, "token_interface", None), "message_interface", None)
        transport = getattr(message_interface, "transport", None)
        if transport is not None:
            port: int = transport.get_extra_info("socket").getsockname()[1]
            return port
    return None


async def _start_server(site: resource.Site | OscoreSiteWrapper) -> tuple[aiocoap.Context, int]:
    """Bind udp6 on ::1: port 0 works (the kernel picks), read back from the socket."""
    try:
        ctx = await bounded(aiocoap.Context.create_server_context(site, bind=("::1", 0), transports=["udp6"]), TIMEOUT)
    except OSError:
        ctx = None
    if ctx is not None:
        port = _bound_port(ctx)
        if port:
            return ctx, port
        await ctx.shutdown()
    for _ in range(20):  # fallback: random high ports
        port = random.randint(20000, 60000)
        try:
            ctx = await bounded(aiocoap.Context.create_server_context(site, bind=("::1", port), transports=["udp6"]),
                                TIMEOUT)
        except OSError:
            continue
        return ctx, port
    raise RuntimeError("no free UDP port on ::1")


@asynccontextmanager
async def oscore_server(
    credentials: CredentialsMap,
) -> AsyncIterator[tuple[CountingWrapper, int]]:
    site = resource.Site()
    site.add_resource(["whoami"], Whoami())
    wrapper = CountingWrapper(site, credentials)
    ctx, port = await _start_server(wrapper)
    try:
        yield wrapper, port
    finally:
        await bounded(ctx.shutdown(), TIMEOUT)


@asynccontextmanager
async def coap_client(port: int, secctx: MemoryOscoreContext | None) -> AsyncIterator[aiocoap.Context]:
    ctx = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]), TIMEOUT)
    try:
        if secctx is not None:
            ctx.client_credentials[f"coap://[::1]:{port}/*"] = secctx
        yield ctx
    finally:
        await bounded(ctx.shutdown(), TIMEOUT)


async def _request(client: aiocoap.Context, port: int, code: Any = GET, payload: bytes = b"") -> aiocoap.Message:
    msg = aiocoap.Message(code=code, uri=f"coap://[::1]:{port}/whoami", payload=payload)
    response: aiocoap.Message = await bounded(client.request(msg).response, TIMEOUT)
    return response
