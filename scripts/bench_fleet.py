"""``scripts/bench fleet``: cost per flow as the fleet grows from 10 to 1,000 devices.

Per size, a ``devices.fleet.Fleet`` runs in this one process: the AS (SQLite on /dev/shm),
N nodes, each its own ``RsServer`` with its own aiocoap server context and port on ::1
(1,000 of them take ~0.3 s to start and ~50 MB; idle they cost no CPU: one socket each in
the event loop's epoll set and a sweeper timer every 5 s), and C clients. The same number
of flows runs at every size, C at a time, spread over the nodes; each flow is the full
A–F: the client first forgets the node (session and aiocoap credentials entries), then
GETs a resource its role may read: probe (4.01 + hints), POST /token, POST /authz-info,
protected GET. Measured over the flows only (setup excluded): process CPU time and wall
time per completed flow, best of ``repeats`` (wall time counts other processes' use of the
CPUs too; CPU time is the figure the target is about). Target: cost per flow at 1,000
devices ≤ 1.2× the cost at 10. After setup the fleet's objects are moved out of the
garbage collector's reach (``gc.freeze``): they live for the whole run, and otherwise every
full collection walks 1,000 nodes' aiocoap state, pausing the loop long enough (~0.1 s) to
set off CoAP retransmissions. Why forgetting matters: aiocoap's ``CredentialsMap`` sorts all its
entries on every request, so a client that remembered every node it ever met would pay
O(K log K) per request for K entries; forgetting keeps K constant per client.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # devices/ sits beside ace/
    sys.path.insert(0, _ROOT)

from devices.fleet import Fleet, Member, Target, act, quiet  # noqa: E402

FLOWS = 300
CLIENTS = 10
WARMUP = 20  # flows before measuring (imports, first-use caches)
STRIDE = 7919  # a prime: consecutive flows land on scattered nodes


def forget(member: Member, target: Target) -> None:
    """The client drops what it knows of ``target``: the next request is a full A–F flow."""
    origin = target.uri
    member.runner.flow.drop_session(origin)
    creds = member.runner.context.client_credentials
    for key in [k for k in creds if isinstance(k, str) and k.startswith(origin + "/")]:
        del creds[key]


async def _flows(fleet: Fleet, member: Member, indices: range) -> tuple[int, int]:
    ok = bad = 0
    t0 = time.perf_counter()
    for i in indices:
        target = fleet.targets[(i * STRIDE) % len(fleet.targets)]
        forget(member, target)
        outcome = await act(member, target, target.type.actions[0], i, t0)  # a GET every role may do
        if outcome.kind == "completed" and outcome.token_bytes:
            ok += 1
        else:
            bad += 1
    return ok, bad


async def _round(fleet: Fleet, flows: int, offset: int) -> tuple[float, float, int, int]:
    members = fleet.members
    shares = [range(offset + j, offset + flows, len(members)) for j in range(len(members))]
    c0, w0 = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*(_flows(fleet, m, r) for m, r in zip(members, shares, strict=True)))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return cpu, wall, sum(r[0] for r in results), sum(r[1] for r in results)


async def measure(devices: int, *, flows: int = FLOWS, clients: int = CLIENTS, repeats: int = 3,
                  seed: int = 0) -> dict[str, Any]:
    t0 = time.perf_counter()
    async with Fleet(devices=devices, clients=clients, seed=seed) as fleet:
        setup = time.perf_counter() - t0
        await _round(fleet, WARMUP, 10**6)
        gc.collect()
        gc.freeze()
        try:
            best: tuple[float, float, int, int] | None = None
            for r in range(repeats):
                got = await _round(fleet, flows, r * flows)
                if best is None or got[0] < best[0]:
                    best = got
        finally:
            gc.unfreeze()
        fires = sum(m.tuning.timer_fires for m in fleet.members)
    assert best is not None
    cpu, wall, ok, bad = best
    return {"devices": devices, "flows": flows, "clients": clients, "completed": ok, "failed": bad,
            "retransmission_timers": fires,
            "setup_s": round(setup, 2), "cpu_ms_per_flow": round(cpu * 1000 / max(ok, 1), 3),
            "wall_ms_per_flow": round(wall * 1000 / max(ok, 1), 3), "flows_per_s": round(ok / wall, 1)}


async def bench_fleet_async(sizes: tuple[int, ...] = (10, 100, 1000), flows: int = FLOWS,
                            clients: int = CLIENTS) -> dict[str, Any]:
    with quiet(logging.CRITICAL):
        rows = [await measure(n, flows=flows, clients=clients) for n in sizes]
    first, last = rows[0], rows[-1]
    cpu_ratio = last["cpu_ms_per_flow"] / first["cpu_ms_per_flow"]
    wall_ratio = last["wall_ms_per_flow"] / first["wall_ms_per_flow"]
    return {"bench": "fleet", "profile": "coap_oscore", "flow": "full A-F (probe, token, authz-info, GET)",
            "sizes": rows, "cpu_ratio": round(cpu_ratio, 3), "wall_ratio": round(wall_ratio, 3),
            "target_ratio": 1.2, "ok": cpu_ratio <= 1.2 and all(r["failed"] == 0 for r in rows)}


def bench_fleet(sizes: tuple[int, ...] = (10, 100, 1000), flows: int = FLOWS, clients: int = CLIENTS) -> dict[str, Any]:
    """Per-flow cost at each fleet size (runs its own event loop)."""
    return asyncio.run(bench_fleet_async(sizes, flows, clients))


if __name__ == "__main__":
    import json

    print(json.dumps(bench_fleet(), indent=2))
