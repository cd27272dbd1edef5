"""``scripts/bench footprint``: what ``ace rs`` costs a small board, next to a bare aiocoap server.

Each server is a real process on loopback, from configs ``ace init`` wrote in a temp dir:
``ace rs`` offering OSCORE only, and offering all three profiles (OSCORE, DTLS on port + 1,
EDHOC). The floor, measured in the same run, is a bare aiocoap server that loads only the
OSCORE and UDP transports (one empty resource); aiocoap's default server context (every
transport) is shown too. For each:

- ``cold_start_s``: from just before the process is started until the first CoAP answer on its
  port (a CON GET sent every few ms from a plain UDP socket; any answer counts);
- ``cpu_to_first_answer_s``: the CPU time the process had used when that answer came
  (/proc/PID/schedstat): the start's work, steadier than the wall clock on a shared machine;
- ``rss_idle_mib``: VmRSS (/proc/PID/status) once it has answered, after a short settle;
- ``rss_1_token_mib``, ``rss_100_tokens_mib`` (RSs only): VmRSS after the first token and after
  100, each for a distinct client registered at the AS, issued by the AS core
  (``TokenEndpoint`` on the init'ed as.db, in-process) and POSTed to /authz-info (RFC 9203 §4.1:
  with nonce1 and a Recipient ID); every POST must get 2.01. The RS's ``max_tokens`` is raised
  to 128 so none is displaced. The first token pays one-time costs (the crypto wheel's shared
  library paged in on first use, first-call caches); the next 99 show the cost per token;
- ``rss_one_exchange_mib`` (the ``bare_aiocoap_oscore_after_one_exchange`` floor only): the bare
  OSCORE+UDP server given one OSCORE security context (aiocoap's FilesystemSecurityContext in a
  temp dir), VmRSS after it answered one OSCORE-protected request: what any OSCORE server on
  this stack pays for its first exchange, which the token-less floor never makes.

Medians of ``runs`` runs per server; each process is stopped (SIGTERM, then SIGKILL) before
the next starts. Targets (issue 14) for the OSCORE-only RS: idle within 2.5 MiB of the bare
server, at most +1.5 MiB for 100 tokens (RSS after 100 tokens minus idle), cold start at most
1.3x the bare server's. Next to the target figures, ``targets`` splits the 100 tokens' growth
into ``first_token_mib`` (one-time) and ``per_token_kib`` ((RSS100 - RSS1) / 99), and shows the
floor's first OSCORE exchange (``bare_first_oscore_exchange_mib``); the targets are unchanged.
"""

from __future__ import annotations

import asyncio
import compileall
import gc
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKENS = 100
IDLE_TARGET_MIB, TOKENS_TARGET_MIB, COLD_TARGET_RATIO = 2.5, 1.5, 1.3
START_TIMEOUT = 20.0  # seconds a server may take to answer its first request
POLL = 0.003  # seconds between probes while waiting for the first answer
SETTLE = 0.3  # seconds after the first answer before reading the idle RSS
HOST = "::1"

BARE = """
import asyncio, sys
import aiocoap, aiocoap.resource
from aiocoap.credentials import CredentialsMap
async def main():
    site = aiocoap.resource.Site()
    site.add_resource(["x"], aiocoap.resource.Resource())
    transports = None if sys.argv[2] == "default" else ["oscore", "udp6"]
    credentials = CredentialsMap()
    if len(sys.argv) > 3:  # one OSCORE security context, loaded from its directory; the site answers OSCORE
        from aiocoap.oscore import FilesystemSecurityContext
        from aiocoap.oscore_sitewrapper import OscoreSiteWrapper
        credentials[":client"] = FilesystemSecurityContext(sys.argv[3])
        site = OscoreSiteWrapper(site, credentials)
    await aiocoap.Context.create_server_context(site, bind=("::1", int(sys.argv[1])),
                                                transports=transports, server_credentials=credentials)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def _free_port() -> int:
    """A UDP port free on loopback whose successor (DTLS: port + 1) is free too."""
    for _ in range(50):
        with closing(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port < 65535 and _udp_free(port + 1):
            return port
    raise RuntimeError("no free UDP port pair on loopback")


def _udp_free(port: int) -> bool:
    with closing(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def rss_mib(pid: int) -> float:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    if match is None:
        raise RuntimeError(f"no VmRSS for pid {pid}")
    return int(match.group(1)) / 1024


def cpu_s(pid: int) -> float:
    """The seconds PID has run on a CPU (/proc/PID/schedstat, in ns): its work, whatever else the machine runs."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def _probe(port: int, deadline: float, proc: subprocess.Popen[bytes]) -> float:
    """Send CON GET /x every POLL s until any CoAP answer comes back; the time it came."""
    with closing(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)) as s:
        s.settimeout(POLL)
        mid = 0
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} before answering")
            mid = (mid + 1) & 0xFFFF
            s.sendto(bytes([0x40, 0x01]) + mid.to_bytes(2, "big") + b"\xb1x", (HOST, port))
            try:
                s.recv(1500)
            except (TimeoutError, ConnectionRefusedError):
                continue
            return time.perf_counter()
    raise RuntimeError(f"no answer on port {port} within {START_TIMEOUT} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _run_server(argv: list[str], port: int, log: Path, tokens: list[bytes] | None,
                oscore_client: Path | None = None) -> dict[str, float]:
    """Start one server, time its first answer, read its RSS (and after the first token and all of
    them, or after one OSCORE exchange), stop it."""
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=_env())
        try:
            answered = _probe(port, start + START_TIMEOUT, proc)
            cpu = cpu_s(proc.pid)
            time.sleep(SETTLE)
            figures = {"cold_start_s": answered - start, "cpu_to_first_answer_s": cpu,
                       "rss_idle_mib": rss_mib(proc.pid)}
            if tokens is not None:
                for key, batch in (("rss_1_token_mib", tokens[:1]), ("rss_100_tokens_mib", tokens[1:])):
                    asyncio.run(_post_tokens(port, batch))
                    time.sleep(SETTLE)
                    figures[key] = rss_mib(proc.pid)
            if oscore_client is not None:
                asyncio.run(_oscore_get(port, oscore_client))
                time.sleep(SETTLE)
                figures["rss_one_exchange_mib"] = rss_mib(proc.pid)
            return figures
        finally:
            _stop(proc)


def _oscore_pair(directory: Path) -> tuple[Path, Path]:
    """Two FilesystemSecurityContext directories (server, client) sharing a fresh master secret."""
    import json

    secret, pair = secrets.token_hex(16), []
    for name, sender, recipient in (("server", "01", "02"), ("client", "02", "01")):
        d = directory / f"oscore-{name}"
        d.mkdir(parents=True, exist_ok=True)
        for stale in ("sequence.json", "lock"):
            (d / stale).unlink(missing_ok=True)
        (d / "secret.json").write_text(json.dumps({"sender-id_hex": sender, "recipient-id_hex": recipient,
                                                   "secret_hex": secret}))
        pair.append(d)
    return pair[0], pair[1]


async def _oscore_get(port: int, client_dir: Path) -> None:
    """One OSCORE-protected GET /x (RFC 8613 §8); the answer must come back protected."""
    import aiocoap
    from aiocoap.credentials import CredentialsMap
    from aiocoap.oscore import FilesystemSecurityContext

    uri = f"coap://[{HOST}]:{port}/x"
    credentials = CredentialsMap()
    credentials[f"coap://[{HOST}]:{port}/*"] = FilesystemSecurityContext(str(client_dir))
    ctx = await aiocoap.Context.create_client_context(transports=["oscore", "udp6"])
    ctx.client_credentials = credentials
    try:
        answer = await asyncio.wait_for(ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri)).response, 10)
        if not answer.code.is_response():  # an unprotected answer raised in the OSCORE transport already
            raise RuntimeError(f"GET {uri} answered {answer}")
        del answer  # its remote holds the security context
    finally:
        await ctx.shutdown()
        del ctx, credentials
        gc.collect()  # the context persists its sequence number now, while its directory exists


async def _post_tokens(port: int, payloads: list[bytes]) -> None:
    import aiocoap

    from ace.cbor.labels import ContentFormat

    ctx = await aiocoap.Context.create_client_context(transports=["udp6"])
    try:
        for payload in payloads:
            msg = aiocoap.Message(code=aiocoap.POST, uri=f"coap://[{HOST}]:{port}/authz-info", payload=payload,
                                  content_format=int(ContentFormat.ACE_CBOR))
            answer = await asyncio.wait_for(ctx.request(msg).response, 10)
            if answer.code != aiocoap.CREATED:
                raise RuntimeError(f"POST /authz-info answered {answer.code}: {answer.payload!r}")
    finally:
        await ctx.shutdown()


def _deployment(directory: Path, rs_port: int) -> Path:
    from ace.cli.init_cmd import init_deployment

    d = init_deployment(directory, host=HOST, as_port=_free_port(), rs_port=rs_port)
    text = d.rs_config.read_text()
    text = re.sub(r"^max_tokens = \d+", "max_tokens = 128", text, flags=re.M)
    text = re.sub(r"^max_bytes = \d+", "max_bytes = 327680", text, flags=re.M)
    d.rs_config.write_text(text)
    return d.rs_config


def _with_profiles(rs_config: Path, name: str, profiles: str) -> Path:
    out = rs_config.with_name(f"rs-{name}.toml")
    text = re.sub(r"^profiles = .*$", f"profiles = [{profiles}]", rs_config.read_text(), flags=re.M)
    out.write_text(text)
    out.chmod(0o600)
    return out


def _tokens(directory: Path, n: int, tag: str) -> list[bytes]:
    """N POST /authz-info payloads: tokens the AS core issues to N distinct clients (OSCORE)."""
    from ace.authz_server.token import TokenEndpoint
    from ace.cbor.labels import AceProfile, ContentFormat
    from ace.messages import AccessTokenRequest, AuthzInfoRequest
    from ace.store.base import ClientRecord, Grant
    from ace.store.sqlite import SqliteAsStore

    out = []
    with SqliteAsStore(directory / "as.db") as store:
        endpoint = TokenEndpoint(store, clock=time.time)
        for i in range(n):
            client = ClientRecord(client_id=f"{tag}-board{i:03d}", profiles=(int(AceProfile.COAP_OSCORE),))
            store.put_client(client)
            store.add_grant(Grant(client_id=client.client_id, audience="rs1", scope="r_temp", default=True))
            request = AccessTokenRequest(audience="rs1", scope="r_temp").encode()
            token = endpoint.issue(request, client, int(ContentFormat.ACE_CBOR)).response.access_token
            out.append(AuthzInfoRequest(access_token=token, nonce1=secrets.token_bytes(8),
                                        ace_client_recipientid=(0x4000 + i).to_bytes(2, "big")).encode())
    return out


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}


def bench_footprint(runs: int = 3) -> dict[str, Any]:
    # an installed wheel has its bytecode (pip compiles on install), as aiocoap here has: measure ace the same
    # way, not compiling every module on each start (PYTHONDONTWRITEBYTECODE may be set)
    compileall.compile_dir(str(ROOT / "ace"), quiet=1)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ace-footprint-") as tmp:
        base = Path(tmp)
        rs_port = _free_port()
        rs_all = _deployment(base / "deploy", rs_port)
        rs_oscore = _with_profiles(rs_all, "oscore", '"coap_oscore"')
        ace = [sys.executable, "-c", "import sys; from ace.cli.main import main; sys.exit(main())"]
        bare = [sys.executable, "-c", BARE, str(rs_port)]
        servers: dict[str, tuple[list[str], bool]] = {
            "bare_aiocoap_oscore_udp": ([*bare, "oscore"], False),
            "bare_aiocoap_oscore_after_one_exchange": ([*bare, "oscore", str(base / "oscore-server")], False),
            "bare_aiocoap_default": ([*bare, "default"], False),
            "ace_rs_oscore": ([*ace, "rs", "--config", str(rs_oscore)], True),
            "ace_rs_all_profiles": ([*ace, "rs", "--config", str(rs_all)], True),
        }
        per: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        names = list(servers)
        for i in range(runs):  # interleaved, each run in another order: a busy spell weighs on every server alike
            for name in names[i % len(names):] + names[:i % len(names)]:
                argv, with_tokens = servers[name]
                state = base / "deploy" / "rs-state.json"
                state.unlink(missing_ok=True)  # each run starts the RS afresh
                tokens = _tokens(base / "deploy", TOKENS, f"{name}-{i}") if with_tokens else None
                client = _oscore_pair(base)[1] if name.endswith("_one_exchange") else None
                per[name].append(_run_server(argv, rs_port, base / f"{name}.log", tokens, client))
        results = {name: _median(r) for name, r in per.items()}
    return {"bench": "footprint", "runs": runs, "tokens": TOKENS, "bytecode": "compiled, as installed",
            "results": results, "targets": _against_targets(results)}


def _against_targets(r: dict[str, dict[str, float]]) -> dict[str, Any]:
    bare, rs = r["bare_aiocoap_oscore_udp"], r["ace_rs_oscore"]
    idle = rs["rss_idle_mib"] - bare["rss_idle_mib"]
    tokens = rs["rss_100_tokens_mib"] - rs["rss_idle_mib"]
    cold = rs["cold_start_s"] / bare["cold_start_s"]
    one = r["bare_aiocoap_oscore_after_one_exchange"]
    return {
        "oscore_rs_idle_over_bare_mib": round(idle, 2), "idle_target_mib": IDLE_TARGET_MIB,
        "idle_met": idle <= IDLE_TARGET_MIB,
        "oscore_rs_100_tokens_over_idle_mib": round(tokens, 2), "tokens_target_mib": TOKENS_TARGET_MIB,
        "tokens_met": tokens <= TOKENS_TARGET_MIB,
        "oscore_rs_first_token_mib": round(rs["rss_1_token_mib"] - rs["rss_idle_mib"], 2),
        "oscore_rs_per_token_kib": round((rs["rss_100_tokens_mib"] - rs["rss_1_token_mib"]) * 1024 / (TOKENS - 1), 1),
        "bare_first_oscore_exchange_mib": round(one["rss_one_exchange_mib"] - one["rss_idle_mib"], 2),
        "oscore_rs_idle_over_bare_after_one_exchange_mib": round(rs["rss_idle_mib"] - one["rss_one_exchange_mib"], 2),
        "oscore_rs_cold_start_ratio": round(cold, 2), "cold_start_target_ratio": COLD_TARGET_RATIO,
        "cold_start_met": cold <= COLD_TARGET_RATIO,
        "oscore_rs_cpu_to_first_answer_ratio": round(rs["cpu_to_first_answer_s"] / bare["cpu_to_first_answer_s"], 2),
        "all_profiles_rs_idle_over_bare_mib": round(r["ace_rs_all_profiles"]["rss_idle_mib"] - bare["rss_idle_mib"], 2),
        "all_profiles_rs_cold_start_ratio": round(r["ace_rs_all_profiles"]["cold_start_s"] / bare["cold_start_s"], 2),
    }
