"""Who the peer of a CoAP request is: the one place the CoAP layer works it out.

A request's secure channel names its sender in ``request.remote.authenticated_claims``: a client
id (str) for a client's OSCORE context or DTLS-PSK session with the AS, an ``RsPeer`` for an RS's
OSCORE context with the AS, a binding label (bytes) at the RS (``label_of``). ``AsPeers`` turns
the first two into the store's record, and only while the context that protected the request is
still the registered one (a client or RS re-keyed or removed with ``ace policy`` while the AS runs
loses its old context here): the cores are handed that record (RFC 9200 §5.8 and §5.9: the AS
authenticates the requesting entity), never an id to look up again. ``address_of`` and
``source_of`` say where an unauthenticated request came from, for the per-source budgets.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any, TypeAlias

import aiocoap
from aiocoap.transports.udp6 import MessageInterfaceUDP6
from aiocoap.util import hostportsplit

from ace.coap import contexts
from ace.requester import Requester, RsPeer
from ace.tokens.oscore_params import OscoreContextParams

if TYPE_CHECKING:
    from ace.store.base import AsStore, ClientRecord, RsRecord

log = logging.getLogger(__name__)
Peer: TypeAlias = "ClientRecord | RsRecord"  # an authenticated peer of the AS, as the store holds it


def _claims(request: aiocoap.Message) -> list[Any]:
    return getattr(request.remote, "authenticated_claims", None) or []


def from_as(request: aiocoap.Message) -> bool:
    """At the RS: the request came over its OSCORE context with the AS (claims "as", ``as_upload``)."""
    return "as" in _claims(request)


def claimed_client(request: aiocoap.Message) -> str | None:
    """The client id the request's channel claims (not yet checked against the store)."""
    return next((c for c in _claims(request) if isinstance(c, str)), None)


def claimed_rs(request: aiocoap.Message) -> RsPeer | None:
    """The RS the request's channel claims (not yet checked against the store)."""
    return next((c for c in _claims(request) if isinstance(c, RsPeer)), None)


def label_of(request: aiocoap.Message) -> bytes | None:
    """At the RS: the binding label the request's secure channel carries (OSCORE context or DTLS session)."""
    return next((c for c in _claims(request) if isinstance(c, bytes)), None)


def requester_of(peer: Peer | None) -> Requester | None:
    """The TRL's name for ``peer`` (its update collection's key): a client id, or an ``RsPeer``."""
    if peer is None:
        return None
    from ace.store.base import RsRecord  # the AS's records: an RS never has one to name

    return RsPeer(peer.audience) if isinstance(peer, RsRecord) else peer.client_id


def name_of(peer: Peer | Requester | None) -> str:
    """``peer`` (a record, or the TRL's name for one) for a log line."""
    requester = peer if isinstance(peer, (str, RsPeer)) else requester_of(peer)
    return str(requester) if requester is not None else "unauthenticated peer"


class AsPeers:
    """The AS's authenticated peers: each request's client or RS, by its *current* registration in
    ``store``; a context no longer registered is removed from ``index`` (the AS's contexts)."""

    def __init__(self, store: AsStore, index: contexts.ContextIndex) -> None:
        self.store, self.index = store, index

    def client(self, request: aiocoap.Message) -> ClientRecord | None:
        """The client whose current registration protected ``request``, else None."""
        client_id = claimed_client(request)
        if client_id is None:
            return None
        client = self.store.get_client(client_id)
        ctx = getattr(request.remote, "security_context", None)
        if ctx is None:  # DTLS: the key was read from the store at handshake time
            return client if client is not None and client.psk is not None else None
        if not self._current(ctx, client.oscore if client is not None else None):
            log.warning("client %s used a context it is no longer registered with", client_id)
            return None
        return client

    def peer(self, request: aiocoap.Message) -> Peer | None:
        """The registered client or RS whose current credentials protected ``request``."""
        claim = claimed_rs(request)
        if claim is None:
            return self.client(request)
        rs = self.store.get_rs(claim.audience)
        ctx = getattr(request.remote, "security_context", None)
        if not self._current(ctx, rs.oscore if rs is not None else None):
            log.warning("RS %s used a context it is no longer registered with", claim.audience)
            return None
        return rs

    def requester(self, request: aiocoap.Message) -> Requester | None:
        """``peer``, as the TRL names it."""
        return requester_of(self.peer(request))

    def _current(self, ctx: Any, secret: OscoreContextParams | None) -> bool:
        """Whether ``ctx`` was built from ``secret``; if not, it goes from the index."""
        if secret is not None and getattr(ctx, "secret_fingerprint", None) == contexts.secret_fingerprint(secret):
            return True
        if ctx is not None:
            self.index.remove(ctx.recipient_id, ctx.id_context)
        return False


def address_of(remote: Any) -> str:
    """The IP address a request came from, whatever the (spoofable) port (udp6; else its hostinfo)."""
    sockaddr = getattr(remote, "sockaddr", None)
    if sockaddr:
        return str(sockaddr[0])
    return str(getattr(remote, "hostinfo", remote))


def source_of(remote: Any) -> str:
    """What a request counts against: its IPv4 address, or its IPv6 /64 (one host's usual share)."""
    sockaddr = getattr(remote, "sockaddr", None)
    host = str(sockaddr[0]) if sockaddr else hostportsplit(str(getattr(remote, "hostinfo", "")))[0]
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def coap_port(context: aiocoap.Context) -> int:
    """The plain port (udp6) actually bound."""
    for interface in context.request_interfaces:
        messages = getattr(getattr(interface, "token_interface", None), "message_interface", None)
        if isinstance(messages, MessageInterfaceUDP6):
            return int(messages.transport.get_extra_info("socket").getsockname()[1])
    raise LookupError("context has no udp6 transport")
