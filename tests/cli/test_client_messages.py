"""What the client says when it gets no resource: reasons by name, what was tried, what to do.

Socket-level (real aiocoap on ::1, a deployment from ``tests/deployment.py``): an AS that
is down, an AS refusing with invalid_scope, an RS refusing the token, a peer that never answers
(``timeout`` and the retry notice), 4.03 creation hints decoded. Then ``ace client`` as a process
against the same deployment: one line on stderr, names not numbers, ``--timeout``, ``--trace``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from deployment import Flow, running_deployment
from support import TIMEOUT, bounded

from ace.cli.demo_cmd import free_port
from ace.cli.keyfiles import load_key
from ace.client import reasons
from ace.client.flow import Done, Failed, ResourceRequest
from ace.tokens.keys import symmetric_key

PROCESS_TIMEOUT = 60.0


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP port on ::1 that takes datagrams and never answers."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        yield int(s.getsockname()[1])


async def ask(flow: Flow, path: str = "/temp", method: str = "GET", scope: str | None = None,
              uri: str | None = None, timeout: float = TIMEOUT) -> Done | Failed:
    runner = await flow.client(scope, timeout=timeout)
    return await bounded(runner.request(ResourceRequest(method=method, uri=uri or flow.rs_uri + path)), 4 * TIMEOUT)


# -- the flow's reasons, over real sockets ----------------------------------------------------------

async def test_as_down_names_the_as_and_what_to_check(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as f:
        await bounded(f.as_server.stop())
        got = await ask(f)
    assert isinstance(got, Failed) and got.step == "token", got
    assert got.error.startswith(f"AS at {f.d.as_uri} ") and "is `ace as` running there?" in got.error, got.error
    assert "(5, 4)" not in got.error


async def test_invalid_scope_by_name_with_advice(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as f:
        got = await ask(f, scope="rw_config")
    assert isinstance(got, Failed) and got.step == "token"
    assert "refused the token request: 4.00 Bad Request, invalid_scope" in got.error, got.error
    assert "ace policy grant" in got.error and ": 6" not in got.error


async def test_rs_refusing_the_token_says_why(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as f:
        own = load_key(f.d.directory / "rs1-token.key")  # the RS gets another key under the same kid
        other = tmp_path / "other-token.key"
        other.write_bytes(symmetric_key(os.urandom(len(own.k or b"")), kid=own.kid, alg=own.alg).encode())
        other.chmod(0o600)
        f._rs_cfg = dataclasses.replace(f._rs_cfg, token_keys=(other,))
        await f.restart_rs()
        got = await ask(f)
    assert isinstance(got, Failed) and got.step == "authz-info", got
    assert got.error.startswith(f"RS at {f.rs_uri} refused the token (POST /authz-info): 4.01 Unauthorized"), got.error
    assert "(4, 0)" not in got.error and "(4, 1)" not in got.error


async def test_silent_peer_times_out_with_a_notice(tmp_path: Path, silent_port: int) -> None:
    async with running_deployment(tmp_path) as f:
        runner = await f.client(timeout=1.0)
        notices: list[str] = []
        runner.on_wait, runner.retry_notice = notices.append, 0.3
        got = await bounded(runner.request(ResourceRequest(method="GET", uri=f"coap://[::1]:{silent_port}/temp")))
    assert isinstance(got, Done) and got.response.code == (5, 4)  # the runner's own: nobody sent it
    assert got.response.local == "did not answer within 1 s (GET /temp): is `ace rs` running there?"
    assert notices == [f"no answer yet from coap://[::1]:{silent_port} (GET /temp) after 0.3 s; retrying until 1 s"]


async def test_forbidden_hints_decoded(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as f:
        got = await ask(f, "/led", "PUT")
    assert isinstance(got, Done) and got.response.code == (4, 3)
    text = reasons.answer_text(got.response.code, got.response.payload, got.response.content_format)
    assert text == f"4.03 Forbidden: creation hints: AS {f.d.as_uri}, audience 'rs1', scope 'r_temp'"


def test_names_for_codes_and_errors() -> None:
    assert reasons.code_text((4, 5)) == "4.05 Method Not Allowed" and reasons.code_text((4, 31)) == "4.31"
    assert reasons.error_name(6) == "invalid_scope" and reasons.error_name(200) == "error 200"
    assert reasons.payload_text(b"\xa1\x18\x1e\x08", 19) == "incompatible_ace_profiles"
    assert reasons.payload_text(b"\x01\x02", None) == "2 B, h'0102'"


# -- ace client as a process ----------------------------------------------------------------------

async def ace(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "ace.cli.main", *argv,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


async def test_cli_messages(tmp_path: Path, silent_port: int) -> None:
    async with running_deployment(tmp_path) as f:
        client = ["client", "--config", str(f.d.client_config)]
        rc, out, err = await ace(*client, "get", f.rs_uri + "/temp")
        assert rc == 0 and out.startswith("2.05 "), err

        rc, out, err = await ace(*client, "--scope", "rw_config", "get", f.rs_uri + "/temp")
        assert rc == 1 and out == ""
        assert "invalid_scope" in one_line(err) and "ace client: failed at token: AS at" in err

        rc, out, err = await ace(*client, "put", f.rs_uri + "/led", "on")
        assert rc == 1 and out.strip() == f"4.03 Forbidden: creation hints: AS {f.d.as_uri}, audience 'rs1', " \
                                          "scope 'r_temp'"
        assert "--scope" in one_line(err)

        rc, out, err = await ace(*client, "--timeout", "2.5", "get", f"coap://[::1]:{silent_port}/temp")
        lines = err.strip().splitlines()
        assert rc == 1 and out == "" and "Traceback" not in err and len(lines) == 2, err
        assert lines[0] == f"ace client: no answer yet from coap://[::1]:{silent_port} (GET /temp) after 2 s; " \
                           "retrying until 2.5 s"
        assert lines[1] == f"ace client: RS at coap://[::1]:{silent_port} did not answer within 2.5 s (GET /temp): " \
                           "is `ace rs` running there?"

        await bounded(f.as_server.stop())
        rc, out, err = await ace(*client, "get", f.rs_uri + "/temp")
        assert rc == 1 and "is `ace as` running there?" in one_line(err)


async def test_cli_trace_shows_flow_and_token_but_no_key(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as f:
        rc, out, err = await ace("client", "--config", str(f.d.client_config), "--trace", "get", f.rs_uri + "/temp")
        assert rc == 0, err
        runner = await f.client()
        ms = runner.as_secret.master_secret if runner.as_secret else b"?"
        await bounded(runner.stop())
        assert [line.split()[0] for line in out.splitlines() if " client -> " in line] == ["C0", "C/D", "E", "F"]
        assert "<redacted 16 B>" in out and "not shown: it holds key material" in out
        assert "access token (" in out and "not a secret to you" in out
        token_hex = out.split("access token (", 1)[1].splitlines()[1].strip()
        assert len(bytes.fromhex(token_hex)) > 20 and ms.hex() not in out
        assert out.splitlines()[-1].startswith("2.05 ")
        # the token as shown can be inspected with the RS's key
        rc, shown, _ = await ace("token", "inspect", token_hex, "--key", str(f.d.directory / "rs1-token.key"))
        assert rc == 0 and "verification: OK" in shown


def test_timeout_must_be_positive() -> None:
    port = free_port()
    out = subprocess.run([sys.executable, "-m", "ace.cli.main", "client", "--config", "x.toml", "--timeout", "0",
                          "get", f"coap://[::1]:{port}/"], capture_output=True, text=True, timeout=PROCESS_TIMEOUT)
    assert out.returncode == 2 and "--timeout" in out.stderr and "Traceback" not in out.stderr
