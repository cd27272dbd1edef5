"""Our RS (``RsServer`` with the EDHOC profile, draft-ietf-ace-edhoc-oscore-profile-11) over
loopback against lakers-python driven directly as an independent initiator (``lakers_peer``),
carrying a token our AS core (``TokenEndpoint``) issues in EAD_3: the resource over the exported
OSCORE context, the EDHOC error messages of the refusals (EP §4.3.3), the access-rights update
over the derived context (EP §4.6), and an RS with the ``ariel-os`` preset taking only what
Ariel OS's coapcore takes. Every server is stopped by its context manager; every await is bounded.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiocoap
import cbor2
import lakers
import pytest
from lakers_peer import EDHOC_CT, LakersInitiator, edhoc_error
from support import bounded

from ace.authz_server.token import TokenEndpoint
from ace.cbor.labels import AceProfile, Alg, ContentFormat, Curve
from ace.cbor.scope import AifScope
from ace.cli.demo_cmd import free_port
from ace.coap import edhoc
from ace.coap.as_upload import AS_CREDENTIALS_KEY
from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.rs_server import RsServer
from ace.messages import AccessTokenRequest, AccessTokenResponse, AuthzInfoUpdate
from ace.profiles.edhoc_presets import PRESETS
from ace.rs.server import ResourceServer, RsConfig
from ace.rs.store import Binding
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.memory import MemoryAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, KccsCnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token
from ace.tokens.edhoc_info import EdhocInfo
from ace.tokens.keys import CoseKey, symmetric_key

EDHOC = int(AceProfile.COAP_EDHOC_OSCORE)
CWT = int(ContentFormat.CWT)
TOKEN_KEY = symmetric_key(bytes(range(16)), kid=b"rs1")
ARIEL_KEY = symmetric_key(bytes(range(32)), kid=b"as", alg=int(Alg.AES_CCM_16_128_256))
RS_KEY = generate(Curve.P_256, kid=b"\x0a")
GET, PUT = 1, 4
AIF = AifScope.of([("/temp", GET)]).encode()
REFUSED = edhoc_error("access token refused")


async def temp(request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
    return aiocoap.Message(code=aiocoap.CONTENT, payload=b"21.5")


async def put_led(request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
    return aiocoap.Message(code=aiocoap.CHANGED)


@dataclass
class Setup:
    rs: RsServer
    origin: str
    endpoint: TokenEndpoint
    client: Any  # an aiocoap client context

    def initiator(self, *, kid: bytes = b"\x2b", sub: str | None = "client") -> LakersInitiator:
        return LakersInitiator(self.client, self.origin, edhoc.ccs_bytes(RS_KEY.public()), kid=kid, sub=sub,
                               c_i=secrets.choice([b"\x2c", b"\x2d", b"\x2e"]))

    def ask(self, peer: LakersInitiator | None, audience: str = "rs1", **kw: Any) -> AccessTokenResponse:
        """The AS core's token response for client "c" (req_cnf: ``peer``'s CCS, verbatim)."""
        if peer is not None:
            kw["req_cnf"] = KccsCnf(peer.cred_i)
        payload = AccessTokenRequest(audience=audience, ace_profile=EDHOC, **kw).encode()
        result = self.endpoint.issue(payload, self.endpoint.store.get_client("c"), int(ContentFormat.ACE_CBOR))
        return AccessTokenResponse.decode(result.response.encode())


def as_store() -> MemoryAsStore:
    s = MemoryAsStore()
    s.put_client(ClientRecord(client_id="c", profiles=(EDHOC,)))
    for audience in ("rs1", "rs2"):
        s.put_rs(RsRecord(audience=audience, rs_id=audience, token_key=TOKEN_KEY, profiles=(EDHOC,),
                          auth_key=RS_KEY.public()))
        s.add_grant(Grant(client_id="c", audience=audience, scope="r_temp w_led", default=True))
    s.put_rs(RsRecord(audience="rs_ariel", rs_id="rs_ariel", token_key=ARIEL_KEY, profiles=(EDHOC,),
                      auth_key=RS_KEY.public(), edhoc_preset="ariel-os"))
    s.add_grant(Grant(client_id="c", audience="rs_ariel", scope=AIF, default=True))
    return s


@asynccontextmanager
async def running(preset: str = "draft-11", audience: str = "rs1") -> AsyncIterator[Setup]:
    port = free_port()
    config = RsConfig(audience=audience, as_uri="coap://as.example/token", profiles=(EDHOC,),
                      scope_meaning={"r_temp": [("/temp", GET)], "w_led": [("/led", PUT)]}, edhoc_preset=preset)
    core = ResourceServer(config, KeyRing([ARIEL_KEY if preset == "ariel-os" else TOKEN_KEY]), clock=time.time)
    rs = RsServer(core, bind=("::1", port), resources={"/temp": {"GET": temp}, "/led": {"PUT": put_led}},
                  edhoc_key=RS_KEY)
    await bounded(rs.start())
    client = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
    try:
        yield Setup(rs, f"coap://[::1]:{port}", TokenEndpoint(as_store(), clock=time.time), client)
    finally:
        await bounded(client.shutdown())
        await bounded(rs.stop())


def token_item(token: bytes, label: int = 24) -> Any:
    return lakers.EADItem(label, True, token)


async def handshake(s: Setup, peer: LakersInitiator, token: bytes, **kw: Any) -> Any:
    await peer.message_1()
    return await peer.send_message_3(peer.message_3([token_item(token)], **kw))


async def test_token_from_our_as_in_ead_3_then_the_resource() -> None:
    async with running() as s:
        peer = s.initiator()
        response = s.ask(peer)
        assert isinstance(response.rs_cnf, KccsCnf) and response.edhoc_info is not None
        peer.cred_r = response.rs_cnf.cred  # the RS's credential as the AS sent it (rs_cnf)
        reply = await handshake(s, peer, response.access_token)
        assert (reply.code, reply.payload) == ((2, 4), b"")
        context = peer.oscore_context()
        got = await peer.get(context, "/temp")
        assert (got.code, got.payload, got.protected) == ((2, 5), b"21.5", True)
        denied = await peer.get(context, "/led", method=aiocoap.PUT)
        assert (denied.code, denied.protected) == ((2, 4), True)  # w_led granted too
        assert (await peer.get(context, "/nothing")).code == (4, 4)


async def test_combined_request_with_our_token() -> None:
    async with running() as s:
        peer = s.initiator(kid=b"\x01\x02")
        token = s.ask(peer).access_token
        await peer.message_1()
        m3 = peer.message_3([token_item(token)])
        got = await peer.get(peer.oscore_context(combined=m3), "/temp")
        assert (got.code, got.payload) == ((2, 5), b"21.5")


@pytest.mark.parametrize("case", ["no token item", "two token items", "garbage token", "another audience",
                                  "another kid", "another key, same kid", "token by another client key"])
async def test_refusals_are_edhoc_errors(case: str) -> None:
    async with running() as s:
        peer = s.initiator()
        token = s.ask(peer).access_token
        items, reason = [token_item(token)], REFUSED
        if case == "no token item":
            items, reason = [], edhoc_error("EAD_3 must carry exactly one access token item")
        elif case == "two token items":
            items, reason = [token_item(token), token_item(b"\xd0")], edhoc_error(
                "EAD_3 must carry exactly one access token item")
        elif case == "garbage token":
            items = [token_item(b"\xd0\x84garbage")]
        elif case == "another audience":
            items = [token_item(s.ask(peer, audience="rs2").access_token)]
        elif case == "another kid":
            peer = s.initiator(kid=b"\x07")  # ID_CRED_I names a kid the token's cnf does not have
        elif case == "another key, same kid":
            peer = s.initiator()  # the token's kid, another key: MAC_3 does not verify
            reason = edhoc_error("message_3 verification failed")
        elif case == "token by another client key":
            items = [token_item(s.ask(s.initiator(kid=b"\x2b")).access_token)]
            reason = edhoc_error("message_3 verification failed")
        await peer.message_1()
        reply = await peer.send_message_3(peer.message_3(items))
        assert (reply.code, reply.content_format, reply.payload) == ((4, 0), EDHOC_CT, reason)
        assert not s.rs.core.live_labels()  # nothing stored
        assert (await peer.get(peer.oscore_context(), "/temp")).code == (4, 1)  # no context either


async def test_a_second_session_with_the_token_replaces_the_first() -> None:
    async with running() as s:
        first = s.initiator()
        token = s.ask(first).access_token
        await handshake(s, first, token)
        old = first.oscore_context()
        assert (await first.get(old, "/temp")).code == (2, 5)
        second = LakersInitiator(s.client, s.origin, first.cred_r, kid=first.kid, c_i=b"\x01")
        second.d, second.cred_i = first.d, first.cred_i
        await handshake(s, second, token)
        assert (await second.get(second.oscore_context(), "/temp")).code == (2, 5)
        assert (await first.get(old, "/temp")).code == (4, 1)  # EP §4.2: the old context is gone
        assert len(s.rs.core.live_labels()) == 1


async def test_update_of_access_rights_over_the_derived_context() -> None:
    async with running() as s:
        peer = s.initiator()
        first = s.ask(peer, scope="r_temp")
        await handshake(s, peer, first.access_token)
        context = peer.oscore_context()
        assert (await peer.get(context, "/led", method=aiocoap.PUT)).code == (4, 3)
        assert first.edhoc_info is not None
        session = EdhocInfo(session_id=first.edhoc_info.session_id)
        now = int(time.time())  # T_NEW of the series: same session_id and credential (EP §4.6.1)
        update = issue_token(AccessTokenClaims(sub="c", aud="rs1", iat=now + 1, exp=now + 600, cti=b"\x99",
                                               scope="r_temp w_led", cnf=KccsCnf(peer.cred_i), edhoc_info=session),
                             TOKEN_KEY)
        posted = await peer.get(context, "/authz-info", method=aiocoap.POST, payload=update, content_format=CWT)
        assert (posted.code, posted.payload, posted.protected) == ((2, 1), b"", True)
        assert (await peer.get(context, "/led", method=aiocoap.PUT)).code == (2, 4)  # same context, new rights
        other = s.initiator(kid=b"\x05")  # a token of another credential over this context: 4.01
        posted = await peer.get(context, "/authz-info", method=aiocoap.POST,
                                payload=s.ask(other).access_token, content_format=CWT)
        assert (posted.code, posted.protected) == ((4, 1), True)
        plain = await peer.get(context, "/temp")
        assert plain.code == (2, 5)


async def test_unprotected_authz_info_takes_no_edhoc_token() -> None:
    async with running() as s:
        peer = s.initiator()
        token = s.ask(peer).access_token
        msg = aiocoap.Message(code=aiocoap.POST, uri=s.origin + "/authz-info", payload=token, content_format=CWT)
        answer = await bounded(s.client.request(msg).response)
        assert answer.code.is_successful() is False
        assert not s.rs.core.live_labels()


async def test_uri_path_abbrev_reaches_the_edhoc_resource() -> None:
    async with running() as s:
        peer = s.initiator()
        token = s.ask(peer).access_token
        assert (await peer.message_1(abbrev=2, path=False)).code == (2, 4)
        assert (await peer.send_message_3(peer.message_3([token_item(token)]))).code == (2, 4)


# -- the ariel-os preset: what coapcore takes ----------------------------------------------------------

def ariel_claims(peer: LakersInitiator, **kw: Any) -> AccessTokenClaims:
    now = int(time.time())
    fields: dict[str, Any] = dict(aud="rs_ariel", iat=now, exp=now + 600, cti=secrets.token_bytes(4), scope=AIF,
                                  cnf=CoseKeyCnf(CoseKey.from_map(peer.cose_key, "k"), cbor2.dumps(peer.cose_key,
                                                                                                  canonical=True)))
    fields.update(kw)
    return AccessTokenClaims(**fields)


def ariel_token(peer: LakersInitiator, *, tagged: bool = True, key: CoseKey = ARIEL_KEY, kind: Kind = Kind.AEAD,
                **kw: Any) -> bytes:
    return issue_token(ariel_claims(peer, **kw), key, kind=kind, tagged=tagged)


async def ariel_run(s: Setup, peer: LakersInitiator, token: bytes, *, extra: list[Any] | None = None) -> Any:
    await peer.message_1()
    m3 = peer.message_3([token_item(token, PRESETS["ariel-os"].ead_token), *(extra or [])])
    return await peer.get(peer.oscore_context(combined=m3), "/temp")


async def test_ariel_os_takes_the_as_token_in_the_combined_request() -> None:
    async with running("ariel-os", "rs_ariel") as s:
        peer = s.initiator(sub=None)  # coapcore builds CRED_I as {8: {1: COSE_Key}}
        response = s.ask(peer, audience="rs_ariel")
        assert response.access_token[:1] == b"\xd0"  # tagged COSE_Encrypt0
        got = await ariel_run(s, peer, response.access_token)
        assert (got.code, got.payload) == ((2, 5), b"21.5")
        ok = ariel_token(s.initiator(sub=None, kid=b"\x09"))
        assert len(ok) <= 256


@pytest.mark.parametrize("case", ["untagged", "alg 10", "no iat", "text scope", "AIF over 64 bytes",
                                  "draft-11 label", "a second EAD_3 item", "stand-alone message_3"])
async def test_ariel_os_refuses_what_coapcore_refuses(case: str) -> None:
    async with running("ariel-os", "rs_ariel") as s:
        peer = s.initiator(sub=None)
        token, extra = ariel_token(peer), None
        if case == "untagged":
            token = ariel_token(peer, tagged=False)
        elif case == "alg 10":
            s.rs.core.keys = KeyRing([ARIEL_KEY, TOKEN_KEY])  # even with a key it has: alg 31 only
            token = issue_token(ariel_claims(peer), TOKEN_KEY, tagged=True)
        elif case == "no iat":
            token = ariel_token(peer, iat=None)
        elif case == "text scope":
            token = ariel_token(peer, scope="r_temp")
        elif case == "AIF over 64 bytes":
            token = ariel_token(peer, scope=AifScope.of([(f"/r{i:02}", GET) for i in range(10)]).encode())
        elif case == "draft-11 label":
            await peer.message_1()
            got = await peer.get(peer.oscore_context(combined=peer.message_3([token_item(token)])), "/temp")
            assert got.payload == edhoc_error("EAD_3 must carry exactly one access token item")
            return
        elif case == "a second EAD_3 item":
            extra = [lakers.EADItem(1, False, b"")]
        elif case == "stand-alone message_3":
            reply = await handshake(s, peer, token)  # label 24 is not ariel's, but it never gets that far
            assert reply.code == (4, 0) and reply.content_format != EDHOC_CT
            assert not s.rs.core.live_labels()
            return
        got = await ariel_run(s, peer, token, extra=extra)
        assert (got.code, got.content_format) == ((4, 0), EDHOC_CT), case
        assert not s.rs.core.live_labels()


async def test_ariel_os_token_size_limit() -> None:
    """A token over 256 bytes cannot ride in lakers' EAD_3 at all (234 bytes at most): the gate's limit."""
    async with running("ariel-os", "rs_ariel") as s:
        peer = s.initiator(sub=None)
        token = ariel_token(peer, sub="x" * 200)
        assert len(token) > 256
        gate = s.rs.channels[EDHOC]
        with pytest.raises(Exception, match="larger than 256"):
            gate.admit(token, cbor2.dumps({4: peer.kid}))  # type: ignore[attr-defined]


# -- token upload by the AS (WF §3.7) and the EAD Session ID item (WF §9) -----------------------------

async def as_link(s: Setup) -> Any:
    """The RS's OSCORE context with the AS (claims "as", as ``as_upload.accept_uploads`` installs it)
    and the AS's mirror, installed on the test's client context for the RS's origin."""
    secret, salt = secrets.token_bytes(16), secrets.token_bytes(8)
    s.rs.credentials[AS_CREDENTIALS_KEY] = MemoryOscoreContext(
        master_secret=secret, master_salt=salt, sender_id=b"RS", recipient_id=b"AS", authenticated_claims=["as"])
    as_side = MemoryOscoreContext(master_secret=secret, master_salt=salt, sender_id=b"AS", recipient_id=b"RS")
    s.client.client_credentials[s.origin + "/*"] = as_side
    return as_side


async def post_upload(s: Setup, payload: bytes, content_format: int) -> Any:
    msg = aiocoap.Message(code=aiocoap.POST, uri=s.origin + "/authz-info", payload=payload,
                          content_format=content_format)
    return await bounded(s.client.request(msg).response)


async def test_uploaded_token_named_by_session_id_in_ead_3() -> None:
    async with running() as s:
        peer = s.initiator()
        response = s.ask(peer)
        assert response.edhoc_info is not None
        session_id = response.edhoc_info.session_id
        await as_link(s)
        answer = await post_upload(s, response.access_token, CWT)
        assert answer.code == aiocoap.CREATED
        await peer.message_1()
        m3 = peer.message_3([lakers.EADItem(PRESETS["draft-11"].ead_session_id, True, session_id)])
        assert (await peer.send_message_3(m3)).code == (2, 4)
        context = peer.oscore_context()
        assert (await peer.get(context, "/temp")).code == (2, 5)
        update = issue_token(AccessTokenClaims(sub="c", aud="rs1", iat=int(time.time()) + 1,
                                               exp=int(time.time()) + 600, cti=b"\x98", scope="r_temp w_led",
                                               cnf=KccsCnf(peer.cred_i), edhoc_info=EdhocInfo(session_id=session_id)),
                             TOKEN_KEY)
        await as_link(s)
        upload = AuthzInfoUpdate(access_token=update, updated_rights=True).encode()
        answer = await post_upload(s, upload, int(ContentFormat.ACE_CBOR))
        assert answer.code == aiocoap.CREATED
        assert (await peer.get(context, "/led", method=aiocoap.PUT)).code == (2, 4)  # the new rights


async def test_upload_refusals() -> None:
    async with running() as s:
        peer = s.initiator()
        response = s.ask(peer)
        await as_link(s)
        answer = await post_upload(s, AuthzInfoUpdate(access_token=response.access_token, updated_rights=True).encode(),
                                   int(ContentFormat.ACE_CBOR))
        assert answer.code == aiocoap.INTERNAL_SERVER_ERROR  # WF §3.7.1 missing_old_token
        await peer.message_1()
        m3 = peer.message_3([lakers.EADItem(PRESETS["draft-11"].ead_session_id, True, b"\x77")])
        reply = await peer.send_message_3(m3)
        assert (reply.code, reply.payload) == ((4, 0), REFUSED)  # no uploaded token of that session
        plain = aiocoap.Message(code=aiocoap.POST, uri=s.origin + "/authz-info", payload=response.access_token,
                                content_format=CWT)
        del s.client.client_credentials[s.origin + "/*"]  # not from the AS: no upload
        assert (await bounded(s.client.request(plain).response)).code.is_successful() is False
        assert not s.rs.core.live_labels()
