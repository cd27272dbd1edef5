"""``ace as`` / ``ace rs`` on a port in use: one line on stderr, exit 3, no traceback (aiocoap sets
SO_REUSEPORT, so without the probe a second server would silently share the port)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ace.cli.init_cmd import init_deployment, init_peer_deployment

ACE = [sys.executable, "-m", "ace.cli.main"]
EXIT_BIND = 3


def held(family: socket.AddressFamily, host: str, *, reuseport: bool = False) -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    if reuseport:  # as aiocoap binds: a second SO_REUSEPORT bind would succeed and share the port
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, 0))
    return s


def serve(role: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ACE, role, "--config", str(config)], capture_output=True, text=True, timeout=30,
                          check=False)


@pytest.mark.parametrize("role", ["as", "rs"])
@pytest.mark.parametrize("reuseport", [False, True])
def test_port_in_use_ipv6(tmp_path: Path, role: str, reuseport: bool) -> None:
    with held(socket.AF_INET6, "::1", reuseport=reuseport) as s:
        port = s.getsockname()[1]
        d = init_deployment(tmp_path / "d", as_port=port, rs_port=port)
        out = serve(role, d.as_config if role == "as" else d.rs_config)
    assert out.returncode == EXIT_BIND, out.stderr
    assert out.stderr.splitlines() == [f"ace: error: cannot listen on UDP [::1]:{port}: is in use "
                                       "(another ace as/rs or peer?)"]


def test_port_in_use_ipv4_peer_rs(tmp_path: Path) -> None:
    with held(socket.AF_INET, "127.0.0.1", reuseport=True) as s:
        port = s.getsockname()[1]
        d = init_peer_deployment(tmp_path / "d", "ace-java", as_port=port + 1 if port < 65535 else 1, rs_port=port)
        out = serve("rs", d.rs_config)
    assert out.returncode == EXIT_BIND
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1
    assert f"127.0.0.1:{port}: is in use" in out.stderr


def test_dtls_port_plus_one_in_use(tmp_path: Path) -> None:
    """The RS of plain ``ace init`` offers coap_dtls, which listens on port + 1."""
    with held(socket.AF_INET6, "::1") as s:
        port = s.getsockname()[1]
        d = init_deployment(tmp_path / "d", as_port=port, rs_port=port - 1)
        out = serve("rs", d.rs_config)
    assert out.returncode == EXIT_BIND
    assert out.stderr.splitlines() == [f"ace: error: cannot listen on UDP [::1]:{port}: is in use "
                                       "(another ace as/rs or peer?)"]
