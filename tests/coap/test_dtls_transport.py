"""DTLS-PSK glue (ace.coap.dtls) over real sockets on loopback, with aiocoap's tinydtls client.

A wrong key shows on an aiocoap client only as silence (tinydtls' alert is encrypted with the
key the client does not have), so those requests are bounded by WRONG_KEY_WAIT; an unknown
identity is answered at once by a fatal internal_error alert (NetworkError "80").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiocoap
import aiocoap.resource
import pytest
from aiocoap.credentials import DTLS, CredentialsMap
from aiocoap.util import hostportjoin

from ace.coap import dtls

IDENTITY = b"kid-client-1"
KEY = bytes(range(16))
LABEL = b"label-1"
WRONG_KEY_WAIT = 3.0
STEP = 10.0  # bound for anything that should answer promptly

# aiocoap's client warns when tinydtls calls back into a connection already collected.
pytestmark = pytest.mark.filterwarnings("ignore:DTLS module did not shut down:UserWarning")


class Whoami(aiocoap.resource.Resource):  # type: ignore[misc]
    def __init__(self, seen: list[tuple[str, list[Any]]]) -> None:
        super().__init__()
        self.seen = seen

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        self.seen.append((request.remote.scheme, list(request.remote.authenticated_claims or [])))
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"hello")


@dataclass
class Server:
    context: aiocoap.Context
    host: str
    index: dtls.PskIndex
    seen: list[tuple[str, list[Any]]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return dtls.coaps_port(self.context)


def make_site(seen: list[tuple[str, list[Any]]]) -> aiocoap.resource.Site:
    site = aiocoap.resource.Site()
    site.add_resource(["res"], Whoami(seen))
    return site


@asynccontextmanager
async def serving(host: str = "::1", index: dtls.PskIndex | None = None, credentials: Any = None,
                  **kwargs: Any) -> AsyncIterator[Server]:
    if index is None:
        index = dtls.PskIndex()
        index.add(IDENTITY, KEY, LABEL)
    seen: list[tuple[str, list[Any]]] = []
    ctx = await asyncio.wait_for(
        dtls.create_server(make_site(seen), (host, 0), credentials if credentials is not None else index, **kwargs),
        STEP)
    try:
        yield Server(ctx, host, index, seen)
    finally:
        await asyncio.wait_for(ctx.shutdown(), STEP)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with serving() as srv:
        yield srv


@asynccontextmanager
async def client() -> AsyncIterator[aiocoap.Context]:
    ctx = await asyncio.wait_for(aiocoap.Context.create_client_context(transports=["tinydtls", "udp6"]), STEP)
    try:
        yield ctx
    finally:
        await asyncio.wait_for(ctx.shutdown(), STEP)


async def get(ctx: aiocoap.Context, srv: Server, timeout: float = STEP) -> aiocoap.Message:
    uri = f"coaps://{hostportjoin(srv.host, srv.port)}/res"
    return await asyncio.wait_for(ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri)).response, timeout)


async def get_as(srv: Server, identity: bytes, psk: bytes, timeout: float = STEP) -> aiocoap.Message:
    async with client() as ctx:
        dtls.install_client_credentials(ctx, srv.host, srv.port, psk, identity)
        return await get(ctx, srv, timeout)


async def refused_as(srv: Server, identity: bytes, psk: bytes) -> tuple[BaseException, float]:
    start = time.monotonic()
    with pytest.raises((aiocoap.error.NetworkError, TimeoutError)) as info:
        await get_as(srv, identity, psk, timeout=WRONG_KEY_WAIT)
    return info.value, time.monotonic() - start


@pytest.mark.parametrize("host", ["::1", "127.0.0.1"])
async def test_handshake_and_get_with_right_psk(host: str) -> None:
    async with serving(host) as srv:
        assert srv.port == dtls.coap_port(srv.context) + 1
        response = await get_as(srv, IDENTITY, KEY)
        assert response.code == aiocoap.CONTENT and response.payload == b"hello"
        assert srv.seen == [("coaps", [LABEL])]
        async with client() as ctx:  # the plain port serves the same site, without claims
            plain = f"coap://{hostportjoin(host, dtls.coap_port(srv.context))}/res"
            response = await asyncio.wait_for(ctx.request(aiocoap.Message(code=aiocoap.GET, uri=plain)).response, STEP)
        assert response.code == aiocoap.CONTENT and srv.seen[-1][0] == "coap"


async def test_wrong_key_fails_and_server_keeps_serving(server: Server) -> None:
    exc, _ = await refused_as(server, IDENTITY, bytes(16))
    assert isinstance(exc, TimeoutError)  # tinydtls' alert cannot be read without the key
    assert (await get_as(server, IDENTITY, KEY)).code == aiocoap.CONTENT
    assert server.seen == [("coaps", [LABEL])]


async def test_unknown_identity_fails_at_once_and_server_keeps_serving(server: Server) -> None:
    exc, elapsed = await refused_as(server, b"who-is-this", KEY)
    assert isinstance(exc, aiocoap.error.NetworkError) and exc.args == ("80",)  # fatal internal_error
    assert elapsed < WRONG_KEY_WAIT
    assert (await get_as(server, IDENTITY, KEY)).code == aiocoap.CONTENT


@pytest.mark.parametrize("make", [
    lambda: dtls.PskIndex().add(b"x" * 33, KEY, LABEL),
    lambda: dtls.PskIndex().add(b"", KEY, LABEL),
    lambda: dtls.PskIndex().add(IDENTITY, b"k" * 17, LABEL),
    lambda: dtls.PskIndex().add(IDENTITY, b"", LABEL),
    lambda: dtls.dtls_client_credentials(KEY, b"x" * 33),
    lambda: dtls.dtls_client_credentials(KEY, b"kid\x00tail"),
    lambda: dtls.dtls_client_credentials(b"k" * 17, IDENTITY),
    lambda: dtls.install_client_credentials(
        SimpleNamespace(client_credentials=CredentialsMap()), "::1", 5684, b"k" * 17, IDENTITY),
], ids=["index-id-33", "index-id-empty", "index-psk-17", "index-psk-empty",
        "client-id-33", "client-id-nul", "client-psk-17", "install-psk-17"])
def test_limits_refused_before_tinydtls(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_limits_accepted_at_the_edge() -> None:
    index = dtls.PskIndex()
    index.add(b"x" * 32, b"k" * 16, LABEL)
    index.add(b"kid\x00tail", KEY, LABEL)  # the server side takes any bytes
    assert index.find_dtls_psk(b"x" * 32) == (b"k" * 16, LABEL)
    creds = dtls.dtls_client_credentials(b"k" * 16, b"x" * 32)
    assert isinstance(creds, DTLS) and creds.as_dtls_psk() == (b"x" * 32, b"k" * 16)
    assert dtls.client_credentials_key("::1", 5700) == "coaps://[::1]:5700/*"
    assert dtls.client_credentials_key("example.com", 5684) == "coaps://example.com/*"
    assert (dtls.dtls_server_port(5683), dtls.dtls_server_port(None), dtls.dtls_server_port(6000)) == (5684, 5684, 6001)
    with pytest.raises(KeyError):
        index.find_dtls_psk(b"nope")


async def test_remove_stops_new_handshakes_and_drop_closes_live_sessions(server: Server) -> None:
    async with client() as old:
        dtls.install_client_credentials(old, server.host, server.port, KEY, IDENTITY)
        assert (await get(old, server)).code == aiocoap.CONTENT
        assert server.index.remove(IDENTITY) and not server.index.remove(IDENTITY)
        # A live session outlives the removal of its key: the same client is still served.
        assert (await get(old, server)).code == aiocoap.CONTENT
        assert server.seen[-1] == ("coaps", [LABEL])
        exc, _ = await refused_as(server, IDENTITY, KEY)  # but no new handshake succeeds
        assert isinstance(exc, aiocoap.error.NetworkError)
        assert [claims for _, claims in dtls.sessions(server.context)].count(LABEL) == 1
        assert dtls.drop_sessions(server.context, LABEL) == 1
        assert dtls.drop_sessions(server.context, LABEL) == 0
        # close_notify reached the client: it handshakes again on its next request, which now fails.
        for _ in range(2):
            with pytest.raises(aiocoap.error.NetworkError):
                await get(old, server, timeout=WRONG_KEY_WAIT)
        served = len(server.seen)
        server.index.add(IDENTITY, KEY, LABEL)
        assert (await get(old, server)).code == aiocoap.CONTENT
        assert len(server.seen) == served + 1


async def test_loader_supplies_key_at_handshake_time() -> None:
    calls: list[bytes] = []

    def loader(identity: bytes) -> tuple[bytes, object] | None:
        calls.append(identity)
        if identity == b"token-kid":
            return KEY, b"token-label"
        if identity == b"bad-kid":
            return b"k" * 17, b"x"  # refused by the limits, as a miss
        raise RuntimeError("store down") if identity == b"boom" else None

    async with serving(index=dtls.PskIndex(loader)) as srv:
        assert (await get_as(srv, b"token-kid", KEY)).code == aiocoap.CONTENT
        assert srv.seen == [("coaps", [b"token-label"])]
        assert calls == [b"token-kid"] and b"token-kid" in srv.index  # kept after loading
        for kid in (b"bad-kid", b"boom", b"nothing"):
            exc, _ = await refused_as(srv, kid, KEY)
            assert isinstance(exc, aiocoap.error.NetworkError)
        assert (await get_as(srv, b"token-kid", KEY)).code == aiocoap.CONTENT


async def test_psk_index_as_item_of_a_credentials_map() -> None:
    creds = dtls.DtlsCredentialsMap()  # empty at start: must not be replaced by aiocoap
    index = dtls.PskIndex()
    async with serving(credentials=creds, index=index) as srv:
        creds[":tokens"] = index
        creds["static"] = DTLS(psk=b"static-key", client_identity=b"static-id")
        index.add(IDENTITY, KEY, LABEL)
        assert (await get_as(srv, IDENTITY, KEY)).code == aiocoap.CONTENT
        assert (await get_as(srv, b"static-id", b"static-key")).code == aiocoap.CONTENT
        assert srv.seen == [("coaps", [LABEL]), ("coaps", ["static"])]
        # An over-long key from any item is refused as unknown, never handed to tinydtls.
        creds["too-long"] = DTLS(psk=b"k" * 17, client_identity=b"long-key-id")
        exc, _ = await refused_as(srv, b"long-key-id", b"k" * 16)
        assert isinstance(exc, aiocoap.error.NetworkError)
        assert (await get_as(srv, IDENTITY, KEY)).code == aiocoap.CONTENT
    plain = CredentialsMap()
    plain[":tokens"] = index  # aiocoap's own map would never ask it
    for bad in (plain, CredentialsMap()):
        with pytest.raises(TypeError):
            await dtls.create_server(make_site([]), ("::1", 0), bad)


async def test_any_address_refused() -> None:
    for host in ("::", "0.0.0.0"):
        with pytest.raises(ValueError):
            await dtls.create_server(make_site([]), (host, 0), dtls.PskIndex())


async def test_session_limit_evicts_least_recently_used() -> None:
    async with serving(max_sessions=2) as srv, client() as first, client() as second, client() as third:
        for ctx in (first, second, third):
            dtls.install_client_credentials(ctx, srv.host, srv.port, KEY, IDENTITY)
            assert (await get(ctx, srv)).code == aiocoap.CONTENT
            assert len(dtls.sessions(srv.context)) <= 2
        # Evicted with close_notify: tinydtls in the client handshakes again on its next write
        # (that first datagram is lost; a CoAP retransmission carries the request).
        served = len(srv.seen)
        assert (await get(first, srv)).code == aiocoap.CONTENT
        assert len(srv.seen) == served + 1 and len(dtls.sessions(srv.context)) <= 2
