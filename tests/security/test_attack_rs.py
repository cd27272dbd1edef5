"""Attacks on the RS's token handling (issue 17 items 2, 6, 8, 9, and the update-expiry finding),
each replayed over real sockets on ::1 against an in-process AS + RS from an ``ace init``
deployment. Each test failed on the code before the fix; the comment says how.

- 2: a revoked client re-encodes its own token (a COSE tag around it, an extra unprotected
  header label): the RS hashed the bytes it got, so the new bytes were not on its TRL.
- 8: a sniffed DTLS token re-encoded and replayed replaced the victim's binding in use.
- 6: a token of client B bound to client A's EDHOC credential (same kid) displaced A's binding.
- 9: junk at /authz-info cost one RS→AS introspection and one WARNING line each.
- update: new rights over an OSCORE context did not move the context's end to the new token's.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import aiocoap
import cbor2
import lakers
import pytest
from deployment import Flow, running_deployment, send, store_of
from lakers_peer import LakersInitiator, edhoc_error
from support import ACE_CBOR, TIMEOUT, Reply, bounded, until

from ace.cbor import codec
from ace.cbor.labels import AceProfile, ContentFormat, Param
from ace.cli.keyfiles import load_key
from ace.cli.revoke_cmd import revoke
from ace.client.flow import Done, ResourceRequest
from ace.coap import edhoc
from ace.coap.client import ClientRunner
from ace.coap.oscore_context import MemoryOscoreContext
from ace.messages import AuthzInfoRequest
from ace.profiles.edhoc import EdhocChannel
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import KccsCnf, KidCnf
from ace.tokens.cwt import issue_token
from ace.tokens.edhoc_info import EdhocInfo
from ace.tokens.hashing import token_hash
from ace.tokens.keys import symmetric_key

CWT = int(ContentFormat.CWT)
RUNNER_TIMEOUT = 3.0


def deployment(directory: Path, **rs_changes: object) -> Any:
    """An AS + RS (``rs_changes`` applied to rs.toml's values), the AS polling revocations quickly."""
    return running_deployment(directory, rs_changes=rs_changes, trl_poll=0.05)


async def runner_for(flow: Flow, profile: int | None = None) -> ClientRunner:
    return await flow.client(profile=profile, timeout=RUNNER_TIMEOUT)


async def get_temp(runner: ClientRunner, flow: Flow) -> Done:
    got = await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")), 4 * TIMEOUT)
    assert isinstance(got, Done) and got.response.code == (2, 5), got
    return got


async def post_raw(flow: Flow, token: bytes) -> Reply:
    ctx = await flow.plain()
    return await send(ctx, aiocoap.Message(code=aiocoap.POST, uri=flow.authz_info_uri, payload=token,
                                           content_format=CWT))


def re_encodings(token: bytes) -> dict[str, bytes]:
    """The same token, other bytes: nothing an RS checks cryptographically changes."""
    item = cbor2.loads(token)
    extra_label = [item[0], {**item[1], 77: b"x"}, *item[2:]]
    reordered = [item[0], dict(reversed(list(item[1].items()))), *item[2:]]
    tag = 16 if len(item) == 3 else 18
    return {
        "COSE tag": cbor2.dumps(cbor2.CBORTag(tag, item)),
        "CWT and COSE tags": cbor2.dumps(cbor2.CBORTag(61, cbor2.CBORTag(tag, item))),
        "extra unprotected label": cbor2.dumps(extra_label),
        "unprotected map reordered": cbor2.dumps(reordered),
        "non-preferred length": b"\x98\x03" + token[1:],  # array head in two bytes
    }


# -- 2: revocation follows the token, not its bytes ---------------------------------------------


async def test_revoked_token_re_encoded_is_still_revoked(tmp_path: Path) -> None:
    async with deployment(tmp_path, observe_trl=True) as flow:
        trl = flow.rs_server.trl
        assert trl is not None
        await until(lambda: trl.observer.notifications >= 1)
        runner = await runner_for(flow)
        session = (await get_temp(runner, flow)).session
        assert session is not None
        before = trl.observer.notifications
        assert revoke(store_of(flow), client="clientA") == [token_hash(session.token)]
        await until(lambda: trl.observer.notifications > before and not flow.rs_server.core.live_labels())

        ctx = await flow.plain()
        for name, variant in re_encodings(session.token).items():
            payload = AuthzInfoRequest(access_token=variant, nonce1=secrets.token_bytes(8),
                                       ace_client_recipientid=b"\x33").encode()
            reply = await flow.post_authz_info(ctx, payload)
            # before the fix the tagged variants were bound (2.01): their hash was not on the TRL
            assert reply.code in ((4, 0), (4, 1)), (name, reply)
        assert not flow.rs_server.core.live_labels()


async def test_rs_forgets_no_revocation_across_tags(tmp_path: Path) -> None:
    """A token revoked before it ever reached the RS, then presented with a COSE tag around it."""
    async with deployment(tmp_path, observe_trl=True) as flow:
        trl = flow.rs_server.trl
        assert trl is not None
        await until(lambda: trl.observer.notifications >= 1)
        token, material = flow.token()
        flow.rs_server.revoked([token_hash(token)])  # what the RS's TRL observer does with the AS's list
        tagged = cbor2.dumps(cbor2.CBORTag(16, cbor2.loads(token)))
        session = await flow.post_token(await flow.plain(), tagged, material)
        assert session.response.code == (4, 1), session.response


# -- 8: a re-encoded replay of a DTLS token changes nothing ---------------------------------------


async def test_replayed_dtls_token_does_not_replace_the_binding_in_use(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as flow:
        runner = await runner_for(flow, AceProfile.COAP_DTLS)
        session = (await get_temp(runner, flow)).session
        assert session is not None
        core = flow.rs_server.core
        [binding] = list(core.bindings)
        assert core.bindings.used(binding.label)
        for name, variant in re_encodings(session.token).items():
            reply = await post_raw(flow, variant)
            assert reply.code in ((2, 1), (4, 0)), (name, reply)
            # before the fix the tagged token became a new binding, never used, for the same PSK
            assert core.bindings.get(binding.label) is binding, name
            assert core.bindings.used(binding.label), name
        await get_temp(runner, flow)  # the victim's session goes on
        assert core.bindings.get(binding.label) is binding


# -- 6: a kid in use is its client's ---------------------------------------------------------------


async def test_other_clients_token_for_a_live_edhoc_kid_is_refused(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as flow:
        key = load_key(flow.d.directory / "client-edhoc.key")
        runner = await runner_for(flow, AceProfile.COAP_EDHOC_OSCORE)
        await get_temp(runner, flow)
        core = flow.rs_server.core
        [binding] = list(core.bindings)
        assert isinstance(binding.context, EdhocChannel)
        # client B holds a token (from a careless AS, or the same kid with its own key) naming A's
        # credential and session, newer than A's: before the fix it was bound and A's binding and
        # contexts went. Draft -11: POSTed bare it is not taken at all (the token travels in EDHOC) ...
        claims = AccessTokenClaims(aud="rs1", sub="clientB", exp=int(time.time()) + 7200, iat=int(time.time()) + 1,
                                   cti=secrets.token_bytes(4), scope="r_temp", cnf=KccsCnf(binding.context.cred),
                                   edhoc_info=EdhocInfo(session_id=binding.context.session_id or b""))
        token = issue_token(claims, flow.token_key)
        reply = await post_raw(flow, token)
        assert reply.code == (4, 0), reply
        assert core.bindings.get(binding.label) is binding
        # ... and in EAD_3, by B with its own key under A's kid, MAC_3 fails: an EDHOC error, nothing bound
        ctx = await flow.plain()
        b = LakersInitiator(ctx, flow.rs_uri, edhoc.ccs_bytes(load_key(flow.d.directory / "rs1-edhoc.key").public()),
                            kid=key.kid or b"", c_i=b"\x11")
        await b.message_1()
        refused = await b.send_message_3(b.message_3([lakers.EADItem(24, True, token)]))
        assert (refused.code, refused.payload) == ((4, 0), edhoc_error("message_3 verification failed"))
        assert core.bindings.get(binding.label) is binding
        flow.exchanges.clear()
        await get_temp(runner, flow)
        assert flow.steps() == ["resource (EDHOC)"]  # A's EDHOC session was never torn down


# -- 9: junk at /authz-info costs the AS nothing and the log little --------------------------------


async def test_junk_at_authz_info_is_not_introspected(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with running_deployment(tmp_path) as flow:
        introspector = flow.rs_server.introspector
        assert introspector is not None  # the default deployment introspects reference tokens
        asked: list[bytes] = []
        real = introspector.introspect

        async def counting(payload: bytes) -> tuple[tuple[int, int] | None, bytes]:
            asked.append(payload)
            return await real(payload)

        introspector.introspect = counting  # type: ignore[method-assign]
        ctx = await flow.plain()
        caplog.set_level(logging.INFO, logger="ace.coap.rs_server")
        for i in range(60):
            junk = bytes([0x58, 34]) + secrets.token_bytes(34) if i % 2 else b"\x41" + secrets.token_bytes(35)
            msg = aiocoap.Message(code=aiocoap.POST, uri=flow.authz_info_uri, payload=junk)
            reply = await send(ctx, msg)
            assert reply.code == (4, 0), reply  # before the fix: one introspection each, 4.01 or 5.03
        assert asked == []
        warnings = [r for r in caplog.records if r.name == "ace.coap.rs_server" and r.levelno >= logging.WARNING]
        assert len(warnings) <= 11  # before the fix: one line per packet
        # a real reference token is still introspected and works
        assert (await get_temp(await runner_for(flow), flow)).response.code == (2, 5)


async def test_one_introspection_in_flight_per_peer(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as flow:
        introspector = flow.rs_server.introspector
        assert introspector is not None
        gate = asyncio.Event()
        asked: list[bytes] = []

        async def slow(payload: bytes) -> tuple[tuple[int, int] | None, bytes]:
            asked.append(payload)
            await asyncio.wait_for(gate.wait(), TIMEOUT)
            return None, b""

        introspector.introspect = slow  # type: ignore[method-assign]
        ctx = await flow.plain()

        async def post_reference() -> Reply:
            msg = aiocoap.Message(code=aiocoap.POST, uri=flow.authz_info_uri, payload=b"\x01" + secrets.token_bytes(15))
            return await send(ctx, msg)

        first = asyncio.ensure_future(post_reference())
        await until(lambda: len(asked) == 1)
        second = await post_reference()  # the same peer while its first is in flight
        assert second.code == (5, 3) and len(asked) == 1  # before the fix: a second slot taken
        gate.set()
        assert (await bounded(first)).code == (5, 3)  # no answer from the (stubbed) AS


# -- update of rights over OSCORE: the context ends with the new token ---------------------------------


async def test_update_over_oscore_moves_the_context_end(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as flow:
        runner = await runner_for(flow)
        session = (await get_temp(runner, flow)).session
        assert session is not None
        core = flow.rs_server.core
        [old] = list(core.bindings)
        (_, rs_ctx), = runner.channels[AceProfile.COAP_OSCORE].live.values()
        assert isinstance(rs_ctx, MemoryOscoreContext)
        claims = AccessTokenClaims(aud="rs1", sub="clientA", exp=int(time.time()) + 7200, cti=secrets.token_bytes(4),
                                   scope="r_temp", cnf=KidCnf(old.pop_id))
        msg = aiocoap.Message(code=aiocoap.POST, uri=flow.authz_info_uri, content_format=ACE_CBOR,
                              payload=codec.dumps({int(Param.ACCESS_TOKEN): issue_token(claims, flow.token_key)}))
        runner.context.client_credentials[msg.get_request_uri()] = rs_ctx
        assert (await send(runner.context, msg)).code == (2, 1)
        new = core.bindings.get(old.label)
        assert new is not None and new.expires_at is not None and old.expires_at is not None
        assert new.expires_at > old.expires_at + 1800
        [ctx] = [c for c in flow.rs_server.index if c.recipient_id == old.label]
        assert ctx.expires_at == new.expires_at  # before the fix: still the old token's end
        assert len(store_of(flow).issued_tokens()) == 1


def test_re_encodings_are_other_bytes_of_the_same_token() -> None:
    token = issue_token(AccessTokenClaims(aud="rs1", cti=b"\x01", scope="r"), symmetric_key(bytes(range(16)), kid=b"k"))
    variants = re_encodings(token)
    assert len(set(variants.values())) == len(variants) and token not in variants.values()
