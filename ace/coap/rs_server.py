"""The RS on CoAP with the OSCORE profile: /authz-info and protected resources.

POST /authz-info (unprotected, RFC 9203 §4.1) hands the payload to the core and installs the
derived OSCORE context in a ``ContextIndex``; the context carries the binding label as its
authenticated claim. Protected resources ask the core for a decision with the label of the
context that protected the request (RFC 9200 §5.10.2) and render its refusal: 4.01 with AS
Request Creation Hints, 4.03, 4.05. A sweeper task drops contexts of expired tokens. A reference
token (or any, with ``introspect``) is introspected at the AS first (``RsServer.authz_info``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiocoap
import aiocoap.resource
from aiocoap import oscore
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper

from ace.cbor.labels import AceProfile
from ace.coap import contexts, dtls, edhoc
from ace.coap.boundary import refusing
from ace.coap.edhoc_responders import EDHOC_PATH
from ace.coap.introspect import IntrospectionClient
from ace.coap.peers import label_of, source_of
from ace.coap.render import AmplificationGuard, BoundedBody, ace_message
from ace.coap.tasks import cancel
from ace.coap.trl import TrlLink
from ace.errors import ServiceUnavailable, TokenRefused
from ace.profiles.dtls import DtlsChannel
from ace.profiles.edhoc import LABEL_PREFIX as EDHOC_LABEL_PREFIX
from ace.profiles.edhoc import EdhocChannel
from ace.rs.introspection import NeedsIntrospection
from ace.rs.server import AuthzInfoOutcome, ResourceServer
from ace.rs.store import Binding
from ace.tokens.keys import CoseKey
from ace.tokens.oscore_params import OscoreContextParams

log = logging.getLogger(__name__)
Handler = Callable[[aiocoap.Message, Binding], Awaitable[aiocoap.Message]]
SWEEP_SECONDS = 5.0
SESSION_DROP_DELAY = 0.1  # seconds: lets a response in flight over the session go out first
EDHOC_STALE_SECONDS = 60.0  # an EDHOC responder context still incomplete after this is dropped


class AuthzInfoResource(BoundedBody, aiocoap.resource.Resource):  # type: ignore[misc]
    path = "/authz-info"

    def __init__(self, server: RsServer) -> None:
        super().__init__()
        self.server = server

    @refusing(log)  # anyone may POST here: refusals are logged rate limited
    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        # over an existing channel: an update of access rights (RFC 9203 §4.1, RFC 9202 §3.4)
        channel = label_of(request)
        outcome = await self.server.authz_info(request.payload, request.opt.content_format, channel,
                                               source=source_of(request.remote))
        self.server.install(outcome.binding, self.server.core.take_dropped())
        if not outcome.payload:
            return aiocoap.Message(code=aiocoap.CREATED)
        return ace_message((2, 1), outcome.payload)


class ProtectedResource(BoundedBody, aiocoap.resource.Resource):  # type: ignore[misc]
    """A resource whose methods run only within an access token's scope."""

    def __init__(self, server: RsServer, path: str, handlers: Mapping[str, Handler]) -> None:
        super().__init__()
        self.server, self.path, self.handlers = server, path, dict(handlers)

    @refusing(log, level=logging.INFO, limited=False)
    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        method = request.code.name
        try:
            binding = self.server.core.authorize(label_of(request), self.path, method)
        finally:  # expired, or replaced now that a successor was used: their channels go
            for gone in self.server.core.take_dropped():
                self.server.uninstall(gone)
        handler = self.handlers.get(method)
        if handler is None:
            return aiocoap.Message(code=aiocoap.METHOD_NOT_ALLOWED)
        return await handler(request, binding)


def _peer_fault(exc: BaseException) -> bool:
    """What aiocoap's and lakers' EDHOC code raise on a malformed message: ValueError/TypeError,
    RuntimeError (lakers: a message_3 for a handshake whose message_1 failed), and pyo3's
    PanicException (lakers on a G_X off the curve; a BaseException aiocoap never catches, so no
    answer went out and the request stayed in aiocoap's table for good)."""
    return isinstance(exc, (ValueError, TypeError, RuntimeError)) or type(exc).__name__ == "PanicException"


class _EdhocSafeSite(OscoreSiteWrapper):  # type: ignore[misc]
    """EDHOC messages from unauthenticated peers get 4.00 whatever is wrong with them: aiocoap lets a
    failed message_3 (a key that is not the kid's) or an unparseable message_1 escape as ValueError
    (5.00 with a traceback), and lakers panics on some (no answer); we forget the half-done
    responder context. A message_1 is admitted first: room is made among half-done handshakes
    only (per source and globally), else 5.03 (``edhoc.EdhocCredentialsMap.admitting``)."""

    async def render_to_pipe(self, pipe: Any) -> None:
        request = pipe.request
        message_1 = edhoc.is_message_1(request)
        try:
            credentials = self.server_credentials
            if message_1 and isinstance(credentials, edhoc.EdhocCredentialsMap):
                with credentials.admitting(source_of(request.remote)):
                    await super().render_to_pipe(pipe)
            else:
                await super().render_to_pipe(pipe)
        except BaseException as exc:
            if not _peer_fault(exc) or not (request.opt.uri_path == EDHOC_PATH or request.opt.edhoc):
                raise
            if not message_1:  # message_3: the half-done handshake it names goes
                try:
                    kid = oscore.verify_start(request).get(oscore.COSE_KID)
                except Exception:  # not even an OSCORE option to name one
                    kid = None
                edhoc.forget_responder_contexts(
                    self.server_credentials, lambda e: not e.complete and e.context.recipient_id == kid)
            log.info("EDHOC message refused: %s", exc)
            raise aiocoap.error.BadRequest("EDHOC message refused") from None


class RsServer:
    """Owns the aiocoap server context of one RS: OSCORE and, if the core offers it, DTLS
    (on the bind port + 1: aiocoap's tinydtls server)."""

    def __init__(self, core: ResourceServer, *, bind: tuple[str, int],
                 resources: Mapping[str, Mapping[str, Handler]], edhoc_key: CoseKey | None = None) -> None:
        self.core, self.bind, self.resources = core, bind, resources
        self.edhoc_key = edhoc_key  # the RS's own EDHOC credential (private), for coap_edhoc_oscore
        self.peers = edhoc.PeerCredentialIndex()  # clients' credentials from tokens, by kid
        self.credentials = edhoc.EdhocCredentialsMap()
        self.index = contexts.ContextIndex()
        self.psks = dtls.PskIndex()
        self._psk_labels: dict[bytes, bytes] = {}  # binding label -> psk_identity
        self.context: Any = None
        self.coaps_port: int | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.trl: TrlLink | None = None  # observes the AS's TRL (RFC 9770) when configured
        self.introspector: IntrospectionClient | None = None  # asks the AS about tokens (RFC 9200 §5.9)
        self._introspecting: set[str] = set()  # peers with an introspection in flight

    async def authz_info(self, payload: bytes, content_format: int | None,
                         channel: bytes | None, *, source: str = "") -> AuthzInfoOutcome:
        """The core's POST /authz-info, introspecting the token at the AS first when the core asks
        (a reference token, or ``introspect = true``): see ``ace.rs.introspection``. One
        introspection in flight per peer (address or IPv6 /64): one sender cannot take every slot
        of the AS link."""
        try:
            return self.core.authz_info(payload, content_format, channel_label=channel)
        except NeedsIntrospection as need:
            if self.introspector is None:
                raise TokenRefused("this RS cannot introspect tokens") from None
            if source in self._introspecting:
                raise ServiceUnavailable("an introspection for this peer is in flight") from None
            self._introspecting.add(source)
            try:
                code, answer = await self.introspector.introspect(need.payload)
            finally:
                self._introspecting.discard(source)
            self.core.introspected(need.token, code, answer)
        try:
            return self.core.authz_info(payload, content_format, channel_label=channel)
        except NeedsIntrospection:  # the answer is cached: only if it was dropped meanwhile
            raise ServiceUnavailable("introspection raced") from None

    def revoked(self, hashes: list[bytes]) -> None:
        """The AS's TRL (RFC 9770 §11.1): revoked tokens lose their bindings and channels now."""
        self.core.revoke(hashes)
        for gone in self.core.take_dropped():
            self.uninstall(gone)

    @property
    def offers_dtls(self) -> bool:
        return AceProfile.COAP_DTLS in self.core.config.profiles

    def install(self, binding: Binding, dropped: list[Binding]) -> None:
        for gone in dropped:
            self.uninstall(gone)
        params = binding.context
        if isinstance(params, DtlsChannel):  # the client's handshake finds the PSK by its kid
            if params.identity not in self.psks:
                self.psks.add(params.identity, params.key, binding.label)
                self._psk_labels[binding.label] = params.identity
        elif isinstance(params, EdhocChannel):  # the client's EDHOC run finds its credential by kid
            if params.kid not in self.peers:
                self.peers.add(params.peer_key, binding.label)
        else:
            ctx = self.index.exact(binding.label, params.id_context)
            if ctx is None:
                self.index.add(contexts.from_params(params, claims=[binding.label], expires_at=binding.expires_at,
                                                    clock=self.core.clock))
            else:  # new rights over the same context (RFC 9203 §4.1): it ends with the new token
                ctx.expires_at = binding.expires_at

    def uninstall(self, binding: Binding) -> None:
        self._uninstall(binding.label, binding.context)

    def _uninstall(self, label: bytes, params: OscoreContextParams | DtlsChannel | EdhocChannel) -> None:
        if isinstance(params, EdhocChannel):
            self._forget_edhoc(label, params.kid)
        elif isinstance(params, DtlsChannel):
            self._forget_psk(label, params.identity)
        else:
            self.index.remove(label, params.id_context)

    def _forget_edhoc(self, label: bytes, kid: bytes) -> None:
        """The client's credential and every OSCORE context EDHOC made with it."""
        self.peers.remove(kid)
        self.credentials.forget_label(label)

    def _forget_psk(self, label: bytes, identity: bytes) -> None:
        self.psks.remove(identity)
        self._psk_labels.pop(label, None)
        if self.context is not None:  # a live session must not outlive its token ...
            self._drop_sessions_soon(label)

    def _drop_sessions_soon(self, label: bytes) -> None:
        """... but the answer to the request that found the token gone (4.01) must leave first."""
        def drop() -> None:
            if self.context is not None:
                dtls.drop_sessions(self.context, label)
        try:
            asyncio.get_running_loop().call_later(SESSION_DROP_DELAY, drop)
        except RuntimeError:  # no loop running (tests calling in directly)
            drop()

    def reconcile(self) -> int:
        """Drop channels whose binding is gone (expired, superseded); returns how many."""
        gone = self.core.sweep() + self.core.take_dropped()
        for binding in gone:
            self.uninstall(binding)
        live = self.core.live_labels()
        stale = [c for c in self.index if c.recipient_id not in live]
        for ctx in stale:
            self.index.remove(ctx.recipient_id, ctx.id_context)
        stale_psk = [(label, ident) for label, ident in self._psk_labels.items() if label not in live]
        for label, ident in stale_psk:
            self._forget_psk(label, ident)
        stale_peers = [label for label in self.peers.labels() if isinstance(label, bytes) and label not in live]
        for label in stale_peers:
            self._forget_edhoc(label, label.removeprefix(EDHOC_LABEL_PREFIX))
        self.credentials.forget_stale(EDHOC_STALE_SECONDS)  # handshakes never completed
        return len(stale) + len(gone) + len(stale_psk) + len(stale_peers)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                n = self.reconcile()
            except Exception:  # a bug here must not end the sweeping for good
                log.exception("sweeping security contexts failed")
                continue
            if n:
                log.debug("swept %d expired security contexts", n)

    def site(self) -> aiocoap.resource.Site:
        site = aiocoap.resource.Site()
        site.add_resource(["authz-info"], AuthzInfoResource(self))
        for path, handlers in self.resources.items():
            segments = [s for s in path.split("/") if s]
            site.add_resource(segments, ProtectedResource(self, "/" + "/".join(segments), handlers))
        return site

    async def start(self) -> None:
        credentials = self.credentials
        credentials[":tokens"] = self.index
        credentials[":psk"] = self.psks
        credentials[":edhoc-peers"] = self.peers
        if self.edhoc_key is not None and AceProfile.COAP_EDHOC_OSCORE in self.core.config.profiles:
            edhoc.install_server_identity(credentials, self.edhoc_key, [edhoc.edhoc_origin(*self.bind)])
            # one identifier space: OSCORE recipient ids never collide with a live EDHOC C_R
            credentials.share_ids(self.core.ids, live=lambda label: isinstance(label, bytes)
                                  and self.core.bindings.get(label) is not None)
        site = AmplificationGuard(_EdhocSafeSite(self.site(), credentials))  # RFC 7252 §11.3
        if self.offers_dtls:
            self.context = await dtls.create_server(site, self.bind, credentials, extra_transports=["oscore"])
            self.coaps_port = dtls.coaps_port(self.context)
        else:
            self.context = await aiocoap.Context.create_server_context(
                site, bind=self.bind, transports=["oscore", "udp6"], server_credentials=credentials)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        if self.trl is not None:
            await self.trl.start()
            if self.introspector is not None:  # one security context with the AS, one sequence
                self.introspector.share(self.trl.context)
        log.info("RS %s listening on %s port %d%s", self.core.config.audience, self.bind[0], self.bind[1],
                 f" (DTLS on {self.coaps_port})" if self.coaps_port else "")

    async def stop(self) -> None:
        if self.introspector is not None:
            await self.introspector.stop()
        if self.trl is not None:
            await self.trl.stop()
        await cancel(self._sweeper)
        self._sweeper = None
        if self.context is not None:
            await self.context.shutdown()
            self.context = None
        close = getattr(self.core.fresh.state, "close", None)  # the RS's state file (and its lock) is ours
        if close is not None:
            close()
