"""``ace as``, ``ace rs`` and ``ace client``: run a role from its config file."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ace.cli import roles
from ace.cli.config import SHORT_PROFILES, RsFileConfig, load_rs
from ace.cli.service import Service, reload_as, reload_rs
from ace.cli.stdio import EXIT_BIND
from ace.coap.peers import coap_port
from ace.errors import AceError
from ace.profiles import PORT_OFFSETS

if TYPE_CHECKING:  # each role's code is imported by its command only (`ace rs` loads no client or AS)
    import argparse

    from ace.cli.config_as import AsFileConfig
    from ace.client.flow import Done, Failed
    from ace.coap.as_server import AsServer
    from ace.coap.client import Exchange
    from ace.coap.rs_server import RsServer

PROFILE_SHORT_NAMES = {number: name for name, number in SHORT_PROFILES.items()}


def register(sub: Any) -> None:
    for name, helptext in (("as", "run an Authorization Server"), ("rs", "run a Resource Server")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--config", type=Path, required=True)
        p.set_defaults(func=cmd_as if name == "as" else cmd_rs)
    c = sub.add_parser("client", help="request a resource, getting a token as needed (the A–F flow)")
    c.add_argument("--config", type=Path, required=True)
    c.add_argument("--scope", help="scope to ask for (default: from config or the RS's hints)")
    c.add_argument("--profile", choices=sorted(SHORT_PROFILES), help="ACE profile to ask the AS for")
    c.add_argument("--timeout", type=_seconds, default=CLIENT_TIMEOUT, metavar="SECONDS",
                   help=f"give up on a request after this long (default {CLIENT_TIMEOUT:g})")
    c.add_argument("--trace", action="store_true",
                   help="show every message of the flow, and the access token (PoP keys redacted)")
    c.add_argument("method", choices=["get", "post", "put", "delete"])
    c.add_argument("uri")
    c.add_argument("payload", nargs="?", default="")
    c.set_defaults(func=cmd_client)


async def _serve(server: AsServer | RsServer, announce: Callable[[], str], service: Service) -> None:
    service.install()  # SIGTERM/SIGINT stop, SIGHUP reloads (ace.cli.service)
    try:
        await server.start()
    except OSError as exc:  # taken between the probe and now, or an address not ours
        raise BindError(f"cannot listen on UDP {_where(*server.bind[:2])}: {exc.strerror or exc}") from None
    # One line at start, at any verbosity, on stderr (where the logs go; stdout stays for data):
    # what listens where, with which profiles and which store or config.
    print(announce(), file=sys.stderr, flush=True)
    try:
        await service.wait()
    finally:
        await service.stop(server)


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


def _listening(server: AsServer | RsServer) -> str:
    """``coap [::1]:5683, coaps [::1]:5684`` (the ports actually bound)."""
    host, port = server.bind[:2]
    if server.context is not None:
        with contextlib.suppress(LookupError, AttributeError, OSError):
            port = coap_port(server.context)
    where = f"coap {_where(host, port)}"
    return where + (f", coaps {_where(host, server.coaps_port)}" if server.coaps_port else "")


def as_banner(server: AsServer, cfg: AsFileConfig) -> str:
    profiles = "oscore, dtls" if server.coaps_port else "oscore"
    clients = len(server.store.list_clients())
    return (f"ace as: listening on {_listening(server)}; clients over {profiles}; {clients} registered; "
            f"store {cfg.store}; config {cfg.path}")


def rs_banner(server: RsServer, cfg: RsFileConfig) -> str:
    profiles = ", ".join(PROFILE_SHORT_NAMES.get(p, str(p)) for p in cfg.profiles)
    return (f"ace rs {cfg.audience}: listening on {_listening(server)}; profiles {profiles}; "
            f"AS {cfg.as_uri}; config {cfg.path}")


def cmd_as(args: argparse.Namespace) -> int:
    from ace.cli.config_as import load_as

    cfg = load_as(args.config)
    check_bindable(cfg.bind, [cfg.port] + ([cfg.dtls_port or cfg.port + 1] if cfg.dtls else []))  # DTLS: port + 1
    server = roles.build_as(cfg)
    try:
        asyncio.run(_serve(server, lambda: as_banner(server, cfg), Service("ace as", lambda: reload_as(server, cfg))))
    finally:
        server.store.close()
    return 0


def cmd_rs(args: argparse.Namespace) -> int:
    cfg = load_rs(args.config)
    check_bindable(cfg.bind, rs_ports(cfg.port, cfg.profiles))
    server = roles.build_rs(cfg)
    service = Service(f"ace rs {cfg.audience}", lambda: reload_rs(server, cfg))
    asyncio.run(_serve(server, lambda: rs_banner(server, cfg), service))
    return 0


def rs_ports(port: int, profiles: tuple[int, ...]) -> list[int]:
    """The UDP ports an RS binds: its CoAP port, and those its profiles add (DTLS: coaps on port + 1)."""
    return [port, *sorted({port + offset for p in profiles for offset in PORT_OFFSETS[p]})]  # no profile loaded


CLIENT_TIMEOUT = 5.0  # seconds `ace client` waits for each answer (aiocoap retransmits meanwhile)


def _seconds(text: str) -> float:
    import argparse  # loaded already: argparse calls this while it parses `ace client`

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 600 seconds")
    return value


async def _client(args: argparse.Namespace) -> int:
    from ace.cli.trace import client_trace
    from ace.client.flow import ResourceRequest
    from ace.coap.client import quiet_abandoned_requests

    profile = SHORT_PROFILES.get(args.profile or "")
    exchanges: list[Exchange] = []
    from ace.cli.config_client import load_client

    runner = roles.build_client(load_client(args.config), scope=args.scope, profile=profile,
                                observer=exchanges.append if args.trace else None)
    runner.timeout = args.timeout
    runner.on_wait = lambda text: print(f"ace client: {text}", file=sys.stderr, flush=True)
    asyncio.get_running_loop().set_exception_handler(quiet_abandoned_requests)
    try:
        await runner.start()
        result = await runner.request(ResourceRequest(method=args.method.upper(), uri=args.uri,
                                                      payload=args.payload.encode()))
    finally:
        await runner.stop()
    if args.trace:
        print(client_trace(exchanges))
    return _report(result, args.uri)


def _report(result: Done | Failed, uri: str) -> int:
    """The answer on stdout ("2.05 21.3"; a refusal by name, hints decoded), why not on stderr."""
    from ace.client import reasons
    from ace.client.flow import Failed
    from ace.coap.client import origin_of

    if isinstance(result, Failed):
        print(f"ace client: failed at {result.step}: {result.error}", file=sys.stderr)
        return 1
    r = result.response
    if r.local is not None:  # no answer at all: nothing on stdout
        print(f"ace client: RS at {origin_of(uri)} {r.local}", file=sys.stderr)
        return 1
    if r.success:
        print(f"{r.code[0]}.{r.code[1]:02d}", r.payload.decode("utf-8", "replace"))
        return 0
    print(reasons.answer_text(r.code, r.payload, r.content_format))
    if r.code in _REFUSALS:
        print(f"ace client: {_REFUSALS[r.code]}", file=sys.stderr)
    return 1


_REFUSALS = {  # RFC 9200 §5.10.2: what a refusal of a request with a token means
    (4, 1): "the RS took no token for this request (see the hints: is the AS the same, the token valid?)",
    (4, 3): "the token's scope does not cover this resource: ask for one that does (--scope), "
            "granted at the AS (`ace policy grant`)",
    (4, 5): "the token's scope does not allow this method on this resource: ask for one that does (--scope), "
            "granted at the AS (`ace policy grant`)",
}


def cmd_client(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_client(args))
    return 130
