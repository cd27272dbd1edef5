"""The public API over real sockets on loopback: a handler protected with ``ace.ResourceServerApp``
answers ``ace.Client`` (GET, PUT, an observation receiving a notification); a request its token's
scope does not cover is 4.03 (4.05 for a method it does not allow). The RS replaces the
deployment's on its port; every server stops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from typing import Any

import aiocoap
import aiocoap.resource
import pytest
from deployment import Flow, port_pair, send, store_of
from support import TIMEOUT, bounded

import ace
from ace.authz_server import trl
from ace.cbor.labels import AceProfile
from ace.cbor.scope import method_bit
from ace.rs.config import RsConfig
from ace.store.base import Grant


async def serve_api(flow: Flow) -> tuple[ace.ResourceServerApp, dict[str, Any]]:
    """The deployment's RS stopped; one from the same rs.toml through the API, on its port."""
    await bounded(flow.rs_server.stop())
    with flow.d.rs_config.open("a") as f:  # [rs.scopes] is rs.toml's last table
        f.write('rw_api = [["/api/temp", ["GET", "PUT"]]]\nr_api = [["/api/temp", ["GET"]]]\n')
    rs = ace.ResourceServerApp.from_config(flow.d.rs_config)
    state: dict[str, Any] = {"temp": b"20", "scopes": set()}

    @rs.protect("/api/temp", methods=("GET", "PUT"), observable=True)
    async def temp(request: aiocoap.Message, binding: ace.Binding) -> aiocoap.Message:
        state["scopes"].add(binding.claims.scope)  # the token's claims
        if request.code == aiocoap.PUT:
            state["temp"] = request.payload
            rs.notify("/api/temp")
            return aiocoap.Message(code=aiocoap.CHANGED)
        return aiocoap.Message(code=aiocoap.CONTENT, payload=state["temp"])

    @rs.protect("/api/door", methods=("GET",))
    async def door(request: aiocoap.Message, binding: ace.Binding) -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"locked")

    flow.rs_server = rs.server  # the deployment stops it at the end
    await bounded(rs.start())
    return rs, state


@pytest.mark.parametrize("profile", [AceProfile.COAP_OSCORE, AceProfile.COAP_DTLS, AceProfile.COAP_EDHOC_OSCORE],
                         ids=["oscore", "dtls", "edhoc"])
async def test_protected_handler_answers_the_client(flow: Flow, profile: int) -> None:
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="rw_api"))
    _, state = await serve_api(flow)
    uri = flow.rs_uri + "/api/temp"
    async with ace.Client.from_config(flow.d.client_config, scope="rw_api", profile=profile,
                                      timeout=TIMEOUT) as client:
        r = await bounded(client.get(uri), 4 * TIMEOUT)
        assert (r.code, r.payload) == ((2, 5), b"20")
        r = await bounded(client.put(uri, b"21"), TIMEOUT)
        assert r.code == (2, 4)
        observation = client.observe(uri)
        try:
            first = await bounded(anext(observation), 2 * TIMEOUT)
            assert (first.code, first.payload) == ((2, 5), b"21")
            writer = asyncio.get_running_loop().create_task(client.put(uri, b"22"))
            note = await bounded(anext(observation), TIMEOUT)
            assert (note.code, note.payload) == ((2, 5), b"22")
            assert (await bounded(writer)).code == (2, 4)
            assert state["scopes"] == {"rw_api"}
        finally:
            with contextlib.suppress(StopAsyncIteration):
                await bounded(observation.aclose())


async def test_out_of_scope_is_forbidden(flow: Flow) -> None:
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="r_api"))
    await serve_api(flow)
    uri = flow.rs_uri + "/api/temp"
    async with ace.Client.from_config(flow.d.client_config, scope="r_api", timeout=TIMEOUT) as client:
        assert (await bounded(client.get(uri), 4 * TIMEOUT)).code == (2, 5)
        # RFC 9200 §5.10.2: a path the scope does not cover is 4.03, a method it does not allow 4.05
        assert (await bounded(client.get(flow.rs_uri + "/api/door"), 4 * TIMEOUT)).code == (4, 3)
        assert (await bounded(client.put(uri, b"99"), 4 * TIMEOUT)).code == (4, 5)
        assert (await bounded(client.get(uri), TIMEOUT)).payload == b"20"  # unchanged


async def test_edhoc_access_rights_update(flow: Flow) -> None:
    """draft-ietf-ace-edhoc-oscore-profile-11 §4.6: more rights on the same EDHOC session."""
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="r_api rw_api"))
    _, state = await serve_api(flow)
    uri = flow.rs_uri + "/api/temp"
    async with ace.Client.from_config(flow.d.client_config, scope="r_api", profile=AceProfile.COAP_EDHOC_OSCORE,
                                      timeout=TIMEOUT) as client:
        assert (await bounded(client.get(uri), 4 * TIMEOUT)).code == (2, 5)
        assert (await bounded(client.put(uri, b"23"), TIMEOUT)).code == (4, 5)
        assert (await bounded(client.update_access(uri, "rw_api"), 4 * TIMEOUT)).code == (2, 1)
        assert (await bounded(client.put(uri, b"23"), TIMEOUT)).code == (2, 4)
        assert state["temp"] == b"23" and state["scopes"] >= {"r_api", "rw_api"}
    async with ace.Client.from_config(flow.d.client_config, timeout=TIMEOUT) as client:
        with pytest.raises(ace.RequestFailed) as info:  # no EDHOC session to update
            await bounded(client.update_access(uri, "rw_api"), TIMEOUT)
        assert info.value.step == "update"


class Led(aiocoap.resource.Resource):  # type: ignore[misc]
    """A plain aiocoap resource, protected as it is."""

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"on")


async def test_an_rs_built_from_its_config_protects_an_aiocoap_resource(flow: Flow) -> None:
    await bounded(flow.rs_server.stop())
    host, port = flow.rs_server.bind
    config = RsConfig(audience="rs1", as_uri=flow.d.as_uri, scope_meaning={"r_led": [("/led", method_bit("GET"))]})
    rs = ace.ResourceServerApp(config, [flow.token_key], bind=(host, port))
    rs.protect("/led", Led)
    flow.rs_server = rs.server  # the deployment stops it at the end
    await bounded(rs.start())
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="r_led"))
    async with ace.Client.from_config(flow.d.client_config, scope="r_led", timeout=TIMEOUT) as client:
        r = await bounded(client.get(flow.rs_uri + "/led"), 4 * TIMEOUT)
        assert (r.code, r.payload) == ((2, 5), b"on")
        with pytest.raises(RuntimeError):
            rs.protect("/late", Led)  # resources come before start()


async def test_a_token_the_as_refuses_is_request_failed(flow: Flow) -> None:
    async with ace.Client.from_config(flow.d.client_config, scope="rw_led", timeout=TIMEOUT) as client:
        with pytest.raises(ace.RequestFailed) as failed:
            await bounded(client.get(flow.rs_uri + "/led"), 4 * TIMEOUT)
        assert failed.value.step == "token"


async def test_from_config_binds_where_told(flow: Flow) -> None:
    await bounded(flow.rs_server.stop())  # its state file is the one rs.toml names
    with pytest.raises(ValueError):
        ace.ResourceServerApp.from_config(flow.d.rs_config, port=70000)
    port = port_pair()[1]
    rs = ace.ResourceServerApp.from_config(flow.d.rs_config, host="::1", port=port)  # not rs.toml's port
    assert rs.address == ("::1", port) and port != flow.rs_server.bind[1]
    rs.protect("/api/door", Led)
    flow.rs_server = rs.server  # the deployment stops it at the end
    await bounded(rs.start())
    ctx = await flow.plain()
    reply = await send(ctx, aiocoap.Message(code=aiocoap.GET, uri=f"coap://[::1]:{port}/api/door"))
    assert reply.code == (4, 1)  # RFC 9200 §5.10.2: answered there, no token yet


async def test_an_unanswered_observation_is_request_failed(flow: Flow) -> None:
    await bounded(flow.rs_server.stop())
    with flow.d.rs_config.open("a") as f:  # [rs.scopes] is rs.toml's last table
        f.write('r_api = [["/api/slow", ["GET"]]]\n')
    rs = ace.ResourceServerApp.from_config(flow.d.rs_config)

    @rs.protect("/api/slow", observable=True)
    async def slow(request: aiocoap.Message, binding: ace.Binding) -> aiocoap.Message:
        if request.opt.observe is not None:  # the observation request is never answered in time
            await asyncio.sleep(30)
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"1")

    flow.rs_server = rs.server  # the deployment stops it at the end
    await bounded(rs.start())
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="r_api"))
    async with ace.Client.from_config(flow.d.client_config, scope="r_api", timeout=1.5) as client:
        observation = client.observe(flow.rs_uri + "/api/slow")
        with pytest.raises(ace.RequestFailed) as failed:
            await bounded(anext(observation), 4 * TIMEOUT)
        assert failed.value.step == "protected" and "did not answer within 1.5 s" in failed.value.error
        await bounded(observation.aclose())


async def test_an_observation_the_rs_ends_leaves_no_error_behind(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="rw_api"))
    rs, _ = await serve_api(flow)
    uri = flow.rs_uri + "/api/temp"
    async with ace.Client.from_config(flow.d.client_config, scope="rw_api", timeout=TIMEOUT) as client:
        observation = client.observe(uri)
        assert (await bounded(anext(observation), 4 * TIMEOUT)).payload == b"20"
        session = client.runner.flow.sessions[flow.rs_uri]
        rs.server.revoked([trl.token_hash(session.token)])  # as the TRL says it (RFC 9770)
        assert (await bounded(anext(observation), TIMEOUT)).code == (4, 1)  # RFC 9200 §5.10.2
        with pytest.raises(StopAsyncIteration):
            await bounded(anext(observation), TIMEOUT)
    del observation
    await asyncio.sleep(0.1)
    gc.collect()
    assert not unraisable, [u.exc_value for u in unraisable]  # aiocoap's iterators keep no error to raise again


async def test_large_notifications_come_whole(flow: Flow) -> None:
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="rw_api"))
    rs, state = await serve_api(flow)
    state["temp"] = bytes(range(256)) * 12  # 3 KiB: Block2 (RFC 7959) over OSCORE
    async with ace.Client.from_config(flow.d.client_config, scope="rw_api", timeout=TIMEOUT) as client:
        observation = client.observe(flow.rs_uri + "/api/temp")
        try:
            assert (await bounded(anext(observation), 4 * TIMEOUT)).payload == state["temp"]
            state["temp"] = bytes(reversed(state["temp"]))
            rs.notify("/api/temp")
            note = await bounded(anext(observation), TIMEOUT)
            assert (note.code, note.payload) == ((2, 5), state["temp"])
        finally:
            await bounded(observation.aclose())
