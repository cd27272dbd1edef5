"""``ace as``, ``ace rs`` and ``ace client``: run a role from its config file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from ace.cli import roles
from ace.cli.config import SHORT_PROFILES, load_as, load_client, load_rs
from ace.client.flow import Done, ResourceRequest
from ace.coap.as_server import AsServer
from ace.coap.rs_server import RsServer


def register(sub: Any) -> None:
    for name, helptext in (("as", "run an Authorization Server"), ("rs", "run a Resource Server")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--config", type=Path, required=True)
        p.set_defaults(func=cmd_as if name == "as" else cmd_rs)
    c = sub.add_parser("client", help="request a resource, getting a token as needed (the A–F flow)")
    c.add_argument("--config", type=Path, required=True)
    c.add_argument("--scope", help="scope to ask for (default: from config or the RS's hints)")
    c.add_argument("--profile", choices=sorted(SHORT_PROFILES), help="ACE profile to ask the AS for")
    c.add_argument("method", choices=["get", "post", "put", "delete"])
    c.add_argument("uri")
    c.add_argument("payload", nargs="?", default="")
    c.set_defaults(func=cmd_client)


async def _serve(server: AsServer | RsServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()


def cmd_as(args: argparse.Namespace) -> int:
    server = roles.build_as(load_as(args.config))
    try:
        asyncio.run(_serve(server))
    finally:
        server.store.close()
    return 0


def cmd_rs(args: argparse.Namespace) -> int:
    asyncio.run(_serve(roles.build_rs(load_rs(args.config))))
    return 0


async def _client(args: argparse.Namespace) -> int:
    profile = SHORT_PROFILES.get(args.profile or "")
    runner = roles.build_client(load_client(args.config), scope=args.scope, profile=profile)
    try:
        await runner.start()
        result = await runner.request(ResourceRequest(method=args.method.upper(), uri=args.uri,
                                                      payload=args.payload.encode()))
    finally:
        await runner.stop()
    if isinstance(result, Done):
        code = f"{result.response.code[0]}.{result.response.code[1]:02d}"
        print(code, result.response.payload.decode("utf-8", "replace"))
        return 0 if result.response.success else 1
    print(f"failed at {result.step}: {result.error}", file=sys.stderr)
    return 1


def cmd_client(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_client(args))
    return 130
