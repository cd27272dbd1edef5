"""``ace fleet``: an AS, N simulated constrained nodes and M clients on loopback, for a while.

Runs ``devices.fleet.run_fleet`` (every client picks a node and an action, permitted or
not by its role, until the duration passes; optional packet loss on the clients' links to
the nodes), prints a summary, and writes the full report as JSON (``--json FILE``, or ``-``:
stdout, the summary then on stderr) and a plot of latency and success over time (``--plot``,
needs matplotlib: the 'plot' extra, ``pip install 'ace-oauth-coap[plot]'``). Exit status 0 only
when every permitted action completed and every forbidden one was refused 4.03/4.05.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from ace.cli.stdio import UsageError, error_line, os_error_text, stdout_to_stderr
from ace.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser("fleet", help="simulate N constrained nodes and M clients on loopback")
    p.add_argument("--devices", type=int, default=5, help="simulated nodes (default 5)")
    p.add_argument("--clients", type=int, default=5, help="clients (even: operators, odd: readers)")
    p.add_argument("--profile", choices=("oscore", "dtls"), default="oscore")
    p.add_argument("--loss", type=float, default=0.0, help="packet loss on client-node links, 0..1")
    p.add_argument("--duration", type=float, default=5.0, help="seconds the clients keep acting")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="write the full report here ('-': stdout, the summary then on stderr)")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="plot latency and success over time")
    p.set_defaults(func=cmd_fleet)


def _check(args: argparse.Namespace) -> None:
    if not 1 <= args.devices <= 5000 or not 1 <= args.clients <= 1000:
        raise ConfigError("--devices must be 1..5000 and --clients 1..1000")
    if not 0.0 <= args.loss < 1.0:
        raise ConfigError("--loss must be in [0, 1)")
    if not 0.0 < args.duration <= 3600:
        raise ConfigError("--duration must be in (0, 3600] seconds")


def _pyplot() -> Any:
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")  # files only, no display
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        raise ConfigError("fleet: --plot needs matplotlib: pip install 'ace-oauth-coap[plot]' "
                          "(or pip install matplotlib)") from None
    return plt


def plot(report: dict[str, Any], path: Path) -> None:
    """Latency per action (dots by outcome) and the success ratio per second, over time."""
    plt = _pyplot()
    timeline = report["timeline"]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    for kind, colour in (("completed", "tab:green"), ("refused", "tab:blue"), ("failed", "tab:red")):
        pts = [(t, ms) for t, ms, k in timeline if k == kind]
        if pts:
            top.scatter([p[0] for p in pts], [p[1] for p in pts], s=6, c=colour, label=kind)
    top.set_yscale("log")
    top.set_ylabel("latency (ms)")
    top.legend(loc="upper right")
    seconds: dict[int, list[bool]] = {}
    for t, _, kind in timeline:
        seconds.setdefault(int(t), []).append(kind != "failed")
    xs = sorted(seconds)
    bottom.plot([x + 0.5 for x in xs], [sum(seconds[x]) / len(seconds[x]) for x in xs], marker="o")
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("as expected, per second")
    bottom.set_xlabel("time (s)")
    fig.suptitle(f"ace fleet: {report['devices']} devices, {report['clients']} clients, {report['profile']}, "
                 f"loss {report['loss']:.0%}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(r: dict[str, Any]) -> str:
    lat, b = r["latency_ms"], r["bytes_per_flow"]
    rt = r["retransmissions"]
    lines = [
        f"ace fleet: {r['devices']} devices, {r['clients']} clients, profile {r['profile']}, loss {r['loss']:.0%}, "
        f"{r['wall_s']} s",
        f"actions {r['actions']} ({r['flows_per_s']}/s): permitted {r['permitted']}, forbidden {r['forbidden']}",
        f"completed {r['completed']}, refused as expected {r['refused_as_expected']}, failed {r['failed']}",
        f"latency ms: all {_fmt(lat['all'])}",
        f"            with token {_fmt(lat['with_token'])}",
        f"            session reused {_fmt(lat['session_reused'])}",
        f"bytes/flow: with token {_fmt(b['with_token'])}; token {_fmt(b['token'])}",
        f"retransmission timers {rt['coap_timer_fires']}, link drops up {rt['link_dropped_up']} "
        f"down {rt['link_dropped_down']}",
    ]
    lines += [f"  failed: {f['client']} {f['action']} on {f['device']} -> {f['code']}" for f in r["failures"][:5]]
    lines.append("result: " + ("OK" if r["ok"] else "FAILED"))
    return "\n".join(lines)


def _fmt(p: dict[str, float]) -> str:
    return " ".join(f"{k} {v}" for k, v in p.items() if k in ("p50", "p90", "p99", "max")) or "-"


def _writable(path: Path) -> None:
    """Open ``path`` for appending (creating it, keeping what it holds): an unwritable one is refused now."""
    try:
        with path.open("a"):
            pass
    except OSError as exc:
        raise UsageError(f"fleet: --json: {os_error_text(exc, 'write')}") from None


def cmd_fleet(args: argparse.Namespace) -> int:
    _check(args)
    if args.plot is not None:
        _pyplot()  # fail before the run, not after it
    to_stdout = args.json is not None and str(args.json) == "-"
    if args.json is not None and not to_stdout:
        _writable(args.json)  # fail before the run, not after it
    from devices.fleet import quiet, run_fleet  # the simulator lives beside ace/, not in it

    with quiet(), stdout_to_stderr() if to_stdout else contextlib.nullcontext():
        report = asyncio.run(run_fleet(args.devices, args.clients, args.profile, args.loss, args.duration,
                                       args.seed)).to_dict()
    print(summary(report), file=sys.stderr if to_stdout else sys.stdout)
    if to_stdout:
        print(json.dumps(report, indent=2))
    elif args.json is not None:
        try:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        except OSError as exc:
            raise UsageError(f"fleet: --json: {os_error_text(exc, 'write')}") from None
    if args.plot is not None:
        plot(report, args.plot)
    if not report["ok"]:
        print(error_line("fleet: some actions did not end as expected (the summary lists them)"), file=sys.stderr)
    return 0 if report["ok"] else 1
