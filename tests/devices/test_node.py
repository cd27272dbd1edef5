"""A constrained node on ::1: budget violations get the CoAP codes the RFCs prescribe, the
device tables enforce their roles' scopes, and repeated requests change nothing twice."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiocoap
import pytest
from aiocoap import oscore
from aiocoap.optiontypes import BlockOption
from support import bounded

from ace.cbor.labels import ContentFormat
from ace.coap import contexts
from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.render import pair_of
from ace.messages import AuthzInfoRequest, AuthzInfoResponse
from ace.profiles import oscore as oscore_profile
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial
from ace.tokens.cwt import issue_token
from ace.tokens.keys import CoseKey, generate_symmetric
from devices.fleet import PortPool
from devices.node import Budget, Node, Resource, keyring, table_routes
from devices.types import DOOR_LOCK, LIGHT, THERMOMETER, DeviceType

ACE_CBOR = int(ContentFormat.ACE_CBOR)
PORTS = PortPool()


@dataclass(slots=True)
class Rig:
    node: Node
    key: CoseKey
    ctx: Any  # a plain aiocoap client context

    def token(self, scope: bytes, *, sub: str | None = None, exi: int | None = None,
              material: OscoreInputMaterial | None = None) -> tuple[bytes, OscoreInputMaterial]:
        material = material or OscoreInputMaterial(id=secrets.token_bytes(2), ms=secrets.token_bytes(16))
        claims = AccessTokenClaims(aud=self.node.audience, exp=None if exi else int(time.time() + 600),
                                   cti=secrets.token_bytes(4), scope=scope, cnf=OscoreCnf(material),
                                   sub=sub or secrets.token_hex(4), exi=exi)
        return issue_token(claims, self.key), material

    async def post(self, payload: bytes, **opts: Any) -> aiocoap.Message:
        msg = aiocoap.Message(code=aiocoap.POST, uri=self.node.uri + "/authz-info", payload=payload,
                              content_format=ACE_CBOR, **opts)
        return await bounded(self.ctx.request(msg).response)

    async def session(self, scope: bytes, **kw: Any) -> tuple[aiocoap.Message, MemoryOscoreContext | None]:
        """POST a token (RFC 9203 §4.1) and derive the client's context (§4.3) on 2.01."""
        token, material = self.token(scope, **kw)
        nonce1, rid = secrets.token_bytes(8), secrets.token_bytes(1)
        reply = await self.post(AuthzInfoRequest(access_token=token, nonce1=nonce1,
                                                 ace_client_recipientid=rid).encode())
        if reply.code != aiocoap.CREATED:
            return reply, None
        answer = AuthzInfoResponse.decode(reply.payload)
        params = oscore_profile.derive(material, nonce1=nonce1, nonce2=answer.nonce2,
                                       sender_id=answer.ace_server_recipientid, recipient_id=rid)
        return reply, contexts.from_params(params, claims=["rs"])

    async def protected(self, sc: MemoryOscoreContext, method: str, path: str, payload: bytes = b"") -> tuple[
            tuple[int, int], bytes]:
        ctx = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
        try:
            ctx.client_credentials[self.node.uri + "/*"] = sc
            msg = aiocoap.Message(code=aiocoap.Code[method], uri=self.node.uri + path, payload=payload)
            try:
                raw = await bounded(ctx.request(msg).response)
            except oscore.NotAProtectedMessage as exc:
                raw = exc.plain_message
            return pair_of(raw.code), raw.payload
        finally:
            await bounded(ctx.shutdown())


@asynccontextmanager
async def rig(dtype: DeviceType = THERMOMETER, budget: Budget | None = None) -> AsyncIterator[Rig]:
    key = generate_symmetric(16, kid=b"\x07")
    node = Node(audience="node-1", as_uri="coap://[::1]:9/token", token_keys=keyring(key),
                table=dtype.make_table(1), budget=budget or Budget(), port=PORTS.take())
    await bounded(node.start())
    ctx = await bounded(aiocoap.Context.create_client_context(transports=["udp6"]))
    try:
        yield Rig(node, key, ctx)
    finally:
        await bounded(ctx.shutdown())
        await bounded(node.stop())


# -- budget and table ---------------------------------------------------------------------

@pytest.mark.parametrize("field", ["max_tokens", "max_message_size", "max_contexts"])
def test_budget_limits_must_be_positive(field: str) -> None:
    kwargs: dict[str, Any] = {field: 0}
    with pytest.raises(ValueError, match=field):
        Budget(**kwargs)


def test_token_slots_are_the_smaller_bound() -> None:
    assert Budget(max_tokens=8, max_contexts=3).token_slots == 3
    assert Budget(max_tokens=2, max_contexts=9).token_slots == 2


async def _noop(request: aiocoap.Message, binding: Any) -> aiocoap.Message:
    return aiocoap.Message(code=aiocoap.CONTENT)


@pytest.mark.parametrize("rows, match", [
    ((Resource("/a", ("GET",), _noop), Resource("/a", ("PUT",), _noop)), "distinct"),
    (tuple(Resource(f"/r{i}", ("GET",), _noop) for i in range(17)), "at most"),
])
def test_table_is_small_and_unambiguous(rows: tuple[Resource, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        table_routes(rows)


@pytest.mark.parametrize("path, methods", [("temp", ("GET",)), ("/temp", ()), ("/temp", ("BREW",))])
def test_table_rows_are_checked(path: str, methods: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        Resource(path, methods, _noop)


def test_table_routes_every_method_to_its_handler() -> None:
    routes = table_routes(DOOR_LOCK.make_table(0))
    assert set(routes) == {"/lock", "/battery"}
    assert set(routes["/lock"]) == {"GET", "PUT"}


# -- budget violations over CoAP --------------------------------------------------------------

async def test_token_beyond_the_store_is_503_and_the_node_keeps_serving() -> None:
    async with rig(budget=Budget(max_tokens=2)) as r:
        scope = THERMOMETER.roles["reader"]
        in_use = []
        for _ in range(2):
            reply, sc = await r.session(scope)
            assert reply.code == aiocoap.CREATED and sc is not None
            assert (await r.protected(sc, "GET", "/temp"))[0] == (2, 5)  # in use: never displaced
            in_use.append(sc)
        third, _ = await r.session(scope)
        assert pair_of(third.code) == (5, 3)  # RFC 9200 §5.10.1: no room for the token
        for sc in in_use:
            assert (await r.protected(sc, "GET", "/temp"))[0] == (2, 5)


async def test_contexts_bound_the_store_too() -> None:
    async with rig(budget=Budget(max_tokens=8, max_contexts=1)) as r:
        scope = THERMOMETER.roles["reader"]
        reply, sc = await r.session(scope)
        assert reply.code == aiocoap.CREATED and sc is not None
        assert (await r.protected(sc, "GET", "/temp"))[0] == (2, 5)
        assert pair_of((await r.session(scope))[0].code) == (5, 3)


async def test_oversize_authz_info_is_413_with_size1() -> None:
    async with rig(budget=Budget(max_message_size=64)) as r:
        reply = await r.post(b"\xa0" + b"x" * 64)
        assert pair_of(reply.code) == (4, 13)
        assert reply.opt.size1 == 64


async def test_oversize_announced_by_block1_or_size1_is_413() -> None:
    async with rig(budget=Budget(max_message_size=64)) as r:
        third_block = _con_post(0x2001, b"x" * 32, block1=BlockOption.BlockwiseTuple(2, True, 1))  # bytes 64..95
        announced = await r.post(b"x" * 16, size1=1000)
        blocked = aiocoap.Message.decode((await _exchange(r.node.port, third_block, 1))[0])
        assert pair_of(blocked.code) == (4, 13) and blocked.opt.size1 == 64
        assert pair_of(announced.code) == (4, 13)


async def test_oversize_protected_request_is_413_inside_oscore() -> None:
    async with rig(LIGHT, Budget(max_message_size=128)) as r:
        _, sc = await r.session(LIGHT.roles["operator"])
        assert sc is not None
        assert (await r.protected(sc, "PUT", "/light", b"5" * 200))[0] == (4, 13)
        assert (await r.protected(sc, "PUT", "/light", b"55"))[0] == (2, 4)


async def test_no_clock_needs_exi() -> None:
    async with rig(budget=Budget(no_clock=True)) as r:
        scope = THERMOMETER.roles["reader"]
        refused, _ = await r.session(scope)
        accepted, sc = await r.session(scope, exi=60)
        assert pair_of(refused.code) == (4, 0)  # RFC 9200 §5.10.3: without a clock, exi
        assert accepted.code == aiocoap.CREATED and sc is not None
        assert (await r.protected(sc, "GET", "/temp"))[0] == (2, 5)


# -- roles ------------------------------------------------------------------------------------

@pytest.mark.parametrize("role, method, payload, code", [
    ("reader", "GET", b"", (2, 5)),
    ("reader", "PUT", b"unlocked", (4, 5)),  # RFC 9200 §5.10.2: resource in scope, method not
    ("maintainer", "PUT", b"unlocked", (4, 3)),  # RFC 9200 §5.10.2: resource not in scope
    ("operator", "PUT", b"unlocked", (2, 4)),
    ("operator", "PUT", b"ajar", (4, 0)),
])
async def test_door_lock_roles(role: str, method: str, payload: bytes, code: tuple[int, int]) -> None:
    async with rig(DOOR_LOCK) as r:
        _, sc = await r.session(DOOR_LOCK.roles[role])
        assert sc is not None
        assert (await r.protected(sc, method, "/lock", payload))[0] == code


async def test_reader_put_leaves_the_lock_locked() -> None:
    async with rig(DOOR_LOCK) as r:
        _, reader = await r.session(DOOR_LOCK.roles["reader"])
        assert reader is not None
        await r.protected(reader, "PUT", "/lock", b"unlocked")
        assert await r.protected(reader, "GET", "/lock") == ((2, 5), b"locked")


@pytest.mark.parametrize("dtype", [THERMOMETER, DOOR_LOCK, LIGHT], ids=lambda d: d.name)
def test_every_action_is_permitted_to_some_role_or_to_none_on_purpose(dtype: DeviceType) -> None:
    for action in dtype.actions:
        allowed = {role for role in dtype.roles if dtype.allows(role, action)}
        assert allowed or (dtype is THERMOMETER and action.method == "PUT")
        assert "reader" not in allowed or action.method == "GET"


# -- duplicates -------------------------------------------------------------------------------

def _con_post(mid: int, payload: bytes, **opts: Any) -> bytes:
    msg = aiocoap.Message(code=aiocoap.POST, payload=payload, uri_path=("authz-info",), content_format=ACE_CBOR,
                          **opts)
    msg.mtype, msg.mid, msg.token = aiocoap.CON, mid, b"\x01\x02"
    return bytes(msg.encode())


async def _exchange(port: int, datagram: bytes, times: int) -> list[bytes]:
    """Send the very same datagram ``times`` times (a retransmission: same MID), one answer each."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        s.connect(("::1", port))
        answers = []
        for _ in range(times):
            await loop.sock_sendall(s, datagram)
            answers.append(await bounded(loop.sock_recv(s, 2048)))
    return answers


async def test_the_same_datagram_twice_gets_the_same_answer() -> None:
    async with rig() as r:
        token, _ = r.token(THERMOMETER.roles["reader"])
        datagram = _con_post(0x1234, AuthzInfoRequest(access_token=token, nonce1=secrets.token_bytes(8),
                                                      ace_client_recipientid=b"\x05").encode())
        answers = await _exchange(r.node.port, datagram, 2)
        assert answers[0] == answers[1]
        assert aiocoap.Message.decode(answers[0]).code == aiocoap.CREATED
        assert len(r.node.core.bindings) == 1


async def test_a_reposted_token_is_answered_again_and_stored_once() -> None:
    async with rig() as r:
        token, _ = r.token(THERMOMETER.roles["reader"])
        payload = AuthzInfoRequest(access_token=token, nonce1=b"n" * 8, ace_client_recipientid=b"\x05").encode()
        first, again = await r.post(payload), await r.post(payload)
        assert first.code == again.code == aiocoap.CREATED and first.payload == again.payload
        assert len(r.node.core.bindings) == 1


async def test_put_twice_is_put_once() -> None:
    async with rig(DOOR_LOCK) as r:
        _, sc = await r.session(DOOR_LOCK.roles["operator"])
        assert sc is not None
        for _ in range(2):
            assert (await r.protected(sc, "PUT", "/lock", b"unlocked"))[0] == (2, 4)
        assert await r.protected(sc, "GET", "/lock") == ((2, 5), b"unlocked")


async def test_a_repeated_light_command_is_applied_once() -> None:
    async with rig(LIGHT) as r:
        _, sc = await r.session(LIGHT.roles["operator"])
        assert sc is not None
        assert (await r.protected(sc, "PUT", "/light", b"50"))[0] == (2, 4)
        one = await r.protected(sc, "POST", "/light", b"c7 +10")
        two = await r.protected(sc, "POST", "/light", b"c7 +10")
        assert one == two == ((2, 4), b"60")
        assert await r.protected(sc, "GET", "/light") == ((2, 5), b"60")
        assert (await r.protected(sc, "POST", "/light", b"c8 +10"))[1] == b"70"


@pytest.mark.parametrize("payload", [b"", b"+10", b"c1 x", b"c1 +1 2", b"x" * 17 + b" 1"])
async def test_malformed_light_commands_are_400(payload: bytes) -> None:
    async with rig(LIGHT) as r:
        _, sc = await r.session(LIGHT.roles["operator"])
        assert sc is not None
        assert (await r.protected(sc, "POST", "/light", payload))[0] == (4, 0)


async def test_garbage_datagrams_do_not_stop_the_node() -> None:
    async with rig() as r:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            for junk in (b"", b"\xff", b"\x40\x02\x00\x01\xff", secrets.token_bytes(600)):
                s.sendto(junk, ("::1", r.node.port))
        _, sc = await r.session(THERMOMETER.roles["reader"])
        assert sc is not None
        assert (await r.protected(sc, "GET", "/temp"))[0] == (2, 5)
