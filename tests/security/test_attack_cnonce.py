"""Attack on an RS with ``cnonce = true`` over real loopback sockets (issue 17, item 5).

Every unauthenticated request to a protected resource gets 4.01 with AS Request Creation Hints
carrying a fresh cnonce (RFC 9200 §5.3.1). The RS used to keep the last 256 cnonces it handed
out, so 300 unauthenticated GETs displaced a legitimate client's cnonce and its token was
refused. Cnonces are now stateless (stamp and MAC): a flood displaces nothing; each cnonce is
taken once (RFC 9200 §5.10.1.1), and when the bounded used-set overflows, a floor keeps replays
out. Tokens with a cnonce are minted here with the RS's token key where the test needs a given
cnonce in a token (the AS copies the client's cnonce as is: the first test goes through it).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiocoap
from deployment import Flow, ManualSession, replace_rs, running_deployment
from support import TIMEOUT, Reply, bounded

from ace.client.flow import Done, ResourceRequest
from ace.coap.render import pair_of
from ace.messages import AuthzInfoRequest, CreationHints
from ace.rs.freshness import CNONCE_LEN
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial
from ace.tokens.cwt import issue_token

FLOOD = 320  # unauthenticated GETs: more than the 256 cnonces the RS used to keep
FULL = ["resource", "token", "authz-info", "resource (protected)"]
LIFETIME = 300.0  # RsConfig.cnonce_lifetime (rs.toml has no knob for it)


class SteppedClock:
    """The RS's clock: wall time plus what the test adds (to age cnonces without waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def cnonce_deployment(directory: Path, clock: Callable[[], float] = time.time) -> AsyncIterator[Flow]:
    """An ``ace init`` deployment whose RS (same port) runs with ``cnonce = true`` on ``clock``."""
    async with running_deployment(directory) as flow:
        await replace_rs(flow, clock=clock, cnonce=True)
        assert flow.rs_server.core.config.cnonce
        yield flow


async def probe(flow: Flow, ctx: Any) -> bytes:
    """An unauthenticated GET /temp: 4.01 with hints; their cnonce. Past the RS's RFC 7252 §11.3
    rate limit the answer is a bare 4.01 with an Echo: the same GET with it verifies the address
    (RFC 9175 §2.4 item 3) and gets the hints, as ``ace client`` does."""
    raw = await bounded(ctx.request(aiocoap.Message(code=aiocoap.GET, uri=flow.rs_uri + "/temp")).response)
    if raw.opt.echo is not None and not raw.payload:
        echoed = aiocoap.Message(code=aiocoap.GET, uri=flow.rs_uri + "/temp", echo=raw.opt.echo)
        raw = await bounded(ctx.request(echoed).response)
    return cnonce_of(Reply(pair_of(raw.code), raw.payload, None, True))


def cnonce_of(reply: Reply) -> bytes:
    assert reply.code == (4, 1), reply
    cnonce = CreationHints.decode(reply.payload).cnonce
    assert cnonce is not None and len(cnonce) == CNONCE_LEN
    return cnonce


async def post_with(flow: Flow, ctx: Any, cnonce: bytes, rid: int) -> ManualSession:
    """A token carrying ``cnonce`` (as the AS issues it for this RS), posted to /authz-info."""
    material = OscoreInputMaterial(id=secrets.token_bytes(2), ms=secrets.token_bytes(16))
    claims = AccessTokenClaims(aud="rs1", exp=int(time.time() + 3600), cti=secrets.token_bytes(4), scope="r_temp",
                               cnonce=cnonce, cnf=OscoreCnf(material))
    return await flow.post_token(ctx, issue_token(claims, flow.token_key), material, client_rid=bytes([rid]))


async def accepted(flow: Flow, ctx: Any, cnonce: bytes, rid: int) -> bool:
    """Whether a token with ``cnonce`` gets in (2.01, then 2.05 with the derived context);
    a refusal must be 4.01 with hints carrying a new cnonce."""
    session = await post_with(flow, ctx, cnonce, rid)
    if session.context is None:
        assert cnonce_of(session.response) != cnonce
        return False
    assert (await flow.get_with(session.context)).code == (2, 5)
    return True


async def test_a_flood_of_unauthenticated_gets_does_not_displace_a_clients_cnonce(tmp_path: Path) -> None:
    async with cnonce_deployment(tmp_path / "dep") as flow:
        # the flood comes from the client's address (::1) and passes the RFC 7252 §11.3 rate limit
        # (issue 17 item 11) by echoing the RS's Echo (RFC 9175 §2.4 item 3): an attacker gets
        # cnonces for its own address as fast as it asks
        runner = await flow.client()
        attacker = await flow.plain()
        flood: list[bytes] = []
        real_send = runner._send

        async def send_then_flood(step: str, *args: Any) -> Any:
            response = await real_send(step, *args)
            if step == "resource" and not flood:  # between the client's probe and its token request
                for _ in range(FLOOD):
                    flood.append(await probe(flow, attacker))
            return response

        runner._send = send_then_flood  # type: ignore[method-assign]
        got = await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")),
                            4 * TIMEOUT + FLOOD * TIMEOUT)
        assert len(set(flood)) == FLOOD  # the attacker got as many distinct cnonces
        assert flow.steps() == FULL, flow.steps()  # one token, accepted the first time
        assert isinstance(got, Done) and got.response.code == (2, 5)
        hinted = CreationHints.decode(flow.exchanges[0].response.payload).cnonce
        assert [b.claims.cnonce for b in flow.rs_server.core.bindings] == [hinted]
        assert flow.rs_server.context.serversite.limiter.refused > 0  # the real limiter, exhausted


async def test_a_used_cnonce_is_refused(tmp_path: Path) -> None:
    async with cnonce_deployment(tmp_path / "dep") as flow:
        ctx = await flow.plain()
        cnonce = await probe(flow, ctx)
        first = await post_with(flow, ctx, cnonce, 0x21)
        assert first.response.code == (2, 1)
        # the same token again under a new nonce1 (a replay, not a retransmission), then another token
        again = dataclasses.replace(AuthzInfoRequest.decode(first.payload), nonce1=secrets.token_bytes(8))
        replay = await flow.post_authz_info(ctx, again.encode())
        assert cnonce_of(replay) != cnonce
        assert not await accepted(flow, ctx, cnonce, 0x22)


async def test_forged_truncated_and_expired_cnonces_are_refused(tmp_path: Path) -> None:
    clock = SteppedClock()
    async with cnonce_deployment(tmp_path / "dep", clock) as flow:
        ctx = await flow.plain()
        genuine = await probe(flow, ctx)
        forged = genuine[:-1] + bytes([genuine[-1] ^ 0x01])
        later_stamp = bytes([genuine[0] ^ 0x01]) + genuine[1:]
        for rid, bad in enumerate([forged, later_stamp, genuine[:-1], genuine + b"\x00", b"\x00" * CNONCE_LEN]):
            assert not await accepted(flow, ctx, bad, 0x30 + rid)
        assert await accepted(flow, ctx, genuine, 0x21)
        stale = await probe(flow, ctx)
        clock.offset += LIFETIME + 1
        assert not await accepted(flow, ctx, stale, 0x22)
        assert await accepted(flow, ctx, await probe(flow, ctx), 0x23)


async def test_a_full_used_set_raises_a_floor_and_replays_stay_out(tmp_path: Path) -> None:
    async with cnonce_deployment(tmp_path / "dep") as flow:
        flow.rs_server.core.fresh.max_used = 2
        ctx = await flow.plain()
        c = [await probe(flow, ctx) for _ in range(5)]
        assert await accepted(flow, ctx, c[1], 0x21) and await accepted(flow, ctx, c[2], 0x22)
        assert await accepted(flow, ctx, c[3], 0x23)  # full: c[1] leaves, the floor rises to it
        for rid, replayed in enumerate(c[1:4]):
            assert not await accepted(flow, ctx, replayed, 0x31 + rid)
        assert not await accepted(flow, ctx, c[0], 0x30)  # unused, but not after the floor
        assert await accepted(flow, ctx, c[4], 0x24)
        assert flow.rs_server.core.fresh.used_cnonces() == 2
