"""The RS on CoAP: /authz-info and protected resources, for every profile the core offers.

POST /authz-info hands the payload to the core and installs the channel of the binding it made
(through the installer of the channel's profile, ``ace.coap.rs_channels``: an OSCORE context, a
DTLS PSK, an EDHOC credential); the channel carries the binding label as its authenticated claim.
Protected resources ask the core for a decision with the label of the channel that protected the
request (RFC 9200 §5.10.2) and render its refusal: 4.01 with AS Request Creation Hints, 4.03, 4.05.
The channels of every binding the core reports dropped go at once; a sweeper task drops those of
expired tokens. A reference token (or any, with ``introspect``) is introspected at the AS first
(``RsServer.authz_info``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import aiocoap
import aiocoap.resource

from ace.coap import contexts, rs_channels
from ace.coap.boundary import answer_in, refusing
from ace.coap.observe import Observations, Served
from ace.coap.peers import from_as, label_of, source_of
from ace.coap.render import AmplificationGuard, BoundedBody, ace_message
from ace.coap.tasks import cancel
from ace.errors import ServiceUnavailable, TokenRefused
from ace.profiles.edhoc_presets import preset
from ace.replies import DEFAULT_FORM, ErrorForm
from ace.rs.denied import AccessDenied
from ace.rs.server import ResourceServer
from ace.rs.store import Binding
from ace.tokens.keys import CoseKey

if TYPE_CHECKING:  # glue an RS loads only when its configuration uses it
    from ace.coap import dtls
    from ace.coap.introspect_client import IntrospectionClient
    from ace.coap.trl_client import TrlLink
    from ace.profiles.base import Channel
    from ace.rs.outcomes import Access, AuthzInfoOutcome

log = logging.getLogger(__name__)
Handler = Callable[[aiocoap.Message, Binding], Awaitable[aiocoap.Message]]
SWEEP_SECONDS = 5.0


class AuthzInfoResource(BoundedBody, aiocoap.resource.Resource):  # type: ignore[misc]
    path = "/authz-info"

    def __init__(self, server: RsServer) -> None:
        super().__init__()
        self.server = server

    @refusing(log)  # anyone may POST here: refusals are logged rate limited
    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        # over an existing channel: an update of access rights (RFC 9203 §4.1, RFC 9202 §3.4)
        channel = label_of(request)
        if from_as(request):  # WF §3.7: uploaded by the AS for a client
            outcome = await self.server.upload(request.payload, request.opt.content_format,
                                               source=source_of(request.remote))
        else:
            outcome = await self.server.authz_info(request.payload, request.opt.content_format, channel,
                                                   source=source_of(request.remote))
        self.server.install(outcome.binding, outcome.dropped)
        if not outcome.payload:
            return aiocoap.Message(code=aiocoap.CREATED)
        return ace_message((2, 1), outcome.payload)


class ProtectedResource(BoundedBody, aiocoap.resource.ObservableResource):  # type: ignore[misc]
    """A resource whose methods run only within an access token's scope. A ``RemoteError`` its
    handler raises is answered like a refusal (``reply_of``: its CoAP code and payload). GET may be
    observed (RFC 7641) where the handlers are ``Served`` with a ``watch`` (``ace.coap.observe``):
    each notification is rendered, and so authorized, again."""

    def __init__(self, server: RsServer, path: str, handlers: Mapping[str, Handler]) -> None:
        super().__init__()
        self.server, self.path, self.handlers = server, path, dict(handlers)
        self.watch = handlers.watch if isinstance(handlers, Served) and "GET" in handlers else None
        self._watching = False
        self._closed = False  # stopped: nothing is watched again (aiocoap ends observations after)

    def close(self) -> None:
        """The server stops: the watch ends (a polled file stops polling) and never starts again."""
        self.update_observation_count(0)
        self._closed = True

    async def add_observation(self, request: aiocoap.Message, observation: Any) -> None:
        label = label_of(request)
        binding = self.server.core.bindings.get(label) if label is not None else None

        def cancel() -> None:
            self._observations.discard(observation)
            self.server.observations.remove(observation)
            self.update_observation_count(len(self._observations))

        observation.accept(cancel)  # aiocoap ends every observation it asked about with this
        if (self.watch is None or request.code != aiocoap.GET or binding is None
                or not self.server.observations.add(binding, observation)):
            observation.deregister()  # answered once, not observed (the rendering authorizes)
            return
        self._observations.add(observation)
        self.update_observation_count(len(self._observations))

    def update_observation_count(self, newcount: int) -> None:
        """The resource is watched while observed (a file is polled only then)."""
        if self._closed:
            return
        if self.watch is not None and (newcount > 0) != self._watching:
            self._watching = newcount > 0
            self.watch(self.updated_state if self._watching else None)

    @refusing(log, level=logging.INFO, limited=False, brief=True)
    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        method = request.code.name
        binding = self.server.authorize(label_of(request), self.path, method)
        handler = self.handlers.get(method)
        if handler is None:
            return aiocoap.Message(code=aiocoap.METHOD_NOT_ALLOWED)
        return await handler(request, binding)


class RsServer:
    """Owns the aiocoap server context of one RS: OSCORE and, if the core offers it, DTLS
    (on the bind port + 1: aiocoap's tinydtls server)."""

    def __init__(self, core: ResourceServer, *, bind: tuple[str, int],
                 resources: Mapping[str, Mapping[str, Handler]], edhoc_key: CoseKey | None = None,
                 edhoc_message_4: bool = False, edhoc_reverse: bool = True,
                 error_form: ErrorForm = DEFAULT_FORM) -> None:
        self.core, self.bind, self.resources = core, bind, resources
        self.error_form = error_form  # WF §6: how every refusal of ours is answered
        self.edhoc_key = edhoc_key  # the RS's own EDHOC credential (private), for coap_edhoc_oscore
        self.edhoc_preset = preset(core.config.edhoc_preset)  # the EDHOC profile's code points and limits
        self.edhoc_message_4 = edhoc_message_4  # edhoc_info message_4: the responder sends it
        self.edhoc_reverse = edhoc_reverse and not self.edhoc_preset.combined_request_only  # EP §4.4
        self.credentials = rs_channels.credentials_map(core.config.profiles)
        self.index = contexts.ContextIndex()
        self.context: Any = None
        self.coaps_port: int | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.trl: TrlLink | None = None  # observes the AS's TRL (RFC 9770) when configured
        self.introspector: IntrospectionClient | None = None  # asks the AS about tokens (RFC 9200 §5.9)
        self._introspecting: set[str] = set()  # peers with an introspection in flight
        self.channels = rs_channels.installers(self, core.config.profiles)  # by profile number: offered only
        self._installed: dict[bytes, Channel] = {}  # label -> the channel installed under it
        self.observations = Observations(core, self.reconcile)  # RFC 7641, by the binding that allowed each
        self._protected: list[ProtectedResource] = []

    @functools.cached_property
    def psks(self) -> dtls.PskIndex:
        """DTLS PSKs from tokens, by identity (made on first use: DTLS glue)."""
        from ace.coap import dtls

        return dtls.PskIndex()

    async def authz_info(self, payload: bytes, content_format: int | None,
                         channel: bytes | None, *, source: str = "") -> AuthzInfoOutcome:
        """The core's POST /authz-info, introspecting the token at the AS first when the core asks
        (a reference token, or ``introspect = true``): see ``ace.rs.introspection``. One
        introspection in flight per peer (address or IPv6 /64): one sender cannot take every slot
        of the AS link."""
        from ace.rs.introspection import NeedsIntrospection

        outcome = self.core.authz_info(payload, content_format, channel_label=channel)
        if not isinstance(outcome, NeedsIntrospection):
            return outcome
        if self.introspector is None:
            raise TokenRefused("this RS cannot introspect tokens")
        if source in self._introspecting:
            raise ServiceUnavailable("an introspection for this peer is in flight")
        self._introspecting.add(source)
        try:
            code, answer = await self.introspector.introspect(outcome.payload)
        finally:
            self._introspecting.discard(source)
        return self.core.resume(outcome, code, answer)

    async def upload(self, payload: bytes, content_format: int | None, *, source: str = "") -> AuthzInfoOutcome:
        """WF §3.7: a token POSTed by the AS over our context with it (``ace.rs.upload``): an EDHOC
        token is stored for the session that will name it (EAD Session ID), ``updated_rights``
        supersedes T_OLD (else 5.00 missing_old_token), another profile's first token goes on as if
        its client had sent it (introspected first if need be)."""
        from ace.rs.introspection import NeedsIntrospection
        from ace.rs.upload import as_upload  # WF §2.2: loaded for the AS's first upload

        outcome = as_upload(self.core, payload, content_format)
        if not isinstance(outcome, NeedsIntrospection):
            return outcome
        return await self.authz_info(payload, content_format, None, source=source)

    def authorize(self, label: bytes | None, path: str, method: str) -> Binding:
        """The core's decision; the channels of what it dropped go now (an expired binding, or those
        a successor replaced on its first use)."""
        try:
            access: Access = self.core.authorize(label, path, method)
        except AccessDenied as exc:
            self.uninstall_all(exc.dropped)
            raise
        self.uninstall_all(access.dropped)
        return access.binding

    def revoked(self, hashes: list[bytes]) -> None:
        """The AS's TRL (RFC 9770 §11.1): revoked tokens lose their bindings and channels now."""
        self.uninstall_all(self.core.revoke(hashes))

    def install(self, binding: Binding, dropped: Iterable[Binding]) -> None:
        """The new binding's channel, after the channels of those it replaced are gone. A channel
        still installed under its label for another binding (one the core let go on a POST it then
        refused, e.g. no Recipient ID left) goes first: a label never keeps a stale key."""
        self.uninstall_all(dropped)
        stale = self._installed.get(binding.label)
        if stale is not None and stale != binding.context:
            self._uninstall(binding.label, stale)
        self._installed[binding.label] = binding.context
        self.channels[binding.context.profile].install(binding)

    def uninstall(self, binding: Binding) -> None:
        if self._installed.get(binding.label) == binding.context:
            self._uninstall(binding.label, binding.context)

    def _uninstall(self, label: bytes, channel: Channel) -> None:
        del self._installed[label]
        self.channels[channel.profile].uninstall(label, channel)

    def uninstall_all(self, bindings: Iterable[Binding]) -> None:
        """The channels and the observations of bindings the core dropped go now."""
        bindings = list(bindings)
        for binding in bindings:
            self.uninstall(binding)
        self.observations.end(bindings)

    def reconcile(self) -> int:
        """Drop channels whose binding is gone (expired, superseded); returns how many."""
        gone = self.core.sweep()
        self.uninstall_all(gone)
        live = self.core.live_labels()
        for label in [label for label in self._installed if label not in live]:
            del self._installed[label]
        return len(gone) + sum(channels.reconcile(live) for channels in self.channels.values())

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
        authz_info = AuthzInfoResource(self)
        answer_in(self.error_form, authz_info)
        site.add_resource(["authz-info"], authz_info)
        self._protected = []  # this site's resources only (a restarted server builds a new site)
        for path, handlers in self.resources.items():
            segments = [s for s in path.split("/") if s]
            resource = ProtectedResource(self, "/" + "/".join(segments), handlers)
            answer_in(self.error_form, resource)
            self._protected.append(resource)
            site.add_resource(segments, resource)
        return site

    async def start(self) -> None:
        offered = set(self.core.config.profiles)
        for channels in self.channels.values():
            channels.start(channels.profile in offered)
        site = AmplificationGuard(rs_channels.oscore_site(self.site(), self.credentials, offered))  # RFC 7252 §11.3
        for channels in self.channels.values():  # a profile with a transport of its own (DTLS)
            if self.context is None and channels.profile in offered:
                self.context = await channels.serve(site)
        if self.context is None:
            self.context = await aiocoap.Context.create_server_context(
                site, bind=self.bind, transports=["oscore", "udp6"], server_credentials=self.credentials)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        if self.trl is not None:
            await self.trl.start()
            if self.introspector is not None:  # one security context with the AS, one sequence
                self.introspector.share(self.trl.context)
        from ace.coap.as_upload import accept_uploads  # WF §2.2: tokens the AS uploads for clients

        await accept_uploads(self)
        log.info("RS %s listening on %s port %d%s", self.core.config.audience, self.bind[0], self.bind[1],
                 f" (DTLS on {self.coaps_port})" if self.coaps_port else "")

    async def stop(self) -> None:
        if self.introspector is not None:
            await self.introspector.stop()
        if self.trl is not None:
            await self.trl.stop()
        await cancel(self._sweeper)
        self._sweeper = None
        self.observations.close()
        for resource in self._protected:  # a polled file stops polling, for good
            resource.close()
        if self.context is not None:
            await self.context.shutdown()
            self.context = None
        close = getattr(self.core.fresh.state, "close", None)  # the RS's state file (and its lock) is ours
        if close is not None:
            close()
