"""Deploying (issue 14): the systemd units of deploy/systemd are hardened and valid, and the wheel
builds, installs into a fresh venv without the dev extras and runs (``ace --version``, ``ace init``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ace.cli.main import build_parser, main
from ace.cli.version import DISTRIBUTION

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
ROLES = {"ace-as.service": "as", "ace-rs.service": "rs"}
HARDENING = {  # key: the value each unit must have (a service user, everything read-only but its state)
    "User": "ace", "StateDirectory": "ace", "WorkingDirectory": "/var/lib/ace", "UMask": "0077",
    "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
    "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "", "PrivateUsers": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
    "LockPersonality": "yes", "SystemCallArchitectures": "native",
    "ExecReload": "/bin/kill -HUP $MAINPID", "KillSignal": "SIGTERM", "RestartPreventExitStatus": "2",
}
BUILD_TIMEOUT = 300.0  # pip wheel / pip install (dependencies from the configured index)
OFFLINE = ("No matching distribution", "Could not find a version", "Failed to establish a new connection",
           "Temporary failure in name resolution", "Network is unreachable")


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and keys (a key may repeat: its values in order)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize("name", sorted(ROLES))
def test_units_are_hardened(name: str) -> None:
    service = unit(name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], (name, key, service.get(key))
    assert service["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    (start,) = service["ExecStart"]
    program, *argv = start.split()
    assert program == "/opt/ace/bin/ace" and argv == [ROLES[name], "--config", f"/etc/ace/{ROLES[name]}.toml"]
    assert build_parser().parse_args(argv).command == ROLES[name]  # what ExecStart runs is our command line
    assert unit(name)["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (Debian: systemd)")
def test_units_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify``, ExecStart pointed at an ace that exists here: no error, and no
    warning about the units (an unknown or misspelt key is only a warning)."""
    ace = shutil.which("ace") or str(Path(sys.executable).with_name("ace"))
    for name in ROLES:
        (tmp_path / name).write_text((UNITS / name).read_text().replace("/opt/ace/bin/ace", ace))
    done = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / n) for n in ROLES)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert not [line for line in done.stderr.splitlines() if any(n in line for n in ROLES)], done.stderr


def test_version_is_the_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ace ({DISTRIBUTION}) ") and out.count("\n") == 1


def _run(argv: list[str | Path], what: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}  # the venv's own ace
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                          check=False, cwd=cwd, env=env)
    if done.returncode != 0 and any(m in done.stderr for m in OFFLINE):
        pytest.skip(f"{what}: the package index cannot be reached ({done.stderr.strip().splitlines()[-1]})")
    assert done.returncode == 0, f"{what}: {done.stderr}"
    return done


def test_wheel_installs_and_runs_without_dev_extras(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy: no build/ left in the tree, and no stale build/ taken into the wheel
    for part in ("ace", "devices"):
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, src / part)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "wheels", src], "pip wheel")
    (wheel,) = (tmp_path / "wheels").glob("ace_oauth_coap-*-py3-none-any.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], "venv")
    _run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], "pip install")

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    shown = _run([venv / "bin" / "ace", "--version"], "ace --version", cwd=tmp_path)
    assert shown.stdout == f"ace ({DISTRIBUTION}) {version}\n"
    init = _run([venv / "bin" / "ace", "init", tmp_path / "d"], "ace init", cwd=tmp_path)
    assert "ace as --config" in init.stdout and (tmp_path / "d" / "as.db").is_file()
    probe = ("import importlib.util as u, ace; print(ace.__file__); "
             "print([m for m in ('pytest', 'hypothesis', 'mypy', 'ruff', 'cwt', 'pycose') if u.find_spec(m)])")
    where, dev = _run([venv / "bin" / "python", "-c", probe], "probe", cwd=tmp_path).stdout.splitlines()
    assert where.startswith(str(venv)) and dev == "[]"  # the installed copy, and no dev extras
