"""The RS's secure channels on CoAP: one installer per ACE profile, registered by profile number.

The RS core binds a token to a channel (``Binding.context``, made by its profile in
``ace.profiles``); the installer of that profile puts the channel where aiocoap's server finds it
and takes it away again: an OSCORE context in the ``ContextIndex`` (RFC 9203 §4.3), the PSK under
its identity (RFC 9202 §3.3; live DTLS sessions of a token that went are closed too), the client's
EDHOC credential under its kid (with every OSCORE context EDHOC made with it). ``reconcile`` drops
channels no live binding names; ``start`` registers the installer's credential source and, when
the RS offers the profile, prepares it (EDHOC: the RS's own identity); ``serve`` creates a server
context of the profile's own (DTLS: tinydtls on the bind port + 1), else None. ``RsServer`` (an ``RsHost``) calls
them through ``installers`` and never branches on the profile itself.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Protocol, cast

from ace.coap import contexts, dtls, edhoc
from ace.profiles import dtls as dtls_profile
from ace.profiles import edhoc as edhoc_profile
from ace.profiles import oscore as oscore_profile
from ace.profiles.base import Channel
from ace.rs.server import ResourceServer
from ace.rs.store import Binding
from ace.tokens.keys import CoseKey
from ace.tokens.oscore_params import OscoreContextParams

SESSION_DROP_DELAY = 0.1  # seconds: lets a response in flight over the session go out first
EDHOC_STALE_SECONDS = 60.0  # an EDHOC responder context still incomplete after this is dropped


class RsHost(Protocol):
    """What the installers use of the RS's CoAP side (``ace.coap.rs_server.RsServer``)."""

    core: ResourceServer
    bind: tuple[str, int]
    edhoc_key: CoseKey | None  # the RS's own EDHOC credential (private)
    index: contexts.ContextIndex  # OSCORE contexts by Recipient ID
    psks: dtls.PskIndex
    peers: edhoc.PeerCredentialIndex  # clients' EDHOC credentials by kid
    credentials: edhoc.EdhocCredentialsMap  # what aiocoap's server looks credentials up in
    context: Any  # the aiocoap server context, once started
    coaps_port: int | None


class ChannelInstaller(Protocol):
    profile: ClassVar[int]  # the ACE profile number whose channels this installs

    def install(self, binding: Binding) -> None: ...

    def uninstall(self, label: bytes, channel: Channel) -> None: ...

    def reconcile(self, live: set[bytes]) -> int:
        """Drop the channels whose label no live binding carries; returns how many."""
        ...

    def start(self, offered: bool) -> None: ...

    async def serve(self, site: Any) -> Any: ...


class OscoreChannels:
    """OSCORE contexts derived at /authz-info (RFC 9203 §4.3), by Recipient ID and ID Context."""

    profile: ClassVar[int] = oscore_profile.PROFILE.number

    def __init__(self, server: RsHost) -> None:
        self.server, self.index = server, server.index

    def install(self, binding: Binding) -> None:
        params = cast(OscoreContextParams, binding.context)
        ctx = self.index.exact(binding.label, params.id_context)
        if ctx is None:
            self.index.add(contexts.from_params(params, claims=[binding.label], expires_at=binding.expires_at,
                                                clock=self.server.core.clock))
        else:  # new rights over the same context (RFC 9203 §4.1): it ends with the new token
            ctx.expires_at = binding.expires_at

    def uninstall(self, label: bytes, channel: Channel) -> None:
        self.index.remove(label, cast(OscoreContextParams, channel).id_context)

    def reconcile(self, live: set[bytes]) -> int:
        stale = [c for c in self.index if c.recipient_id not in live]
        for ctx in stale:
            self.index.remove(ctx.recipient_id, ctx.id_context)
        return len(stale)

    def start(self, offered: bool) -> None:
        self.server.credentials[":tokens"] = self.index

    async def serve(self, site: Any) -> Any:
        return None  # on the plain CoAP transport


class DtlsChannels:
    """PSKs by identity (RFC 9202 §3.3.1: the kid of the token's key) for the client's handshake."""

    profile: ClassVar[int] = dtls_profile.PROFILE.number

    def __init__(self, server: RsHost) -> None:
        self.server, self.psks = server, server.psks
        self.labels: dict[bytes, bytes] = {}  # binding label -> psk_identity

    def install(self, binding: Binding) -> None:
        channel = cast(dtls_profile.DtlsChannel, binding.context)
        if channel.identity not in self.psks:
            self.psks.add(channel.identity, channel.key, binding.label)
            self.labels[binding.label] = channel.identity

    def uninstall(self, label: bytes, channel: Channel) -> None:
        self._forget(label, cast(dtls_profile.DtlsChannel, channel).identity)

    def reconcile(self, live: set[bytes]) -> int:
        stale = [(label, ident) for label, ident in self.labels.items() if label not in live]
        for label, ident in stale:
            self._forget(label, ident)
        return len(stale)

    def _forget(self, label: bytes, identity: bytes) -> None:
        self.psks.remove(identity)
        self.labels.pop(label, None)
        if self.server.context is not None:  # a live session must not outlive its token ...
            self._drop_sessions_soon(label)

    def _drop_sessions_soon(self, label: bytes) -> None:
        """... but the answer to the request that found the token gone (4.01) must leave first."""
        def drop() -> None:
            if self.server.context is not None:
                dtls.drop_sessions(self.server.context, label)
        try:
            asyncio.get_running_loop().call_later(SESSION_DROP_DELAY, drop)
        except RuntimeError:  # no loop running (tests calling in directly)
            drop()

    def start(self, offered: bool) -> None:
        self.server.credentials[":psk"] = self.psks

    async def serve(self, site: Any) -> Any:
        server = self.server
        context = await dtls.create_server(site, server.bind, server.credentials, extra_transports=["oscore"])
        server.coaps_port = dtls.coaps_port(context)
        return context


class EdhocChannels:
    """Clients' EDHOC credentials by kid (ID_CRED_I by reference), and the RS's own identity."""

    profile: ClassVar[int] = edhoc_profile.PROFILE.number

    def __init__(self, server: RsHost) -> None:
        self.server, self.peers = server, server.peers

    def install(self, binding: Binding) -> None:
        channel = cast(edhoc_profile.EdhocChannel, binding.context)
        if channel.kid not in self.peers:  # the client's EDHOC run finds its credential by kid
            self.peers.add(channel.peer_key, binding.label)

    def uninstall(self, label: bytes, channel: Channel) -> None:
        self._forget(label, cast(edhoc_profile.EdhocChannel, channel).kid)

    def reconcile(self, live: set[bytes]) -> int:
        stale = [label for label in self.peers.labels() if isinstance(label, bytes) and label not in live]
        for label in stale:
            self._forget(label, label.removeprefix(edhoc_profile.LABEL_PREFIX))
        self.server.credentials.forget_stale(EDHOC_STALE_SECONDS)  # handshakes never completed
        return len(stale)

    def _forget(self, label: bytes, kid: bytes) -> None:
        """The client's credential and every OSCORE context EDHOC made with it."""
        self.peers.remove(kid)
        self.server.credentials.forget_label(label)

    def start(self, offered: bool) -> None:
        server, credentials = self.server, self.server.credentials
        credentials[":edhoc-peers"] = self.peers
        if offered and server.edhoc_key is not None:
            edhoc.install_server_identity(credentials, server.edhoc_key, [edhoc.edhoc_origin(*server.bind)])
            # one identifier space: OSCORE recipient ids never collide with a live EDHOC C_R
            core = server.core
            credentials.share_ids(core.ids, live=lambda label: isinstance(label, bytes)
                                  and core.bindings.get(label) is not None)

    async def serve(self, site: Any) -> Any:
        return None  # EDHOC and the OSCORE it derives run on the plain CoAP transport


def installers(server: RsHost) -> dict[int, ChannelInstaller]:
    """One installer per profile, by number (in the order their credential sources register)."""
    made: list[ChannelInstaller] = [OscoreChannels(server), DtlsChannels(server), EdhocChannels(server)]
    return {i.profile: i for i in made}
