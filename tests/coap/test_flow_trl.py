"""The Token Revocation List (RFC 9770) over real sockets on ::1: an RS and a client observe
GET /revoke/trl at the AS; ``ace revoke`` (called in-process) makes the RS drop the token and
refuse it, and the client drop its session. Every await is bounded."""

from __future__ import annotations

import dataclasses
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiocoap
import cbor2
import pytest
from deployment import Flow, running_deployment, send, store_of
from support import TIMEOUT, bounded, until

from ace.authz_server import trl
from ace.cli import roles
from ace.cli.config import load_client
from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import init_deployment
from ace.cli.main import main
from ace.cli.revoke_cmd import revoke
from ace.client.flow import ClientConfig, ClientFlow, Done, ResourceRequest
from ace.coap import contexts
from ace.coap.client import ClientRunner
from ace.coap.trl_client import TRL_CF, TrlObserver, trl_uri
from ace.messages import AuthzInfoRequest
from ace.requester import RsPeer
from ace.store.base import ClientRecord, Grant, IssuedToken
from ace.store.seqno import FileSequenceStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.oscore_params import OscoreContextParams


def trl_deployment(directory: Path) -> Any:
    """An RS observing the TRL; the AS polls its store for revocations every 50 ms (1 s by default)."""
    return running_deployment(directory, rs_changes={"observe_trl": True}, trl_poll=0.05)


async def observing_client(flow: Flow) -> ClientRunner:
    runner = roles.build_client(dataclasses.replace(load_client(flow.d.client_config), observe_trl=True))
    flow._runners.append(runner)
    await bounded(runner.start())
    return runner


def trl_of(flow: Flow) -> str:
    return trl_uri(flow.d.as_uri)


async def test_revocation_reaches_rs_and_client(tmp_path: Path) -> None:
    async with trl_deployment(tmp_path) as flow:
        rs_obs = flow.rs_server.trl
        assert rs_obs is not None
        runner = await observing_client(flow)
        assert isinstance(runner.trl, TrlObserver)
        client_trl = runner.trl
        await until(lambda: rs_obs.observer.notifications >= 1 and client_trl.notifications >= 1)
        assert len(flow.as_server.trl_resource.watchers) == 2  # both registered as observers

        result = await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")), 4 * TIMEOUT)
        assert isinstance(result, Done) and result.response.code == (2, 5)
        session = result.session
        assert session is not None and isinstance(session.context, type(session.context))
        [binding] = list(flow.rs_server.core.bindings)
        assert binding.token_hash == trl.token_hash(session.token)

        before_rs, before_client = rs_obs.observer.notifications, client_trl.notifications
        added = revoke(store_of(flow), client="clientA")  # what `ace revoke --client clientA` runs
        assert added == [trl.token_hash(session.token)]

        await until(lambda: rs_obs.observer.notifications > before_rs and client_trl.notifications > before_client)
        # within that one notification: the RS dropped the binding and its context, the client its session
        assert not flow.rs_server.core.live_labels() and len(flow.rs_server.index) == 0
        assert flow.rs_uri not in runner.flow.sessions

        # the old context (rebuilt from its parameters) is refused: the RS has none any more
        reply = await flow.get_with(contexts.from_params(session.context, claims=["rs"]))  # type: ignore[arg-type]
        assert reply.code == (4, 1)
        # the revoked token posted again is refused
        ctx = await flow.plain()
        payload = AuthzInfoRequest(access_token=session.token, nonce1=secrets.token_bytes(8),
                                   ace_client_recipientid=b"\x33").encode()
        assert (await flow.post_authz_info(ctx, payload)).code == (4, 1)

        # the grant stands: the client gets a new token and goes on
        again = await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")), 4 * TIMEOUT)
        assert isinstance(again, Done) and again.response.code == (2, 5)
        assert again.session is not None and again.session.token != session.token


async def test_unauthenticated_trl_request_is_refused(tmp_path: Path) -> None:
    async with trl_deployment(tmp_path) as flow:
        ctx = await flow.plain()
        reply = await send(ctx, aiocoap.Message(code=aiocoap.GET, uri=trl_of(flow)))
        assert reply.code == (4, 1)
        reply = await send(ctx, aiocoap.Message(code=aiocoap.GET, uri=trl_of(flow), observe=0))
        assert reply.code == (4, 1)
        assert [who for who, _, _ in flow.as_server.trl_resource.watchers.values()] in ([], [RsPeer("rs1")])


async def test_each_client_sees_only_its_own_hashes(tmp_path: Path) -> None:
    async with trl_deployment(tmp_path) as flow:
        store = store_of(flow)
        as_side = OscoreContextParams(master_secret=secrets.token_bytes(16), sender_id=b"\x00", recipient_id=b"\x07")
        store.put_client(ClientRecord(client_id="clientB", oscore=as_side))
        store.add_grant(Grant(client_id="clientB", audience="rs1", scope="r_temp", default=True))
        b_flow = ClientFlow(ClientConfig(client_id="clientB", as_uri=flow.d.as_uri), clock=time.time)
        b = ClientRunner(b_flow, as_uri=flow.d.as_uri, timeout=TIMEOUT,
                         as_secret=dataclasses.replace(as_side, sender_id=b"\x07", recipient_id=b"\x00"),
                         seqno_store=FileSequenceStore(tmp_path / "b-state.json"))
        flow._runners.append(b)
        await bounded(b.start())
        a = await flow.client()

        for runner in (a, b):
            done = await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")),
                                 4 * TIMEOUT)
            assert isinstance(done, Done) and done.response.code == (2, 5)
        hash_b = trl.token_hash(b.flow.sessions[flow.rs_uri].token)
        assert revoke(store, client="clientB") == [hash_b]

        async def get(runner: ClientRunner, query: str = "") -> tuple[tuple[int, int], object]:
            reply = await send(runner.context, aiocoap.Message(code=aiocoap.GET, uri=trl_of(flow) + query))
            assert reply.protected
            if reply.code == (2, 5):
                assert reply.content_format == TRL_CF
                return reply.code, cbor2.loads(reply.payload)
            return reply.code, None

        assert await get(a) == ((2, 5), {0: [], 2: None})  # 2 / cursor /: a's collection is empty
        assert await get(b) == ((2, 5), {0: [hash_b], 2: 0})
        assert await get(b, "?diff=2") == ((2, 5), {1: [[[], [hash_b]]], 2: 0, 3: False})
        assert await get(a, "?diff=2") == ((2, 5), {1: [], 2: None, 3: False})
        assert (await get(b, "?diff=zero"))[0] == (4, 0)
        # the RS sees every revoked token issued for it
        await until(lambda: not flow.rs_server.core.bindings.by_token_hash(hash_b))
        assert len(flow.rs_server.core.bindings) == 1


async def test_rs_observes_a_diff_query(tmp_path: Path) -> None:
    """An RS registered after the AS started observes GET /revoke/trl?diff=0 over its OSCORE context
    with the AS: each revocation for its audience comes as a diff notification (RFC 9770 §11)."""
    async with trl_deployment(tmp_path) as flow:
        store = store_of(flow)
        rs1 = store.get_rs("rs1")
        assert rs1 is not None
        as_side = OscoreContextParams(master_secret=secrets.token_bytes(16), sender_id=b"\x00", recipient_id=b"R2")
        store.put_rs(dataclasses.replace(rs1, audience="rs2", rs_id="rs2", oscore=as_side))
        now = int(time.time())
        hashes = [trl.token_hash(b"rs2-token-%d" % i) for i in range(2)]
        for i, h in enumerate(hashes):
            store.log_token(IssuedToken(cti=b"rs2-%d" % i, client_id="clientA", audience="rs2", scope="r_temp",
                                        issued_at=now, expires_at=now + 600, token_hash=h))
        ctx = await aiocoap.Context.create_client_context(transports=["oscore", "udp6"])
        observation = None
        try:
            uri = trl_of(flow)
            parts = urlsplit(aiocoap.Message(code=aiocoap.GET, uri=uri).get_request_uri())
            ctx.client_credentials[f"{parts.scheme}://{parts.netloc}/*"] = contexts.from_secret(
                dataclasses.replace(as_side, sender_id=b"R2", recipient_id=b"\x00"),
                store=FileSequenceStore(tmp_path / "rs2-state.json"), claims=["as"])

            # errors come with problem details (RFC 9770 §6.3, RFC 9290)
            for query, error in (("?cursor=0", {0: 1}), ("?diff=0&cursor=x", {0: 0, 1: None}),
                                 ("?diff=0&cursor=4294967296", {0: 0, 1: None})):
                reply = await send(ctx, aiocoap.Message(code=aiocoap.GET, uri=uri + query))
                assert reply.protected and reply.code == (4, 0) and reply.content_format == 257, query
                assert cbor2.loads(reply.payload)[1] == error, query

            request = ctx.request(aiocoap.Message(code=aiocoap.GET, uri=uri + "?diff=0", observe=0))
            observation = request.observation
            first = await bounded(request.response)
            assert first.code == aiocoap.CONTENT and first.opt.observe is not None
            assert first.opt.content_format == TRL_CF
            assert cbor2.loads(first.payload) == {1: [], 2: None, 3: False}
            watchers = flow.as_server.trl_resource.watchers.values()
            assert (RsPeer("rs2"), ("diff=0",)) in [(who, query) for who, query, _ in watchers]
            notifications = observation.__aiter__()

            assert revoke(store, client="clientA", audience="rs2") == hashes[::-1]  # newest token first
            note = await bounded(notifications.__anext__())
            assert note.opt.content_format == TRL_CF
            assert cbor2.loads(note.payload) == {1: [[[], hashes[::-1]]], 2: 0, 3: False}

            # another revocation, seen by the AS through its store as `ace revoke` writes it
            h3 = trl.token_hash(b"rs2-token-3")
            store.log_token(IssuedToken(cti=b"rs2-3", client_id="clientA", audience="rs2", scope="r_temp",
                                        issued_at=now, expires_at=now + 600, token_hash=h3))
            assert revoke(store, token=b"rs2-token-3") == [h3]
            note = await bounded(notifications.__anext__())
            assert cbor2.loads(note.payload) == {1: [[[], [h3]], [[], hashes[::-1]]], 2: 1, 3: False}
            # the RS of rs1 (observing the full set) is not told of rs2's tokens
            assert not {*hashes, h3} & set(cbor2.loads(flow.as_server.trl_resource.endpoint.handle(
                RsPeer("rs1")))[0])
        finally:
            if observation is not None and not observation.cancelled:
                observation.cancel()
            await ctx.shutdown()


def test_cli_revoke_and_policy_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = init_deployment(tmp_path, as_port=free_port(), rs_port=free_port())
    now = int(time.time())
    tokens = [b"token-%d" % i for i in range(4)]
    with SqliteAsStore(d.directory / "as.db") as store:
        for i, tok in enumerate(tokens):
            store.log_token(IssuedToken(cti=bytes([i + 1]), client_id="clientA", audience="rs1", scope="r_temp",
                                        issued_at=now, expires_at=now + (600 if i else -1),
                                        token_hash=trl.token_hash(tok)))
    config = str(d.as_config)
    assert main(["revoke", "--config", config, "--token", tokens[1].hex()]) == 0
    assert main(["revoke", "--config", config, "--token", b"unknown".hex()]) == 2
    assert main(["policy", "--config", config, "revoke", "clientA", "rs1", "--keep-tokens"]) == 0
    with SqliteAsStore(d.directory / "as.db") as store:
        assert store.revoked_since(0, 10) == [(1, trl.token_hash(tokens[1]))]
        store.add_grant(Grant(client_id="clientA", audience="rs1", scope="r_temp"))
    assert main(["policy", "--config", config, "revoke", "clientA", "rs1"]) == 0
    assert "and 2 live token(s)" in capsys.readouterr().out
    with SqliteAsStore(d.directory / "as.db") as store:  # token 0 had expired: never listed
        listed = [h for _, h in store.revoked_since(0, 10)]
        assert listed == [trl.token_hash(t) for t in (tokens[1], tokens[3], tokens[2])]
    assert main(["revoke", "--config", config, "--client", "clientA"]) == 0
