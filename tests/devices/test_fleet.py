"""Fleets on ::1: every permitted action completes and every forbidden one is refused
(4.03/4.05, RFC 9200 §5.10.2), with a clean link and with 20 % packet loss."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from ace.cli import fleet_cmd
from ace.client.flow import Done, Failed, Response
from ace.errors import ConfigError
from devices.fleet import CountingTuning, Fleet, FleetReport, PortPool, classify, quiet, run_fleet

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def _check(report: FleetReport) -> dict[str, Any]:
    d = report.to_dict()
    assert d["failures"] == [] and report.ok, d["failures"]
    assert report.permitted > 0 and report.forbidden > 0
    assert d["completed"] == report.permitted
    assert d["refused_as_expected"] == report.forbidden
    json.dumps(d)  # JSON-able as it is
    return d


async def test_small_fleet_completes_what_is_permitted_and_refuses_the_rest() -> None:
    with quiet():
        report = await run_fleet(5, 5, "oscore", 0.0, 2.0, seed=1)
    d = _check(report)
    assert len({o.device for o in report.outcomes}) == 5 and len({o.client for o in report.outcomes}) == 5
    assert d["bytes_per_flow"]["token"]["max"] < 256  # fits the node's message budget with room to spare
    assert d["retransmissions"]["link_dropped_up"] == 0


async def test_lossy_fleet_still_completes_every_permitted_flow() -> None:
    # Plain loss can beat any finite retry budget: at 20 % each way a round trip fails with
    # p = 0.36, and EXCHANGE_TIMEOUT (10 s) ends an exchange after 8 transmissions (backoff from
    # ACK_TIMEOUT 0.05 s), so 0.36**8 ~ 3e-4 per exchange, a few % of runs (traced: every copy
    # of one POST /authz-info or its 2.01 drawn as dropped by the relay; CPU load only shuffles
    # which datagram meets which drop). A run whose only failures are such timeouts gets one
    # more try with another seed; any other failure, or timeouts again, fails the test.
    for seed in (2, 12):
        with quiet():
            report = await run_fleet(5, 5, "oscore", 0.2, 2.0, seed=seed)
        failures = report.to_dict()["failures"]
        if seed == 12 or not failures or any(f["code"] != "5.04" for f in failures):
            break
    d = _check(report)
    rt = d["retransmissions"]
    assert rt["link_dropped_up"] + rt["link_dropped_down"] > 0
    assert rt["coap_timer_fires"] > 0  # the losses were made good by CoAP retransmissions
    assert report.wall_s < 20


async def test_dtls_fleet() -> None:
    with quiet():
        _check(await run_fleet(3, 2, "dtls", 0.0, 1.0, seed=3))


async def test_lossy_dtls_fleet_completes_every_permitted_flow() -> None:
    # Issue 12: at 20 % loss every DTLS action timed out (5.04). tinydtls retransmits a flight
    # after 2, 4, 8 s and its server never sends its final flight again (RFC 6347 §4.2.4), and a
    # Finished ahead of its ChangeCipherSpec broke the session: ace.coap.dtls_flights. What is
    # left is plain CoAP loss, as for OSCORE above (a run whose only failures are 5.04 timeouts
    # gets one more seed).
    for seed in (3, 13):
        with quiet():
            report = await run_fleet(2, 2, "dtls", 0.2, 2.0, seed=seed)
        failures = report.to_dict()["failures"]
        if seed == 13 or not failures or any(f["code"] != "5.04" for f in failures):
            break
    d = _check(report)
    assert d["retransmissions"]["link_dropped_up"] + d["retransmissions"]["link_dropped_down"] > 0
    assert d["latency_ms"]["with_token"]["max"] < 10_000  # no handshake waited out an exchange timeout
    assert report.wall_s < 25


async def test_actions_are_bounded_in_count() -> None:
    with quiet():
        report = await run_fleet(2, 2, "oscore", 0.0, 30.0, seed=4, max_actions=5)
    assert len(report.outcomes) == 10 and report.wall_s < 10


async def test_fleet_stops_everything() -> None:
    with quiet():
        async with Fleet(devices=2, clients=2, loss=0.1, seed=5) as fleet:
            assert len(fleet.targets) == 2 and all(t.links for t in fleet.targets)
    assert fleet.targets == [] and fleet.members == [] and fleet.as_server is None


@pytest.mark.parametrize("kw", [{"devices": 0}, {"clients": 0}, {"loss": 1.0}, {"profile": "edhoc"}])
def test_fleet_arguments_are_checked(kw: dict[str, object]) -> None:
    args: dict[str, object] = {"devices": 1, "clients": 1, **kw}
    with pytest.raises(ValueError):
        Fleet(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("permitted, result, kind", [
    (True, Done(Response((2, 5)), None), "completed"),
    (True, Done(Response((4, 3)), None), "failed"),
    (False, Done(Response((4, 3)), None), "refused"),
    (False, Done(Response((4, 5)), None), "refused"),
    (False, Done(Response((2, 4)), None), "failed"),  # a forbidden action that went through
    (False, Done(Response((4, 1)), None), "failed"),
    (True, Failed("token", "AS refused"), "failed"),
    (False, None, "failed"),  # timed out
])
def test_classify(permitted: bool, result: object, kind: str) -> None:
    assert classify(permitted, result) == kind


def test_counting_tuning_counts_timer_fires() -> None:
    tuning = CountingTuning(ack_timeout=0.01, max_retransmit=3)
    assert tuning.ACK_TIMEOUT == 0.01 and tuning.MAX_RETRANSMIT == 3 and tuning.timer_fires == 1


def test_port_pool_never_repeats_and_keeps_pairs_free() -> None:
    pool = PortPool()
    ports = [pool.take(pair=True) for _ in range(20)]
    taken = [p for port in ports for p in (port, port + 1)]
    assert len(set(taken)) == len(taken)


# -- the command ----------------------------------------------------------------------------

def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    fleet_cmd.register(parser.add_subparsers())
    return parser.parse_args(["fleet", *argv])


def test_fleet_command_prints_a_summary_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fleet.json"
    args = _parse("--devices", "3", "--clients", "2", "--duration", "0.5", "--json", str(out))
    assert args.func(args) == 0
    assert "result: OK" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["failed"] == 0 and report["timeline"]


@pytest.mark.parametrize("argv", [("--loss", "1.5"), ("--devices", "0"), ("--duration", "0")])
def test_fleet_command_checks_its_arguments(argv: tuple[str, ...]) -> None:
    args = _parse(*argv)
    with pytest.raises(ConfigError):
        args.func(args)


@pytest.mark.skipif(HAS_MATPLOTLIB, reason="matplotlib is installed")
def test_plot_without_matplotlib_says_what_to_install(tmp_path: Path) -> None:
    args = _parse("--duration", "0.5", "--plot", str(tmp_path / "f.png"))
    with pytest.raises(ConfigError, match="plot"):
        args.func(args)
    assert not (tmp_path / "f.png").exists()


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="needs matplotlib (the 'plot' extra)")
def test_plot_is_written(tmp_path: Path) -> None:
    png = tmp_path / "f.png"
    args = _parse("--devices", "2", "--clients", "2", "--duration", "0.5", "--plot", str(png))
    assert args.func(args) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
