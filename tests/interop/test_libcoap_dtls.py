"""Interop: libcoap's OpenSSL client (Debian libcoap3-bin, 4.3.1) against our DTLS-PSK server.

``coap-client-openssl -m get -u IDENTITY -k KEY -B SECONDS coaps://[::1]:PORT/res`` (``-k``
takes the key as a plain string in 4.3.1). The client exits 0 even when the handshake fails:
success shows only as the payload on stdout (and the resource seeing the request).
Unknown identity: OpenSSL reports "alert read:fatal:internal error" at once; wrong key: the
server's alert is not readable and the client gives up after ``-B``.

Without the binary the module is skipped, except in CI (env ``CI`` set), where that is a
failure: install Debian's libcoap3-bin.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiocoap
import aiocoap.resource
import pytest

from ace.coap import dtls

CLIENT = "coap-client-openssl"
BINARY = shutil.which(CLIENT)
IDENTITY = b"rs-token-kid-0123456789abcdef-32"  # 32 bytes: tinydtls' maximum
KEY = b"secretPSK-16byte"
LABEL = b"binding-1"
PAYLOAD = b"hello over coaps"
GIVE_UP = 3  # coap-client -B: seconds before it stops waiting
STEP = 10.0

if BINARY is None:
    if os.environ.get("CI"):
        pytest.fail(f"{CLIENT} missing in CI: apt-get install libcoap3-bin", pytrace=False)
    pytest.skip(f"{CLIENT} not installed (Debian package libcoap3-bin)", allow_module_level=True)


class Hello(aiocoap.resource.Resource):  # type: ignore[misc]
    def __init__(self, seen: list[list[object]]) -> None:
        super().__init__()
        self.seen = seen

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        assert request.remote.scheme == "coaps"
        self.seen.append(list(request.remote.authenticated_claims))
        return aiocoap.Message(code=aiocoap.CONTENT, payload=PAYLOAD)


@dataclass
class Server:
    context: aiocoap.Context
    index: dtls.PskIndex
    seen: list[list[object]] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    seen: list[list[object]] = []
    index = dtls.PskIndex(lambda kid: (KEY, b"loaded") if kid == b"loaded-kid" else None)
    index.add(IDENTITY, KEY, LABEL)
    site = aiocoap.resource.Site()
    site.add_resource(["res"], Hello(seen))
    ctx = await asyncio.wait_for(dtls.create_server(site, ("::1", 0), index), STEP)
    try:
        yield Server(ctx, index, seen)
    finally:
        await asyncio.wait_for(ctx.shutdown(), STEP)


async def coap_client(srv: Server, identity: bytes, key: bytes) -> tuple[bytes, bytes]:
    """Run coap-client without blocking the loop our server runs on; (stdout, stderr).

    libcoap logs warnings to stdout and errors to stderr."""
    assert BINARY is not None
    uri = f"coaps://[::1]:{dtls.coaps_port(srv.context)}/res"
    proc = await asyncio.create_subprocess_exec(
        BINARY, "-m", "get", "-u", identity.decode(), "-k", key.decode(), "-B", str(GIVE_UP), uri,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GIVE_UP + STEP)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return out, err


async def test_libcoap_reads_dtls_resource(server: Server) -> None:
    out, err = await coap_client(server, IDENTITY, KEY)
    assert out.strip() == PAYLOAD, err
    assert server.seen == [[LABEL]]


async def test_libcoap_with_key_from_loader(server: Server) -> None:
    out, err = await coap_client(server, b"loaded-kid", KEY)
    assert out.strip() == PAYLOAD, err
    assert server.seen == [[b"loaded"]]


async def test_libcoap_wrong_key_refused(server: Server) -> None:
    out, err = await coap_client(server, IDENTITY, b"wrongPSK-16bytes")
    assert PAYLOAD not in out and server.seen == []
    out, err = await coap_client(server, IDENTITY, KEY)  # the server keeps serving
    assert out.strip() == PAYLOAD, err


async def test_libcoap_unknown_identity_refused(server: Server) -> None:
    out, err = await coap_client(server, b"nobody", KEY)
    assert PAYLOAD not in out and server.seen == []
    assert b"internal error" in out + err  # tinydtls' fatal internal_error alert, read by OpenSSL
    out, err = await coap_client(server, IDENTITY, KEY)
    assert out.strip() == PAYLOAD, err
