"""The client's EDHOC Initiator with the token in EAD_3 (``ace.coap.edhoc_client``), against lakers
as an independent Responder over loopback sockets (draft-ietf-ace-edhoc-oscore-profile-11 §4.3).

The responder is lakers-python driven by hand behind a plain aiocoap resource (stand-alone
message_3, so none of our RS code is involved); once it has found the token in EAD_3 and verified
message_3 with the client's CCS, it derives the OSCORE context (RFC 9528 App. A.1) and serves a
protected resource with it. Every server is stopped by its context manager; every await is bounded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.resource
import cbor2
import lakers  # type: ignore[import-untyped]
import pytest
from aiocoap import oscore
from aiocoap.credentials import CredentialsMap
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper
from support import bounded

from ace.cbor.labels import Curve
from ace.cli.demo_cmd import free_port
from ace.coap import edhoc
from ace.coap.edhoc_client import (
    EDHOC_CBOR_SEQ,
    EdhocFailed,
    TokenEdhoc,
    TokenOffer,
    TokenTooLarge,
    check_token_size,
    check_token_size_ead_4,
    parse_edhoc_error,
)
from ace.coap.oscore_context import MemoryOscoreContext
from ace.tokens.crypto import generate
from ace.tokens.keys import CoseKey

PATH = (".well-known", "edhoc")
ALT_PATH = ("edhoc-alt",)  # an edhoc_info uri_path other than the well-known one (EP §4.2)
TOKEN_LABEL = 24


@dataclass
class Responder(aiocoap.resource.Resource):  # type: ignore[misc]
    """lakers as the EDHOC Responder; refuses message_3 with an EDHOC error when ``refuse`` is set."""

    key: CoseKey
    credentials: Any
    refuse: str | None = None
    seen_ead_1: list[tuple[int, bool]] = field(default_factory=list)
    seen_ead_3: list[tuple[int, bool, bytes]] = field(default_factory=list)
    id_cred_i: bytes = b""
    pending: dict[bytes, tuple[Any, bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def cred_r(self) -> bytes:
        return edhoc.ccs_bytes(self.key, subject="rs")

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        if request.payload[:1] == b"\xf5":
            return self._message_1(request.payload[1:])
        return self._message_3(request.payload)

    def _message_1(self, m1: bytes) -> aiocoap.Message:
        responder = lakers.EdhocResponder(self.key.d, self.cred_r)
        c_i, ead_1 = responder.process_message_1(m1)
        self.seen_ead_1 = [(e.label(), e.is_critical()) for e in ead_1]
        c_r = b"\x27"
        m2 = responder.prepare_message_2(lakers.CredentialTransfer.ByReference, c_r, [])
        self.pending[c_r] = (responder, bytes(c_i))
        return aiocoap.Message(code=aiocoap.CHANGED, payload=bytes(m2))

    def _message_3(self, payload: bytes) -> aiocoap.Message:
        c_r, m3 = payload[:1], payload[1:]
        responder, c_i = self.pending.pop(c_r)
        self.id_cred_i, ead_3 = responder.parse_message_3(m3)
        self.seen_ead_3 = [(e.label(), e.is_critical(), bytes(e.value())) for e in ead_3]
        if self.refuse is not None:  # RFC 9528 §6: ERR_CODE 1, ERR_INFO
            return aiocoap.Message(code=aiocoap.BAD_REQUEST, content_format=EDHOC_CBOR_SEQ,
                                   payload=cbor2.dumps(1) + cbor2.dumps(self.refuse))
        (token,) = [value for label, critical, value in self.seen_ead_3 if label == TOKEN_LABEL and critical]
        cred_i = cbor2.loads(token)["cnf"]  # the test's stand-in token carries the client's CCS
        responder.verify_message_3(cred_i)
        responder.completed_without_message_4()
        self.credentials[":lakers"] = MemoryOscoreContext(
            master_secret=bytes(responder.edhoc_exporter(0, b"", 16)),
            master_salt=bytes(responder.edhoc_exporter(1, b"", 8)),
            sender_id=c_i, recipient_id=c_r, authenticated_claims=["lakers"])
        return aiocoap.Message(code=aiocoap.CHANGED)


class Secret(aiocoap.resource.Resource):  # type: ignore[misc]
    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        claims = list(getattr(request.remote, "authenticated_claims", None) or [])
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"ok" if claims == ["lakers"] else b"who?")


class LakersSite(OscoreSiteWrapper):  # type: ignore[misc]
    """OSCORE for every request but the EDHOC ones, which go to the lakers-driven resource."""

    async def render_to_pipe(self, pipe: Any) -> None:
        if pipe.request.opt.uri_path in (PATH, ALT_PATH):
            await self._inner_site.render_to_pipe(pipe)
        else:
            await super().render_to_pipe(pipe)


@asynccontextmanager
async def lakers_rs() -> AsyncIterator[tuple[Responder, int]]:
    port = free_port()
    creds = CredentialsMap()
    responder = Responder(generate(Curve.P_256, kid=b"\x0a"), creds)
    site = aiocoap.resource.Site()
    site.add_resource(list(PATH), responder)
    site.add_resource(list(ALT_PATH), responder)
    site.add_resource(["secret"], Secret())
    ctx = await bounded(aiocoap.Context.create_server_context(
        LakersSite(site, creds), bind=("::1", port), transports=["oscore", "udp6"], server_credentials=creds))
    try:
        yield responder, port
    finally:
        await bounded(ctx.shutdown())


def offer(client: CoseKey, responder: Responder, token: bytes, **kw: Any) -> TokenOffer:
    assert client.d is not None and client.kid is not None
    return TokenOffer(token=token, cred_i=edhoc.ccs_bytes(client, subject="client"), cred_r=responder.cred_r,
                      private_key=client.d, kid=client.kid, ead_token=TOKEN_LABEL, uri_path=PATH,
                      combined=False, **kw)


async def get_secret(port: int, credentials: TokenEdhoc) -> aiocoap.Message:
    ctx = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
    try:
        ctx.client_credentials[edhoc.edhoc_origin("::1", port) + "/*"] = credentials
        msg = aiocoap.Message(code=aiocoap.GET, uri=f"coap://[::1]:{port}/secret")
        answer: aiocoap.Message = await bounded(ctx.request(msg).response)
        return answer
    finally:
        await bounded(ctx.shutdown())


async def test_lakers_responder_finds_our_token_in_ead_3_and_the_contexts_agree() -> None:
    client = generate(Curve.P_256, kid=b"\x2b")
    async with lakers_rs() as (responder, port):
        cred_i = edhoc.ccs_bytes(client, subject="client")
        token = cbor2.dumps({"cnf": cred_i, "pad": bytes(40)})
        answer = await get_secret(port, TokenEdhoc(offer(client, responder, token, ead_cred_by_value=15)))
        assert (answer.code, answer.payload) == (aiocoap.CONTENT, b"ok")  # protected with the derived context
        assert responder.seen_ead_3 == [(TOKEN_LABEL, True, token)]  # §4.3.3: exactly one item, critical
        assert responder.seen_ead_1 == [(15, False)]  # Credential By Value asked for
        assert edhoc.kid_of_id_cred(responder.id_cred_i) == b"\x2b"  # ID_CRED_I by kid


async def test_edhoc_at_the_uri_path_of_edhoc_info() -> None:
    client = generate(Curve.P_256, kid=b"\x2b")
    async with lakers_rs() as (responder, port):
        token = cbor2.dumps({"cnf": edhoc.ccs_bytes(client, subject="client")})
        answer = await get_secret(port, TokenEdhoc(dataclasses.replace(offer(client, responder, token),
                                                                       uri_path=ALT_PATH)))
        assert (answer.code, answer.payload) == (aiocoap.CONTENT, b"ok")
        assert responder.seen_ead_3 == [(TOKEN_LABEL, True, token)]


async def test_no_credential_by_value_item_unless_asked() -> None:
    client = generate(Curve.P_256, kid=b"\x2b")
    async with lakers_rs() as (responder, port):
        token = cbor2.dumps({"cnf": edhoc.ccs_bytes(client, subject="client")})
        answer = await get_secret(port, TokenEdhoc(offer(client, responder, token)))
        assert answer.code == aiocoap.CONTENT
        assert responder.seen_ead_1 == []


async def test_an_edhoc_error_reaches_the_caller_with_the_rs_reason() -> None:
    client = generate(Curve.P_256, kid=b"\x2b")
    async with lakers_rs() as (responder, port):
        responder.refuse = "Access token refused"
        token = cbor2.dumps({"cnf": edhoc.ccs_bytes(client, subject="client")})
        with pytest.raises(oscore.NotAProtectedMessage) as info:
            await get_secret(port, TokenEdhoc(offer(client, responder, token)))
        plain = info.value.plain_message
        assert plain.code == aiocoap.BAD_REQUEST and plain.opt.content_format == EDHOC_CBOR_SEQ
        assert parse_edhoc_error(plain.payload) == (1, "Access token refused")


async def test_a_wrong_rs_credential_fails_locally() -> None:
    client = generate(Curve.P_256, kid=b"\x2b")
    async with lakers_rs() as (responder, port):
        other = edhoc.ccs_bytes(generate(Curve.P_256, kid=b"\x0a"), subject="rs")
        token = cbor2.dumps({"cnf": edhoc.ccs_bytes(client, subject="client")})
        bad = TokenEdhoc(dataclasses.replace(offer(client, responder, token), cred_r=other))
        with pytest.raises(EdhocFailed):
            await get_secret(port, bad)


@pytest.mark.parametrize(("kid", "by_value", "fits"), [
    (b"\x2b", False, 234), (b"\x01\x02", False, 232), (bytes(16), False, 218), (b"\x2b", True, 143)])
def test_token_size_limits_match_lakers(kid: bytes, by_value: bool, fits: int) -> None:
    """notes §3: the measured limits (90-byte CCS), by kid and by value; one byte more is refused
    before lakers is asked (it would fail with MacVerificationFailed or panic)."""
    key = generate(Curve.P_256, kid=kid)
    assert key.d is not None
    base = TokenOffer(token=bytes(fits), cred_i=edhoc.ccs_bytes(key, subject="client"), cred_r=b"",
                      private_key=key.d, kid=kid, ead_token=TOKEN_LABEL, send_cred_by_value=by_value)
    check_token_size(base)
    with pytest.raises(TokenTooLarge, match="does not fit"):
        check_token_size(dataclasses.replace(base, token=bytes(fits + 1)))


def test_edhoc_error_parsing() -> None:
    assert parse_edhoc_error(bytes.fromhex("01") + cbor2.dumps("no")) == (1, "no")
    assert parse_edhoc_error(bytes.fromhex("03f5")) == (3, True)
    assert parse_edhoc_error(b"") is None
    assert parse_edhoc_error(b"\xff") is None


def test_reverse_flow_token_size_limit_matches_lakers() -> None:
    """EAD_4 is message_4's whole plaintext: 244 bytes of token fit with label 24 (measured), 245 do not."""
    key = generate(Curve.P_256, kid=b"\x2b")
    assert key.d is not None
    base = TokenOffer(token=bytes(244), cred_i=edhoc.ccs_bytes(key), cred_r=b"", private_key=key.d, kid=b"\x2b",
                      ead_token=TOKEN_LABEL)
    check_token_size_ead_4(base)
    with pytest.raises(TokenTooLarge, match="message_4"):
        check_token_size_ead_4(dataclasses.replace(base, token=bytes(245)))
