"""Long-mode endpoint fuzzing: every endpoint group over real loopback sockets, JSON out.

Usage: scripts/fuzz [--cases N] [--endpoint E ...] [--seed S] [--check-every K]
                    [--time-budget SECONDS] [--atheris-runs R]

Per endpoint group a fresh AS + RS pair runs in-process on ::1 and takes N cases (default
10,000) of the strategies in ``tests/robustness/fuzz_support.py`` (the same ones the test
suite runs in short mode): arbitrary bytes and CBOR, and mutated valid messages. Every
answer must be 2.xx or 4.xx, the server must keep serving legitimate requests (checked every
K cases), and no log record may carry a traceback; anything else is a finding. Prints one
JSON document: cases, codes histogram, health checks, seconds and findings per endpoint (and
the atheris run's outcome when atheris is importable). Exit status 1 if there were findings.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "robustness"))

from fuzz_support import ENDPOINTS, Stats, run_endpoint  # noqa: E402

from ace.cli.stdio import stdout_to_stderr  # noqa: E402


def run_atheris(runs: int, timeout: float) -> dict[str, Any]:
    """tests/robustness/atheris_decoders.py for ``runs`` runs in a subprocess (libFuzzer)."""
    if importlib.util.find_spec("atheris") is None:
        return {"skipped": "atheris is not importable"}
    target = ROOT / "tests" / "robustness" / "atheris_decoders.py"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ace-atheris-") as tmp:
        try:
            proc = subprocess.run([sys.executable, str(target), f"-runs={runs}", "-seed=1", f"-artifact_prefix={tmp}/"],
                                  capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            return {"runs": runs, "ok": False, "finding": f"no result within {timeout:.0f} s"}
        crashes = sorted(p.name for p in Path(tmp).iterdir())
        tail = [line for line in proc.stderr.splitlines()
                if (line.startswith("#") and "DONE" in line) or line.startswith(("Done", "==", "INFO: Seed"))][-3:]
        result: dict[str, Any] = {"runs": runs, "ok": proc.returncode == 0 and not crashes,
                                  "seconds": round(time.monotonic() - started, 1), "libfuzzer": tail}
        if not result["ok"]:
            result["finding"] = {"returncode": proc.returncode, "artifacts": crashes,
                                 "stderr_tail": proc.stderr[-3000:]}
            for name in crashes:
                result["finding"]["artifact_hex_" + name] = (Path(tmp) / name).read_bytes()[:2000].hex()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=10_000, help="cases per endpoint group (default 10000)")
    p.add_argument("--endpoint", action="append", choices=sorted(ENDPOINTS),
                   help="only this endpoint group (repeatable; default: all)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--check-every", type=int, default=100, help="a legitimate request every K cases")
    p.add_argument("--time-budget", type=float, default=900.0, help="seconds per endpoint group at most")
    p.add_argument("--atheris-runs", type=int, default=200_000,
                   help="libFuzzer runs over the decoders when atheris is importable (0: skip)")
    args = p.parse_args(argv)

    names = args.endpoint or list(ENDPOINTS)
    results: dict[str, Any] = {}
    started = time.monotonic()
    warnings.filterwarnings("ignore", message="DTLS module did not shut down")

    def progress(stats: Stats) -> None:
        print(f"fuzz: {stats.endpoint}: {stats.cases} cases, {stats.findings_total} findings", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="ace-fuzz-") as tmp, stdout_to_stderr():
        for name in names:
            stats = run_endpoint(Path(tmp) / name, name, cases=args.cases, seed=args.seed,
                                 check_every=args.check_every, time_budget=args.time_budget, progress=progress)
            results[name] = {"what": ENDPOINTS[name].describe, **stats.as_dict()}
            progress(stats)
        atheris = run_atheris(args.atheris_runs, timeout=max(120.0, args.atheris_runs / 200)) \
            if args.atheris_runs > 0 else {"skipped": "--atheris-runs 0"}
    findings = sum(r["findings_total"] for r in results.values()) + (0 if atheris.get("ok", True) else 1)
    doc = {"seed": args.seed, "cases_per_endpoint": {n: r["cases"] for n, r in results.items()},
           "findings_total": findings, "seconds": round(time.monotonic() - started, 1),
           "endpoints": results, "atheris": atheris}
    print(json.dumps(doc, indent=2))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
