"""The CLI end to end: ``ace init``, ``ace as``/``ace rs`` as subprocesses, ``ace client``,
``ace policy`` against the running AS, SIGTERM shutdown, and ``ace demo --json``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiocoap
import cbor2
import pytest
from deployment import send

from ace.cli import roles
from ace.cli.config import load_as, load_client, load_oscore_secret, load_rs
from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import init_peer_deployment
from ace.cli.keyfiles import load_key
from ace.client.flow import Done, ResourceRequest
from ace.coap.client import ClientRunner, Exchange
from ace.coap.oscore_context import PersistentOscoreContext
from ace.errors import AceError

ACE = [sys.executable, "-m", "ace.cli.main"]
RUN_TIMEOUT = 30.0  # one CLI invocation
READY_TIMEOUT = 15.0  # servers answering
STOP_TIMEOUT = 10.0  # SIGTERM to exit


def ace(*argv: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ACE, *argv], capture_output=True, text=True, timeout=timeout, check=False)


async def _wait_ready(rs_uri: str, as_uri: str, servers: list[subprocess.Popen[str]]) -> None:
    """Poll until the RS answers GET /temp and the AS POST /token, both with 4.01 (unprotected)."""
    ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        pending = {("GET", rs_uri + "/temp"), ("POST", as_uri)}
        while pending:
            for proc in servers:
                assert proc.poll() is None, f"server exited early: {proc.args} rc={proc.returncode}"
            assert time.monotonic() < deadline, f"servers not ready: {pending}"
            for method, uri in list(pending):
                try:
                    reply = await send(ctx, aiocoap.Message(code=aiocoap.Code[method], uri=uri), timeout=0.5)
                except (TimeoutError, aiocoap.error.Error, OSError):
                    continue
                if reply.code == (4, 1):
                    pending.discard((method, uri))
            await asyncio.sleep(0.05)
    finally:
        await asyncio.wait_for(ctx.shutdown(), 5)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Path, str, list[subprocess.Popen[str]]]]:
    """``ace init`` then ``ace as`` and ``ace rs`` running; killed in the finalizer if still alive."""
    d = tmp_path / "dep"
    as_port, rs_port = free_port(), free_port()
    init = ace("init", str(d), "--as-port", str(as_port), "--rs-port", str(rs_port))
    assert init.returncode == 0, init.stderr
    assert "ace as --config" in init.stdout
    procs: list[subprocess.Popen[str]] = []
    try:
        for role, cfg in (("as", "as.toml"), ("rs", "rs.toml")):
            procs.append(subprocess.Popen([*ACE, role, "--config", str(d / cfg)], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        rs_uri, as_uri = f"coap://[::1]:{rs_port}", f"coap://[::1]:{as_port}/token"
        asyncio.run(asyncio.wait_for(_wait_ready(rs_uri, as_uri, procs), READY_TIMEOUT + 5))
        yield d, rs_uri, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=STOP_TIMEOUT)


def test_cli_roles_end_to_end(servers: tuple[Path, str, list[subprocess.Popen[str]]]) -> None:
    d, rs_uri, procs = servers
    client = ["client", "--config", str(d / "client.toml")]

    got = ace(*client, "get", rs_uri + "/temp")
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("2.05 ")
    assert 15.0 < float(got.stdout.split()[1]) < 30.0

    refused = ace(*client, "put", rs_uri + "/led", "on")
    assert refused.returncode == 1, refused.stderr
    assert refused.stdout.startswith("4.03")

    granted = ace("policy", "--config", str(d / "as.toml"), "grant", "clientA", "rs1", "rw_led")
    assert granted.returncode == 0, granted.stderr

    put = ace(*client, "--scope", "r_temp rw_led", "put", rs_uri + "/led", "on")  # the running AS sees it
    assert put.returncode == 0, put.stdout + put.stderr
    assert put.stdout.startswith("2.04")
    led = ace(*client, "--scope", "r_temp rw_led", "get", rs_uri + "/led")
    assert led.returncode == 0 and led.stdout.split() == ["2.05", "on"]

    for role in ("as", "rs"):  # a second server on a port in use: one line, exit 3 (not a silent share)
        dup = ace(role, "--config", str(d / f"{role}.toml"))
        assert dup.returncode == 3 and len(dup.stderr.splitlines()) == 1 and "is in use" in dup.stderr, dup.stderr

    listed = ace("policy", "--config", str(d / "as.toml"), "list")
    assert listed.returncode == 0
    assert "grant  clientA -> rs1: rw_led" in listed.stdout
    assert "grant  clientA -> rs1: r_temp  (default)" in listed.stdout

    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        _, err = proc.communicate(timeout=STOP_TIMEOUT)
        assert proc.returncode == 0, (proc.args, err)


def test_cli_client_fails_cleanly_without_servers(tmp_path: Path) -> None:
    d, rs_port = tmp_path / "dep", free_port()
    assert ace("init", str(d), "--as-port", str(free_port()), "--rs-port", str(rs_port)).returncode == 0
    # nobody listens: the probe fails (ICMP port unreachable, or the runner's timeout): one line, exit 1
    out = ace("client", "--config", str(d / "client.toml"), "get", f"coap://[::1]:{rs_port}/temp", timeout=60)
    assert out.returncode == 1, out.stderr
    assert out.stdout == "" and "is `ace rs` running there?" in out.stderr


def test_cli_demo_json() -> None:
    out = ace("demo", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["ok"] is True
    assert result["resource_obtained"] is True and result["out_of_scope_refused"] is True
    authz = [x for x in result["exchanges"] if x["what"] == "authz-info"]
    assert len(authz) == 1
    assert authz[0]["request"]["bytes"] <= 127  # one IEEE 802.15.4 frame
    assert authz[0]["response"]["code"] == "2.01"
    assert [x["step"] for x in result["exchanges"]] == ["C0", "C/D", "E", "F", "F"]



def test_concurrent_clients_never_share_sequence_numbers(tmp_path: Path) -> None:
    d = tmp_path / "dep"
    assert ace("init", str(d), "--as-port", str(free_port()), "--rs-port", str(free_port())).returncode == 0

    async def start_two() -> list[int] | None:
        """Sender sequence numbers of two clients started together, or None if one was refused."""
        runners: list[ClientRunner] = []
        try:
            for _ in range(2):  # as two `ace client` processes started at the same time
                runner = roles.build_client(load_client(d / "client.toml"))
                runners.append(runner)
                await asyncio.wait_for(runner.start(), 5)
            return [c.sender_sequence_number for r in runners for c in r.context.client_credentials.values()
                    if isinstance(c, PersistentOscoreContext)]
        except (AceError, OSError):
            return None  # refusing the second client is a fix too
        finally:
            for r in runners:
                await asyncio.wait_for(r.stop(), 5)

    seqnos = asyncio.run(start_two())
    if seqnos is not None:
        assert len(seqnos) == 2
        assert seqnos[0] != seqnos[1]


# -- ace init --peer ace-java (issue 11) ----------------------------------------------------------

def _free_port_v4() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_init_peer_ace_java(tmp_path: Path) -> None:
    d = tmp_path / "peer"
    out = ace("init", "--peer", "ace-java", str(d))
    assert out.returncode == 0, out.stderr
    assert "coap://127.0.0.1:5689/token" in out.stdout and "coap://127.0.0.1:5690" in out.stdout
    for f in d.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    rs = load_rs(d / "rs.toml")
    assert (rs.bind, rs.port, rs.audience, rs.rs_id, rs.exi_unit, rs.token_tags) == (
        "127.0.0.1", 5690, "aud1", "rs1", 0.001, "cose")
    assert [r.path for r in rs.resources or ()] == ["/helloWorld", "/temp", "/config"]
    assert set(rs.scopes) == {"r_helloWorld", "r_temp", "rw_temp", "r_config", "rw_config"}
    assert load_key(d / "aud1-token.key").k == bytes.fromhex("a1a2a30405060708090a0b0c0d0e0f10")
    assert load_oscore_secret(d / "client-as.oscore.toml").sender_id == b"\x55"
    assert load_oscore_secret(d / "rs-as.oscore.toml").sender_id == b"\x77"
    listed = ace("policy", "--config", str(d / "as.toml"), "list")
    assert listed.returncode == 0, listed.stderr
    assert "grant  clientA -> aud1: r_temp rw_config" in listed.stdout
    assert "rs_id=rs1" in listed.stdout and "lifetime=30s" in listed.stdout
    again = ace("init", "--peer", "ace-java", str(d))
    assert again.returncode == 2 and "already initialised" in again.stderr


def test_peer_ace_java_roles_answer_as_theirs(tmp_path: Path) -> None:
    """Our AS, RS and client from ``ace init --peer ace-java`` (on free ports): the RS answers
    /helloWorld, /temp and /config as TestRSoscoreProfile does, to a token from our AS."""
    d = init_peer_deployment(tmp_path / "peer", "ace-java", as_port=_free_port_v4(), rs_port=_free_port_v4())
    seen: list[Exchange] = []

    async def run() -> list[tuple[str, str]]:
        as_server, rs_server = roles.build_as(load_as(d.as_config)), roles.build_rs(load_rs(d.rs_config))
        runner = roles.build_client(load_client(d.client_config), observer=seen.append)
        answers: list[tuple[str, str]] = []
        try:
            await asyncio.wait_for(as_server.start(), 10)
            await asyncio.wait_for(rs_server.start(), 10)
            await asyncio.wait_for(runner.start(), 10)
            for method, path, payload in (("GET", "/helloWorld", ""), ("GET", "/temp", ""), ("POST", "/temp", "5"),
                                          ("GET", "/config", ""), ("POST", "/config", "Custom"),
                                          ("GET", "/config", ""), ("PUT", "/config", ""), ("GET", "/config", "")):
                result = await asyncio.wait_for(runner.request(ResourceRequest(
                    method=method, uri=d.rs_uri + path, payload=payload.encode())), 30)
                assert isinstance(result, Done), result
                code = f"{result.response.code[0]}.{result.response.code[1]:02d}"
                text = result.response.payload.decode() if result.response.code[0] == 2 else ""
                answers.append((code, text))
        finally:
            await asyncio.wait_for(runner.stop(), 10)
            await asyncio.wait_for(rs_server.stop(), 10)
            await asyncio.wait_for(as_server.stop(), 10)
            as_server.store.close()
        return answers

    answers = asyncio.run(run())
    # clientA holds r_temp rw_config: /helloWorld is out of scope, POST /temp not a method it may use
    assert answers[0][0] == "4.03" and answers[2][0] in ("4.03", "4.05")
    assert answers[1] == ("2.05", "0 C")
    assert answers[3:6] == [("2.05", "Default"), ("2.04", ""), ("2.05", "Custom")]
    assert answers[6][0] == "4.00" and answers[7] == ("2.05", "Custom")  # empty payload: refused, kept
    authz = [e for e in seen if e.step == "authz-info"]
    assert authz and cbor2.loads(authz[0].request_payload)[1][0] == 0xD0  # tagged COSE_Encrypt0 (their RS needs)
