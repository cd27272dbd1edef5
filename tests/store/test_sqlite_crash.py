"""SIGKILL the process writing the SQLite store mid-stream: nothing it reported is lost.

A child process opens the store and loops ``next_cti()`` then ``add_grant()``, printing
each cti only after both returned. Once it printed at least ``MIN_VALUES`` it is killed
with SIGKILL (twice, on the same file). On reopen the file passes ``integrity_check``,
every printed cti is below the next ``next_cti()`` (no value is handed out twice) and every
grant whose ``add_grant`` returned is there, with its scope type (text or bytes) kept.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ace.store.sqlite import SqliteAsStore

ROOT = Path(__file__).resolve().parents[2]
MIN_VALUES = 200
TIMEOUT = 30.0
CHILD = """
import sys, time
from ace.store.base import Grant
from ace.store.sqlite import SqliteAsStore

store = SqliteAsStore(sys.argv[1])
deadline = time.monotonic() + 25
for _ in range(200_000):
    if time.monotonic() > deadline:
        break
    cti = store.next_cti()
    scope = f"s{cti}" if cti % 2 else f"s{cti}".encode()
    store.add_grant(Grant(client_id="c", audience="rs", scope=scope))
    print(cti, flush=True)
"""


def expected_scope(cti: int) -> str | bytes:
    return f"s{cti}" if cti % 2 else f"s{cti}".encode()


def run_and_kill(db: Path) -> list[int]:
    """Start the writer, SIGKILL it after ``MIN_VALUES`` lines, return every complete line."""
    return [int(line) for line in run_and_kill_lines(db, CHILD)]


def run_and_kill_lines(db: Path, child: str) -> list[str]:
    """Start ``child`` (a script writing to ``db``), SIGKILL it after ``MIN_VALUES`` lines,
    return every complete line it printed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", child, str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(lines) < MIN_VALUES and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        reader.join(timeout=10)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == -signal.SIGKILL, f"writer ended on its own ({proc.returncode}): {stderr[-2000:]}"
    printed = [line for line in lines if line.endswith("\n")]
    assert len(printed) >= MIN_VALUES, f"only {len(printed)} values before the timeout"
    return printed


def check_after_crash(db: Path, printed: list[int]) -> None:
    with SqliteAsStore(db) as store:
        assert store.integrity_check()
        assert max(printed) < store.next_cti()
        scopes = {g.scope for g in store.grants_for("c", "rs")}
    missing = [cti for cti in printed if expected_scope(cti) not in scopes]
    assert missing == []


def test_sigkill_loses_no_returned_write(tmp_path: Path) -> None:
    db = tmp_path / "as.db"
    seen: list[int] = []
    for _ in range(2):  # the second writer starts from the file the killed one left
        printed = run_and_kill(db)
        assert all(a < b for a, b in itertools.pairwise(printed))
        assert not seen or min(printed) > max(seen)
        check_after_crash(db, printed)
        seen += printed
    assert len(set(seen)) == len(seen)
    assert (db.stat().st_mode & 0o777) == 0o600


COUNTER_CHILD = """
import sys, time
from ace.store.sqlite import SqliteAsStore

store = SqliteAsStore(sys.argv[1])
deadline = time.monotonic() + 25
while time.monotonic() < deadline:
    value = store.next_counter("rs1")
    position = store.revoke_token(value.to_bytes(8, "big"), revoked_at=value, expires_at=None)
    print(value, position, flush=True)
"""


def test_sigkill_never_repeats_a_counter_value(db: Path) -> None:
    """Each line is printed once both writes returned: after the kill, every printed value is
    below the next one handed out, and every printed revocation is listed at its position."""
    seen: list[int] = []
    listed: list[tuple[int, bytes]] = []
    for _ in range(2):  # the second writer starts from the file the killed one left
        lines = [tuple(int(x) for x in line.split()) for line in run_and_kill_lines(db, COUNTER_CHILD)]
        values = [v for v, _ in lines]
        assert values == list(range(values[0], values[0] + len(values)))  # no gaps: no blocks
        assert not seen or values[0] in (seen[-1] + 1, seen[-1] + 2)  # at most one committed, never printed
        with SqliteAsStore(db) as s:
            assert s.integrity_check()
            after = s.next_counter("rs1")
            assert after in (values[-1] + 1, values[-1] + 2)
            trl = s.revoked_since(0, 10**6)
        printed = [(p, v.to_bytes(8, "big")) for v, p in lines]
        assert set(printed) <= set(trl) and all(a < b for a, b in itertools.pairwise(p for p, _ in trl))
        seen += [*values, after]
        listed += printed
    assert len(set(seen)) == len(seen) and len(set(listed)) == len(listed)
