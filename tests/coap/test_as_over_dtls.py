"""Clients authenticating to the AS with DTLS-PSK instead of OSCORE (RFC 9202 §3.1)."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import pytest
from deployment import Flow
from support import bounded

from ace.cli.config import load_psk
from ace.cli.init_cmd import Deployment
from ace.client.flow import ClientConfig, ClientFlow, Done, Failed, ResourceRequest
from ace.coap.as_server import AsServer
from ace.coap.client import ClientRunner
from ace.coap.rs_server import RsServer
from ace.store.base import DtlsPsk
from ace.store.seqno import FileSequenceStore

pytestmark = pytest.mark.deployment(as_changes={"dtls": True})  # the AS takes DTLS-PSK clients too


@pytest.fixture
def servers(flow: Flow) -> tuple[Deployment, AsServer, RsServer]:
    """The shared running deployment (tests/conftest.py), its AS serving DTLS too."""
    return flow.d, flow.as_server, flow.rs_server


def runner(d: Deployment, as_server: AsServer, psk: DtlsPsk, tmp: Path) -> ClientRunner:
    as_uri = f"coaps://[::1]:{as_server.coaps_port}/token"
    flow = ClientFlow(ClientConfig(client_id="clientA", as_uri=as_uri), clock=time.time)
    return ClientRunner(flow, as_secret=None, as_uri=as_uri, as_psk=psk,
                        seqno_store=FileSequenceStore(tmp / f"state-{secrets.token_hex(4)}.json"), timeout=3)


async def test_token_over_dtls_psk(servers: tuple[Deployment, AsServer, RsServer], tmp_path: Path) -> None:
    d, as_server, _ = servers
    client = runner(d, as_server, load_psk(d.directory / "client-as.psk.toml"), tmp_path)
    await bounded(client.start())
    try:
        got = await bounded(client.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp")), 20)
        assert isinstance(got, Done) and got.response.code == (2, 5)
    finally:
        await bounded(client.stop())


@pytest.mark.parametrize("wrong", ["key", "identity"])
async def test_wrong_psk_gets_no_token(servers: tuple[Deployment, AsServer, RsServer], tmp_path: Path,
                                       wrong: str) -> None:
    d, as_server, _ = servers
    good = load_psk(d.directory / "client-as.psk.toml")
    bad = DtlsPsk(identity=good.identity, key=secrets.token_bytes(16)) if wrong == "key" else \
        DtlsPsk(identity=b"mallory", key=good.key)
    client = runner(d, as_server, bad, tmp_path)
    await bounded(client.start())
    try:
        got = await bounded(client.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp")), 20)
        assert isinstance(got, Failed) and got.step == "token"
    finally:
        await bounded(client.stop())
    honest = runner(d, as_server, good, tmp_path)  # the AS keeps serving
    await bounded(honest.start())
    try:
        got = await bounded(honest.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp")), 20)
        assert isinstance(got, Done) and got.response.code == (2, 5)
    finally:
        await bounded(honest.stop())
        await asyncio.sleep(0)
