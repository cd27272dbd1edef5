"""The A–F flow with the EDHOC + OSCORE profile over real loopback sockets
(draft-ietf-ace-edhoc-oscore-profile, RFC 9528, RFC 9200).

An AS and an RS from an ``ace init`` deployment run in-process on ::1 (``tests/deployment.py``);
the client is the real ``ClientRunner`` asking for ``coap_edhoc_oscore`` (profile 4) at draft -11:
it sends its credential as kccs in req_cnf, gets the RS's as rs_cnf and edhoc_info, and runs EDHOC
(method 3, suite 2) with the RS carrying the token in EAD_3 (no POST /authz-info), whose OSCORE
context it pins for later requests. Handshakes are counted on the RS: every message_1
(``AceEdhocSite._process_edhoc_msg12``) and every token admitted from a message_3
(``EdhocChannels.admit``, with its ID_CRED_I). Every server and client is stopped by the
fixture; every await is bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiocoap
import pytest
from aiocoap.edhoc import EdhocInitiatorContext
from deployment import Flow, replace_as, replace_rs, send, store_of
from support import Reply, bounded

from ace.cbor.labels import AceProfile, ContentFormat, Curve
from ace.cli.config import load_oscore_secret
from ace.cli.keyfiles import load_key
from ace.client.flow import ClientConfig, ClientFlow, Done, EdhocSession, Failed, ResourceRequest, Session
from ace.coap import edhoc
from ace.coap import rs_server as rs_server_module
from ace.coap.client import ClientRunner
from ace.coap.edhoc_client import TokenEdhoc, TokenOffer
from ace.coap.edhoc_server import AceEdhocSite
from ace.coap.render import pair_of
from ace.coap.rs_channels_edhoc import EdhocChannels
from ace.errors import ErrorCode
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.profiles.edhoc import EdhocChannel, credential
from ace.profiles.edhoc_presets import DEFAULT_PRESET, preset
from ace.store.base import ClientRecord, Grant
from ace.store.seqno import FileSequenceStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import KccsCnf
from ace.tokens.crypto import generate
from ace.tokens.cwt import DEFAULT_SKEW, KeyRing, issue_token, verify_token
from ace.tokens.edhoc_info import EdhocInfo
from ace.tokens.keys import CoseKey
from ace.tokens.oscore_params import OscoreContextParams

EDHOC = AceProfile.COAP_EDHOC_OSCORE  # 4
CWT = int(ContentFormat.CWT)
FULL = ["resource", "token", "resource (EDHOC)"]  # EP §4.3: the token rides in EAD_3
REUSED = ["resource (EDHOC)"]
RENEWED = ["resource (EDHOC)", "token", "resource (EDHOC)"]
RUNNER_TIMEOUT = 3.0  # per CoAP request of a runner


# -- fixtures and helpers ---------------------------------------------------------------------


@dataclasses.dataclass
class Handshakes:
    """What the RS saw of EDHOC: message_1s processed, and the ID_CRED_I of each token admitted
    from a message_3."""

    message_1: int = 0
    lookups: list[bytes] = dataclasses.field(default_factory=list)


@pytest.fixture
def handshakes(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> Handshakes:
    """Counts the RS's EDHOC work (hooks on the classes: they hold after ``replace_rs`` too)."""
    seen = Handshakes()
    msg12: Callable[[Any, Any], None] = AceEdhocSite._process_edhoc_msg12
    admit: Callable[..., Any] = EdhocChannels.admit

    def counting_msg12(self: Any, pipe: Any) -> None:
        seen.message_1 += 1
        msg12(self, pipe)

    def counting_admit(self: Any, token: bytes, id_cred_i: bytes) -> Any:
        seen.lookups.append(bytes(id_cred_i))
        return admit(self, token, id_cred_i)

    monkeypatch.setattr(AceEdhocSite, "_process_edhoc_msg12", counting_msg12)
    monkeypatch.setattr(EdhocChannels, "admit", counting_admit)
    return seen


def count_lookups(flow: Flow, seen: Handshakes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hooks are on the classes (``handshakes``): nothing to re-apply after ``replace_rs``."""


class Clock:
    """The AS's and the RS's clock: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def origin(flow: Flow) -> str:
    return flow.rs_uri


def req(flow: Flow, method: str, path: str, payload: bytes = b"") -> ResourceRequest:
    return ResourceRequest(method=method, uri=flow.rs_uri + path, payload=payload)


def rs_key(flow: Flow) -> CoseKey:
    return load_key(flow.d.directory / "rs1-edhoc.key")


def rs_cred(flow: Flow) -> bytes:
    """CRED_R: the RS's CCS as it runs EDHOC with it (and the AS sends it as rs_cnf)."""
    return edhoc.ccs_bytes(rs_key(flow).public())


def client_key_of(flow: Flow) -> CoseKey:
    return load_key(flow.d.directory / "client-edhoc.key")


def new_key(kid: bytes) -> CoseKey:
    return generate(Curve.P_256, kid=kid)


def as_secret_of(flow: Flow) -> OscoreContextParams:
    return load_oscore_secret(flow.d.directory / "client-as.oscore.toml")


async def edhoc_client(flow: Flow, *, key: CoseKey | None = None, client_id: str = "clientA",
                       as_secret: OscoreContextParams | None = None, state: Path | None = None,
                       record: bool = True) -> ClientRunner:
    """A runner asking for coap_edhoc_oscore with ``key`` (default: client-edhoc.key), as
    ``client_id`` at the AS (default: clientA over client-as.oscore.toml); stopped by the fixture."""
    config = ClientConfig(client_id=client_id, as_uri=flow.d.as_uri, profile=EDHOC,
                          edhoc_key=key if key is not None else client_key_of(flow))
    runner = ClientRunner(ClientFlow(config, clock=time.time),
                          as_secret=as_secret if as_secret is not None else as_secret_of(flow),
                          as_uri=flow.d.as_uri,
                          seqno_store=FileSequenceStore(state or flow.d.directory / "client-state.json"),
                          observer=flow.exchanges.append if record else None, timeout=RUNNER_TIMEOUT)
    flow._runners.append(runner)
    await bounded(runner.start())
    return runner


async def impostor(flow: Flow, tmp_path: Path, key: CoseKey, token: bytes, session_id: bytes) -> ClientRunner:
    """A runner (no AS) that holds ``token`` (stolen) and believes it holds an EDHOC session with
    the RS, with ``key``."""
    name = f"impostor-{secrets.token_hex(4)}"
    config = ClientConfig(client_id=name, profile=EDHOC, edhoc_key=key)
    runner = ClientRunner(ClientFlow(config, clock=time.time), as_secret=None, as_uri=None,
                          seqno_store=FileSequenceStore(tmp_path / f"{name}.json"),
                          observer=flow.exchanges.append, timeout=RUNNER_TIMEOUT)
    state = EdhocSession(info=EdhocInfo(session_id=session_id), own_credential=credential(key).cred,
                         rs_credential=rs_cred(flow))
    runner.flow.sessions[origin(flow)] = Session(origin=origin(flow), token=token,
                                                 context=EdhocChannel(rs_key(flow).public(), rs_cred(flow)),
                                                 expires_at=None, scope="r_temp", id=99, edhoc=state)
    flow._runners.append(runner)
    await bounded(runner.start())
    return runner


async def stop_runner(flow: Flow, runner: ClientRunner) -> None:
    await bounded(runner.stop())
    flow._runners.remove(runner)


async def run(runner: ClientRunner, flow: Flow, method: str = "GET", path: str = "/temp",
              payload: bytes = b"") -> Done | Failed:
    return await bounded(runner.request(req(flow, method, path, payload)), 4 * RUNNER_TIMEOUT)


async def get_temp(runner: ClientRunner, flow: Flow) -> Done:
    got = await run(runner, flow)
    assert isinstance(got, Done), got
    assert got.response.code == (2, 5), got
    assert 15.0 < float(got.response.payload.decode()) < 30.0
    return got


def token_responses(flow: Flow) -> list[AccessTokenResponse]:
    return [AccessTokenResponse.decode(e.response.payload) for e in flow.exchanges
            if e.step == "token" and e.response.code == (2, 1)]


def edhoc_token(flow: Flow, key: CoseKey, *, scope: str = "r_temp", sub: str | None = None,
                exp: float | None = None, session_id: bytes | None = None) -> bytes:
    """A token as the AS would issue it for this RS (EP §3.3.1: cnf kccs, edhoc_info session_id),
    bound to ``key``'s public part."""
    claims = AccessTokenClaims(aud="rs1", exp=int(time.time() + 600 if exp is None else exp),
                               cti=secrets.token_bytes(4), scope=scope, sub=sub, cnf=credential(key),
                               edhoc_info=EdhocInfo(session_id=session_id or secrets.token_bytes(8)))
    return issue_token(claims, flow.token_key)


async def post_token_plain(flow: Flow, token: bytes) -> Reply:
    ctx = await flow.plain()
    msg = aiocoap.Message(code=aiocoap.POST, uri=flow.authz_info_uri, payload=token, content_format=CWT)
    return await send(ctx, msg)


async def edhoc_get(flow: Flow, key: CoseKey, token: bytes, path: str = "/temp") -> tuple[Reply, edhoc.ClientEdhoc]:
    """GET over a new EDHOC handshake with ``key`` carrying ``token`` in EAD_3, from a fresh aiocoap
    context (kept open for the returned session; the fixture stops it). An EDHOC error or a refused
    message_3 comes back unprotected."""
    ctx = await flow.plain()
    assert key.d is not None and key.kid is not None
    offer = TokenOffer(token=token, cred_i=credential(key).cred, cred_r=rs_cred(flow), private_key=key.d,
                       kid=key.kid, ead_token=preset(DEFAULT_PRESET).ead_token)
    session = edhoc.ClientEdhoc(ctx, edhoc.edhoc_origin("::1", flow.rs_server.bind[1]) + "/*", TokenEdhoc(offer))
    session.reset()
    msg = aiocoap.Message(code=aiocoap.GET, uri=flow.rs_uri + path)
    try:
        raw = await bounded(ctx.request(msg).response)
    except aiocoap.oscore.NotAProtectedMessage as exc:
        plain = exc.plain_message
        return Reply(pair_of(plain.code), plain.payload, plain.opt.content_format, False), session
    session.pin(raw)
    return Reply(pair_of(raw.code), raw.payload, None, True), session


def pinned_context(runner: ClientRunner, flow: Flow) -> Any:
    _, session = runner.channels[AceProfile.COAP_EDHOC_OSCORE].live[origin(flow)]
    ctx = runner.context.client_credentials.get(session.map_key)
    assert isinstance(ctx, EdhocInitiatorContext) and session.pinned
    return ctx


async def get_over(runner: ClientRunner, flow: Flow) -> Reply:
    """GET /temp through the runner's aiocoap context (its pinned OSCORE context), not its flow."""
    return await send(runner.context, aiocoap.Message(code=aiocoap.GET, uri=flow.rs_uri + "/temp"))


def responders(flow: Flow) -> list[edhoc.ResponderEntry]:
    return edhoc.responder_contexts(flow.rs_server.credentials)


def labels(flow: Flow) -> set[bytes]:
    return flow.rs_server.core.live_labels()


# -- 1. the full flow, token contents, context reuse --------------------------------------------


async def test_full_edhoc_flow_and_context_reuse(flow: Flow, handshakes: Handshakes) -> None:
    own = client_key_of(flow)
    client = await edhoc_client(flow)
    got = await get_temp(client, flow)
    assert flow.steps() == FULL
    probe, token_x, resource_x = flow.exchanges
    assert probe.response.code == (4, 1) and not probe.protected
    # C: profile 4, req_cnf = our credential as kccs (EP §3.1: never a bare COSE_Key)
    ask = AccessTokenRequest.decode(token_x.request_payload)
    assert ask.ace_profile == EDHOC
    assert isinstance(ask.req_cnf, KccsCnf)
    assert ask.req_cnf.key == own.public() and ask.req_cnf.key.d is None and ask.req_cnf.kid == b"cA"
    # D: profile 4, rs_cnf = the RS's credential (kccs), edhoc_info with the session_id, no cnf
    (answer,) = token_responses(flow)
    assert answer.ace_profile == EDHOC and answer.cnf is None and answer.edhoc_info is not None
    assert isinstance(answer.rs_cnf, KccsCnf) and answer.rs_cnf.cred == rs_cred(flow)
    claims = verify_token(answer.access_token, KeyRing([flow.token_key]), audience="rs1", clock=time.time)
    assert isinstance(claims.cnf, KccsCnf) and claims.cnf.cred == ask.req_cnf.cred  # EP §3.3.1: verbatim
    assert claims.edhoc_info is not None and claims.edhoc_info.session_id == answer.edhoc_info.session_id
    assert claims.scope == "r_temp" and claims.sub == "clientA"
    # E/F: EDHOC with the token in EAD_3 and ID_CRED_I = kid "cA", then OSCORE
    assert resource_x.protected and resource_x.uri == flow.rs_uri + "/temp"
    assert got.session is not None and isinstance(got.session.context, EdhocChannel)
    assert got.session.context.cred == rs_cred(flow) and got.session.session_id == answer.edhoc_info.session_id
    assert handshakes.message_1 == 1 and [edhoc.kid_of_id_cred(c) for c in handshakes.lookups] == [b"cA"]
    (binding,) = list(flow.rs_server.core.bindings)
    assert isinstance(binding.context, EdhocChannel) and binding.context.cred == ask.req_cnf.cred
    assert binding.context.session_id == answer.edhoc_info.session_id
    (entry,) = responders(flow)
    assert entry.complete and entry.claims == [binding.label]
    assert client.channels[AceProfile.COAP_EDHOC_OSCORE].live[origin(flow)][1].pinned

    flow.exchanges.clear()  # PUT /led with the r_temp token: 4.03 over the pinned context
    refused = await run(client, flow, "PUT", "/led", b"on")
    assert isinstance(refused, Done) and refused.response.code == (4, 3), refused
    assert flow.steps() == REUSED

    flow.exchanges.clear()  # refusals do not end the session: no new token, no new handshake
    for _ in range(3):
        again = await get_temp(client, flow)
        assert again.session is not None and again.session.id == got.session.id
    assert flow.steps() == REUSED * 3
    assert handshakes.message_1 == 1 and len(handshakes.lookups) == 1
    assert len(responders(flow)) == 1
    assert len(store_of(flow).issued_tokens()) == 1


# -- 2. a client whose key is not the token's ----------------------------------------------------


@pytest.mark.parametrize("kid", [b"cA", b"cB"], ids=["same-kid", "other-kid"])
async def test_wrong_key_gets_no_resource_and_rs_keeps_serving(flow: Flow, handshakes: Handshakes,
                                                                tmp_path: Path, kid: bytes) -> None:
    client = await edhoc_client(flow)
    await get_temp(client, flow)
    assert handshakes.message_1 == 1
    (answer,) = token_responses(flow)
    assert answer.edhoc_info is not None
    (legit,) = labels(flow)

    flow.exchanges.clear()  # key B with the token of key A (kid cA), stolen
    mallory = await impostor(flow, tmp_path, new_key(kid), answer.access_token, answer.edhoc_info.session_id)
    got = await run(mallory, flow)
    codes = [(e.step, e.response.code) for e in flow.exchanges]
    assert all(code != (2, 5) for _, code in codes), codes
    # message_3 rides on the first request: refused unprotected (other kid: an EDHOC error, EP §4.2;
    # same kid: MAC_3 fails with the token's credential)
    assert codes[0] == ("resource (EDHOC)", (4, 0)), codes
    assert not (isinstance(got, Done) and got.response.success), got
    _, attempt = mallory.channels[AceProfile.COAP_EDHOC_OSCORE].live[origin(flow)]
    assert not attempt.pinned  # nothing to pin: it handshakes anew each time
    assert handshakes.message_1 == 2 and edhoc.kid_of_id_cred(handshakes.lookups[-1]) == kid
    assert [e.claims for e in responders(flow) if e.complete] == [[legit]]  # only the legit one

    flow.exchanges.clear()  # the legit client: its pinned context still works
    await get_temp(client, flow)
    assert flow.steps() == REUSED
    reply, _ = await edhoc_get(flow, client_key_of(flow), answer.access_token)  # so does a new handshake
    assert reply.code == (2, 5) and reply.protected
    assert len(flow.rs_server.core.bindings) == 1


async def test_a_refused_token_in_ead_3_is_an_edhoc_error_and_half_done_handshakes_go(
        flow: Flow, handshakes: Handshakes) -> None:
    client = await edhoc_client(flow)
    await get_temp(client, flow)
    garbage, _ = await edhoc_get(flow, new_key(b"cB"), b"\x83\x40\xa0\x40")  # not a token of our AS
    assert garbage.code == (4, 0) and not garbage.protected
    assert garbage.content_format == 64 and garbage.payload[:1] == b"\x01"  # EP §4.3.3: ERR_CODE 1
    other = new_key(b"cA")  # a token for key A presented with another key of the same kid
    stolen, _ = await edhoc_get(flow, other, edhoc_token(flow, client_key_of(flow), sub="clientA"))
    assert stolen.code == (4, 0) and not stolen.protected, stolen
    flow.rs_server.credentials.forget_stale(-1.0)  # incomplete handshakes go by age
    assert [(e.complete, e.claims) for e in responders(flow)] == [(True, list(labels(flow)))]


async def test_a_bare_token_at_authz_info_is_refused(flow: Flow, handshakes: Handshakes) -> None:
    """EP §4.2, §4.6: the token travels in EDHOC; /authz-info takes only protected updates."""
    client = await edhoc_client(flow)
    await get_temp(client, flow)
    reply = await post_token_plain(flow, edhoc_token(flow, new_key(b"cA"), scope="r_temp rw_led"))
    assert reply.code[0] == 4, reply
    assert len(flow.rs_server.core.bindings) == 1
    (binding,) = list(flow.rs_server.core.bindings)
    assert isinstance(binding.context, EdhocChannel)
    assert binding.context.cred == credential(client_key_of(flow)).cred
    flow.exchanges.clear()
    await get_temp(client, flow)
    assert flow.steps() == REUSED


# -- 3. many clients, bounded RS state -----------------------------------------------------------


IDENTITIES = 50  # AS identities (subs): more than the RS keeps responder contexts for, fewer than max_tokens
RUNNERS = 200


async def test_200_sequential_clients_never_exhaust_the_rs(flow: Flow, handshakes: Handshakes,
                                                          tmp_path: Path) -> None:
    store = store_of(flow)
    secrets_by_id: list[OscoreContextParams] = []
    for n in range(IDENTITIES):
        ms = secrets.token_bytes(16)
        client_id = f"c{n}"
        rid = bytes([0x40, n])  # the client's Sender ID: unique at the AS
        store.put_client(ClientRecord(client_id=client_id, profiles=(4,),
                                      oscore=OscoreContextParams(master_secret=ms, sender_id=b"\x00",
                                                                 recipient_id=rid)))
        store.add_grant(Grant(client_id=client_id, audience="rs1", scope="r_temp", default=True))
        secrets_by_id.append(OscoreContextParams(master_secret=ms, sender_id=rid, recipient_id=b"\x00"))
    max_bindings = max_responders = 0
    codes: set[tuple[int, int]] = set()
    started = time.monotonic()
    for i in range(RUNNERS):
        n = i % IDENTITIES
        runner = await edhoc_client(flow, key=new_key(b"k%d" % i), client_id=f"c{n}", as_secret=secrets_by_id[n],
                                    state=tmp_path / f"state-{n}.json", record=False)
        try:
            got = await run(runner, flow)
        finally:
            await stop_runner(flow, runner)
        assert isinstance(got, Done) and got.response.code == (2, 5), (i, got)
        codes.add(got.response.code)
        max_bindings = max(max_bindings, len(flow.rs_server.core.bindings))
        max_responders = max(max_responders, len(responders(flow)))
    elapsed = time.monotonic() - started
    assert codes == {(2, 5)}
    assert handshakes.message_1 == RUNNERS and len(handshakes.lookups) == RUNNERS
    # a new token of the same sub supersedes the older binding once used: one binding per sub
    assert max_bindings <= IDENTITIES + 1 <= flow.rs_server.core.config.max_tokens
    assert len(flow.rs_server.core.bindings) == IDENTITIES
    assert max_responders == flow.rs_server.credentials.max_responders  # evicted at the limit, never more
    assert all(e.complete for e in responders(flow))
    live = labels(flow)
    assert all(set(e.claims) <= live for e in responders(flow))  # none for a binding that went
    assert len(store.issued_tokens(limit=2 * RUNNERS)) == RUNNERS
    assert elapsed < 15.0, elapsed
    # and the RS still serves the deployment's own client
    client = await edhoc_client(flow)
    await get_temp(client, flow)


# -- 4. binding dropped: the old context ends, the client recovers -------------------------------


async def test_superseded_binding_ends_the_old_context_and_client_recovers(
        flow: Flow, handshakes: Handshakes) -> None:
    client = await edhoc_client(flow)
    first = await get_temp(client, flow)
    old_context = pinned_context(client, flow)
    (old_label,) = labels(flow)

    # the same client (sub clientA) gets a token for another key C (a new series, EP §3.2) and uses it
    other = new_key(b"cC")
    ask = AccessTokenRequest(audience="rs1", scope="r_temp", ace_profile=EDHOC, req_cnf=credential(other))
    answer_reply = await flow.post_to_as(client, ask.encode())
    assert answer_reply.code == (2, 1), answer_reply
    answer = AccessTokenResponse.decode(answer_reply.payload)
    reply, _ = await edhoc_get(flow, other, answer.access_token)
    assert reply.code == (2, 5) and reply.protected
    (new_label,) = labels(flow)  # the sub's newer binding, once used, supersedes the older
    assert new_label != old_label
    assert all(old_label not in e.claims for e in responders(flow))

    # the old EDHOC-derived context is gone at the RS: unprotected 4.01
    gone = await get_over(client, flow)
    assert gone.code == (4, 1) and not gone.protected and gone.payload == b"Security context not found"
    assert pinned_context(client, flow) is old_context

    # the runner: 4.01 → reset to handshaking, one new token (key A again), a new EDHOC run
    flow.exchanges.clear()
    before = handshakes.message_1
    again = await get_temp(client, flow)
    assert flow.steps() == RENEWED
    assert flow.exchanges[0].response.code == (4, 1)
    assert again.session is not None and first.session is not None and again.session.id != first.session.id
    assert handshakes.message_1 == before + 1
    assert pinned_context(client, flow) is not old_context
    flow.exchanges.clear()
    await get_temp(client, flow)
    assert flow.steps() == REUSED and handshakes.message_1 == before + 1


async def _expiring(flow: Flow, monkeypatch: pytest.MonkeyPatch, handshakes: Handshakes,
                    sweep: float) -> tuple[Clock, ClientRunner]:
    """A 2 s token lifetime; AS and RS on one clock the test moves (the client's is real, so it
    still believes in its session); the RS sweeps every ``sweep`` seconds."""
    store = store_of(flow)
    rs = store.get_rs("rs1")
    assert rs is not None
    store.put_rs(dataclasses.replace(rs, token_lifetime=2))
    monkeypatch.setattr(rs_server_module, "SWEEP_SECONDS", sweep)
    clock = Clock()
    await replace_as(flow, clock)
    await replace_rs(flow, clock=clock)
    count_lookups(flow, handshakes, monkeypatch)
    return clock, await edhoc_client(flow)


PAST_EXPIRY = 2 + DEFAULT_SKEW + 1  # beyond exp + the skew the RS allows


async def test_expired_token_gets_401_and_client_recovers(flow: Flow, monkeypatch: pytest.MonkeyPatch,
                                                          handshakes: Handshakes) -> None:
    clock, client = await _expiring(flow, monkeypatch, handshakes, sweep=3600)  # no sweep here
    first = await get_temp(client, flow)
    assert token_responses(flow)[0].expires_in == 2
    old_context = pinned_context(client, flow)

    clock.offset = PAST_EXPIRY
    flow.exchanges.clear()
    again = await get_temp(client, flow)
    # the expired binding answers 4.01 (over the old context, with creation hints); then a new token
    assert flow.steps() == RENEWED
    assert flow.exchanges[0].response.code == (4, 1)
    assert flow.exchanges[0].response.content_format == int(ContentFormat.ACE_CBOR)
    assert again.session is not None and first.session is not None and again.session.id != first.session.id
    assert handshakes.message_1 == 2
    assert pinned_context(client, flow) is not old_context
    assert len(flow.rs_server.core.bindings) == 1 and len(responders(flow)) == 1
    # the old context is gone at the RS
    ctx = await flow.plain()
    ctx.client_credentials[flow.rs_uri + "/*"] = old_context
    stale = await send(ctx, aiocoap.Message(code=aiocoap.GET, uri=flow.rs_uri + "/temp"))
    # unprotected: 4.01 "Security context not found", or 4.00 "Decryption failed" when the new
    # handshake got the same C_R as the forgotten one
    assert stale.code in ((4, 1), (4, 0)) and not stale.protected, stale


async def test_sweeper_ends_the_context_of_an_expired_token(flow: Flow, monkeypatch: pytest.MonkeyPatch,
                                                            handshakes: Handshakes) -> None:
    clock, client = await _expiring(flow, monkeypatch, handshakes, sweep=0.05)
    first = await get_temp(client, flow)
    assert len(responders(flow)) == 1 and len(flow.rs_server.core.bindings) == 1

    clock.offset = PAST_EXPIRY  # no request at all: the sweeper alone ends binding and context
    deadline = time.monotonic() + 2
    while (responders(flow) or len(flow.rs_server.core.bindings)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not responders(flow)
    assert len(flow.rs_server.core.bindings) == 0
    gone = await get_over(client, flow)
    assert gone.code == (4, 1) and not gone.protected

    flow.exchanges.clear()  # the runner sees that 4.01, resets, gets a new token and handshakes anew
    again = await get_temp(client, flow)
    assert flow.steps() == RENEWED
    assert again.session is not None and first.session is not None and again.session.id != first.session.id
    assert handshakes.message_1 == 2


# -- 5. profile not offered / not possible ---------------------------------------------------------


async def test_rs_without_edhoc_profile_refuses_edhoc_tokens(flow: Flow) -> None:
    await replace_rs(flow, profiles=(AceProfile.COAP_OSCORE, AceProfile.COAP_DTLS))
    reply = await post_token_plain(flow, edhoc_token(flow, client_key_of(flow)))
    assert reply.code == (4, 0), reply
    assert len(flow.rs_server.core.bindings) == 0

    client = await edhoc_client(flow)  # the AS still issues coap_edhoc_oscore for rs1: EDHOC goes nowhere
    got = await run(client, flow)
    assert not (isinstance(got, Done) and got.response.success), got
    assert flow.steps() == ["resource", "token", "resource (EDHOC)"]
    assert flow.exchanges[-1].response.code[0] == 4
    assert len(flow.rs_server.core.bindings) == 0


async def test_as_without_rs_auth_key_refuses_profile_4(flow: Flow) -> None:
    store = store_of(flow)
    rs = store.get_rs("rs1")
    assert rs is not None and rs.auth_key is not None
    store.put_rs(dataclasses.replace(rs, auth_key=None))
    client = await edhoc_client(flow)
    got = await run(client, flow)
    assert isinstance(got, Failed), got
    assert got.step == "token" and got.error_response is not None
    assert got.error_response.error == ErrorCode.INCOMPATIBLE_ACE_PROFILES
    assert got.response is not None and got.response.code == (4, 0)
    assert flow.steps() == ["resource", "token"]
    assert len(store.issued_tokens()) == 0  # refused before a cti was used


async def test_new_key_for_a_kid_that_expired_replaces_the_old(flow: Flow, monkeypatch: pytest.MonkeyPatch,
                                                               handshakes: Handshakes) -> None:
    """Token 1 (kid K, key A) expires, noticed by a request; token 2 (kid K, key B) comes before
    any sweep: B's holder gets through with it, A's holder gets nothing with either token."""
    clock, _ = await _expiring(flow, monkeypatch, handshakes, sweep=3600)
    key_a, key_b = new_key(b"K"), new_key(b"K")
    token_a = edhoc_token(flow, key_a, exp=clock() + 2)
    first, _ = await edhoc_get(flow, key_a, token_a)
    assert first.code == (2, 5)
    clock.offset = PAST_EXPIRY
    expired, _ = await edhoc_get(flow, key_a, token_a)
    assert expired.code == (4, 0) and not expired.protected  # EP §4.3.3: an expired token, an EDHOC error
    token_b = edhoc_token(flow, key_b, exp=clock() + 600)
    got, _ = await edhoc_get(flow, key_b, token_b)
    assert got.code == (2, 5) and got.protected
    refused, _ = await edhoc_get(flow, key_a, token_b)
    assert refused.code != (2, 5) and not refused.protected


async def test_new_key_for_a_kid_whose_token_expired_unnoticed(flow: Flow, monkeypatch: pytest.MonkeyPatch,
                                                               handshakes: Handshakes) -> None:
    """As above, but no request notices the expiry before token 2 is used (no sweep either)."""
    clock, _ = await _expiring(flow, monkeypatch, handshakes, sweep=3600)
    key_a, key_b = new_key(b"K"), new_key(b"K")
    token_a = edhoc_token(flow, key_a, exp=clock() + 2)
    assert (await edhoc_get(flow, key_a, token_a))[0].code == (2, 5)
    clock.offset = PAST_EXPIRY
    got, _ = await edhoc_get(flow, key_b, edhoc_token(flow, key_b, exp=clock() + 600))
    assert got.code == (2, 5) and got.protected
    refused, _ = await edhoc_get(flow, key_a, token_a)
    assert refused.code != (2, 5) and not refused.protected
