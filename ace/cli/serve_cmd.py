"""``ace as``, ``ace rs`` and ``ace client``: run a role from its config file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from ace.cbor.labels import AceProfile
from ace.cli import roles
from ace.cli.config import SHORT_PROFILES, load_as, load_client, load_rs
from ace.client.flow import Done, ResourceRequest
from ace.coap.as_server import AsServer
from ace.coap.rs_server import RsServer
from ace.errors import AceError


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
    try:
        await server.start()
    except OSError as exc:  # taken between the probe and now, or an address not ours
        raise BindError(f"cannot listen on UDP {_where(*server.bind[:2])}: {exc.strerror or exc}") from None
    try:
        await stop.wait()
    finally:
        await server.stop()


EXIT_BIND = 3  # `ace as` / `ace rs`: the port is in use (or cannot be bound); one line on stderr


class BindError(AceError):
    """The address a server is to listen on is taken or cannot be had."""

    exit_code = EXIT_BIND


def check_bindable(host: str, ports: list[int]) -> None:
    """Bind each UDP port once without SO_REUSEPORT and let go: aiocoap sets SO_REUSEPORT, so a
    second server on a port in use would start silently and share it (the kernel splitting the
    requests between the two); this probe is refused instead."""
    for port in ports:
        if port == 0:  # any free port: nothing to check
            continue
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise BindError(f"cannot listen on {host!r}: {exc.strerror}") from None
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(address)
            except OSError as exc:
                why = "is in use (another ace as/rs or peer?)" if exc.errno == errno.EADDRINUSE else exc.strerror
                raise BindError(f"cannot listen on UDP {_where(host, port)}: {why}") from None


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def cmd_as(args: argparse.Namespace) -> int:
    cfg = load_as(args.config)
    check_bindable(cfg.bind, [cfg.port] + ([cfg.port + 1] if cfg.dtls else []))  # DTLS on port + 1
    server = roles.build_as(cfg)
    try:
        asyncio.run(_serve(server))
    finally:
        server.store.close()
    return 0


def cmd_rs(args: argparse.Namespace) -> int:
    cfg = load_rs(args.config)
    check_bindable(cfg.bind, [cfg.port] + ([cfg.port + 1] if AceProfile.COAP_DTLS in cfg.profiles else []))
    asyncio.run(_serve(roles.build_rs(cfg)))
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
