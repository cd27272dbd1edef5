"""What a channel installer (``ace.coap.rs_channels``) sees of the RS, and what it offers it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ace.coap import contexts
from ace.rs.server import ResourceServer
from ace.rs.store import Binding
from ace.tokens.keys import CoseKey

if TYPE_CHECKING:
    from ace.coap import dtls
    from ace.profiles.base import Channel
    from ace.profiles.edhoc_presets import EdhocCodePoints


class RsHost(Protocol):
    """What the installers use of the RS's CoAP side (``ace.coap.rs_server.RsServer``)."""

    core: ResourceServer
    bind: tuple[str, int]
    edhoc_key: CoseKey | None  # the RS's own EDHOC credential (private)
    edhoc_preset: EdhocCodePoints  # the EDHOC profile's code points and token limits
    edhoc_message_4: bool  # the EDHOC responder sends message_4
    edhoc_reverse: bool  # the RS takes the reverse EDHOC message flow (EP §4.4)
    index: contexts.ContextIndex  # OSCORE contexts by Recipient ID
    credentials: Any  # what aiocoap's server looks credentials up in (``credentials_map``)

    @property
    def psks(self) -> dtls.PskIndex: ...

    context: Any  # the aiocoap server context, once started
    coaps_port: int | None

    def install(self, binding: Binding, dropped: Iterable[Binding]) -> None: ...  # a new binding's channel


class ChannelInstaller(Protocol):
    profile: ClassVar[int]  # the ACE profile number whose channels this installs

    def install(self, binding: Binding) -> None: ...

    def uninstall(self, label: bytes, channel: Channel) -> None: ...

    def reconcile(self, live: set[bytes]) -> int:
        """Drop the channels whose label no live binding carries; returns how many."""
        ...

    def start(self, offered: bool) -> None: ...

    async def serve(self, site: Any) -> Any: ...
