"""``scripts/bench load``: many concurrent client flows against one AS and one RS.

The AS and the RS run as real ``ace as`` / ``ace rs`` processes from an ``ace init``
deployment on loopback; this process registers N clients (each its own OSCORE context with
the AS, and a grant), then starts N client flows at once (probe, token, authz-info,
protected GET), each with its own CoAP endpoint. Reported: errors, flows/s, latency
percentiles. Bounded: every flow has a deadline, the servers are terminated at the end.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiocoap

from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import AUDIENCE, init_deployment
from ace.client.flow import ClientConfig, ClientFlow, Done, ResourceRequest
from ace.coap.client import ClientRunner
from ace.store.base import ClientRecord, Grant
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.oscore_params import OscoreContextParams

FLOW_DEADLINE = 60.0


def _register(db: Path, n: int) -> list[OscoreContextParams]:
    """N clients at the AS; returns each client's side of its OSCORE context."""
    secrets_ = []
    with SqliteAsStore(db) as store:
        for i in range(n):
            ms, cid = secrets.token_bytes(16), (i + 2).to_bytes(2, "big")  # ids 0x0002.. (0x0001 is clientA)
            store.put_client(ClientRecord(client_id=f"load{i}", profiles=(2, 1),
                                          oscore=OscoreContextParams(master_secret=ms, sender_id=b"\x00",
                                                                     recipient_id=cid)))
            store.add_grant(Grant(client_id=f"load{i}", audience=AUDIENCE, scope="r_temp"))
            secrets_.append(OscoreContextParams(master_secret=ms, sender_id=cid, recipient_id=b"\x00"))
    return secrets_


async def _wait_up(uri: str, deadline: float) -> None:
    ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
    try:
        while time.monotonic() < deadline:
            try:
                msg = aiocoap.Message(code=aiocoap.GET, uri=uri)
                await asyncio.wait_for(ctx.request(msg).response, 1)
                return
            except (TimeoutError, aiocoap.error.Error):
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{uri} did not come up")
    finally:
        await ctx.shutdown()


async def _one(i: int, secret: OscoreContextParams, as_uri: str, rs_uri: str,
               start: asyncio.Event) -> tuple[bool, float]:
    flow = ClientFlow(ClientConfig(client_id=f"load{i}", as_uri=as_uri), clock=time.time)
    runner = ClientRunner(flow, as_secret=secret, as_uri=as_uri, seqno_store=MemoryAsStore(), timeout=30)
    await runner.start()
    try:
        await start.wait()
        t0 = time.perf_counter()
        try:
            got = await asyncio.wait_for(runner.request(ResourceRequest(method="GET", uri=rs_uri + "/temp")),
                                         FLOW_DEADLINE)
        except TimeoutError:
            return False, (time.perf_counter() - t0) * 1000
        ok = isinstance(got, Done) and got.response.code == (2, 5)
        return ok, (time.perf_counter() - t0) * 1000
    finally:
        await runner.stop()


async def bench_load(flows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ace-load-") as tmp:
        d = init_deployment(Path(tmp), as_port=free_port(), rs_port=free_port())
        client_secrets = _register(d.directory / "as.db", flows)
        rs_toml = d.rs_config.read_text().replace("max_tokens = 64", f"max_tokens = {flows + 64}")
        rs_toml = rs_toml.replace("max_bytes = 163840", f"max_bytes = {(flows + 64) * 3 * 1024}")
        d.rs_config.write_text(rs_toml)  # one token per client must fit (the defaults suit a small board)
        ace = [sys.executable, "-m", "ace.cli.main"]
        procs = [subprocess.Popen([*ace, role, "--config", str(cfg)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
                 for role, cfg in (("as", d.as_config), ("rs", d.rs_config))]
        try:
            await _wait_up(d.rs_uri + "/temp", time.monotonic() + 20)
            start = asyncio.Event()
            tasks = [asyncio.ensure_future(_one(i, s, d.as_uri, d.rs_uri, start))
                     for i, s in enumerate(client_secrets)]
            await asyncio.sleep(0.5)  # let every client open its endpoint
            t0 = time.perf_counter()
            start.set()
            results = await asyncio.gather(*tasks)
            wall = time.perf_counter() - t0
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    lat = sorted(ms for _, ms in results)
    errors = sum(1 for ok, _ in results if not ok)
    return {
        "bench": "load", "profile": "coap_oscore", "concurrent_flows": flows, "errors": errors,
        "wall_s": round(wall, 2), "flows_per_s": round(flows / wall, 1),
        "latency_ms": {"p50": round(statistics.median(lat), 1), "p90": round(lat[int(0.9 * (len(lat) - 1))], 1),
                       "p99": round(lat[int(0.99 * (len(lat) - 1))], 1), "max": round(lat[-1], 1)},
    }
