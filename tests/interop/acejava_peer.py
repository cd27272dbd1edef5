"""Run RISE ace-java (../shared/peers/ace-java) and our CLI roles together in a network namespace.

The pytest process stays where it is: a holder process (``acejava ns sleep …``) owns a fresh
loopback-only network namespace, and every command of a direction (their ``start``/``client``,
our ``ace as|rs|client``) runs inside it through ``nsenter --net``. So each direction has its own
127.0.0.1:5689/5690, nothing of it is reachable from outside, and a leftover cannot collide with
the next direction or with another test run on this machine.

``our_side(dir)`` writes our AS, RS and client with the reference's values (what
``ace init --peer ace-java DIR`` is to write); swap its body for that command when it lands.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PEER_DIR = REPO.parent / "shared" / "peers" / "ace-java"
ACEJAVA = PEER_DIR / "acejava"
AS_URI = "coap://127.0.0.1:5689"
RS_URI = "coap://127.0.0.1:5690"
STEP = 60.0  # seconds any one command may take (their client's whole flow takes 1–3 s)
JARS = ("slf4j-api", "slf4j-log4j12", "log4j-1.2", "bcprov", "mariadb-java-client", "junit4", "hamcrest-core")


class PeerError(RuntimeError):
    """The harness could not set a direction up (not an interop finding: never an expected failure)."""


# --- is the peer usable? ------------------------------------------------------------------------

def peer_problem() -> str | None:
    """Why the present peer cannot run here (None: it can). Absence is the caller's business."""
    for tool in ("java", "mariadbd", "mariadb-install-db", "mariadb", "unshare", "nsenter", "ss"):
        if shutil.which(tool) is None:
            return f"{tool} not found: run `{ACEJAVA} deps` as root"
    missing = [j for j in JARS if not Path(f"/usr/share/java/{j}.jar").exists()]
    if missing:
        return f"/usr/share/java/{{{','.join(missing)}}}.jar missing: run `{ACEJAVA} deps` as root"
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=STEP)
        ns = subprocess.run([str(ACEJAVA), "ns", "true"], capture_output=True, text=True, timeout=STEP)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run java / acejava ns: {exc}"
    if java.returncode != 0:
        return f"`java -version` failed: {java.stderr.strip()[:200]}"
    if ns.returncode != 0:
        return f"`acejava ns` failed (needs root or CAP_SYS_ADMIN): {ns.stderr.strip()[:200]}"
    return None


# --- the namespace and the processes in it ------------------------------------------------------

@dataclass
class Result:
    rc: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"rc={self.rc}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}"


@dataclass
class Namespace:
    """A network namespace held open by ``acejava ns sleep``; commands join it with nsenter."""

    holder: subprocess.Popen[bytes]
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def argv(self, cmd: Sequence[str]) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-n", *cmd]

    def run(self, cmd: Sequence[str], timeout: float = STEP, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> Result:
        """Run to completion; a timeout is a Result with rc -9 (an assertion fails on it, not pytest)."""
        try:
            p = subprocess.run(self.argv(cmd), capture_output=True, text=True, timeout=timeout, cwd=cwd,
                               env=_env(env))
        except subprocess.TimeoutExpired as exc:
            return Result(-9, _text(exc.stdout), _text(exc.stderr) + f"\n[timed out after {timeout} s]")
        return Result(p.returncode, p.stdout, p.stderr)

    def serve(self, cmd: Sequence[str], log: Path, port: int) -> None:
        """Start a server in the background (stopped by ``direction``); return when it listens on UDP port."""
        with log.open("ab") as out:
            self.servers.append(subprocess.Popen(self.argv(cmd), stdout=out, stderr=subprocess.STDOUT, env=_env(),
                                                 start_new_session=True))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.servers[-1].poll() is not None:
                raise PeerError(f"{cmd[:3]} exited {self.servers[-1].returncode}:\n{log.read_text()[-2000:]}")
            if self.run(["ss", "-Hlun", f"sport = :{port}"], timeout=5).out.strip():
                return
            time.sleep(0.1)
        raise PeerError(f"{cmd[:3]} not listening on {port} after 20 s:\n{log.read_text()[-2000:]}")

    def stop_servers(self) -> None:
        for p in self.servers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.servers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        self.servers.clear()


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


def _text(data: bytes | str | None) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")


@contextmanager
def namespace() -> Iterator[Namespace]:
    holder = subprocess.Popen([str(ACEJAVA), "ns", "sleep", "900"], stdin=subprocess.DEVNULL)
    ns = Namespace(holder)
    try:
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10  # `ns` is unshare + `ip link set lo up` + exec sleep
        while not (_comm(holder.pid) == "sleep" and os.readlink(f"/proc/{holder.pid}/ns/net") != own):
            if holder.poll() is not None or time.monotonic() > deadline:
                raise PeerError(f"`acejava ns` did not come up (rc {holder.poll()})")
            time.sleep(0.05)
        yield ns
    finally:
        ns.stop_servers()
        holder.kill()
        holder.wait(10)


def _comm(pid: int) -> str:
    with suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


# --- one direction: their roles and ours --------------------------------------------------------

@dataclass
class Direction:
    ns: Namespace
    dir: Path  # their DIR (acejava start/client/stop)
    ours: Path  # our configs
    profile: str = "oscore"  # ACEJAVA_PROFILE of their roles: oscore or dtls

    @property
    def _their_env(self) -> dict[str, str]:
        return {"ACEJAVA_PROFILE": self.profile}

    def start_theirs(self, *roles: str) -> None:
        r = self.ns.run([str(ACEJAVA), "start", str(self.dir), *roles], timeout=STEP, env=self._their_env)
        if r.rc != 0:
            raise PeerError(f"acejava start {' '.join(roles)} failed ({self.dir}/logs):\n{r}")

    def their_client(self) -> Result:
        """Their OSCORE client's whole flow (token for r_temp rw_config at aud1, then 7 requests)."""
        work = self.dir / "work"
        (work / "src" / "test" / "resources").mkdir(parents=True, exist_ok=True)
        if not (work / "Californium3.properties").exists():  # `start` copies it; without their AS/RS, we do
            shutil.copy(PEER_DIR / "conf" / "Californium3.properties", work)
        return self.ns.run([str(ACEJAVA), "client", str(self.dir)], timeout=STEP, env=self._their_env)

    def ace(self, *args: str, timeout: float = STEP) -> Result:
        return self.ns.run([sys.executable, "-c", "import sys; from ace.cli.main import main; sys.exit(main())",
                            *args], timeout=timeout, cwd=self.ours)

    def client(self, method: str, path: str, payload: str = "", scope: str | None = "r_temp rw_config") -> Result:
        """``ace client`` with our client.toml; ``scope`` None: let the client pick."""
        extra = ["--scope", scope] if scope is not None else []
        args = [*extra, method, f"{RS_URI}{path}"] + ([payload] if payload else [])
        return self.ace("client", "--config", str(self.ours / "client.toml"), *args)

    def post_raw(self, path: str, payload_hex: str) -> str:
        """An unprotected POST (Content-Format ace+cbor) to our RS: its "code payload", or the failure."""
        r = self.ns.run([sys.executable, "-c", POST_RAW, f"{RS_URI}{path}", payload_hex], timeout=STEP)
        return r.out.strip() if r.rc == 0 else f"failed: {r}"

    def variant(self, name: str, new: str, change: tuple[str, str]) -> None:
        """``new`` = config file ``name`` with one line changed (the line must be there)."""
        text = (self.ours / name).read_text()
        if change[0] not in text:
            raise PeerError(f"{name} has no {change[0]!r}")
        _secret(self.ours / new, text.replace(change[0], change[1]).encode())

    def flow_steps(self, config: str, path: str, timeout: float = 3.0) -> Result:
        """Our client's flow for GET ``path`` (config ``config``), each CoAP request bounded by ``timeout``:
        one line per exchange ("step code"), then "result Done|Failed step"."""
        return self.ns.run([sys.executable, "-c", FLOW_STEPS, str(self.ours / config), f"{RS_URI}{path}",
                            str(timeout)], timeout=STEP, cwd=self.ours)

    def serve_ours(self, role: str, config: str = "") -> None:
        config = config or f"{role}.toml"
        port = 5689 if role == "as" else 5690  # as-dtls.toml: DTLS on 5689 (dtls_port), plain CoAP on 5688
        self.ns.serve([sys.executable, "-c", "import sys; from ace.cli.main import main; sys.exit(main())",
                       role, "--config", str(self.ours / config)], self.ours / f"{role}.log", port)


@contextmanager
def direction(tmp: Path, profile: str = "oscore") -> Iterator[Direction]:
    """A fresh namespace, DIR and config directory; everything started in it is stopped on exit.
    ``profile``: their roles' ACEJAVA_PROFILE (oscore or dtls)."""
    theirs, ours = tmp / "acejava", tmp / "ours"
    theirs.mkdir()
    ours.mkdir()
    our_side(ours)
    with namespace() as ns:
        d = Direction(ns, theirs, ours, profile)
        try:
            yield d
        finally:
            ns.stop_servers()
            subprocess.run([str(ACEJAVA), "stop", str(theirs)], capture_output=True, timeout=STEP)
            shutil.rmtree(theirs / "db", ignore_errors=True)  # 115 MB of MariaDB per start


POST_RAW = """
import asyncio, sys
import aiocoap
async def main():
    ctx = await aiocoap.Context.create_client_context()
    try:
        msg = aiocoap.Message(code=aiocoap.POST, uri=sys.argv[1], payload=bytes.fromhex(sys.argv[2]), content_format=19)
        r = await asyncio.wait_for(ctx.request(msg).response, 30)
        print(r.code.dotted, r.payload.hex())
    finally:
        await ctx.shutdown()
asyncio.run(main())
"""


FLOW_STEPS = """
import asyncio, sys
from ace.cli import roles
from ace.cli.config import load_client
from pathlib import Path
from ace.client.flow import ResourceRequest
async def main():
    seen = []
    runner = roles.build_client(load_client(Path(sys.argv[1])), observer=seen.append)
    runner.timeout = float(sys.argv[3])
    await runner.start()
    try:
        got = await runner.request(ResourceRequest(method="GET", uri=sys.argv[2]))
    finally:
        await runner.stop()
    for e in seen:
        print(e.step, "%d.%02d" % e.response.code)
    print("result", type(got).__name__, getattr(got, "step", ""))
asyncio.run(main())
"""


def their_answers(out: str) -> list[tuple[str, str | None]]:
    """(code, content) of each ``Response from the RS`` their client printed, in order."""
    answers: list[tuple[str, str | None]] = []
    for line in out.splitlines():
        if m := re.match(r"Response from the RS : (\d\.\d\d)", line):
            answers.append((m[1], None))
        elif (m := re.match(r"Response content : (.*)", line)) and answers and answers[-1][1] is None:
            answers[-1] = (answers[-1][0], m[1])
    return answers


# --- our side, with the reference's values (what `ace init --peer ace-java DIR` is to write) ----

CLIENT_AS_SECRET = "6162630405060708090a0b0c0d0e0f10"  # clientA <-> AS: client Sender ID 55, AS 00
RS_AS_SECRET = "5152530405060708090a0b0c0d0e0f10"  # rs1 <-> AS: RS Sender ID 77, AS 01
TOKEN_KEY = "a1a2a30405060708090a0b0c0d0e0f10"  # aud1's COSE_Encrypt0 key (AES-CCM-16-64-128)
SCOPES = {  # their text scopes; /helloWorld and /config need the RS resource table
    "r_helloWorld": [("/helloWorld", ["GET"])], "r_temp": [("/temp", ["GET"])],
    "rw_temp": [("/temp", ["GET", "POST"])], "r_config": [("/config", ["GET"])],
    "rw_config": [("/config", ["GET", "POST"])],
}


def our_side(d: Path) -> None:
    """Our AS (+ its store), RS and client in ``d`` as a user gets them: ``ace init --peer ace-java``."""
    p = subprocess.run([sys.executable, "-c", "import sys; from ace.cli.main import main; sys.exit(main())",
                        "init", "--peer", "ace-java", "--host", "127.0.0.1", str(d)], capture_output=True, text=True,
                       timeout=STEP, env=_env())
    if p.returncode != 0:
        raise PeerError(f"ace init --peer ace-java: {p.stderr[-2000:]}")


def write_key(path: Path, key: bytes) -> None:
    """A symmetric COSE_Key file {1: 4 (Symmetric), -1: k} without a kid, as ace-java's token key has none."""
    assert len(key) == 16
    _secret(path, bytes.fromhex("a2010420" + "50") + key)


def _context(path: Path, secret: str, sender: str, recipient: str) -> None:
    _secret(path, (f'master_secret = "{secret}"\nmaster_salt = ""\nsender_id = "{sender}"\n'
                   f'recipient_id = "{recipient}"\nalg = 10\nhkdf = "sha256"\n').encode())


def _toml_list(entries: list[tuple[str, list[str]]]) -> str:
    return "[" + ", ".join(f'["{p}", [{", ".join(chr(34) + m + chr(34) for m in ms)}]]' for p, ms in entries) + "]"


def _secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
