"""Our client with token upload and the EDHOC profile over loopback sockets (draft-ietf-ace-
workflow-and-params-08 §3.1, §9; draft-ietf-ace-edhoc-oscore-profile-11 §4.3, §4.4): client.toml
asks for token_upload, the AS POSTs the token to the RS over its OSCORE context with the RS, and
our client names it in EDHOC by the EAD item Session ID (EAD_3, or EAD_4 in the reverse flow)
instead of carrying it; the RS finds it by (session_id, the client's credential). The client.toml
keys edhoc_reverse and edhoc_rs_cred_by_value reach the handshake. Every await is bounded."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from deployment import Flow, store_of
from support import bounded

from ace.cbor.labels import AceProfile
from ace.cli.demo_cmd import free_port
from ace.client.flow import Done, ResourceRequest
from ace.coap.client import ClientRunner
from ace.coap.edhoc_client import ReverseTokenEdhoc, TokenEdhoc
from ace.coap.rs_channels_edhoc import EdhocChannels
from ace.messages import AccessTokenRequest, AccessTokenResponse

EDHOC = int(AceProfile.COAP_EDHOC_OSCORE)
TIMEOUT = 3.0
ANCHOR = 'state = "client-state.json"'


def configure(flow: Flow, *lines: str) -> None:
    path = flow.d.client_config
    text = path.read_text()
    assert ANCHOR in text
    path.write_text(text.replace(ANCHOR, "\n".join((ANCHOR, *lines)), 1))


def upload_to_rs(flow: Flow, uri: str | None = None) -> None:
    store = store_of(flow)
    rs = store.get_rs("rs1")
    assert rs is not None and rs.oscore is not None  # ace init: the AS and the RS share a context
    store.put_rs(replace(rs, upload_uri=uri or flow.authz_info_uri))


def record(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes]]:
    """What the RS is offered in EDHOC: ("token", token) or ("session", session_id)."""
    seen: list[tuple[str, bytes]] = []
    admit, admit_session = EdhocChannels.admit, EdhocChannels.admit_session

    def by_token(self: Any, token: bytes, id_cred_i: bytes) -> Any:
        seen.append(("token", token))
        return admit(self, token, id_cred_i)

    def by_session(self: Any, session_id: bytes, id_cred_i: bytes) -> Any:
        seen.append(("session", session_id))
        return admit_session(self, session_id, id_cred_i)

    monkeypatch.setattr(EdhocChannels, "admit", by_token)
    monkeypatch.setattr(EdhocChannels, "admit_session", by_session)
    return seen


async def get(runner: ClientRunner, flow: Flow) -> Done:
    got = await bounded(runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")), 4 * TIMEOUT)
    assert isinstance(got, Done) and got.response.code == (2, 5), got
    return got


def token_exchange(flow: Flow) -> tuple[AccessTokenRequest, AccessTokenResponse]:
    (exchange,) = [e for e in flow.exchanges if e.step == "token"]
    assert exchange.response.code == (2, 1)
    return AccessTokenRequest.decode(exchange.request_payload), AccessTokenResponse.decode(exchange.response.payload)


@pytest.mark.parametrize("reverse", [False, True])
async def test_uploaded_token_named_by_session_id(flow: Flow, monkeypatch: pytest.MonkeyPatch, reverse: bool) -> None:
    upload_to_rs(flow)
    configure(flow, "token_upload = 1", f"edhoc_reverse = {str(reverse).lower()}")
    seen = record(monkeypatch)
    runner = await flow.client(profile=EDHOC, timeout=TIMEOUT)
    await get(runner, flow)
    assert flow.steps() == ["resource", "token", "resource (EDHOC)"]  # the AS uploaded: no POST /authz-info
    request, response = token_exchange(flow)
    assert request.token_upload == 1 and response.token_upload == 0 and not response.access_token  # WF §3.1
    assert response.token_hash == store_of(flow).issued_tokens(limit=1)[0].token_hash
    assert response.edhoc_info is not None
    assert seen == [("session", response.edhoc_info.session_id)]  # WF §9: Session ID, no token item
    handshake = runner.channels[EDHOC].live[flow.rs_uri][1]
    assert type(handshake.credentials) is (ReverseTokenEdhoc if reverse else TokenEdhoc)
    await get(runner, flow)  # the derived context is kept
    assert seen == [("session", response.edhoc_info.session_id)]


async def test_failed_upload_then_the_token_in_ead_3(flow: Flow, monkeypatch: pytest.MonkeyPatch) -> None:
    upload_to_rs(flow, f"coap://[::1]:{free_port()}/authz-info")  # nobody there
    flow.as_server.upload_timeout = TIMEOUT / 4
    configure(flow, "token_upload = 0")
    seen = record(monkeypatch)
    runner = await flow.client(profile=EDHOC, timeout=TIMEOUT)
    await get(runner, flow)
    request, response = token_exchange(flow)
    assert request.token_upload == 0 and response.token_upload == 1 and response.access_token  # WF §3.1
    assert seen == [("token", response.access_token)]


async def test_rs_credential_by_value_from_client_toml(flow: Flow) -> None:
    configure(flow, "edhoc_rs_cred_by_value = true")
    runner = await flow.client(profile=EDHOC, timeout=TIMEOUT)
    await get(runner, flow)
    offer = runner.channels[EDHOC].live[flow.rs_uri][1].credentials.offer
    assert offer.ead_cred_by_value == 15 and offer.session_id is None  # EAD_1 Credential By Value (EP §4.14)
