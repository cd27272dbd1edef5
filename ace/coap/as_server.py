"""The AS on CoAP: POST /token behind OSCORE or DTLS-PSK (RFC 9200 §5.8, RFC 9203 §3,
RFC 9202 §3.1).

Each registered client's pre-established OSCORE context (persisted sender sequence numbers
via the store, RFC 8613 §B.1) sits in a ``ContextIndex``; aiocoap's ``OscoreSiteWrapper``
unprotects requests. With ``dtls=True`` clients may instead run a DTLS-PSK handshake (on
``dtls_port``, by default the bind port + 1), their key looked up in the store at handshake
time. Either way the resource learns the client from the secure channel (``ace.coap.peers``:
still registered with that very key) and hands the core its record. Unprotected requests reach /token
too and are refused 4.01 invalid_client by the core. POST /introspect (RFC 9200 §5.9) serves registered RSs over their
OSCORE context with the AS (``ace.coap.introspect``).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiocoap
import aiocoap.resource
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper

from ace.authz_server import upload as upload_core
from ace.authz_server.introspect import IntrospectionEndpoint
from ace.authz_server.token import IssueResult, TokenEndpoint, TokenPolicy
from ace.authz_server.trl import TrlEndpoint
from ace.coap import as_upload, contexts, dtls
from ace.coap.boundary import answer_in, refusing
from ace.coap.introspect import IntrospectResource
from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.peers import AsPeers
from ace.coap.render import AmplificationGuard, BoundedBody, ace_message
from ace.coap.trl import TrlResource, TrlWatch, add_rs_contexts, find_rs_context
from ace.messages import AccessTokenResponse
from ace.replies import DEFAULT_FORM, ErrorForm
from ace.store.base import AsStore, ClientRecord

log = logging.getLogger(__name__)


class ClientPsks:
    """``find_dtls_psk`` for the AS: a client's PSK, read from the store at handshake time.

    The returned key bytes are kept referenced (tinydtls holds a pointer to them)."""

    def __init__(self, store: AsStore) -> None:
        self.store = store
        self._alive: dict[bytes, bytes] = {}

    def find_dtls_psk(self, identity: bytes) -> tuple[bytes, object]:
        client = self.store.find_client_by_psk_identity(identity)
        if client is None or client.psk is None:
            raise KeyError(identity)
        self._alive[identity] = client.psk.key
        return client.psk.key, client.client_id

    def __bool__(self) -> bool:  # aiocoap replaces a falsy credentials object
        return True


class TokenResource(BoundedBody, aiocoap.resource.Resource):  # type: ignore[misc]
    path = "/token"

    def __init__(self, endpoint: TokenEndpoint, peers: AsPeers,
                 uploader: Callable[[IssueResult], Awaitable[AccessTokenResponse]] | None = None) -> None:
        super().__init__()
        self.endpoint, self.peers, self.uploader = endpoint, peers, uploader

    # anyone may POST here: refusals are logged rate limited
    @refusing(log, peer=lambda self, request: self.peers.client(request))
    async def render_post(self, request: aiocoap.Message, client: ClientRecord | None) -> aiocoap.Message:
        result = self.endpoint.issue(request.payload, client, request.opt.content_format)
        response = result.response
        if result.upload is not None and self.uploader is not None:  # WF §3.1: the client asked us to upload
            response = await self.uploader(result)
        return ace_message((2, 1), response.encode())


class AsServer:
    """Owns the aiocoap server context of one AS; ``start``/``stop`` are the lifecycle."""

    def __init__(self, store: AsStore, *, bind: tuple[str, int], policy: TokenPolicy | None = None,
                 clock: Callable[[], float] = time.time, rng: Callable[[int], bytes] = secrets.token_bytes,
                 dtls: bool = False, dtls_port: int | None = None, error_form: ErrorForm = DEFAULT_FORM) -> None:
        self.store, self.bind, self.dtls, self.dtls_port = store, bind, dtls, dtls_port
        self.error_form = error_form  # WF §6: how every refusal of ours is answered
        self.coaps_port: int | None = None
        self.endpoint = TokenEndpoint(store, clock=clock, rng=rng, policy=policy)
        self.index = contexts.ContextIndex(loader=self._load_client)
        self.peers = AsPeers(store, self.index)
        # RFC 9770: GET /revoke/trl for registered clients and RSs, observers told of revocations
        self.trl_resource = TrlResource(TrlEndpoint(store, clock=clock), self.peers.requester)
        self.trl_watch = TrlWatch(store, self.trl_resource, clock=clock)
        # RFC 9200 §5.9: POST /introspect for registered RSs over their OSCORE context with us
        self.introspect_resource = IntrospectResource(IntrospectionEndpoint(store, clock=clock), self.peers.peer)
        self.context: Any = None
        self.upload_timeout = as_upload.UPLOAD_TIMEOUT  # seconds an RS has to answer a token upload

    def _context(self, client: ClientRecord) -> MemoryOscoreContext | None:
        if client.oscore is None:
            return None
        return contexts.from_secret(client.oscore, store=self.store, claims=[client.client_id])

    def _load_client(self, kid: bytes, kid_context: bytes | None) -> MemoryOscoreContext | None:
        """A client registered after start: found in the store by its OSCORE Sender ID."""
        client = self.store.find_client_by_oscore_kid(kid, kid_context)
        if client is None:  # or an RS registered after start (its context with us: the TRL)
            return find_rs_context(self.store, kid, kid_context)
        log.info("loaded the OSCORE context of client %s", client.client_id)
        return self._context(client)

    def load_clients(self) -> int:
        """(Re)build the client contexts from the store; returns how many clients have one."""
        for old in list(self.index):
            self.index.remove(old.recipient_id, old.id_context)
        n = 0
        for client in self.store.list_clients():
            ctx = self._context(client)
            if ctx is not None:
                self.index.add(ctx)
                n += 1
        add_rs_contexts(self.index, self.store)  # RSs reach us too (RFC 9770: the TRL)
        return n

    async def start(self) -> None:
        n = self.load_clients()
        site = aiocoap.resource.Site()
        token = TokenResource(self.endpoint, self.peers, self.upload)
        answer_in(self.error_form, token, self.trl_resource, self.introspect_resource)
        site.add_resource(["token"], token)
        site.add_resource(["revoke", "trl"], self.trl_resource)
        site.add_resource(["introspect"], self.introspect_resource)
        credentials = dtls.DtlsCredentialsMap()
        credentials[":clients"] = self.index
        credentials[":psk"] = ClientPsks(self.store)
        wrapped = AmplificationGuard(OscoreSiteWrapper(site, credentials))  # RFC 7252 §11.3
        if self.dtls:
            self.context = await dtls.create_server(wrapped, self.bind, credentials, extra_transports=["oscore"],
                                                    coaps=self.dtls_port)
            self.coaps_port = dtls.coaps_port(self.context)
        else:
            self.context = await aiocoap.Context.create_server_context(
                wrapped, bind=self.bind, transports=["oscore", "udp6"], server_credentials=credentials)
        self.trl_watch.start()
        log.info("AS listening on %s port %d (%d OSCORE clients)%s", self.bind[0], self.bind[1], n,
                 f", DTLS on {self.coaps_port}" if self.coaps_port else "")

    def rs_security(self, audience: str) -> MemoryOscoreContext | None:
        """The AS's side of the RS's OSCORE context: the one object in the index (its requests to
        /introspect and the TRL and our uploads share one sequence of sender numbers)."""
        rs = self.store.get_rs(audience)
        if rs is None or rs.oscore is None:
            return None
        ctx = self.index.exact(rs.oscore.recipient_id, rs.oscore.id_context)
        if ctx is None or ctx.sender_id != rs.oscore.sender_id:
            ctx = find_rs_context(self.store, rs.oscore.recipient_id, rs.oscore.id_context)
            if ctx is None:
                return None
            self.index.add(ctx)
        return ctx

    async def upload(self, result: IssueResult) -> AccessTokenResponse:
        """WF §3.1, §2.2: the token POSTed to the RS's /authz-info over our context with it; the
        response then says how it went (``ace.authz_server.upload.finish``)."""
        plan = result.upload
        assert plan is not None
        audience = result.claims.aud if isinstance(result.claims.aud, str) else ""
        security = self.rs_security(audience)
        if security is None:
            return upload_core.finish(result.response, plan.asked, False)
        outcome = await as_upload.upload(self.context, plan.uri, plan.payload, plan.content_format, security=security,
                                         timeout=self.upload_timeout)
        if not outcome.created:
            log.warning("token upload to %s for %s: %s", plan.uri, result.client_id, outcome.detail or outcome.code)
        return upload_core.finish(result.response, plan.asked, outcome.created, outcome.payload,
                                  outcome.content_format)

    async def stop(self) -> None:
        await self.trl_watch.stop()
        if self.context is not None:
            await self.context.shutdown()
            self.context = None
