"""``scripts/bench rs``: the RS's memory per stored token, measured with ``tracemalloc``.

For each profile (OSCORE, DTLS) one ``ResourceServer`` (the sans-I/O core, in-process, no
sockets) takes N valid tokens from N distinct clients, shaped as this AS issues them: sub,
aud, exp, cti (the AS's counter), scope, and the PoP key in cnf (an OSCORE_Input_Material
with a 16-byte ms and the cti as id, or a 16-byte symmetric COSE_Key with an 8-byte kid).
Everything the clients send is built before the first measurement and stays alive until
after the last, so what is counted is what the RS keeps: the traced bytes after all N
POSTs (after a full garbage collection) minus those before, divided by N.

The CoAP layer's share is measured next, separately: an ``RsServer`` (constructed, never
started: no sockets) installs each binding the way POST /authz-info does, which for OSCORE
builds a ``MemoryOscoreContext`` (derived keys, replay window) in its ``ContextIndex``, and
for DTLS adds the PSK to its ``PskIndex``. Target: core + CoAP ≤ 2 KiB per token. The ten
biggest allocation sites (``Snapshot.compare_to(..., "lineno")``) are listed for each step;
``charged_bytes`` is what the store's byte budget believes a binding costs (token length +
``BINDING_OVERHEAD``), for comparison with what it really costs.
"""

from __future__ import annotations

import gc
import os
import secrets
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ace.cbor.labels import AceProfile, ContentFormat
from ace.coap.devices import demo_resources
from ace.coap.rs_server import RsServer
from ace.messages import AuthzInfoRequest
from ace.profiles import dtls
from ace.rs.server import ResourceServer, RsConfig
from ace.rs.store import BINDING_OVERHEAD
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, OscoreCnf, OscoreInputMaterial
from ace.tokens.cwt import KeyRing, issue_token
from ace.tokens.keys import generate_symmetric, symmetric_key

TARGET_BYTES = 2048
TOKEN_LIFETIME = 3600
SCOPE_MEANING = {"r_temp": [("/temp", 1)], "rw_led": [("/led", 1 | 4)]}  # GET; GET and PUT
TOP = 10
WARMUP = 50
_ROOT = str(Path(__file__).resolve().parent.parent)


def _cti(n: int) -> bytes:
    """As the AS spells its counter (ace.authz_server.token._cti_bytes)."""
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def _requests(profile: str, n: int, key: Any, now: float) -> list[tuple[bytes, int]]:
    """N (payload, content format) pairs for POST /authz-info, one per distinct client."""
    out: list[tuple[bytes, int]] = []
    for i in range(n):
        cti = _cti(1000 + i)
        if profile == "oscore":
            cnf: Any = OscoreCnf(OscoreInputMaterial(id=cti, ms=secrets.token_bytes(16)))
        else:
            cnf = CoseKeyCnf(symmetric_key(secrets.token_bytes(dtls.PSK_LEN), kid=dtls.mint_kid(secrets.token_bytes)))
        claims = AccessTokenClaims(sub=f"client{i:05d}", aud="rs1", exp=int(now) + TOKEN_LIFETIME, cti=cti,
                                   scope="r_temp", cnf=cnf)
        token = issue_token(claims, key)  # COSE_Encrypt0 for a symmetric key, as the AS does by default
        if profile == "oscore":  # RFC 9203 §4.1: N1 and the client's Recipient ID (distinct per client)
            payload = AuthzInfoRequest(access_token=token, nonce1=secrets.token_bytes(8),
                                       ace_client_recipientid=(0x4000 + i).to_bytes(2, "big")).encode()
            out.append((payload, int(ContentFormat.ACE_CBOR)))
        else:  # RFC 9202 §3.3: the token itself
            out.append((token, int(ContentFormat.CWT)))
    return out


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def _top(after: tracemalloc.Snapshot, before: tracemalloc.Snapshot, n: int) -> list[dict[str, Any]]:
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = after.filter_traces(keep).compare_to(before.filter_traces(keep), "lineno")
    out = []
    for s in sorted((s for s in stats if s.size_diff > 0), key=lambda s: s.size_diff, reverse=True)[:TOP]:
        frame = s.traceback[0]
        name = frame.filename
        name = name[len(_ROOT) + 1:] if name.startswith(_ROOT) else "…/" + "/".join(Path(name).parts[-3:])
        out.append({"site": f"{name}:{frame.lineno}", "bytes": s.size_diff, "per_token": round(s.size_diff / n, 1),
                    "blocks": s.count_diff})
    return out


def _measure(step: Callable[[], None], n: int) -> tuple[int, list[dict[str, Any]]]:
    before_bytes = _traced()
    before = tracemalloc.take_snapshot()
    step()
    after_bytes = _traced()
    after = tracemalloc.take_snapshot()
    return after_bytes - before_bytes, _top(after, before, n)


def _rs(profile: str, n: int, key: Any) -> tuple[ResourceServer, RsServer]:
    offered = (AceProfile.COAP_OSCORE,) if profile == "oscore" else (AceProfile.COAP_DTLS,)
    config = RsConfig(audience="rs1", as_uri="coap://[::1]/token", scope_meaning=SCOPE_MEANING,
                      hint_scope="r_temp", max_tokens=n, max_bytes=n * 4096, profiles=offered)
    core = ResourceServer(config, KeyRing([key]), clock=time.time)
    return core, RsServer(core, bind=("::1", 0), resources=demo_resources())  # never started: no sockets


def _post_all(core: ResourceServer, requests: list[tuple[bytes, int]]) -> None:
    for payload, cf in requests:  # nothing of the outcome is kept here: only what the RS keeps counts
        if not core.authz_info(payload, cf).new:
            raise AssertionError("a token was taken for a retransmission")


def _install_all(core: ResourceServer, server: RsServer) -> None:
    for binding in core.bindings:  # what AuthzInfoResource.render_post does after the core's 2.01
        server.install(binding, ())


def bench_profile(profile: str, n: int) -> dict[str, Any]:
    key = generate_symmetric(16, kid=b"\x01")
    now = time.time()
    # warm up on a throwaway RS: first-use caches (imports, the COSE and CBOR layers) are not per token
    warm_core, warm_server = _rs(profile, WARMUP, key)
    _post_all(warm_core, _requests(profile, WARMUP, key, now))
    _install_all(warm_core, warm_server)
    del warm_core, warm_server
    # a fresh RS (its empty state is not per token), the clients' requests built beforehand
    core, server = _rs(profile, n, key)
    requests = _requests(profile, n, key, now)
    core_bytes, core_top = _measure(lambda: _post_all(core, requests), n)
    assert len(core.bindings) == n, "tokens displaced: the store is too small for the run"
    coap_bytes, coap_top = _measure(lambda: _install_all(core, server), n)
    stored = len(server.index) if profile == "oscore" else len(server.psks)
    assert stored == n, stored
    sizes = [len(p) for p, _ in requests]
    token_sizes = [b.cost - BINDING_OVERHEAD for b in core.bindings]
    per_core, per_coap = core_bytes / n, coap_bytes / n
    return {
        "profile": profile,
        "tokens": n,
        "token_bytes_avg": round(sum(token_sizes) / n, 1),
        "authz_info_payload_bytes_avg": round(sum(sizes) / n, 1),
        "core_bytes_per_token": round(per_core),
        "coap_bytes_per_binding": round(per_coap),
        "total_bytes_per_token": round(per_core + per_coap),
        "target_bytes": TARGET_BYTES,
        "within_target": per_core + per_coap <= TARGET_BYTES,
        "core_within_target": per_core <= TARGET_BYTES,
        "charged_bytes_per_token": round(core.bindings.bytes / n),  # the store's byte budget's estimate
        "top_core": core_top,
        "top_coap": coap_top,
    }


def bench_rs_memory(n: int = 1000) -> dict[str, Any]:
    """RS memory per stored token (core, and the CoAP layer's contexts), both profiles."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(1)
    try:
        results = [bench_profile(p, n) for p in ("oscore", "dtls")]
    finally:
        if started:
            tracemalloc.stop()
    return {"bench": "rs-memory", "tokens": n, "target_bytes_per_token": TARGET_BYTES, "results": results,
            "python": sys.version.split()[0], "cpus": os.cpu_count()}


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="bench_rs.py")
    parser.add_argument("--tokens", type=int, default=1000)
    print(json.dumps(bench_rs_memory(parser.parse_args().tokens), indent=2))
