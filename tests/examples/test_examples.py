"""The examples over real sockets on loopback: ``ace init``'s deployment with ``ace as``, the
sensor board and the lock as processes of their own, and the client script against them, once
as a reader (PUT /config refused) and once as a maintainer. Every process is stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ACE = [sys.executable, "-c", "import sys; from ace.cli.main import main; sys.exit(main())"]
SCOPES = 'rw_config = [["/temp", ["GET"]], ["/config", ["GET", "PUT"]]]\nrw_lock = [["/lock", ["GET", "PUT"]]]\n'
STARTUP = 15.0  # seconds a server may take to say it is listening


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return e


def free_ports(n: int) -> list[int]:
    """``n`` free UDP ports, each with port + 1 free too (an RS's DTLS) and none adjacent."""
    ports: list[int] = []
    for _ in range(200):
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
            p = s.getsockname()[1]
        if p < 65000 and all(abs(p - q) > 1 for q in ports):
            ports.append(p)
            if len(ports) == n:
                return ports
    raise RuntimeError("no free ports")


def run(args: list[str], cwd: Path, timeout: float = 30.0) -> str:
    done = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextmanager
def server(args: list[str], cwd: Path, ready: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process that writes ``ready`` to its output (kept in ``log``) once listening; terminated
    and waited for."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP
        while ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{args}: not ready: {log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def lines(out: str, prefix: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(prefix)]


def test_examples_over_loopback(tmp_path: Path) -> None:
    as_port, rs_port, lock_port = free_ports(3)
    run([*ACE, "init", str(tmp_path), "--as-port", str(as_port), "--rs-port", str(rs_port)], ROOT)
    with (tmp_path / "rs.toml").open("a") as f:  # [rs.scopes] is rs.toml's last table
        f.write(SCOPES)
    rs_toml = (tmp_path / "rs.toml").read_text()  # the lock: the same RS on its own port and state
    (tmp_path / "lock.toml").write_text(rs_toml.replace(f"port = {rs_port}\n", f"port = {lock_port}\n", 1)
                                        .replace("rs-state.json", "lock-state.json"))
    (tmp_path / "lock.toml").chmod(0o600)
    run([*ACE, "policy", "--config", "as.toml", "grant", "clientA", "rs1", "r_temp rw_config rw_lock"], tmp_path)
    py = sys.executable
    client = [py, str(EXAMPLES / "client.py"), "--sensor", f"coap://[::1]:{rs_port}",
              "--lock", f"coap://[::1]:{lock_port}", "--count", "2", "--interval", "0.3"]
    logs = {name: tmp_path / f"{name}.log" for name in ("as", "sensor", "lock")}
    with (server([*ACE, "as", "--config", "as.toml"], tmp_path, "listening on", logs["as"]),
          server([py, str(EXAMPLES / "sensor_board.py"), "--interval", "0.2", "--seconds", "60"],
                 tmp_path, "sensor board on", logs["sensor"]) as sensor,
          server([py, str(EXAMPLES / "lock.py"), "--seconds", "60"],
                 tmp_path, "lock on", logs["lock"]) as lock):
        reader = run([*client, "--scope", "r_temp rw_lock"], tmp_path)
        maintainer = run([*client, "--scope", "rw_config rw_lock"], tmp_path)
        for out in (reader, maintainer):
            temp = lines(out, "temp ")
            assert len(temp) == 1 and temp[0].startswith("temp 2.05 ") and float(temp[0].split()[2]) >= 20.0
            assert lines(out, "observe 2.05 "), out
            assert len(lines(out, "notification 2.05 ")) == 2, out
            # RFC 7252 §5.8.3: the same command twice answers the same
            assert lines(out, "lock ") == ["lock locked 2.04 locked", "lock locked 2.04 locked",
                                           "lock unlocked 2.04 unlocked", "lock 2.05 unlocked"], out
        assert lines(reader, "config ") == ["config 4.03"], reader  # a reader may not configure
        assert lines(maintainer, "config ") == ["config 2.04"], maintainer
        stop(sensor)  # SIGTERM: each ends cleanly
        stop(lock)
        assert sensor.returncode == 0 and lock.returncode == 0
    sensor_out, lock_out = logs["sensor"].read_text(), logs["lock"].read_text()
    assert "interval set to 0.3 s by clientA" in sensor_out and "sensor board stopped" in sensor_out
    # the lock moved only when the state changed: unlocked in the first run, locked and unlocked in the second
    assert "lock stopped (unlocked, 3 moves)" in lock_out, lock_out
