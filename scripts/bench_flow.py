"""``scripts/bench flow``: the OSCORE-profile flow on loopback, measured.

* /token requests/s over OSCORE, next to a bare aiocoap OSCORE echo resource measured in
  the same run and process (the ratio is the figure; target ≥ 0.7);
* full A–F flow latency (probe, token, authz-info, protected request), median and p95;
* the byte size of every message of the flow (payload and whole CoAP message as sent) with the
  IEEE 802.15.4 frames it needs after 6LoWPAN (``ace.cli.frames``), and what each field of the
  POST /authz-info payload costs (target: payload ≤ 127 bytes; the frame count is the honest figure).
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiocoap
import aiocoap.resource
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper

from ace.cbor import codec
from ace.cbor.labels import ContentFormat
from ace.cli import roles
from ace.cli.config import load_rs
from ace.cli.config_as import load_as
from ace.cli.config_client import load_client
from ace.cli.demo_cmd import free_port
from ace.cli.frames import ASSUMPTIONS, DTLS_RECORD, frames_802154
from ace.cli.init_cmd import init_deployment
from ace.client.flow import ResourceRequest
from ace.coap.client import Exchange
from ace.coap.contexts import ContextIndex
from ace.coap.oscore_context import MemoryOscoreContext
from ace.messages import AccessTokenRequest, AuthzInfoRequest


class Echo(aiocoap.resource.Resource):  # type: ignore[misc]
    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.CREATED, payload=request.payload)


async def _rate(send: Any, seconds: float) -> float:
    for _ in range(20):
        await send()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds and n < 200_000:
        await send()
        n += 1
    return n / (time.perf_counter() - start)


async def echo_baseline(payload: bytes, seconds: float) -> float:
    """Requests/s to an OSCORE-protected echo resource: aiocoap's own floor."""
    port, ms = free_port(), b"\x07" * 16
    creds = aiocoap.credentials.CredentialsMap()
    index = ContextIndex()
    index.add(MemoryOscoreContext(master_secret=ms, sender_id=b"\x00", recipient_id=b"\x01"))
    creds[":echo"] = index
    site = aiocoap.resource.Site()
    site.add_resource(["echo"], Echo())
    server = await aiocoap.Context.create_server_context(OscoreSiteWrapper(site, creds), bind=("::1", port),
                                                         transports=["oscore", "udp6"])
    client = await aiocoap.Context.create_client_context(transports=["oscore", "udp6"])
    client.client_credentials[f"coap://[::1]:{port}/*"] = MemoryOscoreContext(
        master_secret=ms, sender_id=b"\x01", recipient_id=b"\x00")
    uri = f"coap://[::1]:{port}/echo"

    async def send() -> None:
        msg = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=payload)
        await asyncio.wait_for(client.request(msg).response, 10)

    try:
        return await _rate(send, seconds)
    finally:
        await client.shutdown()
        await server.shutdown()


async def dtls_echo_baseline(payload: bytes, seconds: float) -> float:
    """Requests/s to a plain aiocoap DTLS-PSK echo resource over one established session."""
    from ace.coap import dtls

    psks = dtls.PskIndex()
    psks.add(b"bench", b"\x05" * 16, b"bench")
    creds = dtls.DtlsCredentialsMap()
    creds[":psk"] = psks
    site = aiocoap.resource.Site()
    site.add_resource(["echo"], Echo())
    server = await dtls.create_server(site, ("::1", 0), creds)
    client = await aiocoap.Context.create_client_context(transports=["tinydtls", "udp6"])
    port = dtls.coaps_port(server)
    client.client_credentials[f"coaps://[::1]:{port}/*"] = dtls.dtls_client_credentials(b"\x05" * 16, b"bench")
    uri = f"coaps://[::1]:{port}/echo"

    async def send() -> None:
        msg = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=payload)
        await asyncio.wait_for(client.request(msg).response, 10)

    try:
        return await _rate(send, seconds)
    finally:
        await client.shutdown()
        await server.shutdown()


async def _measure_session(d: Any, seconds: float, flows: int, profile: str) -> dict[str, Any]:
    """Flow latency, handshake + first request, and requests/s on an established DTLS session
    or EDHOC-derived OSCORE context, next to the bare transport (DTLS or OSCORE echo)."""
    number = {"dtls": 1, "edhoc": 4}[profile]
    step = {"dtls": "resource (DTLS)", "edhoc": "resource (EDHOC)"}[profile]
    cfg = load_client(d.client_config)
    first_requests, latencies, sizes = [], [], []
    for i in range(flows):
        exchanges: list[Exchange] = []
        client = roles.build_client(cfg, observer=exchanges.append, profile=number)
        await client.start()
        try:
            t0 = time.perf_counter()
            await client.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp"))
            latencies.append((time.perf_counter() - t0) * 1000)
            first_requests += [e.elapsed * 1000 for e in exchanges if e.step == step]
            if i == 0:
                sizes = [message_size(e) for e in exchanges]
        finally:
            await client.stop()
    client = roles.build_client(cfg, profile=number)
    await client.start()
    try:
        request = ResourceRequest(method="GET", uri=d.rs_uri + "/temp")
        await client.request(request)
        session_s = await _rate(lambda: client.request(request), seconds)
    finally:
        await client.stop()
    echo_s = await (dtls_echo_baseline(b"", seconds) if profile == "dtls" else echo_baseline(b"", seconds))
    return {
        "bench": "flow", "profile": "coap_" + ("dtls" if profile == "dtls" else "edhoc_oscore"),
        "full_flow_ms": _percentiles(latencies),
        "handshake_and_first_request_ms": _percentiles(first_requests),
        "established_session": {"requests_per_s": round(session_s),
                                "bare_echo_per_s": round(echo_s), "bare_echo": f"{profile} transport" if
                                profile == "dtls" else "OSCORE (what EDHOC sets up)",
                                "ratio": round(session_s / echo_s, 3)},
        "message_sizes": sizes, "frames_802154_assumptions": ASSUMPTIONS,
    }


def message_size(e: Exchange) -> dict[str, Any]:
    """Payload and whole CoAP message bytes (RFC 7252 §3, as sent) of one exchange, the 802.15.4 frames
    each message needs after 6LoWPAN (``ace.cli.frames``), and the handshake run inside it."""
    extra = DTLS_RECORD if e.uri.startswith("coaps:") else 0

    def frames(n: int | None) -> int | None:
        return None if n is None else frames_802154(n, extra)

    return {"step": e.step, "request_bytes": len(e.request_payload), "response_bytes": len(e.response.payload),
            "response_code": f"{e.response.code[0]}.{e.response.code[1]:02d}",
            "request_message_bytes": e.request_message_bytes, "response_message_bytes": e.response_message_bytes,
            "frames_802154": {"request": frames(e.request_message_bytes),
                              "response": frames(e.response_message_bytes)},
            "handshake": [{"what": what, "bytes": n, "frames_802154": frames_802154(n)} for what, n in e.handshake]}


def _percentiles(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    p95 = v[min(len(v) - 1, int(0.95 * len(v)))]
    return {"n": len(v), "median": round(statistics.median(v), 2), "p95": round(p95, 2)}


def authz_info_costs(payload: bytes) -> dict[str, int]:
    """Bytes each part of the POST /authz-info payload takes."""
    req = AuthzInfoRequest.decode(payload)
    protected, unprotected, ciphertext = codec.loads(req.access_token)
    head = len(payload) - len(codec.dumps({1: req.access_token})) - len(codec.dumps({40: req.nonce1}))
    return {
        "total": len(payload),
        "map_and_labels": head - len(codec.dumps({43: req.ace_client_recipientid})) + 3,
        "access_token": len(req.access_token),
        "  cose_array_and_protected_header": 1 + len(codec.bstr(protected)),
        "  unprotected_header (kid, IV)": len(codec.dumps(unprotected)),
        "  ciphertext incl. 8-byte tag": len(codec.bstr(ciphertext)),
        "  of which claims plaintext": len(ciphertext) - 8,
        "nonce1": len(codec.dumps(req.nonce1)),
        "ace_client_recipientid": len(codec.dumps(req.ace_client_recipientid)),
    }


async def bench_flow(seconds: float, flows: int, profile: str = "oscore") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ace-bench-") as tmp:
        d = init_deployment(Path(tmp), as_port=free_port(), rs_port=free_port())
        # the token rate mints up to 200,000 tokens for one client: lift the per-client limit of live tokens
        as_cfg = dataclasses.replace(load_as(d.as_config), max_live_tokens=250_000)
        as_server, rs_server = roles.build_as(as_cfg), roles.build_rs(load_rs(d.rs_config))
        await as_server.start()
        await rs_server.start()
        try:
            if profile in ("dtls", "edhoc"):
                return await _measure_session(d, seconds, flows, profile)
            return await _measure(d, seconds, flows)
        finally:
            await rs_server.stop()
            await as_server.stop()
            as_server.store.close()


async def _measure(d: Any, seconds: float, flows: int) -> dict[str, Any]:
    cfg = load_client(d.client_config)
    exchanges: list[Exchange] = []
    latencies = []
    for i in range(flows):
        client = roles.build_client(cfg, observer=exchanges.append if i == 0 else None)
        await client.start()
        try:
            t0 = time.perf_counter()
            await client.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp"))
            latencies.append((time.perf_counter() - t0) * 1000)
        finally:
            await client.stop()
    sizes = [message_size(e) for e in exchanges]
    authz = next(e.request_payload for e in exchanges if e.step == "authz-info")
    token_payload = AccessTokenRequest(audience="rs1", scope="r_temp").encode()
    client = roles.build_client(cfg)
    await client.start()
    try:
        async def token() -> None:
            msg = aiocoap.Message(code=aiocoap.POST, uri=d.as_uri, payload=token_payload,
                                  content_format=int(ContentFormat.ACE_CBOR))
            r = await asyncio.wait_for(client.context.request(msg).response, 10)
            assert r.code == aiocoap.CREATED, r
        tokens_s = await _rate(token, seconds)
    finally:
        await client.stop()
    echo_s = await echo_baseline(token_payload, seconds)
    lat = sorted(latencies)
    return {
        "bench": "flow", "profile": "coap_oscore",
        "token_endpoint": {"tokens_per_s": round(tokens_s), "oscore_echo_per_s": round(echo_s),
                           "ratio": round(tokens_s / echo_s, 3), "target_ratio": 0.7},
        "full_flow_ms": {"flows": len(lat), "median": round(statistics.median(lat), 2),
                         "p95": round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2)},
        "message_sizes": sizes, "frames_802154_assumptions": ASSUMPTIONS,
        "authz_info_bytes": authz_info_costs(authz), "authz_info_target": 127,
    }
