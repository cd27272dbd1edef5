"""``ace as`` / ``ace rs`` say in one line on stderr, without -v, what listens where (issue 12),
and tinydtls's noise stays off the terminal at default verbosity."""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from DTLSSocket import dtls as tinydtls

from ace import redact
from ace.cli.init_cmd import init_deployment
from ace.coap import dtls, dtls_flights
from ace.profiles import dtls as dtls_profile
from ace.profiles import edhoc as edhoc_profile

ACE = [sys.executable, "-m", "ace.cli.main"]
START_TIMEOUT = 20.0


def free_ports(n: int) -> list[int]:
    """n free UDP ports on ::1, each with port + 1 free too (DTLS)."""
    found: list[int] = []
    for _ in range(100):
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET6,
                                                                                    socket.SOCK_DGRAM) as b:
            a.bind(("::1", 0))
            port = a.getsockname()[1]
            if port >= 65535 or any(abs(port - p) < 2 for p in found):
                continue
            try:
                b.bind(("::1", port + 1))
            except OSError:
                continue
            found.append(port)
        if len(found) == n:
            return found
    raise OSError("no free port pairs")


def first_stderr_line(role: str, config: Path) -> tuple[str, str]:
    """Start the server, read its first stderr line (bounded), stop it; (line, the rest)."""
    proc = subprocess.Popen([*ACE, role, "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stderr is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stderr, selectors.EVENT_READ)
            ready = sel.select(START_TIMEOUT)
        line = proc.stderr.readline().rstrip("\n") if ready else ""
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, rest = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, rest = proc.communicate()
    assert proc.returncode == 0, rest
    assert out == ""  # stdout stays for data
    return line, rest


def test_as_says_where_it_listens(tmp_path: Path) -> None:
    as_port, rs_port = free_ports(2)
    d = init_deployment(tmp_path / "d", as_port=as_port, rs_port=rs_port)
    line, rest = first_stderr_line("as", d.as_config)
    assert line.startswith(f"ace as: listening on coap [::1]:{as_port}; clients over oscore; 1 registered; ")
    assert f"store {tmp_path / 'd'}" in line and f"config {d.as_config}" in line
    assert "Traceback" not in rest


def test_rs_says_where_it_listens_with_dtls(tmp_path: Path) -> None:
    as_port, rs_port = free_ports(2)
    d = init_deployment(tmp_path / "d", as_port=as_port, rs_port=rs_port)
    line, rest = first_stderr_line("rs", d.rs_config)
    assert line.startswith(f"ace rs rs1: listening on coap [::1]:{rs_port}, coaps [::1]:{rs_port + 1}; "
                           "profiles oscore, dtls, edhoc; AS coap://[::1]:")
    assert line.endswith(f"config {d.rs_config}")
    assert rest == "ace rs rs1: stopped on SIGTERM; sequence numbers and replay state are on disk\n"  # and no noise


def test_closing_a_gone_session_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """DTLSSocket print()s "Error in close: -1" when the session is unknown to tinydtls."""
    socket_ = tinydtls.DTLS(read=lambda *a: 0, write=lambda *a: 0, event=lambda *a: 0, pskId=b"x",
                            pskStore={b"x": b"y"})
    injected: list[Exception] = []
    connection = SimpleNamespace(_psk_store=SimpleNamespace(_claims=b"label"), _dtls_socket=socket_,
                                 _dtls_session=tinydtls.Session("::1", 1234), _inject_error=injected.append)
    dtls._drop(connection, "test")
    assert capsys.readouterr() == ("", "") and len(injected) == 1


def test_unhandled_alerts_are_debug_lines(caplog: pytest.LogCaptureFixture) -> None:
    dtls_flights.quiet_alerts()
    logger = logging.getLogger("coap-server")
    with caplog.at_level(logging.WARNING):
        logger.warning("Unhandled alert level %d code %d", 1, 0)
        logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="coap-server"):
        logger.warning("Unhandled alert level %d code %d", 1, 0)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "DTLS alert from a peer: close_notify (level 1)")]


def test_channels_are_logged_readably() -> None:
    assert redact.channel(dtls_profile.label_for(b"client-7")) == "DTLS psk_identity 'client-7'"
    assert redact.channel(dtls_profile.label_for(b"\x00\x01")) == "DTLS psk_identity h'0001'"
    assert redact.channel(edhoc_profile.LABEL_PREFIX + b"\x07") == "EDHOC kid h'07'"
    assert redact.channel(b"\x01") == "OSCORE id h'01'"
