"""``scripts/bench trl``: revocation → TRL observer notification latency on loopback (RFC 9770).

An AS and an RS (observing the AS's TRL with a full query over its OSCORE context, as
``observe_trl`` does) run on ::1; each revocation is timed from the call that makes it to the
moment the RS has taken the notification (its ``TrlObserver`` callback ran). Two paths:

* ``in_process``: ``ace revoke``'s function on the AS's own store, then ``TrlWatch.poll()`` on
  the AS object (what an in-process revocation calls): bounded by the work, not by a timer;
* ``via_store``: ``ace revoke``'s function on a second connection to the AS's database (what
  the CLI does from another process); the AS notices it on its next poll of the store, every
  ``poll_interval`` seconds (1 s by default), so the latency is about uniform in
  [0, poll_interval] plus the in-process figure. Revocations are spaced by random delays so
  they do not phase-lock with the poll.

Baseline, same run: the round trip of a plain (unprotected, hence refused 4.01) GET
/revoke/trl on the same loopback: the transport's floor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiocoap

from ace.authz_server import trl
from ace.cli import roles
from ace.cli.config import load_rs
from ace.cli.config_as import load_as
from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import init_deployment
from ace.cli.revoke_cmd import revoke
from ace.coap.trl import POLL_SECONDS
from ace.coap.trl_client import trl_uri
from ace.store.base import IssuedToken
from ace.store.sqlite import SqliteAsStore

TIMEOUT = 5.0  # seconds for any one await


def _stats_ms(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]
    return {"median_ms": round(statistics.median(ms), 3), "p95_ms": round(p95, 3),
            "min_ms": round(ms[0], 3), "max_ms": round(ms[-1], 3), "n": len(ms)}


async def _baseline_rtt(uri: str, n: int) -> list[float]:
    ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
    try:
        out = []
        for i in range(n + 3):
            t0 = time.perf_counter()
            reply = await asyncio.wait_for(ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri)).response, TIMEOUT)
            if i >= 3:  # warm-up
                out.append(time.perf_counter() - t0)
            assert reply.code == aiocoap.UNAUTHORIZED
        return out
    finally:
        await ctx.shutdown()


async def bench_trl_async(revocations: int = 20, poll_interval: float = POLL_SECONDS) -> dict[str, Any]:
    if not 1 <= revocations <= 1000 or not 0.01 <= poll_interval <= 10:
        raise ValueError("revocations: 1..1000, poll_interval: 0.01..10 s")
    with tempfile.TemporaryDirectory(prefix="ace-bench-trl-") as tmp:
        d = init_deployment(Path(tmp), as_port=free_port(), rs_port=free_port())
        as_cfg = load_as(d.as_config)
        as_server = roles.build_as(as_cfg)
        as_server.trl_watch.interval = poll_interval
        rs_server = roles.build_rs(dataclasses.replace(load_rs(d.rs_config), observe_trl=True))
        cli_store: SqliteAsStore | None = None
        try:
            await asyncio.wait_for(as_server.start(), TIMEOUT)
            await asyncio.wait_for(rs_server.start(), TIMEOUT)
            assert rs_server.trl is not None
            observer = rs_server.trl.observer
            await asyncio.wait_for(observer.received.wait(), TIMEOUT)  # the first (empty) full set

            store, now = as_server.store, int(time.time())
            tokens = [b"bench-trl-token-%d" % i for i in range(2 * revocations)]
            for i, token in enumerate(tokens):  # issued tokens as the AS logs them (hashes only matter)
                store.log_token(IssuedToken(cti=b"bench-%d" % i, client_id="clientA", audience="rs1",
                                            scope="r_temp", issued_at=now, expires_at=now + 3600,
                                            token_hash=trl.token_hash(token)))

            async def timed(token: bytes, on: Any, poll: bool, limit: float) -> float:
                observer.received.clear()
                t0 = time.perf_counter()
                assert revoke(on, token=token) == [trl.token_hash(token)]
                if poll:
                    as_server.trl_watch.poll()
                await asyncio.wait_for(observer.received.wait(), limit)
                return time.perf_counter() - t0

            rtt = await _baseline_rtt(trl_uri(d.as_uri), revocations)
            in_process = [await timed(t, store, True, TIMEOUT) for t in tokens[:revocations]]
            cli_store = SqliteAsStore(as_cfg.store)  # what `ace revoke` opens
            rng = random.Random(9770)
            via_store = []
            for token in tokens[revocations:]:
                await asyncio.sleep(rng.uniform(0.0, poll_interval))
                via_store.append(await timed(token, cli_store, False, poll_interval + TIMEOUT))
            notified = observer.notifications
        finally:
            if cli_store is not None:
                cli_store.close()
            await asyncio.wait_for(rs_server.stop(), TIMEOUT)
            await asyncio.wait_for(as_server.stop(), TIMEOUT)
            as_server.store.close()
    return {
        "bench": "trl",
        "revocations_per_path": revocations,
        "observer": "RS, full query over OSCORE (observe_trl)",
        "poll_interval_s": poll_interval,
        "in_process": _stats_ms(in_process),
        "via_store": _stats_ms(via_store),
        "baseline_plain_get_rtt": _stats_ms(rtt),
        # a notification is one revocation round plus one protected message: how many RTTs it costs
        "ratio_in_process_to_rtt": round(statistics.median(in_process) / statistics.median(rtt), 2),
        "notifications_received": notified,
    }


def bench_trl(revocations: int = 20, poll_interval: float = POLL_SECONDS) -> dict[str, Any]:
    """The figures as a JSON-able dict (runs its own event loop)."""
    return asyncio.run(bench_trl_async(revocations, poll_interval))


if __name__ == "__main__":
    import json

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(json.dumps(bench_trl(n), indent=2))
