"""Tokens our AS issues over real CoAP + OSCORE (::1) for an RS registered with ace-java's token
format (issue 11, "our AS -> their RS"): each decodes as their RS expects it, measured against the
reference: a tagged COSE_Encrypt0 (untagged: "Message was not tagged"), no sub (theirs matches sub
against the requester's OSCORE identity), exi in ms with cti = "rs1" + the sequence number in
decimal (binary ctis: "the 'cti' claim is not formatted as expected"), or exp in ms with exi off
(exp in s: "Token is expired"), and a 1-byte salt in the OSCORE_Input_Material (with no salt the
two sides derive different Master Salts). Values of the reference's test deployment (INTEROP.md).
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import replace
from pathlib import Path

import aiocoap
import cbor2

from ace.authz_server.token import TokenPolicy
from ace.cbor.labels import ContentFormat
from ace.coap import contexts
from ace.coap.as_server import AsServer
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.store.base import ACE_JAVA, ClientRecord, Grant, RsRecord
from ace.store.seqno import FileSequenceStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf
from ace.tokens.cwt import KeyRing, verify_token
from ace.tokens.keys import symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

TIMEOUT = 5.0
TOKEN_KEY = symmetric_key(bytes.fromhex("a1a2a30405060708090a0b0c0d0e0f10"))
CLIENT_MS = bytes.fromhex("6162630405060708090a0b0c0d0e0f10")
RS_AS = OscoreContextParams(master_secret=bytes.fromhex("5152530405060708090a0b0c0d0e0f10"), sender_id=b"\x01",
                     recipient_id=b"\x77")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


def their_rs_reads(token: bytes) -> AccessTokenClaims:
    """What their RS does first: a tagged COSE_Encrypt0, opened with the key (no kid), its clock in ms."""
    outer = cbor2.loads(token)
    assert isinstance(outer, cbor2.CBORTag) and outer.tag == 16, "untagged: 'Message was not tagged'"
    return verify_token(token, KeyRing([TOKEN_KEY], try_all_without_kid=True), audience="aud1",
                        clock=lambda: time.time() * 1000)


async def test_tokens_for_an_ace_java_rs(tmp_path: Path) -> None:
    store = SqliteAsStore(tmp_path / "as.db")
    store.put_client(ClientRecord(client_id="clientA", oscore=OscoreContextParams(
        master_secret=CLIENT_MS, sender_id=b"\x00", recipient_id=b"\x55")))
    rs = RsRecord(audience="aud1", rs_id="rs1", token_key=TOKEN_KEY, token_lifetime=30, oscore=RS_AS, format=ACE_JAVA)
    store.put_rs(rs)
    store.add_grant(Grant(client_id="clientA", audience="aud1", scope="r_temp rw_config"))
    port = free_udp_port()
    server = AsServer(store, bind=("::1", port), policy=TokenPolicy())  # as.toml defaults: salt_len 0, sub on
    await asyncio.wait_for(server.start(), TIMEOUT)
    ctx = None
    try:
        ctx = await asyncio.wait_for(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]), TIMEOUT)
        client_side = OscoreContextParams(master_secret=CLIENT_MS, sender_id=b"\x55", recipient_id=b"\x00")
        ctx.client_credentials[f"coap://[::1]:{port}/*"] = contexts.from_secret(
            client_side, store=FileSequenceStore(tmp_path / "client-seq.json"), claims=["as"])

        async def token() -> tuple[AccessTokenResponse, AccessTokenClaims, float, float]:
            before = time.time()
            msg = aiocoap.Message(code=aiocoap.POST, uri=f"coap://[::1]:{port}/token",
                                  content_format=int(ContentFormat.ACE_CBOR),
                                  payload=AccessTokenRequest(audience="aud1", scope="r_temp rw_config foobar").encode())
            reply = await asyncio.wait_for(ctx.request(msg).response, TIMEOUT)
            assert reply.code == aiocoap.CREATED, (reply.code, reply.payload)
            response = AccessTokenResponse.decode(reply.payload)
            return response, their_rs_reads(response.access_token), before, time.time()

        for n in (1, 2):  # exi tokens: ms, cti "rs1" + decimal sequence number, as their AS makes them
            response, claims, _, _ = await token()
            assert (claims.sub, claims.exp, claims.exi, claims.cti) == (None, None, 30_000, b"rs1%d" % n)
            assert claims.cti is not None and claims.cti.decode("utf-8")[len("rs1"):].isdigit()
            assert isinstance(claims.cnf, OscoreCnf) and len(claims.cnf.material.salt or b"") == 1
            assert response.cnf == claims.cnf and response.scope == "r_temp rw_config"
        store.put_rs(replace(rs, format=replace(ACE_JAVA, exi=False)))  # add-rs aud1 --no-exi
        response, claims, before, after = await token()
        assert claims.exi is None and claims.sub is None and claims.exp is not None
        assert int(before) * 1000 + 30_000 <= claims.exp <= int(after) * 1000 + 30_000  # exp in ms
        assert isinstance(claims.cnf, OscoreCnf) and len(claims.cnf.material.salt or b"") == 1
    finally:
        if ctx is not None:
            await asyncio.wait_for(ctx.shutdown(), TIMEOUT)
        await asyncio.wait_for(server.stop(), TIMEOUT)
        store.close()
