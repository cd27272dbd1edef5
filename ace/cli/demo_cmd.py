"""``ace demo``: the whole A–F flow on loopback in one process, every message shown.

Creates a throwaway deployment (``ace init`` in a temporary directory, free ports on ::1),
starts the AS and the RS, and lets the client GET /temp (granted: A/B, C, D, E, F) and
then PUT /led (not granted: refused). Each message is printed with its exact bytes and in
diagnostic notation; the keys are fresh for this run and deleted with it. Exit status 0
only when the resource was obtained and the out-of-scope request was refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import tempfile
from enum import IntEnum
from pathlib import Path
from typing import Any

from ace.cbor import codec
from ace.cbor.diag import diag, label_namer
from ace.cbor.labels import ContentFormat, CreationHint, Param
from ace.cli import roles
from ace.cli.config import SHORT_PROFILES, load_as, load_client, load_rs
from ace.cli.init_cmd import AUDIENCE, CLIENT_ID, init_deployment
from ace.cli.stdio import stdout_to_stderr
from ace.client.flow import Done, ResourceRequest
from ace.coap.client import Exchange
from ace.errors import DecodeError

STEP = {"resource": "C0", "token": "C/D", "authz-info": "E", "resource (protected)": "F", "resource (DTLS)": "F",
        "resource (EDHOC)": "F"}
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


def _namer(step: str, response: bool, code: tuple[int, int]) -> type[IntEnum] | None:
    if step == "resource" and response and code == (4, 1):
        return CreationHint
    if step in ("token", "authz-info"):
        return Param
    return None


def _describe(payload: bytes, cf: Any, labels: type[IntEnum] | None) -> str | None:
    if cf is None or int(cf) != ContentFormat.ACE_CBOR or not payload:
        return None
    try:
        value = codec.loads(payload)
    except DecodeError:
        return None
    return diag(value, labels=label_namer(labels))


def _record(e: Exchange) -> dict[str, Any]:
    labels_req, labels_resp = _namer(e.step, False, e.response.code), _namer(e.step, True, e.response.code)
    req_cf = ContentFormat.ACE_CBOR if e.step in ("token", "authz-info") else None
    return {
        "step": STEP.get(e.step, e.step), "what": e.step, "method": e.method, "uri": e.uri,
        "protected": e.protected, "elapsed_ms": round(e.elapsed * 1000, 2),
        "request": {"bytes": len(e.request_payload), "hex": e.request_payload.hex(),
                    "diag": _describe(e.request_payload, req_cf, labels_req)},
        "response": {"code": f"{e.response.code[0]}.{e.response.code[1]:02d}", "bytes": len(e.response.payload),
                     "hex": e.response.payload.hex(), "content_format": _cf(e.response.content_format),
                     "diag": _describe(e.response.payload, e.response.content_format, labels_resp)},
    }


def _cf(cf: Any) -> int | None:
    return None if cf is None else int(cf)


async def run_demo(directory: Path, profile: str = "oscore") -> dict[str, Any]:
    d = init_deployment(directory, as_port=free_port(), rs_port=free_port())
    records: list[dict[str, Any]] = []
    as_server = roles.build_as(load_as(d.as_config))
    rs_server = roles.build_rs(load_rs(d.rs_config))
    client = roles.build_client(load_client(d.client_config), observer=lambda e: records.append(_record(e)),
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
            "resource_obtained": ok_get, "out_of_scope_refused": ok_refused, "ok": ok_get and ok_refused}


def render_text(r: dict[str, Any]) -> str:
    out = [f"ace demo: ACE-OAuth (RFC 9200) A–F flow, {PROFILE_TITLES[r['profile']]}, on loopback",
           "(keys and contexts are fresh for this run and shown in full; never do this with real keys)", "",
           f"A/B  Resource Owner: ace policy grant {CLIENT_ID} {AUDIENCE} r_temp   (AS {r['as_uri']})"]
    for x in r["exchanges"]:
        sec = {"resource (DTLS)": "DTLS", "resource (EDHOC)": "EDHOC+OSCORE"}.get(x["what"], "OSCORE") \
            if x["protected"] else "unprotected"
        out.append(f"{x['step']:<4} client -> {x['method']} {x['uri']} ({sec}), {x['request']['bytes']} B payload")
        out += _payload_lines(x["request"])
        resp = x["response"]
        out.append(f"     <- {resp['code']}, {resp['bytes']} B payload, {x['elapsed_ms']} ms")
        out += _payload_lines(resp)
    out += ["", f"resource obtained: {r['resource_obtained']}   out-of-scope PUT /led refused: "
            f"{r['out_of_scope_refused']}", "result: " + ("OK" if r["ok"] else "FAILED")]
    return "\n".join(out)


def _payload_lines(p: dict[str, Any]) -> list[str]:
    if not p["bytes"]:
        return []
    lines = [f"       hex  {p['hex']}"]
    if p["diag"]:
        first, *rest = p["diag"].splitlines()
        lines += ["       diag " + first] + ["            " + line for line in rest]
    else:
        text = bytes.fromhex(p["hex"]).decode("utf-8", "replace")
        lines.append(f"       text {text!r}")
    return lines


def cmd_demo(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="ace-demo-") as tmp, stdout_to_stderr():
        result = asyncio.run(run_demo(Path(tmp), args.profile))
    print(json.dumps(result, indent=2) if args.json else render_text(result))
    if not result["ok"]:
        print("demo failed", file=sys.stderr)
    return 0 if result["ok"] else 1
