"""Crashes and restarts lose nothing and never reuse what must be used once.

(a) ``kill -9`` of a real ``ace as --config as.toml`` process (an ``ace init`` deployment with
    four more registered clients) while those clients request tokens concurrently over OSCORE;
    the AS is started again on the same store and port (clients recover through the RFC 8613
    §B.1.2 Echo exchange), requests go on, and it is killed once more. Then: the store passes
    ``PRAGMA integrity_check``, every grant is still there, every token a client received is in
    the token log with its hash, and no cti was issued twice (all received tokens decrypted
    with the RS key and compared with the log).
(b) OSCORE (key, nonce) pairs are never reused across restarts: every AEAD encryption aiocoap
    performs in the process (client→AS, AS→client, client→RS, RS→client) is recorded through
    ``aiocoap.oscore.AES_CCM.encrypt`` while a client runs flows, the RS restarts (a new
    RsServer on the same port, twice), the AS restarts (its persisted contexts with the client)
    and the client restarts (its FileSequenceStore). No (key, nonce) pair may repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiocoap
import pytest
from aiocoap import oscore
from matrix_support import MemorySeqnos, Reply, bounded, send

from ace.authz_server import trl
from ace.cbor import codec
from ace.cli import roles
from ace.cli.config import load_as, load_client, load_rs
from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import init_deployment
from ace.cli.keyfiles import load_key
from ace.client.flow import Done, ResourceRequest
from ace.coap import contexts
from ace.coap.client import ClientRunner
from ace.messages import AccessTokenResponse
from ace.store.base import ClientRecord, Grant
from ace.store.sqlite import SqliteAsStore
from ace.tokens.cwt import KeyRing, verify_token
from ace.tokens.oscore_params import OscoreContextParams

ROOT = Path(__file__).resolve().parents[2]
N_CLIENTS = 4
TOKENS_PER_PHASE = 12  # tokens received before each kill
PHASE_TIMEOUT = 8.0
REQUEST_TIMEOUT = 1.0  # a request the dying AS never answers is given up quickly


# -- (a) kill -9 of the AS process ---------------------------------------------------------------


def start_as_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "ace.cli.main", "as", "--config", str(config)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def kill9(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


class TokenClient:
    """One registered client asking /token in a loop; keeps every token it received."""

    def __init__(self, ctx: Any, as_uri: str) -> None:
        self.ctx, self.as_uri = ctx, as_uri
        self.tokens: list[bytes] = []
        self.failures = 0

    async def ask(self) -> Reply | None:
        msg = aiocoap.Message(code=aiocoap.POST, uri=self.as_uri, payload=codec.dumps({5: "rs1"}), content_format=19)
        try:
            reply = await send(self.ctx, msg, REQUEST_TIMEOUT)
        except (TimeoutError, aiocoap.error.Error, OSError):
            self.failures += 1
            return None
        if reply.code == (2, 1):
            self.tokens.append(AccessTokenResponse.decode(reply.payload).access_token)
        return reply

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if await self.ask() is None:
                await asyncio.sleep(0.05)


def phase_done(clients: list[TokenClient], target: int, proc: subprocess.Popen[bytes]) -> bool:
    return sum(len(c.tokens) for c in clients) >= target or proc.poll() is not None


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.mark.filterwarnings("ignore:DTLS module did not shut down:UserWarning")
async def test_kill9_of_the_as_loses_no_grant_and_repeats_no_cti(tmp_path: Path) -> None:
    started = time.monotonic()
    d = init_deployment(tmp_path / "deployment", as_port=free_port(), rs_port=free_port())
    secrets_of: list[OscoreContextParams] = []
    with SqliteAsStore(d.directory / "as.db") as store:
        for i in range(N_CLIENTS):
            ms, rid = secrets.token_bytes(16), bytes([0x10 + i])
            store.put_client(ClientRecord(client_id=f"crash{i}", oscore=OscoreContextParams(
                master_secret=ms, sender_id=b"\x00", recipient_id=rid)))
            store.add_grant(Grant(client_id=f"crash{i}", audience="rs1", scope="r_temp", default=True))
            secrets_of.append(OscoreContextParams(master_secret=ms, sender_id=rid, recipient_id=b"\x00"))
        grants_before = store.list_grants()
    as_origin = d.as_uri.rsplit("/", 1)[0]
    contexts_: list[Any] = []
    clients: list[TokenClient] = []
    for secret in secrets_of:
        ctx = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
        ctx.client_credentials[as_origin + "/*"] = contexts.from_secret(secret, store=MemorySeqnos(), claims=["as"])
        contexts_.append(ctx)
        clients.append(TokenClient(ctx, d.as_uri))
    log = tmp_path / "as.log"
    proc = start_as_process(d.as_config, log)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        tasks = [asyncio.create_task(c.run(stop)) for c in clients]
        for phase in range(2):  # kill -9 mid-stream, restart, kill -9 again
            target = sum(len(c.tokens) for c in clients) + TOKENS_PER_PHASE
            await until(partial(phase_done, clients, target, proc), PHASE_TIMEOUT,
                        f"{TOKENS_PER_PHASE} tokens in phase {phase}")
            assert proc.poll() is None, log.read_text()[-2000:]
            kill9(proc)
            if phase == 0:
                proc = start_as_process(d.as_config, log)
    finally:
        stop.set()
        for t in tasks:
            with contextlib.suppress(Exception):
                await bounded(t, 3 * REQUEST_TIMEOUT)
        for ctx in contexts_:
            await bounded(ctx.shutdown())
        if proc.poll() is None:
            kill9(proc)

    received = [t for c in clients for t in c.tokens]
    assert len(received) >= 2 * TOKENS_PER_PHASE
    assert all(len(c.tokens) > 0 for c in clients)  # every client got through, also after the restart
    rs_keys = KeyRing([load_key(d.directory / "rs1-token.key")])
    ctis = [verify_token(t, rs_keys, audience="rs1", clock=time.time).cti for t in received]
    assert len(set(ctis)) == len(ctis), "a cti was issued twice"
    with SqliteAsStore(d.directory / "as.db") as store:
        assert store.integrity_check()
        assert store.list_grants() == grants_before
        log_entries = {t.cti: t.token_hash for t in store.issued_tokens(1_000_000)}
        next_cti = store.next_cti()
    for cti, token in zip(ctis, received, strict=True):
        assert cti is not None and log_entries.get(cti) == trl.token_hash(token)
    assert max(int.from_bytes(c, "big") for c in log_entries) < next_cti
    assert time.monotonic() - started < 20


# -- (b) no OSCORE (key, nonce) pair twice across restarts ---------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.pairs: list[tuple[bytes, bytes]] = []


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    original = oscore.AES_CCM.encrypt.__func__  # type: ignore[attr-defined]

    def encrypt(cls: Any, plaintext: bytes, aad: bytes, key: bytes, iv: bytes) -> bytes:
        rec.pairs.append((bytes(key), bytes(iv)))
        return original(cls, plaintext, aad, key, iv)  # type: ignore[no-any-return]

    monkeypatch.setattr(oscore.AES_CCM, "encrypt", classmethod(encrypt))
    return rec


async def get_temp(client: ClientRunner, rs_uri: str, times: int = 2) -> None:
    for _ in range(times):
        got = await bounded(client.request(ResourceRequest(method="GET", uri=rs_uri + "/temp")), 20)
        assert isinstance(got, Done) and got.response.code == (2, 5), got


async def test_restarts_never_reuse_an_oscore_key_nonce_pair(tmp_path: Path, recorder: Recorder) -> None:
    d = init_deployment(tmp_path / "deployment", as_port=free_port(), rs_port=free_port())
    rs_cfg = load_rs(d.rs_config)
    as_server = roles.build_as(load_as(d.as_config))
    rs_server = roles.build_rs(rs_cfg)
    client = roles.build_client(load_client(d.client_config))
    await bounded(as_server.start())
    await bounded(rs_server.start())
    await bounded(client.start())
    phases: list[int] = []
    try:
        await get_temp(client, d.rs_uri, 3)
        phases.append(len(recorder.pairs))
        for _ in range(2):  # RS restart: the client's context is gone there, it gets a new token
            await bounded(rs_server.stop())
            rs_server = roles.build_rs(rs_cfg)
            await bounded(rs_server.start())
            await get_temp(client, d.rs_uri, 3)
            phases.append(len(recorder.pairs))
        # AS restart: its context with the client comes back from the store (persisted seqnos)
        await bounded(as_server.stop())
        as_server.store.close()
        as_server = roles.build_as(load_as(d.as_config))
        await bounded(as_server.start())
        client.flow.drop_session(d.rs_uri)  # so the next request needs a new token from the AS
        await get_temp(client, d.rs_uri, 2)
        phases.append(len(recorder.pairs))
        # client restart: its context with the AS comes back from client-state.json
        await bounded(client.stop())
        client = roles.build_client(load_client(d.client_config))
        await bounded(client.start())
        await get_temp(client, d.rs_uri, 2)
        phases.append(len(recorder.pairs))
    finally:
        await bounded(client.stop())
        await bounded(rs_server.stop())
        await bounded(as_server.stop())
        as_server.store.close()
    assert all(b > a for a, b in zip([0, *phases], phases, strict=False)), phases  # every phase encrypted
    keys = {k for k, _ in recorder.pairs}
    assert len(keys) >= 2 + 2 * 4  # client<->AS both ways, and both ways for >= 4 RS sessions
    seen: dict[tuple[bytes, bytes], int] = {}
    repeats = [(i, seen[p]) for i, p in enumerate(recorder.pairs) if seen.setdefault(p, i) != i]
    assert repeats == [], f"(key, nonce) reused at encryptions {repeats[:5]} of {len(recorder.pairs)}"
