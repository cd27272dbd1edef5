"""A client script: read the sensor board, observe a few readings, set its interval, drive the lock.

    cd deploy/                              # with sensor_board.py and lock.py running
    python ../examples/client.py --scope "r_temp rw_lock"        # a reader: PUT /config is 4.03
    python ../examples/client.py --scope "rw_config rw_lock"     # a maintainer: 2.04

Each call does the whole ACE flow when it needs to (hints, a token from the AS, /authz-info, then
the request over the channel); a refusal of the resource is printed with its code. One line per
result on stdout: ``temp 2.05 20.3``, ``notification 2.05 20.4``, ``config 4.03``, ``lock 2.04 locked``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

import ace


def code(r: ace.Response) -> str:
    return f"{r.code[0]}.{r.code[1]:02d}"


def show(what: str, r: ace.Response) -> None:
    """One result: the code, and the payload of a success (a refusal's may be CBOR: AS hints)."""
    text = r.payload.decode(errors="replace") if r.success else ""
    print(f"{what} {code(r)} {text}".rstrip(), flush=True)


async def observe(client: ace.Client, uri: str, count: int, timeout: float) -> None:
    """The first answer and ``count`` notifications of ``uri``, each within ``timeout``."""
    observation = client.observe(uri)
    try:
        for i in range(count + 1):
            r = await asyncio.wait_for(anext(observation), timeout)
            show("observe" if i == 0 else "notification", r)
            if not r.success:
                break
    except (TimeoutError, StopAsyncIteration):
        print("observation ended", flush=True)
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await asyncio.wait_for(observation.aclose(), timeout)


async def main(args: argparse.Namespace) -> int:
    async with ace.Client.from_config(args.config, scope=args.scope, timeout=args.timeout) as client:
        try:
            show("temp", await client.get(args.sensor + "/temp"))
            await observe(client, args.sensor + "/temp", args.count, 3 * args.timeout)
            show("config", await client.put(args.sensor + "/config", args.interval.encode()))
            for command in ("locked", "locked", "unlocked"):  # the second changes nothing
                show(f"lock {command}", await client.put(args.lock + "/lock", command.encode()))
            show("lock", await client.get(args.lock + "/lock"))
        except ace.RequestFailed as exc:
            print(f"failed {exc}", flush=True)
            return 1
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--config", default="client.toml", help="the client config (ace init's client.toml)")
    p.add_argument("--scope", default=None, help="the scope to ask for (default: client.toml's, else the RS's hint)")
    p.add_argument("--sensor", default="coap://[::1]:5690", help="the sensor board's origin")
    p.add_argument("--lock", default="coap://[::1]:5692", help="the lock's origin")
    p.add_argument("--count", type=int, default=3, help="notifications to wait for")
    p.add_argument("--interval", default="0.5", help="sampling interval to set at the sensor board")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds each request may take")
    return p.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
