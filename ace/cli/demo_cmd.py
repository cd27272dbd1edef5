"""``ace demo``: the whole A–F flow on loopback in one process, every message shown.

Creates a throwaway deployment (``ace init`` in a temporary directory, free ports on ::1),
starts the AS and the RS, and lets the client GET /temp (granted: A/B, C, D, E, F) and
then PUT /led (not granted: refused). Each message is printed with its exact bytes and in
diagnostic notation, with the whole CoAP message's size and the 802.15.4 frames it needs; the
DTLS and EDHOC handshakes are steps of their own (measured on the wire); the keys are fresh
for this run and deleted with it. Exit status 0 only when the resource was obtained and the
out-of-scope request was refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from ace.cli import roles
from ace.cli.config import SHORT_PROFILES, load_rs
from ace.cli.config_as import load_as
from ace.cli.config_client import load_client
from ace.cli.frames import ASSUMPTIONS
from ace.cli.init_cmd import AUDIENCE, CLIENT_ID, init_deployment
from ace.cli.stdio import stdout_to_stderr
from ace.cli.trace import exchange_lines, record
from ace.client.flow import Done, ResourceRequest

PROFILE_TITLES = {"oscore": "OSCORE profile (RFC 9203)", "dtls": "DTLS profile (RFC 9202)",
                  "edhoc": "EDHOC + OSCORE profile (draft-ietf-ace-edhoc-oscore-profile)"}


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run AS, RS and client on loopback and show the A–F flow")
    p.add_argument("--profile", choices=sorted(SHORT_PROFILES), default="oscore")
    p.add_argument("--json", action="store_true", help="one JSON document instead of text")
    p.set_defaults(func=cmd_demo)


def free_port(host: str = "::1") -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def run_demo(directory: Path, profile: str = "oscore") -> dict[str, Any]:
    d = init_deployment(directory, as_port=free_port(), rs_port=free_port())
    records: list[dict[str, Any]] = []
    as_server = roles.build_as(load_as(d.as_config))
    rs_server = roles.build_rs(load_rs(d.rs_config))
    client = roles.build_client(load_client(d.client_config), observer=lambda e: records.append(record(e)),
                                profile=SHORT_PROFILES[profile])
    await as_server.start()
    await rs_server.start()
    await client.start()
    try:
        got = await client.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp"))
        refused = await client.request(ResourceRequest(method="PUT", uri=d.rs_uri + "/led", payload=b"on"))
    finally:
        await client.stop()
        await rs_server.stop()
        await as_server.stop()
        as_server.store.close()
    ok_get = isinstance(got, Done) and got.response.success
    ok_refused = isinstance(refused, Done) and refused.response.code in ((4, 3), (4, 5))
    return {"profile": profile, "grant": f"{CLIENT_ID} may get 'r_temp' at {AUDIENCE}",
            "as_uri": d.as_uri, "rs_uri": d.rs_uri, "exchanges": records,
            "frames_802154_assumptions": ASSUMPTIONS, "resource_obtained": ok_get,
            "out_of_scope_refused": ok_refused, "ok": ok_get and ok_refused}


def render_text(r: dict[str, Any]) -> str:
    out = [f"ace demo: ACE-OAuth (RFC 9200) A–F flow, {PROFILE_TITLES[r['profile']]}, on loopback",
           "(keys and contexts are fresh for this run and shown in full; never do this with real keys)", "",
           f"A/B  Resource Owner: ace policy grant {CLIENT_ID} {AUDIENCE} r_temp   (AS {r['as_uri']})"]
    for x in r["exchanges"]:
        out += exchange_lines(x)
    out += ["", "sizes: payload; whole CoAP message as sent or received (RFC 7252 §3; the outer message under "
            "OSCORE, the message inside the DTLS record under DTLS); IEEE 802.15.4 frames after 6LoWPAN, estimated "
            "(DTLS: + 29 B record): " + ASSUMPTIONS,
            f"resource obtained: {r['resource_obtained']}   out-of-scope PUT /led refused: "
            f"{r['out_of_scope_refused']}", "result: " + ("OK" if r["ok"] else "FAILED")]
    return "\n".join(out)


def cmd_demo(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="ace-demo-") as tmp, stdout_to_stderr():
        result = asyncio.run(run_demo(Path(tmp), args.profile))
    print(json.dumps(result, indent=2) if args.json else render_text(result))
    if not result["ok"]:
        print("demo failed", file=sys.stderr)
    return 0 if result["ok"] else 1
