"""The RS's secure channels on CoAP: one installer per ACE profile, registered by profile number.

The RS core binds a token to a channel (``Binding.context``, made by its profile in
``ace.profiles``); the installer of that profile puts the channel where aiocoap's server finds it
and takes it away again: an OSCORE context in the ``ContextIndex`` (RFC 9203 §4.3), the PSK under
its identity (RFC 9202 §3.3; live DTLS sessions of a token that went are closed too), the client's
EDHOC credential under its kid (with every OSCORE context EDHOC made with it). ``reconcile`` drops
channels no live binding names; ``start`` registers the installer's credential source and, when
the RS offers the profile, prepares it (EDHOC: the RS's own identity); ``serve`` creates a server
context of the profile's own (DTLS: tinydtls on the bind port + 1), else None. ``RsServer`` (an ``RsHost``) calls
them through ``installers`` and never branches on the profile itself. Only the installers of the
profiles the RS offers are made, and a profile's CoAP glue is imported only then (an OSCORE-only
RS loads no DTLS or EDHOC code): ``INSTALLERS`` names each by module, ``rs_channels_dtls`` and
``rs_channels_edhoc`` hold those two; ``rs_host`` what an installer sees of the RS.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from aiocoap.credentials import CredentialsMap
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper

from ace.cbor.labels import AceProfile
from ace.coap import contexts
from ace.coap.rs_host import ChannelInstaller, RsHost
from ace.rs.store import Binding
from ace.tokens.oscore_params import OscoreContextParams

if TYPE_CHECKING:
    from ace.profiles.base import Channel


class OscoreChannels:
    """OSCORE contexts derived at /authz-info (RFC 9203 §4.3), by Recipient ID and ID Context."""

    profile: ClassVar[int] = int(AceProfile.COAP_OSCORE)

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


# the installer of each profile, by number, in the order their credential sources register
INSTALLERS = {int(AceProfile.COAP_OSCORE): "ace.coap.rs_channels:OscoreChannels",
              int(AceProfile.COAP_DTLS): "ace.coap.rs_channels_dtls:DtlsChannels",
              int(AceProfile.COAP_EDHOC_OSCORE): "ace.coap.rs_channels_edhoc:EdhocChannels"}


def installers(server: RsHost, offered: Iterable[int]) -> dict[int, ChannelInstaller]:
    """One installer per offered profile, by number; its module is imported now, not before."""
    wanted, made = set(offered), {}
    for number, where in INSTALLERS.items():
        if number in wanted:
            module, name = where.split(":")
            made[number] = cast(ChannelInstaller, getattr(importlib.import_module(module), name)(server))
    return made


def credentials_map(offered: Iterable[int]) -> Any:
    """The server's credentials map: bounding EDHOC responders (and finding DTLS PSKs) when EDHOC
    is offered, finding DTLS PSKs when DTLS is, else aiocoap's own."""
    wanted = set(offered)
    if int(AceProfile.COAP_EDHOC_OSCORE) in wanted:
        from ace.coap import edhoc

        return edhoc.EdhocCredentialsMap()
    if int(AceProfile.COAP_DTLS) in wanted:
        from ace.coap import dtls

        return dtls.DtlsCredentialsMap()
    return CredentialsMap()


def oscore_site(site: Any, credentials: Any, offered: Iterable[int]) -> Any:
    """The site behind aiocoap's OSCORE (and EDHOC) processing: with EDHOC offered, one that answers
    malformed EDHOC messages with 4.00, bounds handshakes and takes the token in EDHOC
    (``edhoc_server.AceEdhocSite``). Without it the RS has no EDHOC identity: aiocoap answers every
    EDHOC message 4.04 or 4.00 by itself."""
    if int(AceProfile.COAP_EDHOC_OSCORE) in set(offered):
        from ace.coap import edhoc_server

        return edhoc_server.AceEdhocSite(site, credentials)
    return OscoreSiteWrapper(site, credentials)
