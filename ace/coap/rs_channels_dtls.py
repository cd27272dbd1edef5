"""The DTLS profile's channel installer (RFC 9202): see ``ace.coap.rs_channels``. Imported only by
an RS that offers the profile (it loads aiocoap's tinydtls glue); the profile's token handling
(``ace.profiles.dtls``) loads with the first token."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar, cast

from ace.cbor.labels import AceProfile
from ace.coap import dtls
from ace.coap.rs_host import RsHost
from ace.rs.store import Binding

if TYPE_CHECKING:  # the profile's token handling loads with the first token (issue 14: cold start)
    from ace.profiles import dtls as dtls_profile
    from ace.profiles.base import Channel

SESSION_DROP_DELAY = 0.1  # seconds: lets a response in flight over the session go out first


class DtlsChannels:
    """PSKs by identity (RFC 9202 §3.3.1: the kid of the token's key) for the client's handshake."""

    profile: ClassVar[int] = int(AceProfile.COAP_DTLS)

    def __init__(self, server: RsHost) -> None:
        self.server, self.psks = server, server.psks
        self.labels: dict[bytes, bytes] = {}  # binding label -> psk_identity

    def install(self, binding: Binding) -> None:
        channel = cast("dtls_profile.DtlsChannel", binding.context)
        if channel.identity not in self.psks:
            self.psks.add(channel.identity, channel.key, binding.label)
            self.labels[binding.label] = channel.identity

    def uninstall(self, label: bytes, channel: Channel) -> None:
        self._forget(label, cast("dtls_profile.DtlsChannel", channel).identity)

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
