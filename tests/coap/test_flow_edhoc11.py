"""The EDHOC profile at draft -11 end to end over loopback sockets: our client, our AS, our RS
(draft-ietf-ace-edhoc-oscore-profile-11 §3, §4.3, §4.6).

The client asks with its kccs credential in req_cnf, gets rs_cnf and edhoc_info, and runs EDHOC
with the RS carrying the token in EAD_3 (combined EDHOC+OSCORE request) — no POST /authz-info
before it. An access-rights update is a token request naming the session_id, then the token POSTed
to /authz-info over the derived OSCORE context. An EDHOC error from the RS is a flow failure with
its reason. Every server and client is stopped by the fixture; every await is bounded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cbor2
import pytest
from deployment import Flow, store_of
from support import bounded

from ace.cbor.labels import AceProfile, Param
from ace.client.flow import Done, Failed, ResourceRequest, Session
from ace.coap.client import ClientRunner
from ace.coap.rs_channels_edhoc import EdhocChannels
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.store.base import Grant
from ace.tokens.cnf import KccsCnf

EDHOC = int(AceProfile.COAP_EDHOC_OSCORE)
TIMEOUT = 3.0


async def run(runner: ClientRunner, flow: Flow, path: str = "/temp") -> Done | Failed:
    return await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + path)), 4 * TIMEOUT)


def token_exchanges(flow: Flow) -> list[tuple[AccessTokenRequest, AccessTokenResponse | None]]:
    return [(AccessTokenRequest.decode(e.request_payload),
             AccessTokenResponse.decode(e.response.payload) if e.response.code == (2, 1) else None)
            for e in flow.exchanges if e.step == "token"]


async def test_forward_flow_token_in_ead_3_with_kccs_by_default(flow: Flow) -> None:
    runner = await flow.client(profile=EDHOC, timeout=TIMEOUT)
    got = await run(runner, flow)
    assert isinstance(got, Done) and got.response.code == (2, 5), got
    assert flow.steps() == ["resource", "token", "resource (EDHOC)"]  # EP §4.3: no POST /authz-info
    ((request, response),) = token_exchanges(flow)
    raw = cbor2.loads(flow.exchanges[1].request_payload)[int(Param.REQ_CNF)]
    assert list(raw) == [11] and isinstance(request.req_cnf, KccsCnf)  # §3.1: kccs
    assert response is not None and response.edhoc_info is not None and isinstance(response.rs_cnf, KccsCnf)
    session = runner.flow.sessions[flow.rs_uri]
    assert session.session_id == response.edhoc_info.session_id
    again = await run(runner, flow)  # the derived context is kept: no new token, no new EDHOC
    assert isinstance(again, Done) and again.response.code == (2, 5)
    assert flow.steps()[3:] == ["resource (EDHOC)"]


async def test_access_rights_update_over_the_derived_context(flow: Flow) -> None:
    store_of(flow).add_grant(Grant(client_id="clientA", audience="rs1", scope="r_temp rw_led"))
    runner = await flow.client("r_temp", profile=EDHOC, timeout=TIMEOUT)
    assert isinstance(await run(runner, flow), Done)
    before = runner.flow.sessions[flow.rs_uri]
    pinned = runner.channels[EDHOC].live[flow.rs_uri][1]
    context = runner.context.client_credentials[pinned.map_key]
    updated = await bounded(runner.update(flow.rs_uri, "r_temp rw_led"), 4 * TIMEOUT)
    assert isinstance(updated, Done) and updated.response.code == (2, 1), updated
    assert flow.steps()[-2:] == ["token", "authz-info (protected)"]  # EP §4.6.1
    ((_, _), (update_request, update_response)) = token_exchanges(flow)
    assert update_request.req_cnf is None and update_request.edhoc_info is not None  # EP §3.1
    assert update_request.edhoc_info.session_id == before.session_id
    assert update_response is not None and update_response.rs_cnf is None  # §3.3: not in an update
    session = runner.flow.sessions[flow.rs_uri]
    assert session.scope == "r_temp rw_led" and session.token == update_response.access_token
    assert runner.context.client_credentials[pinned.map_key] is context  # same OSCORE context, no EDHOC
    before_led = await run(runner, flow, "/led")  # the new rights hold on the same context
    put = await bounded(runner.request(ResourceRequest(method="PUT", uri=flow.rs_uri + "/led", payload=b"on")),
                        4 * TIMEOUT)
    assert isinstance(before_led, Done) and before_led.response.success, before_led
    assert isinstance(put, Done) and put.response.success, put
    assert flow.steps()[-1] == "resource (EDHOC)"


async def test_an_edhoc_error_from_the_rs_fails_the_flow_with_its_reason(flow: Flow, tmp_path: Path) -> None:
    """A token the RS refuses in EAD_3 (here: not a token at all) gets an EDHOC error (EP §4.3.3)."""
    runner = await flow.client(profile=EDHOC, timeout=TIMEOUT)
    assert isinstance(await run(runner, flow), Done)
    real = runner.flow.sessions.pop(flow.rs_uri)
    runner.channels[EDHOC].forget(flow.rs_uri)
    assert real.edhoc is not None
    forged = Session(origin=real.origin, token=b"\x83\x40\xa0\x40", context=real.context, expires_at=None,
                     scope="r_temp", id=real.id + 100, audience="rs1", edhoc=real.edhoc)
    runner.flow.sessions[flow.rs_uri] = forged
    got = await run(runner, flow)
    assert isinstance(got, Failed) and got.step == "edhoc", got
    assert "ERR_CODE 1" in got.error
    assert flow.rs_uri not in runner.flow.sessions


async def test_reverse_flow_token_in_ead_4(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    """EP §4.4: the client as EDHOC Responder (an empty POST asks the RS for message_1), its
    credential by value in ID_CRED_R, the token in EAD_4; the derived context is then kept."""
    seen: list[bytes] = []
    real = EdhocChannels.admit

    def admit(self: Any, token: bytes, id_cred_i: bytes) -> Any:
        seen.append(token)
        return real(self, token, id_cred_i)

    monkeypatch.setattr(EdhocChannels, "admit", admit)
    runner = await flow.client(profile=EDHOC, timeout=TIMEOUT)
    runner.flow.config = dataclasses.replace(runner.flow.config, edhoc_reverse=True)
    got = await run(runner, flow)
    assert isinstance(got, Done) and got.response.code == (2, 5), got
    assert flow.steps() == ["resource", "token", "resource (EDHOC)"]
    ((_, response),) = token_exchanges(flow)
    assert response is not None and seen == [response.access_token]  # the RS took it from EAD_4
    handshake = runner.channels[EDHOC].live[flow.rs_uri][1]
    assert handshake.pinned
    again = await run(runner, flow)
    assert isinstance(again, Done) and again.response.code == (2, 5)
    assert seen == [response.access_token]  # no new handshake
