"""Attacks on the AS (issue 17 items 1, 2, 6 and 10, the AS's side), replayed over real sockets on
::1 against an in-process AS + RS from an ``ace init`` deployment, and ``ace policy add-rs`` run
as a subprocess. Each test failed on the code before the fix; the comment says how.

- 1: an RS registered with ``--kind sign1`` (or mac0) and the OSCORE profile got signed tokens
  whose cnf carried the OSCORE master secret in clear (old: add-rs exit 0, /token 2.01).
- 2: a revoked client re-encoded its own token (a COSE tag around it, an extra unprotected header
  label): /introspect hashed the bytes presented, found no TRL entry and answered active.
- 6: registered client B asked for an EDHOC token with victim A's kid (with B's key, or with A's
  public key): the AS issued it (old: 2.01), so B could displace A's binding at the RS.
- 6, second review: ownership was per audience (B presented A's public key at rs2 before A used it
  there: A refused at rs2 for good), and a claim was written even when the request was then refused.
- 10: a client minted tokens without limit, the log was never purged, and every /revoke/trl query
  decoded all the requester's logged tokens (old: 300 rows, 300 decodes per query, no limit).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiocoap
import cbor2
import pytest
from deployment import Flow, send, store_of
from support import Reply, bounded

from ace.authz_server import trl
from ace.authz_server.token import TokenPolicy
from ace.cbor.labels import AceProfile, Curve
from ace.cli import revoke_cmd, roles
from ace.cli.config import load_as, load_rs
from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import init_deployment
from ace.cli.keyfiles import load_key, save_key
from ace.client.flow import ClientConfig, ClientFlow
from ace.coap.as_server import AsServer
from ace.coap.client import ClientRunner
from ace.coap.trl_client import trl_uri
from ace.errors import ConfigError
from ace.messages import AccessTokenRequest, AccessTokenResponse, IntrospectionRequest, IntrospectionResponse
from ace.store import codec as store_codec
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.seqno import FileSequenceStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import KccsCnf, KidCnf, OscoreCnf, OscoreInputMaterial
from ace.tokens.crypto import generate
from ace.tokens.cwt import KeyRing, issue_token, verify_token
from ace.tokens.keys import CoseKey, symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

EDHOC = int(AceProfile.COAP_EDHOC_OSCORE)
INACTIVE = b"\xa1\x0a\xf4"  # {10: false}


async def token_request(flow: Flow, runner: ClientRunner, **kw: Any) -> Reply:
    return await flow.post_to_as(runner, AccessTokenRequest(**kw).encode())


def error_of(reply: Reply) -> int:
    decoded = cbor2.loads(reply.payload)
    assert isinstance(decoded, dict)
    return int(decoded[30])


# -- 1. the OSCORE master secret in a signed token --------------------------------------------------


def ace_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``ace`` as a subprocess (the interpreter running the tests: ace from PYTHONPATH or the venv)."""
    return subprocess.run([sys.executable, "-m", "ace.cli.main", *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("options", [
    ["--kind", "sign1"],  # the profiles add-rs registers by default: coap_oscore
    ["--kind", "mac0"],
    ["--kind", "sign1", "--profiles", "coap_dtls"],
    ["--kind", "mac0", "--profiles", "coap_edhoc_oscore,coap_oscore"],
], ids=["sign1", "mac0", "sign1-dtls", "mac0-edhoc-and-oscore"])
def test_add_rs_refuses_readable_tokens_for_profiles_with_a_secret(tmp_path: Path, options: list[str]) -> None:
    d = init_deployment(tmp_path / "deployment", as_port=free_port(), rs_port=free_port())
    kind = options[1]
    key = generate(Curve.P_256, kid=b"s") if kind == "sign1" else symmetric_key(secrets.token_bytes(32))
    save_key(tmp_path / "rs9.key", key)
    done = ace_cli("policy", "--config", d.as_config, "add-rs", "rs9", "--token-key", tmp_path / "rs9.key", *options)
    assert done.returncode == 2, done  # old: 0, "registered RS rs9"
    [line] = done.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("ace: error: add-rs rs9:") and "encrypt0" in line and "Traceback" not in done.stderr
    with SqliteAsStore(d.as_config.parent / "as.db") as store:
        assert store.get_rs("rs9") is None


def test_add_rs_accepts_signed_tokens_for_edhoc_only(tmp_path: Path) -> None:
    d = init_deployment(tmp_path / "deployment", as_port=free_port(), rs_port=free_port())
    save_key(tmp_path / "rs9.key", generate(Curve.P_256, kid=b"s"))
    done = ace_cli("policy", "--config", d.as_config, "add-rs", "rs9", "--token-key", tmp_path / "rs9.key",
                   "--kind", "sign1", "--profiles", "coap_edhoc_oscore", "--auth-key", d.directory / "rs1-edhoc.key")
    assert done.returncode == 0 and done.stdout.strip() == "registered RS rs9", done
    with SqliteAsStore(d.as_config.parent / "as.db") as store:
        rs = store.get_rs("rs9")
        assert rs is not None and rs.token_kind == "sign1" and rs.profiles == (EDHOC,)
        assert rs.auth_key == load_key(d.directory / "rs1-edhoc.key").public()


def register_rs(flow: Flow, audience: str, kind: str, profiles: tuple[int, ...]) -> CoseKey:
    """An RS registered as an older ace (or a hand-edited store) could: the combination add-rs refuses."""
    key = generate(Curve.P_256, kid=b"s") if kind == "sign1" else symmetric_key(secrets.token_bytes(32))
    store = store_of(flow)
    store.put_rs(RsRecord(audience=audience, rs_id=audience, token_key=key, token_kind=kind, profiles=profiles,
                          auth_key=generate(Curve.P_256, kid=b"r").public()))
    store.add_grant(Grant(client_id="clientA", audience=audience, scope="r_temp", default=True))
    return key


@pytest.mark.parametrize(("kind", "profile"), [("sign1", 2), ("mac0", 2), ("sign1", 1), ("mac0", 1)],
                         ids=["sign1-oscore", "mac0-oscore", "sign1-dtls", "mac0-dtls"])
async def test_no_token_carries_a_secret_unencrypted(flow: Flow, kind: str, profile: int,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    register_rs(flow, "rs9", kind, (2, 1))
    runner = await flow.client(record=False)
    with caplog.at_level(logging.WARNING, logger="ace.authz_server.token"):
        reply = await token_request(flow, runner, audience="rs9", ace_profile=profile)
    # old (OSCORE): 2.01, and the token's payload carried {8: {4: {2: ms, ...}}} readable by anyone
    assert reply.code == (4, 0) and error_of(reply) == 8, reply  # incompatible_ace_profiles
    assert any("rs9" in r.getMessage() and "secret" in r.getMessage() for r in caplog.records)
    assert store_of(flow).find_tokens(audience="rs9") == []
    assert (await token_request(flow, runner, audience="rs1", ace_profile=profile)).code == (2, 1)  # AS serves on


async def test_a_public_key_may_travel_in_a_signed_token(flow: Flow) -> None:
    key = register_rs(flow, "rs9", "sign1", (EDHOC,))
    runner = await flow.client(record=False)
    credential = KccsCnf.of_key(load_key(flow.d.directory / "client-edhoc.key").public())  # EDHOC -11 §3.1
    reply = await token_request(flow, runner, audience="rs9", ace_profile=EDHOC, req_cnf=credential)
    assert reply.code == (2, 1), reply
    token = AccessTokenResponse.decode(reply.payload).access_token
    claims = verify_token(token, KeyRing([key.public()]), audience="rs9", clock=time.time)
    assert claims.cnf == credential and claims.cnf.key.d is None


# -- 2. revocation bypass by re-encoding, at /introspect ------------------------------------------


def re_encodings(token: bytes) -> dict[str, bytes]:
    """The same COSE_Encrypt0 (same protected header, same ciphertext) in other bytes."""
    message = cbor2.loads(token)
    assert isinstance(message, list) and isinstance(message[1], dict)
    extra_label = [message[0], {**message[1], 99: b"x"}, *message[2:]]
    return {"cose-tag-16": cbor2.dumps(cbor2.CBORTag(16, message)),
            "cwt-tag-61": cbor2.dumps(cbor2.CBORTag(61, cbor2.CBORTag(16, message))),
            "extra-unprotected-label": cbor2.dumps(extra_label)}


async def introspect(flow: Flow, token: bytes) -> bytes:
    """POST /introspect as the RS does, over the RS's own OSCORE context with the AS."""
    client = flow.rs_server.introspector
    assert client is not None
    code, payload = await bounded(client.introspect(IntrospectionRequest(token=token).encode()))
    assert code == (2, 1), (code, payload)  # RFC 9200 §5.9.2: 2.01 Created
    return payload


async def test_revoked_token_stays_inactive_however_re_encoded(flow: Flow) -> None:
    runner = await flow.client(record=False)
    reply = await token_request(flow, runner, audience="rs1", scope="r_temp")
    assert reply.code == (2, 1)
    token = AccessTokenResponse.decode(reply.payload).access_token
    assert IntrospectionResponse.decode(await introspect(flow, token)).active
    assert trl.revoke_token(store_of(flow), token, clock=time.time) == trl.token_hash(token)  # `ace revoke`
    assert await introspect(flow, token) == INACTIVE
    for name, bytes_ in re_encodings(token).items():
        assert trl.token_hash(bytes_) != trl.token_hash(token)
        assert await introspect(flow, bytes_) == INACTIVE, name  # old: active (its hash was on no TRL)


async def test_a_token_the_as_never_issued_is_inactive(flow: Flow) -> None:
    # made with the RS's token key (as the RS itself, or a leaked key, could), never logged at the AS
    material = OscoreInputMaterial(id=b"\x77", ms=secrets.token_bytes(16))
    claims = AccessTokenClaims(aud="rs1", exp=int(time.time()) + 600, cti=b"\x7f\xff\xff\xff", scope="r_temp",
                               cnf=OscoreCnf(material), sub="clientA")
    assert await introspect(flow, issue_token(claims, flow.token_key)) == INACTIVE  # old: active


# -- 6. kid hijack ---------------------------------------------------------------------------------


async def second_client(flow: Flow, directory: Path, client_id: str = "clientB") -> ClientRunner:
    """A registered, granted client with its own OSCORE context with the AS; stopped by the fixture."""
    ms, rid = secrets.token_bytes(16), b"\x0b"
    store = store_of(flow)
    store.put_client(ClientRecord(client_id=client_id, profiles=(2, 1, 4),
                                  oscore=OscoreContextParams(master_secret=ms, sender_id=b"\x00", recipient_id=rid)))
    store.add_grant(Grant(client_id=client_id, audience="rs1", scope="r_temp", default=True))
    runner = ClientRunner(ClientFlow(ClientConfig(client_id=client_id, as_uri=flow.d.as_uri), clock=time.time),
                          as_secret=OscoreContextParams(master_secret=ms, sender_id=rid, recipient_id=b"\x00"),
                          as_uri=flow.d.as_uri, seqno_store=FileSequenceStore(directory / "b-state.json"))
    flow._runners.append(runner)
    await bounded(runner.start())
    return runner


async def test_another_clients_edhoc_kid_or_key_is_refused(flow: Flow, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    alice = await flow.client(record=False)
    a_key = load_key(flow.d.directory / "client-edhoc.key").public()  # kid "cA"
    assert (await token_request(flow, alice, audience="rs1", ace_profile=EDHOC, req_cnf=KccsCnf.of_key(a_key))).code \
        == (2, 1)
    bob = await second_client(flow, tmp_path)
    b_key = generate(Curve.P_256, kid=b"cA").public()
    attempts = {"own-key-victims-kid": b_key, "victims-key": a_key, "victims-key-other-kid": a_key.with_kid(b"cB")}
    with caplog.at_level(logging.WARNING, logger="ace.authz_server.token"):
        for name, key in attempts.items():
            reply = await token_request(flow, bob, audience="rs1", ace_profile=EDHOC, req_cnf=KccsCnf.of_key(key))
            assert reply.code == (4, 0) and error_of(reply) == 1, (name, reply)  # old: 2.01
    assert sum(r.name == "ace.authz_server.token" and "clientB" in r.getMessage() and "another client"
               in r.getMessage() for r in caplog.records) == 3
    assert {t.client_id for t in store_of(flow).find_tokens(audience="rs1")} == {"clientA"}
    own = KccsCnf.of_key(b_key.with_kid(b"cB"))  # its own key under a kid of its own: served
    assert (await token_request(flow, bob, audience="rs1", ace_profile=EDHOC, req_cnf=own)).code == (2, 1)
    again = await token_request(flow, alice, audience="rs1", ace_profile=EDHOC, req_cnf=KccsCnf.of_key(a_key))
    assert again.code == (2, 1)  # the victim keeps its credential


# -- 10. token-log growth and the TRL's cost ----------------------------------------------------------


class Clock:
    """The AS's clock: real time plus an offset the test moves (tokens expire without waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def clocked_deployment(directory: Path, clock: Clock, lifetime: int) -> AsyncIterator[Flow]:
    d = init_deployment(directory, as_port=free_port(), rs_port=free_port())
    cfg = load_as(d.as_config)
    store = SqliteAsStore(cfg.store)
    rs = store.get_rs("rs1")
    assert rs is not None
    store.put_rs(dataclasses.replace(rs, token_lifetime=lifetime))
    as_server = AsServer(store, bind=(cfg.bind, cfg.port), policy=TokenPolicy(), clock=clock)
    as_server.trl_watch.interval = 3600.0  # the test polls it itself
    rs_cfg = load_rs(d.rs_config)
    flow = Flow(d, as_server, roles.build_rs(rs_cfg), load_key(d.directory / "rs1-token.key"), rs_cfg)
    try:
        await bounded(as_server.start())
        await bounded(flow.rs_server.start())
        yield flow
    finally:
        await flow.close()


def counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the token-log rows the store decodes (``codec.token_from_row``)."""
    calls = [0]
    real: Callable[..., Any] = store_codec.token_from_row

    def counted(row: Any) -> Any:
        calls[0] += 1
        return real(row)

    monkeypatch.setattr(store_codec, "token_from_row", counted)
    return calls


TOKENS, WAVE, LIFETIME = 300, 50, 10


async def test_token_log_is_purged_and_trl_queries_do_not_decode_tokens(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    async with clocked_deployment(tmp_path / "deployment", clock, LIFETIME) as flow:
        runner = await flow.client(record=False)
        for i in range(TOKENS):  # waves of 50 live tokens; each wave outlives the one before
            if i and i % WAVE == 0:
                clock.offset += LIFETIME + 1
            reply = await token_request(flow, runner, audience="rs1", scope="r_temp")
            assert reply.code == (2, 1), (i, reply)
        store = store_of(flow)
        revoked = trl.revoke_tokens(store, client_id="clientA", audience="rs1", clock=clock)  # the live wave
        flow.as_server.trl_watch.poll()  # the AS takes the revocations in, as its task does
        calls = counting(monkeypatch)
        reply = await send(runner.context, aiocoap.Message(code=aiocoap.GET, uri=trl_uri(flow.d.as_uri)))
        assert reply.code == (2, 5), reply
        assert calls[0] == 0  # old: 600, every logged token of the requester twice, on the event loop
        assert sorted(trl.decode_full_set(reply.payload)) == sorted(revoked) and len(revoked) == WAVE
        logged = store.issued_tokens(limit=2 * TOKENS)
        assert len(logged) == WAVE, len(logged)  # old: 300 (never purged)
        assert {t.token_hash for t in logged} == set(revoked)


async def test_live_tokens_per_client_and_audience_are_limited(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limit = 256  # the default of as.toml [as] max_live_tokens
    async with clocked_deployment(tmp_path / "deployment", clock, LIFETIME) as flow:
        runner = await flow.client(record=False)
        for i in range(limit):
            assert (await token_request(flow, runner, audience="rs1")).code == (2, 1), i
        with caplog.at_level(logging.WARNING, logger="ace.authz_server.token"):
            refused = await token_request(flow, runner, audience="rs1")
        assert refused.code == (4, 0) and error_of(refused) == 1, refused  # old: 2.01, without end
        assert any("live tokens" in r.getMessage() for r in caplog.records)
        store = store_of(flow)
        assert len(store.find_tokens(client_id="clientA")) == limit
        oldest = store.find_tokens(client_id="clientA")[-1]
        trl.revoke_issued(store, [oldest], now=int(clock()))  # a revoked token is no longer live
        assert (await token_request(flow, runner, audience="rs1")).code == (2, 1)
        assert (await token_request(flow, runner, audience="rs1")).code == (4, 0)
        clock.offset += LIFETIME + 1  # all expired: served again
        assert (await token_request(flow, runner, audience="rs1")).code == (2, 1)
    assert TokenPolicy().max_live_tokens == limit


def test_max_live_tokens_comes_from_as_toml(tmp_path: Path) -> None:
    d = init_deployment(tmp_path / "deployment", as_port=free_port(), rs_port=free_port())
    assert load_as(d.as_config).max_live_tokens == 256  # what ace init writes, and the default
    text = d.as_config.read_text()
    assert "\nmax_live_tokens = 256 " in text
    d.as_config.write_text(text.replace("\nmax_live_tokens = 256 ", "\n# "))
    assert load_as(d.as_config).max_live_tokens == 256
    for value, ok in (("5", True), ("0", False), ('"5"', False)):
        d.as_config.write_text(text.replace("\nmax_live_tokens = 256 ", f"\nmax_live_tokens = {value} "))
        if ok:
            server = roles.build_as(load_as(d.as_config))
            assert server.endpoint.policy.max_live_tokens == 5
            server.store.close()
        else:
            with pytest.raises(ConfigError, match="max_live_tokens"):
                load_as(d.as_config)


# -- issue 17 review: what the first AS fixes left open ---------------------------------------------


async def edhoc_token(flow: Flow, runner: ClientRunner, key: CoseKey) -> Reply:
    return await token_request(flow, runner, audience="rs1", ace_profile=EDHOC, req_cnf=KccsCnf.of_key(key))


async def test_a_squatted_kid_goes_back_to_the_client_the_operator_registers(flow: Flow, tmp_path: Path) -> None:
    """B asked first with A's kid and renewed: A was refused for as long as B kept renewing. (A's key
    from ``ace init`` is registered now: this is a second key of A's, with a kid of its own.)"""
    bob = await second_client(flow, tmp_path)
    assert (await edhoc_token(flow, bob, generate(Curve.P_256, kid=b"cC").public())).code == (2, 1)
    alice = await flow.client(record=False)
    a_file = tmp_path / "a-second-edhoc.key"  # kid "cC"
    save_key(a_file, generate(Curve.P_256, kid=b"cC"))
    assert (await edhoc_token(flow, alice, load_key(a_file).public())).code == (4, 0)
    done = ace_cli("policy", "--config", flow.d.as_config, "add-client", "clientA", "--edhoc-key", a_file)
    assert done.returncode == 0, done.stderr  # old: exit 2, no --edhoc-key
    assert "revoked 1 live token" in done.stdout  # bob's, bound to kid cC
    assert (await edhoc_token(flow, alice, load_key(a_file).public())).code == (2, 1)
    for key in (generate(Curve.P_256, kid=b"cC").public(), load_key(a_file).public().with_kid(b"cB")):
        reply = await edhoc_token(flow, bob, key)
        assert reply.code == (4, 0) and error_of(reply) == 1, reply


async def test_the_victims_key_stays_its_own_after_its_tokens_expired(tmp_path: Path) -> None:
    clock = Clock()
    async with clocked_deployment(tmp_path / "deployment", clock, LIFETIME) as flow:
        alice = await flow.client(record=False)
        a_key = load_key(flow.d.directory / "client-edhoc.key").public()
        assert (await edhoc_token(flow, alice, a_key)).code == (2, 1)
        clock.offset += LIFETIME + 1  # all of A's tokens expired
        bob = await second_client(flow, tmp_path)
        for key in (a_key, generate(Curve.P_256, kid=b"cA").public()):
            reply = await edhoc_token(flow, bob, key)
            assert reply.code == (4, 0) and error_of(reply) == 1, reply  # old: 2.01, then B renews for good
        assert (await edhoc_token(flow, alice, a_key)).code == (2, 1)


async def test_no_update_of_rights_with_the_key_of_a_revoked_token(flow: Flow) -> None:
    runner = await flow.client(record=False)
    reply = await token_request(flow, runner, audience="rs1", scope="r_temp")
    response = AccessTokenResponse.decode(reply.payload)
    assert isinstance(response.cnf, OscoreCnf)
    trl.revoke_token(store_of(flow), response.access_token, clock=time.time)  # e.g. its master secret leaked
    update = await token_request(flow, runner, audience="rs1", scope="r_temp", req_cnf=KidCnf(response.cnf.material.id))
    assert update.code == (4, 0) and error_of(update) == 1, update  # old: 2.01, a new token for the leaked key


async def test_a_re_encoded_token_revokes_the_logged_one(flow: Flow) -> None:
    runner = await flow.client(record=False)
    token = AccessTokenResponse.decode((await token_request(flow, runner, audience="rs1")).payload).access_token
    for name, variant in re_encodings(token).items():  # the bytes the operator copied off the wire
        assert revoke_cmd.revoke(store_of(flow), token=variant) in ([trl.token_hash(token)], []), name  # old: error
    assert await introspect(flow, token) == INACTIVE
    with pytest.raises(ConfigError):
        revoke_cmd.revoke(store_of(flow), token=b"\x84" + token[1:-1])


async def test_the_as_forgets_expired_tokens_without_issuing_more(tmp_path: Path) -> None:
    clock = Clock()
    async with clocked_deployment(tmp_path / "deployment", clock, LIFETIME) as flow:
        runner = await flow.client(record=False)
        for _ in range(3):
            assert (await token_request(flow, runner, audience="rs1")).code == (2, 1)
        clock.offset += LIFETIME + 1
        flow.as_server.trl_watch.purge()  # what its task does every PURGE_SECONDS
        assert store_of(flow).issued_tokens() == []  # old: kept until the next token issued


async def test_unauthenticated_posts_do_not_flood_the_log(flow: Flow, caplog: pytest.LogCaptureFixture) -> None:
    ctx = await aiocoap.Context.create_client_context()
    try:
        with caplog.at_level(logging.WARNING):
            for uri in (flow.d.as_uri, trl_uri(flow.d.as_uri, "/introspect")):
                for _ in range(30):
                    reply = await send(ctx, aiocoap.Message(code=aiocoap.POST, uri=uri, payload=b"\xa0",
                                                            content_format=19))
                    assert reply.code == (4, 1)
    finally:
        await ctx.shutdown()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING and "refused" in r.getMessage()]
    assert len(lines) <= 2 * 10, len(lines)  # old: 60, one per datagram


# -- issue 17, second review: one owner per key at every audience; a refused request claims nothing --


def edhoc_rs(flow: Flow, audience: str) -> None:
    """Another RS offering coap_edhoc_oscore that clientA and clientB may use (the AS needs no running RS)."""
    store = store_of(flow)
    store.put_rs(RsRecord(audience=audience, rs_id=audience, token_key=symmetric_key(secrets.token_bytes(16)),
                          profiles=(EDHOC,), auth_key=generate(Curve.P_256, kid=b"r2").public()))
    for client in ("clientA", "clientB"):
        store.add_grant(Grant(client_id=client, audience=audience, scope="r_temp", default=True))


async def edhoc_token_at(flow: Flow, runner: ClientRunner, key: CoseKey, audience: str) -> Reply:
    return await token_request(flow, runner, audience=audience, ace_profile=EDHOC, req_cnf=KccsCnf.of_key(key))


async def test_a_key_belongs_to_its_first_presenter_at_every_audience(flow: Flow, tmp_path: Path) -> None:
    """B presented A's public key (seen in EDHOC message_3) at rs2 before A went there: 2.01, and A
    was refused at rs2 for good (ownership per audience)."""
    bob = await second_client(flow, tmp_path)
    edhoc_rs(flow, "rs2")
    alice = await flow.client(record=False)
    registered = load_key(flow.d.directory / "client-edhoc.key").public()  # ace init registered it for A
    unregistered = generate(Curve.P_256, kid=b"cC").public()  # A's second key: first presented
    for key in (registered, unregistered):
        assert (await edhoc_token(flow, alice, key)).code == (2, 1)
        for squat in (key, key.with_kid(b"cZ")):
            reply = await edhoc_token_at(flow, bob, squat, "rs2")
            assert reply.code == (4, 0) and error_of(reply) == 1, (key.kid, reply)  # old: 2.01
        assert (await edhoc_token_at(flow, alice, key, "rs2")).code == (2, 1)  # old: 4.00, for good
    assert {t.client_id for t in store_of(flow).find_tokens(audience="rs2")} == {"clientA"}
    own = generate(Curve.P_256, kid=b"cA").public()  # kid cA, registered for A: not at rs2 either
    assert (await edhoc_token_at(flow, bob, own, "rs2")).code == (4, 0)
    assert (await edhoc_token_at(flow, bob, own.with_kid(b"b1"), "rs2")).code == (2, 1)  # its own key and kid


async def test_a_refused_token_request_claims_no_credential(flow: Flow, tmp_path: Path) -> None:
    """B, at its live-token limit, presented A's key: refused (4.00), yet the claim was written, and A
    was refused its own key (old: 4.00 for A)."""
    flow.as_server.endpoint.policy = TokenPolicy(max_live_tokens=1)
    bob = await second_client(flow, tmp_path)
    assert (await edhoc_token(flow, bob, generate(Curve.P_256, kid=b"b1").public())).code == (2, 1)
    a_key = generate(Curve.P_256, kid=b"cC").public()  # A's, not registered: first presented
    refused = await edhoc_token(flow, bob, a_key)
    assert refused.code == (4, 0) and error_of(refused) == 1, refused  # the live-token limit
    store = store_of(flow)
    assert [kid for _, kid, _ in store.edhoc_credentials("clientB")] == [b"b1"]  # old: b1 and cC
    alice = await flow.client(record=False)
    assert (await edhoc_token(flow, alice, a_key)).code == (2, 1)  # old: 4.00
    assert ("rs1", b"cC") in {(aud, kid) for aud, kid, _ in store.edhoc_credentials("clientA")}
