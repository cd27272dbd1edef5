"""The EDHOC profile's channel installer (draft-ietf-ace-edhoc-oscore-profile): see
``ace.coap.rs_channels``. Imported only by an RS that offers the profile."""

from __future__ import annotations

from typing import Any, ClassVar, cast

from ace.coap import edhoc
from ace.coap.rs_host import RsHost
from ace.profiles import edhoc as edhoc_profile
from ace.profiles.base import Channel
from ace.rs.store import Binding

EDHOC_STALE_SECONDS = 60.0  # an EDHOC responder context still incomplete after this is dropped


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
