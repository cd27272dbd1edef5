"""ace benchmarks. Every figure comes with a baseline measured in the same run.

``flow``: see bench_flow.py. ``load``: see bench_load.py. ``fleet``: see bench_fleet.py.
``rs``: see bench_rs.py. ``trl``: see bench_trl.py. ``footprint``: see bench_footprint.py.

``tokens``: issue and verify operations/s per algorithm, next to the raw cryptography
operation on the same bytes (the floor any COSE layer pays), and their ratio; and
(``encrypted_pop``, bench_pop.py) signed tokens with the PoP key encrypted to the RS next to Encrypt0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from ace.cbor.labels import Alg, Curve
from ace.cli.stdio import stdout_to_stderr
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token, verify_token
from ace.tokens.keys import CoseKey, symmetric_key


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Operations per second: warm up, then run batches until ``seconds`` have passed."""
    for _ in range(20):
        fn()
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(50):
            fn()
        n += 50
        now = time.perf_counter()
        if now >= deadline or n >= 5_000_000:
            return n / (now - start)


def raw_ops(alg: int, key: CoseKey, data: bytes) -> tuple[Callable[[], object], Callable[[], object]]:
    """The bare cryptography operation (sign/verify, MAC, encrypt/decrypt) on ``data``."""
    if alg == Alg.ES256:
        priv = ec.derive_private_key(int.from_bytes(key.d or b"", "big"), ec.SECP256R1())
        pub, sig = priv.public_key(), priv.sign(data, ec.ECDSA(hashes.SHA256()))
        return (lambda: priv.sign(data, ec.ECDSA(hashes.SHA256())),
                lambda: pub.verify(sig, data, ec.ECDSA(hashes.SHA256())))
    if alg == Alg.EDDSA:
        epriv = ed25519.Ed25519PrivateKey.from_private_bytes(key.d or b"")
        epub, esig = epriv.public_key(), epriv.sign(data)
        return lambda: epriv.sign(data), lambda: epub.verify(esig, data)
    if alg in (Alg.HMAC_256_64, Alg.HMAC_256_256):
        def mac() -> bytes:
            h = hmac.HMAC(key.k or b"", hashes.SHA256())
            h.update(data)
            return h.finalize()
        return mac, mac
    tag = 16 if alg == Alg.AES_CCM_16_128_256 else 8
    ccm, nonce = AESCCM(key.k or b"", tag_length=tag), bytes(13)
    ct = ccm.encrypt(nonce, data, b"")
    return lambda: ccm.encrypt(nonce, data, b""), lambda: ccm.decrypt(nonce, ct, b"")


def bench_tokens(seconds: float) -> dict[str, Any]:
    now = time.time()
    claims = AccessTokenClaims(iss="as", aud="rs1", exp=int(now) + 3600, cti=b"\x00\x00\x00\x01",
                               scope="r_temp rw_config",
                               cnf=OscoreCnf(OscoreInputMaterial(id=b"\x01", ms=os.urandom(16))))
    cases = [
        ("ES256", Kind.SIGN, Alg.ES256, generate(Curve.P_256, kid=b"e")),
        ("EdDSA", Kind.SIGN, Alg.EDDSA, generate(Curve.ED25519, kid=b"d")),
        ("HMAC 256/64", Kind.MAC, Alg.HMAC_256_64, symmetric_key(os.urandom(16), kid=b"m")),
        ("AES-CCM-16-64-128", Kind.AEAD, Alg.AES_CCM_16_64_128, symmetric_key(os.urandom(16), kid=b"a")),
        ("AES-CCM-16-128-256", Kind.AEAD, Alg.AES_CCM_16_128_256, symmetric_key(os.urandom(32), kid=b"b")),
    ]
    results = []
    for name, kind, alg, key in cases:
        verifier = key if key.is_symmetric else key.public()
        ring = KeyRing([verifier])
        token = issue_token(claims, key, kind=kind, alg=alg)
        raw_issue, raw_verify = raw_ops(alg, key, claims.encode())
        issue = rate(lambda k=key, kd=kind, a=alg: issue_token(claims, k, kind=kd, alg=a), seconds)
        verify = rate(lambda t=token, r=ring: verify_token(t, r, audience="rs1", clock=time.time), seconds)
        raw_i, raw_v = rate(raw_issue, seconds), rate(raw_verify, seconds)
        results.append({
            "alg": name, "token_bytes": len(token),
            "issue_ops_s": round(issue), "raw_issue_ops_s": round(raw_i), "issue_ratio": round(issue / raw_i, 3),
            "verify_ops_s": round(verify), "raw_verify_ops_s": round(raw_v),
            "verify_ratio": round(verify / raw_v, 3),
        })
    from bench_pop import bench_encrypted_pop

    return {"bench": "tokens", "seconds_per_figure": seconds, "results": results,
            "encrypted_pop": bench_encrypted_pop(seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench")
    parser.add_argument("what", choices=["tokens", "flow", "load", "fleet", "rs", "trl", "footprint"])
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per figure")
    parser.add_argument("--flows", type=int, default=None,
                        help="full flows: timed one after another (flow, default 50) or all at once (load, 1000)")
    parser.add_argument("--runs", type=int, default=3, help="bench footprint: runs per server (medians)")
    parser.add_argument("--profile", choices=["oscore", "dtls", "edhoc"], default="oscore",
                        help="bench flow: which profile")
    args = parser.parse_args(argv)
    with stdout_to_stderr():  # native code (DTLSSocket) prints to fd 1: keep stdout for the JSON alone
        if args.what == "flow":
            import asyncio

            from bench_flow import bench_flow

            out = asyncio.run(bench_flow(args.seconds, args.flows or 50, args.profile))
        elif args.what == "fleet":
            import asyncio

            from bench_fleet import bench_fleet_async

            out = asyncio.run(bench_fleet_async(flows=args.flows or 300))
        elif args.what == "load":
            import asyncio

            from bench_load import bench_load

            out = asyncio.run(bench_load(args.flows or 1000))
        elif args.what == "trl":
            from bench_trl import bench_trl

            out = bench_trl(args.flows or 20)
        elif args.what == "footprint":
            from bench_footprint import bench_footprint

            out = bench_footprint(max(1, min(args.runs, 20)))
        elif args.what == "rs":
            from bench_rs import bench_rs_memory

            out = bench_rs_memory(args.flows or 1000)
        else:
            out = bench_tokens(args.seconds)
    out["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": sys.platform}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
