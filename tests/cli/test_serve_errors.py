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


@pytest.mark.parametrize(("entry", "message"), [
    ('handler = "no_such_module_here:f"', "cannot import 'no_such_module_here' (ModuleNotFoundError"),
    ('handler = "rs_table_handlers:missing"', "module 'rs_table_handlers' has no 'missing'"),
    ('handler = "rs_table_handlers:not_async"', "not an async callable (request, binding) -> response"),
    ('handler = "rs_table_handlers:broken"', "cannot import 'rs_table_handlers' (ZeroDivisionError"),
    ('file = "nowhere.txt"', "file '"),
])
def test_unusable_resource_is_one_line(tmp_path: Path, entry: str, message: str) -> None:
    """A handler next to rs.toml that cannot be used, or a missing file: one line, exit 2, no traceback."""
    d = init_deployment(tmp_path / "d", as_port=1, rs_port=2)
    module = "1 / 0\n" if "broken" in entry else "not_async = print\n"
    name = "rs_table_handlers"
    (d.directory / f"{name}.py").write_text(module)
    with d.rs_config.open("a") as f:
        f.write(f'\n[[rs.resources]]\npath = "/x"\n{entry}\n')
    out = serve("rs", d.rs_config)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.splitlines()) == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("ace: error: ") and message in out.stderr


def test_handler_next_to_rs_toml(tmp_path: Path) -> None:
    """``handler = "module:attr"`` finds a module in rs.toml's directory."""
    from ace.cli import roles
    from ace.cli.config import load_rs

    d = init_deployment(tmp_path / "d", as_port=1, rs_port=2)
    (d.directory / "rs_local_handlers.py").write_text("async def hello(request, binding):\n    return None\n")
    with d.rs_config.open("a") as f:
        f.write('\n[[rs.resources]]\npath = "/hello"\nmethods = ["GET", "DELETE"]\n'
                'handler = "rs_local_handlers:hello"\n')
    server = roles.build_rs(load_rs(d.rs_config))
    try:
        assert set(server.resources["/hello"]) == {"GET", "DELETE"}
    finally:
        close = getattr(server.core.fresh.state, "close", None)  # built, never started: its state file
        if close is not None:
            close()
