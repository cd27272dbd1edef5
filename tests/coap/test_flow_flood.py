"""A flood of valid-looking tokens at POST /authz-info over real loopback sockets (RFC 9200 §6).

/authz-info needs no authentication, so anyone holding tokens for the RS (other registered
clients of the AS, or tokens minted here with the RS's token key) can fill its bounded store.
The store then displaces only bindings that never protected a request: a client whose
binding is in use keeps access throughout, flood POSTs get 2.01 (displacing never-used
bindings) or 5.03 (nothing left to displace), never 5.00, and a new legitimate client still
gets in afterwards. The RS keeps few tokens here (``max_tokens``) so that the flood overflows it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from pathlib import Path

import pytest
from deployment import Flow, ManualSession, store_of
from support import TIMEOUT, Reply, bounded

from ace.cli import roles
from ace.client.flow import ClientConfig, ClientFlow, Done, ResourceRequest
from ace.coap.client import ClientRunner
from ace.messages import AccessTokenRequest, AccessTokenResponse, AuthzInfoRequest
from ace.store.base import ClientRecord, Grant
from ace.store.seqno import FileSequenceStore
from ace.tokens.cnf import OscoreCnf
from ace.tokens.oscore_params import OscoreContextParams

MAX_TOKENS = 8
FLOOD = 5 * MAX_TOKENS  # POSTs, well over what the RS keeps
BATCH = 4  # POSTs in flight at once, beside the legitimate client's request
REUSED = ["resource (protected)"]
FULL = ["resource", "token", "authz-info", "resource (protected)"]
OK_FOR_FLOOD = {(2, 1), (5, 3)}


@pytest.fixture
async def flow(flow: Flow) -> Flow:
    """The shared running deployment (tests/conftest.py), its RS keeping ``MAX_TOKENS`` tokens."""
    await small_store(flow, MAX_TOKENS)
    return flow


async def small_store(flow: Flow, max_tokens: int) -> None:
    """Restart the RS (same port, rs.toml) keeping at most ``max_tokens`` tokens."""
    await bounded(flow.rs_server.stop())
    flow._rs_cfg = dataclasses.replace(flow._rs_cfg, max_tokens=max_tokens)
    flow.rs_server = roles.build_rs(flow._rs_cfg)
    await bounded(flow.rs_server.start())
    assert flow.rs_server.core.config.max_tokens == max_tokens


def req(flow: Flow, method: str = "GET", path: str = "/temp", payload: bytes = b"") -> ResourceRequest:
    return ResourceRequest(method=method, uri=flow.rs_uri + path, payload=payload)


async def registered_client(flow: Flow, tmp_path: Path, client_id: str, sender_id: bytes) -> ClientRunner:
    """A client registered at the AS now (OSCORE context with it, a default r_temp grant), started."""
    ms = secrets.token_bytes(16)
    store = store_of(flow)
    store.put_client(ClientRecord(client_id=client_id, profiles=(2,),
                                  oscore=OscoreContextParams(master_secret=ms, sender_id=b"\x00",
                                                             recipient_id=sender_id)))
    store.add_grant(Grant(client_id=client_id, audience="rs1", scope="r_temp", default=True))
    runner = ClientRunner(ClientFlow(ClientConfig(client_id=client_id, as_uri=flow.d.as_uri), clock=time.time),
                          as_secret=OscoreContextParams(master_secret=ms, sender_id=sender_id, recipient_id=b"\x00"),
                          as_uri=flow.d.as_uri, seqno_store=FileSequenceStore(tmp_path / f"{client_id}.json"),
                          observer=flow.exchanges.append, timeout=TIMEOUT)
    flow._runners.append(runner)
    await bounded(runner.start())
    return runner


async def as_issued_tokens(flow: Flow, runner: ClientRunner, n: int) -> list[AccessTokenResponse]:
    """Tokens the AS issues ``runner``'s client, legitimately, over its OSCORE context."""
    out = []
    for _ in range(n):
        reply = await flow.post_to_as(runner, AccessTokenRequest(audience="rs1", scope="r_temp").encode())
        assert reply.code == (2, 1), reply
        out.append(AccessTokenResponse.decode(reply.payload))
    return out


def flood_payloads(flow: Flow, issued: list[AccessTokenResponse], n: int) -> list[bytes]:
    """``n`` POST /authz-info payloads: AS-issued tokens (each sent with several nonces and
    Recipient IDs: the same token again, with a new N1, supersedes its own never-used binding)
    and tokens minted with the RS's token key (no sub: each its own client)."""
    out = []
    for i in range(n):
        if i % 2 and issued:
            token = issued[(i // 2) % len(issued)].access_token
        else:
            token, _ = flow.token()
        rid = bytes([0x60 + i % 8]) if i % 3 else (0x7000 + i).to_bytes(2, "big")  # 1- and 2-byte IDs
        out.append(AuthzInfoRequest(access_token=token, nonce1=secrets.token_bytes(8),
                                    ace_client_recipientid=rid).encode())
    return out


async def post_all(flow: Flow, payloads: list[bytes]) -> list[Reply]:
    ctx = await flow.plain()
    return list(await bounded(asyncio.gather(*(flow.post_authz_info(ctx, p) for p in payloads)), 2 * TIMEOUT))


def label_of_session(done: Done) -> bytes:
    """The RS's Recipient ID of the client's context: the label of its binding at the RS."""
    assert done.session is not None
    return done.session.context.sender_id  # type: ignore[union-attr]


# -- 1. a flood past max_tokens while a client is using its binding -----------------------------


async def test_flood_never_displaces_a_binding_in_use(flow: Flow, tmp_path: Path) -> None:
    started = time.monotonic()
    legit = await flow.client()
    first = await bounded(legit.request(req(flow)), 4 * TIMEOUT)
    assert isinstance(first, Done) and first.response.code == (2, 5), first
    assert flow.steps() == FULL
    label = label_of_session(first)
    core = flow.rs_server.core

    attackers = [await registered_client(flow, tmp_path, f"mallory{i}", bytes([0x50, i])) for i in range(2)]
    issued = [t for a in attackers for t in await as_issued_tokens(flow, a, 3)]
    assert all(isinstance(t.cnf, OscoreCnf) for t in issued)
    payloads = flood_payloads(flow, issued, FLOOD)

    flow.exchanges.clear()
    codes: list[tuple[int, int]] = []
    for i in range(0, FLOOD, BATCH):  # the legitimate client's requests interleave with the flood
        replies, got = await bounded(asyncio.gather(post_all(flow, payloads[i:i + BATCH]),
                                                    legit.request(req(flow))), 4 * TIMEOUT)
        codes += [r.code for r in replies]
        assert isinstance(got, Done) and got.response.code == (2, 5), (i, got)
        assert got.session is not None and got.session.id == first.session.id  # type: ignore[union-attr]
        assert len(core.bindings) <= MAX_TOKENS
        assert core.bindings.get(label) is not None and core.bindings.used(label)
    assert flow.steps() == REUSED * (FLOOD // BATCH)  # never a new token: access was never lost
    assert set(codes) <= OK_FOR_FLOOD, codes
    assert (5, 0) not in codes
    assert codes.count((2, 1)) >= FLOOD - MAX_TOKENS  # room was always made by displacing unused ones
    assert len(core.bindings) == MAX_TOKENS
    assert [b.label for b in core.bindings if core.bindings.used(b.label)] == [label]
    assert len(flow.rs_server.index) == MAX_TOKENS  # displaced bindings took their OSCORE contexts along

    # a new legitimate client still gets in: its fresh binding displaces an unused flood binding
    flow.exchanges.clear()
    newcomer = await registered_client(flow, tmp_path, "clientB", b"\x0b")
    got = await bounded(newcomer.request(req(flow)), 4 * TIMEOUT)
    assert isinstance(got, Done) and got.response.code == (2, 5), got
    assert flow.steps() == FULL
    assert len(core.bindings) == MAX_TOKENS
    assert {b.label for b in core.bindings if core.bindings.used(b.label)} == {label, label_of_session(got)}
    again = await bounded(legit.request(req(flow)), 4 * TIMEOUT)
    assert isinstance(again, Done) and again.response.code == (2, 5)
    assert time.monotonic() - started < 10.0


# -- 2. every slot in use: the flood gets 5.03, the users keep access --------------------------------


async def test_flood_against_a_store_of_bindings_in_use_gets_503(flow: Flow) -> None:
    await small_store(flow, 3)
    ctx = await flow.plain()
    users: list[ManualSession] = []
    for _ in range(3):  # three clients, each using its binding
        token, material = flow.token()
        session = await flow.post_token(ctx, token, material, client_rid=bytes([0x20 + len(users)]))
        assert session.response.code == (2, 1) and session.context is not None
        assert (await flow.get_with(session.context)).code == (2, 5)
        users.append(session)
    flow.exchanges.clear()
    replies = await post_all(flow, flood_payloads(flow, [], 12))
    assert {r.code for r in replies} == {(5, 3)}, [r.code for r in replies]
    for session in users:
        assert session.context is not None
        reply = await flow.get_with(session.context)
        assert reply.code == (2, 5) and reply.protected
    assert len(flow.rs_server.core.bindings) == 3 and len(flow.rs_server.index) == 3
    # the 5.03 left no trace: no context, no Recipient ID held for a refused token
    assert len(flow.rs_server.core.ids) == 3
