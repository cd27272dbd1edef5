"""An actuator board: a lock behind ACE, with an idempotent command.

    cd deploy/                              # after sensor_board.py's steps (rs.toml's rw_lock scope)
    sed -e 's/^port = 5690/port = 5692/' -e 's/rs-state.json/lock-state.json/' rs.toml > lock.toml
    python ../examples/lock.py              # coap://[::1]:5692, rs.toml's audience and keys

GET /lock reads the state; PUT /lock with ``locked`` or ``unlocked`` sets it (scope ``rw_lock``).
The command is idempotent (RFC 7252 §5.8.3: PUT): the same command twice changes nothing the
second time and answers the same 2.04, so a retransmitted or repeated request is safe. The
answer's payload is the state after the command. Runs until SIGINT or SIGTERM, or ``--seconds``.

lock.toml is rs.toml on another port with its own state file, so that it runs beside
sensor_board.py on one host with the same audience and token key; a board of its own would have
its own audience and key (``ace policy add-rs`` registers it at the AS).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import aiocoap

import ace

STATES = ("locked", "unlocked")


class Lock:
    """The bolt: ``locked`` or ``unlocked``, and how often it really moved."""

    def __init__(self) -> None:
        self.state = "locked"
        self.moves = 0

    def command(self, target: str) -> bool:
        """Drive the bolt to ``target``; True if it moved (False: it was there already)."""
        if target == self.state:
            return False
        self.state, self.moves = target, self.moves + 1
        return True


def build(config: str) -> tuple[ace.ResourceServerApp, Lock]:
    """The RS of ``config`` with /lock protected."""
    rs = ace.ResourceServerApp.from_config(config)
    lock = Lock()

    @rs.protect("/lock", methods=("GET", "PUT"))
    async def lock_(request: aiocoap.Message, binding: ace.Binding) -> aiocoap.Message:
        if request.code == aiocoap.PUT:
            target = request.payload.decode(errors="replace").strip()
            if target not in STATES:
                return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"locked|unlocked")
            if lock.command(target):
                print(f"{target} by {binding.claims.sub} (move {lock.moves})", flush=True)
            return aiocoap.Message(code=aiocoap.CHANGED, payload=lock.state.encode())
        return aiocoap.Message(code=aiocoap.CONTENT, payload=lock.state.encode())

    return rs, lock


async def main(args: argparse.Namespace) -> None:
    rs, lock = build(args.config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with rs:
        host, port = rs.address
        print(f"lock on coap://[{host}]:{port} (/lock: {lock.state})", flush=True)
        with contextlib.suppress(TimeoutError):  # --seconds ran out
            await asyncio.wait_for(stop.wait(), args.seconds)
    print(f"lock stopped ({lock.state}, {lock.moves} moves)", flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--config", default="lock.toml", help="the RS config (ace init's rs.toml on port 5692)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (default: run)")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
