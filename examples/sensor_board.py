"""A sensor board: an observable temperature behind ACE, with a reader and a maintainer role.

    ace init deploy/ && cd deploy/
    cat >> rs.toml <<'END'          # [rs.scopes] is rs.toml's last table
    rw_config = [["/temp", ["GET"]], ["/config", ["GET", "PUT"]]]
    rw_lock = [["/lock", ["GET", "PUT"]]]
    END
    ace policy --config as.toml grant clientA rs1 "r_temp rw_config rw_lock"
    ace as --config as.toml &                  # the AS, coap://[::1]:5689/token
    python ../examples/sensor_board.py        # this RS, coap://[::1]:5690 (rs.toml's port)

Resources: GET /temp (observable: a simulated reading, new every sampling interval) for the
reader (``r_temp``) and the maintainer; GET|PUT /config (the sampling interval in seconds, text)
for the maintainer (``rw_config``) only: a reader's PUT is refused (4.03). It runs until SIGINT or
SIGTERM, or for ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import aiocoap

import ace

MIN_INTERVAL, MAX_INTERVAL = 0.05, 3600.0


class Sensor:
    """A simulated temperature, one new reading per sampling interval."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.step = 0

    @property
    def reading(self) -> str:
        return f"{20.0 + (self.step % 20) * 0.1:.1f}"

    def sample(self) -> None:
        self.step += 1


def build(config: str, interval: float) -> tuple[ace.ResourceServerApp, Sensor]:
    """The RS of ``config`` with /temp and /config protected."""
    rs = ace.ResourceServerApp.from_config(config)
    sensor = Sensor(interval)

    @rs.protect("/temp", methods=("GET",), observable=True)
    async def temp(request: aiocoap.Message, binding: ace.Binding) -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.CONTENT, payload=sensor.reading.encode())

    @rs.protect("/config", methods=("GET", "PUT"))
    async def config_(request: aiocoap.Message, binding: ace.Binding) -> aiocoap.Message:
        if request.code == aiocoap.PUT:
            try:
                value = float(request.payload.decode())
            except (UnicodeDecodeError, ValueError):
                return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"interval: seconds")
            if not MIN_INTERVAL <= value <= MAX_INTERVAL:
                return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"interval out of range")
            sensor.interval = value
            print(f"interval set to {value} s by {binding.claims.sub}", flush=True)
            return aiocoap.Message(code=aiocoap.CHANGED)
        return aiocoap.Message(code=aiocoap.CONTENT, payload=f"{sensor.interval}".encode())

    return rs, sensor


async def sample(rs: ace.ResourceServerApp, sensor: Sensor) -> None:
    """A new reading each interval; observers of /temp are told."""
    while True:
        await asyncio.sleep(sensor.interval)
        sensor.sample()
        rs.notify("/temp")


async def main(args: argparse.Namespace) -> None:
    rs, sensor = build(args.config, args.interval)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with rs:
        host, port = rs.address
        print(f"sensor board on coap://[{host}]:{port} (/temp, /config)", flush=True)
        sampler = asyncio.create_task(sample(rs, sensor))
        try:
            with contextlib.suppress(TimeoutError):  # --seconds ran out
                await asyncio.wait_for(stop.wait(), args.seconds)
        finally:
            sampler.cancel()
    print("sensor board stopped", flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--config", default="rs.toml", help="the RS config (ace init's rs.toml)")
    p.add_argument("--interval", type=float, default=1.0, help="initial sampling interval in seconds")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: run)")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
