"""``ace rs`` serving the resources rs.toml declares, over real sockets on ::1: a Python handler
(answering ``ace client``), a file, a value, a large file in Block2 blocks over OSCORE, and Observe
(RFC 7641) whose notifications stop with a final 4.01 when the token expires or is revoked
(RFC 9770). Every await is bounded; every server is stopped by the ``flow`` fixture."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import aiocoap
import pytest
from deployment import Flow, running_deployment, store_of
from support import TIMEOUT, bounded, until

from ace.authz_server import trl
from ace.cli.revoke_cmd import revoke
from ace.client.flow import Done, ResourceRequest
from ace.coap.devices import ResourceSpec
from ace.coap.render import pair_of
from ace.store.base import Grant

ACE = [sys.executable, "-m", "ace.cli.main"]
HANDLERS = (ResourceSpec(path="/temp", handler="rs_handlers:hello"),
            ResourceSpec(path="/echo", methods=("GET", "POST"), handler="rs_handlers:Echo"))


async def ace(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*ACE, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await bounded(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await bounded(proc.wait())
    return proc.returncode or 0, out.decode(), err.decode()


def grant(flow: Flow, scope: str) -> None:
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope=scope))


async def request(flow: Flow, runner: Any, method: str, path: str, payload: bytes = b"") -> Any:
    done = await bounded(runner.request(ResourceRequest(method=method, uri=flow.rs_uri + path, payload=payload)),
                         4 * TIMEOUT)
    assert isinstance(done, Done), done
    return done.response


@pytest.mark.deployment(rs_changes={"resources": HANDLERS}, rs_scopes={"rw_echo": [("/echo", ["GET", "POST"])]})
async def test_handler_module_answers_ace_client(flow: Flow) -> None:
    code, out, err = await ace("client", "--config", str(flow.d.client_config), "get", flow.rs_uri + "/temp")
    assert code == 0, err
    assert out.split() == ["2.05", "hello", "r_temp"]  # the handler saw the token's claims
    grant(flow, "rw_echo")
    runner = await flow.client("rw_echo")
    assert (await request(flow, runner, "GET", "/echo")).payload == b"echo"  # an aiocoap Resource
    posted = await request(flow, runner, "POST", "/echo", b"abc")
    assert posted.code == (2, 4) and posted.payload == b"cba"
    refused = await request(flow, runner, "GET", "/temp")  # the core's scope check stands
    assert refused.code == (4, 3)


def file_resources(directory: Path) -> tuple[ResourceSpec, ...]:
    directory.mkdir(exist_ok=True)
    (directory / "brightness").write_text("3\n")
    (directory / "big").write_bytes(bytes(range(256)) * 24)  # 6 KiB: Block2 over OSCORE
    return (ResourceSpec(path="/temp", methods=("GET", "PUT"), file=str(directory / "brightness"), accept="integer"),
            ResourceSpec(path="/big", file=str(directory / "big"), content_format=42),
            ResourceSpec(path="/name", methods=("GET", "PUT"), value="board", content_format=0))


async def test_file_value_and_blockwise(tmp_path: Path) -> None:
    files = tmp_path / "files"
    async with running_deployment(tmp_path / "d", rs_changes={"resources": file_resources(files)},
                                  rs_scopes={"rw_all": [("/temp", ["GET", "PUT"]), ("/big", ["GET"]),
                                                        ("/name", ["GET", "PUT"])]}) as flow:
        grant(flow, "rw_all")
        runner = await flow.client("rw_all")
        got = await request(flow, runner, "GET", "/temp")
        assert (got.code, got.payload, got.content_format) == ((2, 5), b"3\n", 0)
        assert (await request(flow, runner, "PUT", "/temp", b"7\n")).code == (2, 4)
        assert (files / "brightness").read_text() == "7\n"
        assert (await request(flow, runner, "PUT", "/temp", b"bright")).code == (4, 0)  # accept = "integer"
        big = await request(flow, runner, "GET", "/big")
        assert big.code == (2, 5) and big.payload == (files / "big").read_bytes() and big.content_format == 42
        name = await request(flow, runner, "GET", "/name")
        assert (name.code, name.payload) == ((2, 5), b"board")
        assert (await request(flow, runner, "PUT", "/name", b"lamp")).code == (2, 4)
        assert (await request(flow, runner, "GET", "/name")).payload == b"lamp"


class Notifications:
    """What one observation (GET with Observe: 0, over an OSCORE context) brought, in order."""

    def __init__(self, ctx: Any, uri: str) -> None:
        # small notifications: no Block2. aiocoap's block-wise layer follows an observation with an
        # iterator of its own, which keeps the error a final unprotected 4.01 ended it with and raises
        # it again when collected ("Exception ignored in ClientObservation._Iterator.__del__")
        self.request = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri, observe=0), handle_blockwise=False)
        self.seen: list[tuple[tuple[int, int], bytes]] = []
        self.ended: list[BaseException | None] = []
        self._iterator: Any = None
        self.task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        iterator = self._iterator = self.request.observation.__aiter__()
        try:
            while True:
                m = await iterator.__anext__()
                self.seen.append((pair_of(m.code), m.payload))
        except StopAsyncIteration:
            self.ended.append(None)
        except Exception as exc:  # an unsuccessful notification ends it with an error
            self.ended.append(exc)

    async def first(self) -> tuple[tuple[int, int], bytes]:
        first = await bounded(self.request.response)
        return pair_of(first.code), first.payload

    async def cancel(self) -> None:
        if not self.ended:
            self.request.observation.cancel()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await bounded(self.task)
        # the error that ended it is seen: aiocoap's iterator would raise it again when collected
        self._iterator._future = asyncio.get_running_loop().create_future()


def final_401(n: Notifications) -> bool:
    """The observation ended with a 4.01: unprotected, as OSCORE answers once the context is gone
    (RFC 8613 §8.2; the RS invalidates it with the token), which aiocoap's client hands to the errback."""
    if not n.ended:
        return False
    plain = getattr(n.ended[-1], "plain_message", None)
    return plain is not None and pair_of(plain.code) == (4, 1)


VALUE = (ResourceSpec(path="/temp", methods=("GET", "PUT"), value="1", accept="integer"),
         ResourceSpec(path="/count", methods=("GET", "PUT"), handler="rs_handlers:counter"))


@pytest.mark.deployment(rs_changes={"resources": VALUE},
                        rs_scopes={"rw_v": [("/temp", ["GET", "PUT"]), ("/count", ["GET", "PUT"])]})
async def test_observe_notifies_changes_and_stops_on_expiry(flow: Flow) -> None:
    ctx = await flow.plain()
    skew = flow.rs_server.core.config.skew  # the RS lets a token in until exp + skew: it ends 3 s from now
    token, material = flow.token(scope="rw_v", exp=int(time.time() - skew) + 3)
    session = await flow.post_token(ctx, token, material)
    assert session.response.code == (2, 1) and session.context is not None
    ctx.client_credentials[flow.rs_uri + "/*"] = session.context
    value, count = Notifications(ctx, flow.rs_uri + "/temp"), Notifications(ctx, flow.rs_uri + "/count")
    try:
        assert await value.first() == ((2, 5), b"1") and await count.first() == ((2, 5), b"0")
        assert len(flow.rs_server.observations) == 2
        for payload in (b"2", b"3"):
            put = await bounded(ctx.request(aiocoap.Message(code=aiocoap.PUT, uri=flow.rs_uri + "/temp",
                                                           payload=payload)).response)
            assert pair_of(put.code) == (2, 4)
        await bounded(ctx.request(aiocoap.Message(code=aiocoap.PUT, uri=flow.rs_uri + "/count")).response)
        await until(lambda: value.seen[-1:] == [((2, 5), b"3")] and count.seen[-1:] == [((2, 5), b"1")])
        # the token expires (3 s): each observation gets its final 4.01, the RS holds none
        await until(lambda: final_401(value) and final_401(count), timeout=8.0)
        assert len(flow.rs_server.observations) == 0 and not flow.rs_server.core.live_labels()
    finally:
        await value.cancel()
        await count.cancel()


@pytest.mark.deployment(rs_changes={"resources": VALUE, "observe_trl": True}, trl_poll=0.05)
async def test_observe_stops_on_revocation(flow: Flow) -> None:
    runner = await flow.client()
    assert (await request(flow, runner, "GET", "/temp")).payload == b"1"  # a token, a channel
    rs_trl = flow.rs_server.trl
    assert rs_trl is not None
    await until(lambda: rs_trl.observer.notifications >= 1)
    value = Notifications(runner.context, flow.rs_uri + "/temp")  # over the runner's OSCORE context
    try:
        assert await value.first() == ((2, 5), b"1")
        session = runner.flow.sessions[flow.rs_uri]
        assert revoke(store_of(flow), client="clientA") == [trl.token_hash(session.token)]
        await until(lambda: final_401(value))
        assert len(flow.rs_server.observations) == 0
    finally:
        await value.cancel()
