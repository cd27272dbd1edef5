"""``ace as`` / ``ace rs`` as services (issue 14): SIGTERM and SIGINT stop them cleanly (exit 0, one
line) with the sequence numbers and replay floors on disk, a restart goes on above them, and SIGHUP
reloads what is safe to change while running."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ace.cli import roles
from ace.cli.config import load_as, load_oscore_secret, load_rs
from ace.cli.demo_cmd import free_port
from ace.cli.keyfiles import save_key
from ace.cli.service import Service, reload_as, reload_rs
from ace.coap.contexts import secret_fingerprint
from ace.store.sqlite import SqliteAsStore
from ace.tokens.keys import generate_symmetric

ACE = [sys.executable, "-m", "ace.cli.main"]
LINE_TIMEOUT = 20.0  # a server's next stderr line (its start: imports, binding)
STOP_TIMEOUT = 10.0  # a signal to the exit
RUN_TIMEOUT = 30.0  # one `ace client` run
STOPPED = re.compile(r"^ace (as|rs rs1): stopped on SIG(TERM|INT); sequence numbers and replay state are on disk$")


class Running:
    """A server subprocess whose stderr lines are read by a thread (so every wait is bounded)."""

    def __init__(self, role: str, config: Path) -> None:
        self.proc = subprocess.Popen([*ACE, role, "--config", str(config)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, startswith: str) -> str:
        """The next stderr line starting with ``startswith`` (others, e.g. log lines, are skipped)."""
        deadline = time.monotonic() + LINE_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            assert line is not None, f"{self.proc.args} exited (rc {self.proc.wait(STOP_TIMEOUT)})"
            if line.startswith(startswith):
                return line
        raise AssertionError(f"no line {startswith!r} from {self.proc.args} in {LINE_TIMEOUT} s")

    def stop(self, sig: signal.Signals) -> list[str]:
        """Signal it; it must exit 0 within STOP_TIMEOUT. Its remaining stderr lines."""
        self.proc.send_signal(sig)
        assert self.proc.wait(STOP_TIMEOUT) == 0
        rest: list[str] = []
        while (line := self.lines.get(timeout=STOP_TIMEOUT)) is not None:
            rest.append(line)
        return rest

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.communicate(timeout=STOP_TIMEOUT)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[[str, Path], Running]]:
    procs: list[Running] = []

    def start(role: str, config: Path) -> Running:
        procs.append(Running(role, config))
        procs[-1].line(f"ace {role}")  # its banner: listening
        return procs[-1]

    try:
        yield start
    finally:
        for p in procs:
            p.kill()


def ace(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ACE, *argv], capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def deployment(d: Path) -> Path:
    """``ace init``; the RS observes the AS's TRL (its own OSCORE context with the AS, persisted)."""
    init = ace("init", str(d), "--as-port", str(free_port()), "--rs-port", str(free_port()))
    assert init.returncode == 0, init.stderr
    edit(d / "rs.toml", "observe_trl = false", "observe_trl = true ")
    edit(d / "rs.toml", 'profiles = ["coap_oscore", "coap_dtls", "coap_edhoc_oscore"]', 'profiles = ["coap_oscore"]')
    return d


class State:
    """The numbers on disk: the AS's replay floors for the client and the RS, their sender reserves."""

    def __init__(self, d: Path) -> None:
        client = "oscore/" + secret_fingerprint(load_oscore_secret(d / "client-as.oscore.toml"))
        rs = "oscore/" + secret_fingerprint(load_oscore_secret(d / "rs-as.oscore.toml"))
        store = SqliteAsStore(d / "as.db")
        try:
            self.client_floor = self._floor(store, store.get_client("clientA"))
            self.rs_floor = self._floor(store, store.get_rs("rs1"))
        finally:
            store.close()
        self.client_reserved = json.loads((d / "client-state.json").read_text())[client]
        self.rs_reserved = json.loads((d / "rs-state.json").read_text())[rs]

    @staticmethod
    def _floor(store: SqliteAsStore, record: object) -> int:
        secret = getattr(record, "oscore", None)
        assert secret is not None
        return store.load_sequence_number(f"oscore/{secret_fingerprint(secret)}/replay") or 0


def until_rs_observes(d: Path) -> None:
    """The RS's TRL observation reached the AS (the AS raised the RS's replay floor): bounded."""
    deadline = time.monotonic() + LINE_TIMEOUT
    while State(d).rs_floor < 1:
        assert time.monotonic() < deadline, "the RS never observed the AS's TRL"
        time.sleep(0.1)


def get_temp(d: Path) -> None:
    rs_uri = load_rs(d / "rs.toml")
    got = ace("client", "--config", str(d / "client.toml"), "get", f"coap://[::1]:{rs_uri.port}/temp")
    assert got.returncode == 0 and got.stdout.startswith("2.05 "), got.stdout + got.stderr


def test_stop_persists_numbers_and_a_restart_goes_on_above_them(
        tmp_path: Path, started: Callable[[str, Path], Running]) -> None:
    d = deployment(tmp_path / "d")
    as_, rs = started("as", d / "as.toml"), started("rs", d / "rs.toml")
    get_temp(d)
    until_rs_observes(d)
    for server, sig in ((rs, signal.SIGTERM), (as_, signal.SIGTERM)):
        rest = server.stop(sig)
        assert [line for line in rest if STOPPED.match(line)] == [rest[-1]], rest  # one line, the last
    first = State(d)
    # every number the AS accepted is below its floor, and each sender reserved above what it used
    assert 1 <= first.client_floor <= first.client_reserved
    assert 1 <= first.rs_floor <= first.rs_reserved

    as_, rs = started("as", d / "as.toml"), started("rs", d / "rs.toml")
    get_temp(d)  # the AS takes the client's numbers (none replayed), the RS's tokens are new ones
    deadline = time.monotonic() + LINE_TIMEOUT
    while State(d).rs_floor <= first.rs_reserved:  # the RS observes again, above its old reserve
        assert time.monotonic() < deadline, "the restarted RS's TRL observation never reached the AS"
        time.sleep(0.1)
    for server in (rs, as_):
        assert STOPPED.match(server.stop(signal.SIGINT)[-1])
    second = State(d)
    assert second.client_floor > first.client_reserved  # the restarted client began at its reserve
    assert second.rs_floor > first.rs_reserved


def test_sighup_reloads_and_says_what_waits_for_a_restart(
        tmp_path: Path, started: Callable[[str, Path], Running]) -> None:
    d = deployment(tmp_path / "d")
    as_, rs = started("as", d / "as.toml"), started("rs", d / "rs.toml")
    edit(d / "rs.toml", "max_tokens = 64 ", "max_tokens = 32 ")
    rs.proc.send_signal(signal.SIGHUP)
    assert rs.line("ace rs rs1: ") == (f"ace rs rs1: reloaded {d / 'rs.toml'}: token_keys (1), scopes (2), "
                                       "hint_scope; needs a restart: max_tokens")
    as_.proc.send_signal(signal.SIGHUP)
    assert as_.line("ace as: ") == f"ace as: reloaded {d / 'as.toml'}: token policy"
    get_temp(d)  # still serving
    edit(d / "as.toml", "max_live_tokens = 256", "max_live_tokens = 0  ")
    as_.proc.send_signal(signal.SIGHUP)
    said = as_.line("ace as: ")
    assert said.startswith("ace as: reload failed, nothing changed: ") and "max_live_tokens" in said
    get_temp(d)
    for server in (rs, as_):
        assert STOPPED.match(server.stop(signal.SIGTERM)[-1])


def test_rs_reload_takes_a_rotated_token_key(tmp_path: Path) -> None:
    d = deployment(tmp_path / "d")
    cfg = load_rs(d / "rs.toml")
    server = roles.build_rs(cfg)
    try:
        save_key(d / "rs1-token-2.key", generate_symmetric(16, kid=b"\x02"))
        edit(d / "rs.toml", 'token_keys = ["rs1-token.key"]', 'token_keys = ["rs1-token.key", "rs1-token-2.key"]')
        edit(d / "rs.toml", 'r_temp = [["/temp", ["GET"]]]', 'r_temp = [["/temp", ["GET", "PUT"]]]')
        said = reload_rs(server, cfg)
        assert said == f"reloaded {d / 'rs.toml'}: token_keys (2), scopes (2), hint_scope"
        assert [k.kid for k in server.core.keys.keys_for(b"\x02")] == [b"\x02"]
        assert server.core.config.scope_meaning["r_temp"] == [("/temp", 1 | 4)]  # GET, PUT
        (d / "rs1-token-2.key").unlink()  # a config that no longer loads changes nothing
        Service("ace rs rs1", lambda: reload_rs(server, cfg)).reload()
        assert [k.kid for k in server.core.keys.keys_for(b"\x02")] == [b"\x02"]
    finally:
        close = getattr(server.core.fresh.state, "close", None)
        if close is not None:
            close()


def test_as_reload_applies_the_token_policy(tmp_path: Path) -> None:
    d = deployment(tmp_path / "d")
    cfg = load_as(d / "as.toml")
    server = roles.build_as(cfg)
    try:
        edit(d / "as.toml", "max_live_tokens = 256", "max_live_tokens = 3  ")
        edit(d / "as.toml", "port = ", "port = 1")  # a changed port waits for a restart
        assert reload_as(server, cfg) == f"reloaded {d / 'as.toml'}: token policy; needs a restart: port"
        assert server.endpoint.policy.max_live_tokens == 3
    finally:
        server.store.close()
