"""Forged AS Request Creation Hints against the client, over real loopback sockets (issue 17, item 12).

The client's first request to an RS goes unprotected and the 4.01 with creation hints comes back
unprotected (RFC 9200 §5.3), so anyone on the path can answer it. A client that took the hints'
audience asked the (real, trusted) AS for a token for whatever audience the attacker named ("evil",
a registered RS the client is also granted here, so the AS would issue it) and handed it to the
attacker. The audience is now pinned per RS origin (RFC 9200 §6.4, §6.9): configured in
``[client.audiences]``, or taken from an origin's first hints and pinned once that RS answered
a protected request (trust on first use, persisted next to the client's state file). Hints naming
another audience are refused before any token request. The attacker here is a plain aiocoap server
on ::1 answering every request with such a 4.01; the AS is the deployment's.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiocoap
import aiocoap.resource
from deployment import Flow, running_deployment, store_of
from support import TIMEOUT, bounded

from ace.cbor.labels import ContentFormat
from ace.cli import roles
from ace.cli.config import load_client
from ace.cli.demo_cmd import free_port
from ace.client.flow import Done, Failed, ResourceRequest
from ace.coap.client import ClientRunner, Exchange
from ace.messages import CreationHints
from ace.store.base import Grant, RsRecord
from ace.tokens.keys import symmetric_key

EVIL = "evil"


class ForgedHints(aiocoap.resource.Resource):  # type: ignore[misc]
    """Answers with 4.01 and hints naming ``EVIL``; records what reached it (method, path)."""

    def __init__(self, path: str, hints: CreationHints, seen: list[tuple[str, str]]) -> None:
        super().__init__()
        self.path, self.hints, self.seen = path, hints, seen

    async def _forge(self, request: aiocoap.Message) -> aiocoap.Message:
        self.seen.append((request.code.name, self.path))
        return aiocoap.Message(code=aiocoap.UNAUTHORIZED, payload=self.hints.encode(),
                               content_format=int(ContentFormat.ACE_CBOR))

    render_get = render_post = _forge


@asynccontextmanager
async def attacker_at(port: int, as_uri: str) -> AsyncIterator[list[tuple[str, str]]]:
    """A plain CoAP server on ::1 ``port`` forging hints at /temp and /authz-info; yields what it saw."""
    hints = CreationHints(as_uri=as_uri, audience=EVIL, scope="r_temp", cnonce=secrets.token_bytes(8))
    seen: list[tuple[str, str]] = []
    site = aiocoap.resource.Site()
    for path in ("temp", "authz-info"):
        site.add_resource([path], ForgedHints(path, hints, seen))
    server = await bounded(aiocoap.Context.create_server_context(site, bind=("::1", port), transports=["udp6"]))
    try:
        yield seen
    finally:
        await bounded(server.shutdown())


def register_evil(flow: Flow) -> None:
    """A second RS the AS knows and the client is granted: the AS would issue tokens for it."""
    store = store_of(flow)
    store.put_rs(RsRecord(audience=EVIL, rs_id=EVIL, token_key=symmetric_key(secrets.token_bytes(16), kid=b"ev")))
    store.add_grant(Grant(client_id="clientA", audience=EVIL, scope="r_temp", default=True))


def client_toml(flow: Flow, extra: str = "", *, keep_audiences: bool = True) -> Path:
    """The deployment's client.toml (same AS context and state) with ``[client.audiences]``
    entries and [client] keys adjusted; written next to it so its relative paths hold."""
    lines, table = [], "client"
    for line in flow.d.client_config.read_text().splitlines():
        if line.startswith("["):
            table = line.split("]")[0].strip("[")
        if table == "client.audiences" and not keep_audiences:
            continue
        lines.append(line)
    path = flow.d.directory / "attack-client.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


async def run_client(path: Path, uri: str, exchanges: list[Exchange]) -> Done | Failed:
    runner: ClientRunner = roles.build_client(load_client(path), observer=exchanges.append)
    await bounded(runner.start())
    try:
        return await bounded(runner.request(ResourceRequest(method="GET", uri=uri)), 4 * TIMEOUT)
    finally:
        await bounded(runner.stop())


def assert_no_token_for_evil(flow: Flow, exchanges: list[Exchange], result: Done | Failed) -> None:
    assert [e.step for e in exchanges if e.step == "token"] == []  # never asked the AS
    assert store_of(flow).find_tokens(audience=EVIL) == []  # and the AS issued nothing for evil
    assert isinstance(result, Failed) and result.step == "hints", result
    assert EVIL in result.error  # a clear failure, naming what was refused


async def test_forged_hints_for_a_configured_origin_are_refused(tmp_path: Path) -> None:
    async with running_deployment(tmp_path / "d") as flow:
        register_evil(flow)
        port = free_port()
        origin = f"coap://[::1]:{port}"
        # the RS at this origin is provisioned as rs1 (RFC 9200 §6.9: audiences from configuration)
        path = client_toml(flow, f'"{origin}" = "rs1"\n' if "[client.audiences]" in flow.d.client_config.read_text()
                           else f'[client.audiences]\n"{origin}" = "rs1"\n')
        exchanges: list[Exchange] = []
        async with attacker_at(port, flow.d.as_uri) as seen:
            result = await run_client(path, origin + "/temp", exchanges)
        assert_no_token_for_evil(flow, exchanges, result)
        assert isinstance(result, Failed) and "'rs1'" in result.error
        assert seen == [("GET", "temp")]  # nothing was posted to its /authz-info
        assert [e.step for e in exchanges] == ["resource"]


async def test_forged_hints_after_first_use_are_refused(tmp_path: Path) -> None:
    async with running_deployment(tmp_path / "d") as flow:
        register_evil(flow)
        path = client_toml(flow, keep_audiences=False)  # nothing configured: trust on first use
        first: list[Exchange] = []
        done = await run_client(path, flow.rs_uri + "/temp", first)
        assert isinstance(done, Done) and done.response.code == (2, 5)
        assert [e.step for e in first] == ["resource", "token", "authz-info", "resource (protected)"]
        # the real RS goes away; the attacker answers at its address (same origin)
        await bounded(flow.rs_server.stop())
        port = int(flow.rs_uri.rsplit(":", 1)[1])
        exchanges: list[Exchange] = []
        async with attacker_at(port, flow.d.as_uri) as seen:
            result = await run_client(path, flow.rs_uri + "/temp", exchanges)  # a new process: pin from file
        assert_no_token_for_evil(flow, exchanges, result)
        assert isinstance(result, Failed) and "'rs1'" in result.error and "first use" in result.error
        assert seen == [("GET", "temp")]
        assert [t.audience for t in store_of(flow).find_tokens()] == ["rs1"]  # the first flow's only


async def test_first_contact_is_refused_when_trust_on_first_use_is_off(tmp_path: Path) -> None:
    async with running_deployment(tmp_path / "d") as flow:
        register_evil(flow)
        path = client_toml(flow, keep_audiences=False)
        text = path.read_text().replace("[client]\n", "[client]\ntrust_first_hints = false\n", 1)
        path.write_text(text)
        port = free_port()
        exchanges: list[Exchange] = []
        async with attacker_at(port, flow.d.as_uri) as seen:
            result = await run_client(path, f"coap://[::1]:{port}/temp", exchanges)
        assert_no_token_for_evil(flow, exchanges, result)
        assert isinstance(result, Failed) and "trust_first_hints" in result.error
        assert seen == [("GET", "temp")]
