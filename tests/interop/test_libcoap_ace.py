"""Interop: libcoap's OpenSSL client uses a PoP key our AS issued to read our RS (RFC 9202).

An AS and an RS from an ``ace init`` deployment run in-process on ::1; our ``ClientRunner``
asks for ``coap_dtls`` (profile 1), posts the token to /authz-info and reads /temp over DTLS.
Then ``coap-client-openssl -m get -u KID -k KEY coaps://[::1]:PORT/temp`` (libcoap 4.3.1:
``-u``/``-k`` are raw bytes, handed over as argv bytes) reads /temp with the kid and key the
token response's cnf carried. libcoap exits 0 even when the handshake fails: success shows
only as the payload on stdout. A key with a 0x00 byte cannot be passed that way (argv is a C
string, and 4.3.1 has no hex form for ``-k``): the client then gets another token.

Without the binary the module is skipped, except in CI (env ``CI`` set), where that is a
failure: install Debian's libcoap3-bin.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ace.cbor.labels import AceProfile
from ace.cli import roles
from ace.cli.config import load_as, load_client, load_rs
from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import Deployment, init_deployment
from ace.client.flow import Done, ResourceRequest
from ace.coap.as_server import AsServer
from ace.coap.client import ClientRunner, Exchange
from ace.coap.rs_server import RsServer
from ace.messages import AccessTokenResponse
from ace.profiles.dtls import label_for
from ace.tokens.cnf import CoseKeyCnf

CLIENT = "coap-client-openssl"
BINARY = shutil.which(CLIENT)
GIVE_UP = 2  # coap-client -B: seconds before it stops waiting (a wrong key shows as silence)
STEP = 10.0  # bound for anything that should answer promptly
TOKEN_TRIES = 10  # P(16 random bytes hold a 0x00) ≈ 6 %: ten tries all failing is ~1e-12
TEMPERATURE = re.compile(rb"^\d{1,2}\.\d$")  # what /temp answers, e.g. b"21.3"

# aiocoap's client warns when tinydtls calls back into a connection already collected.
pytestmark = pytest.mark.filterwarnings("ignore:DTLS module did not shut down:UserWarning")

if BINARY is None:
    if os.environ.get("CI"):
        pytest.fail(f"{CLIENT} missing in CI: apt-get install libcoap3-bin", pytrace=False)
    pytest.skip(f"{CLIENT} not installed (Debian package libcoap3-bin)", allow_module_level=True)


@dataclass
class Ace:
    d: Deployment
    as_server: AsServer
    rs_server: RsServer
    client: ClientRunner
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def temp_uri(self) -> str:
        return self.d.rs_uri + "/temp"

    @property
    def coaps_temp_uri(self) -> str:
        assert self.rs_server.coaps_port is not None
        return f"coaps://[::1]:{self.rs_server.coaps_port}/temp"


@pytest.fixture
async def ace(tmp_path: Path) -> AsyncIterator[Ace]:
    d = init_deployment(tmp_path / "deployment", as_port=free_port(), rs_port=free_port())
    exchanges: list[Exchange] = []
    as_server = roles.build_as(load_as(d.as_config))
    rs_server = roles.build_rs(load_rs(d.rs_config))
    client = roles.build_client(load_client(d.client_config), observer=exchanges.append, profile=AceProfile.COAP_DTLS)
    client.timeout = 3.0
    started: list[AsServer | RsServer | ClientRunner] = []
    try:
        for role in (as_server, rs_server, client):
            await asyncio.wait_for(role.start(), STEP)
            started.append(role)
        yield Ace(d, as_server, rs_server, client, exchanges)
    finally:
        for role in reversed(started):
            await asyncio.wait_for(role.stop(), STEP)
        as_server.store.close()


async def get_temp(ace: Ace) -> Done:
    got = await asyncio.wait_for(ace.client.request(ResourceRequest(method="GET", uri=ace.temp_uri)), 4 * STEP)
    assert isinstance(got, Done) and got.response.code == (2, 5), got
    assert TEMPERATURE.match(got.response.payload), got
    return got


async def obtain_psk(ace: Ace) -> tuple[bytes, bytes]:
    """(kid, key) of a token our client got (profile 1) and uses with the RS, as the AS sent them."""
    for _ in range(TOKEN_TRIES):
        ace.exchanges.clear()
        got = await get_temp(ace)
        assert [e.step for e in ace.exchanges] == ["resource", "token", "authz-info", "resource (DTLS)"]
        answer = AccessTokenResponse.decode(ace.exchanges[1].response.payload)
        assert answer.ace_profile == AceProfile.COAP_DTLS and isinstance(answer.cnf, CoseKeyCnf)
        kid, key = answer.cnf.key.kid, answer.cnf.key.k
        assert kid is not None and key is not None and 0 not in kid
        if 0 not in key:
            return kid, key
        assert got.session is not None
        ace.client.flow.drop_session(got.session.origin)  # forget it: the next request gets a new token
    raise AssertionError(f"{TOKEN_TRIES} keys in a row held a 0x00 byte")


async def coap_client(ace: Ace, identity: bytes, key: bytes) -> tuple[bytes, bytes]:
    """Run coap-client without blocking the loop our servers run on; (stdout, stderr).
    libcoap logs warnings to stdout and errors to stderr."""
    assert BINARY is not None
    proc = await asyncio.create_subprocess_exec(
        BINARY, "-m", "get", "-u", identity, "-k", key, "-B", str(GIVE_UP), ace.coaps_temp_uri,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GIVE_UP + STEP)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return out, err


def temperature_in(out: bytes) -> bool:
    return any(TEMPERATURE.match(line.strip()) for line in out.splitlines())


async def assert_rs_serves_our_client(ace: Ace) -> None:
    ace.exchanges.clear()
    await get_temp(ace)
    assert [e.step for e in ace.exchanges] == ["resource (DTLS)"]  # over its own session, same token


async def test_libcoap_reads_temp_with_the_issued_pop_key(ace: Ace) -> None:
    kid, key = await obtain_psk(ace)
    out, err = await coap_client(ace, kid, key)
    assert temperature_in(out), (out, err)
    assert 15.0 < float(out.strip().splitlines()[-1]) < 30.0
    label = label_for(kid)
    assert [c for c in ace.rs_server.core.live_labels() if c == label] == [label]
    await assert_rs_serves_our_client(ace)
    out, err = await coap_client(ace, kid, key)  # and again: a new libcoap session, same key
    assert temperature_in(out), (out, err)


async def test_libcoap_with_wrong_key_or_unknown_identity_gets_nothing(ace: Ace) -> None:
    kid, key = await obtain_psk(ace)
    wrong = bytes(((b ^ 0x5A) or 1) for b in key)  # still no 0x00
    out, err = await coap_client(ace, kid, wrong)
    assert not temperature_in(out), out
    await assert_rs_serves_our_client(ace)

    out, err = await coap_client(ace, b"nobody-kid", key)
    assert not temperature_in(out), out
    assert b"internal error" in out + err  # tinydtls' fatal internal_error alert, read by OpenSSL
    await assert_rs_serves_our_client(ace)

    out, err = await coap_client(ace, kid, key)  # the right pair still works after both
    assert temperature_in(out), (out, err)
    await assert_rs_serves_our_client(ace)
