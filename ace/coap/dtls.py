"""DTLS-PSK transport glue (RFC 9202) on aiocoap's tinydtls transports (DTLSSocket).

The RS learns a PoP key (kid = psk_identity) at /authz-info and must find it while the
client's handshake runs; ``PskIndex`` holds such keys in a dict (with an optional loader for
misses), like ``ContextIndex`` does for OSCORE. How aiocoap 0.4.17 reaches it:

* The DTLS server (transport ``tinydtls_server``) wraps ``Context.server_credentials`` per
  client address and calls ``server_credentials.find_dtls_psk(identity)`` up to three times per
  handshake; ``KeyError`` means unknown identity (tinydtls then sends a fatal internal_error
  alert, 80). It expects ``(psk, claims)``; resources see ``remote.authenticated_claims ==
  [claims]`` and ``remote.scheme == "coaps"``.
* ``CredentialsMap.find_dtls_psk`` only looks at items with ``as_dtls_psk`` (one static key
  each); items with ``find_dtls_psk`` are ignored. ``DtlsCredentialsMap`` asks those too.
* ``Context`` does ``server_credentials or CredentialsMap()``: an empty (falsy) map passed in is
  silently replaced. ``PskIndex`` and ``DtlsCredentialsMap`` are therefore always truthy.
* The DTLS server listens on bind port + 1 (5684 for None) and refuses the any-address; IPv4 and
  IPv6 both work. Its 64-session cap is never applied by aiocoap; ``create_server`` applies it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import aiocoap
from aiocoap import error as coap_error
from aiocoap.credentials import DTLS, CredentialsMap
from aiocoap.numbers import COAP_PORT, COAPS_PORT
from aiocoap.transports.tinydtls_server import MessageInterfaceTinyDTLSServer
from aiocoap.transports.udp6 import MessageInterfaceUDP6
from aiocoap.util import hostportjoin

from ace.coap import dtls_flights
from ace.coap.peers import coap_port as coap_port  # re-exported: the plain port next to coaps_port

log = logging.getLogger(__name__)

# tinydtls: DTLS_PSK_MAX_CLIENT_IDENTITY_LEN; a longer identity aborts the handshake.
MAX_IDENTITY = 32
# tinydtls: DTLS_PSK_MAX_KEY_LEN (16). DTLSSocket memcpy()s the key into that buffer without a
# length check, so a longer key overflows C memory: it must be refused before tinydtls sees it.
MAX_PSK = 16
# aiocoap's tinydtls_server.max_sockets (its LRU eviction exists but is never called).
MAX_SESSIONS = 64
# Client identities must not contain 0x00: DTLSSocket keeps pskId as a C string, so aiocoap's
# client sends the identity cut at the first zero byte. The server side takes the identity with
# its length, so PskIndex accepts 0x00 (for other clients; not tested here).

# simplesocketserver binds DTLS at bind port + (COAPS_PORT - COAP_PORT).
PORT_OFFSET: int = COAPS_PORT - COAP_PORT
DEFAULT_COAPS_PORT: int = COAPS_PORT

Loader = Callable[[bytes], "tuple[bytes, object] | None"]


class PskLookup(Protocol):
    def find_dtls_psk(self, identity: bytes) -> tuple[bytes, object]: ...


def check_identity(identity: bytes, *, client: bool = False) -> bytes:
    if not isinstance(identity, bytes | bytearray):
        raise TypeError("DTLS PSK identity must be bytes")
    identity = bytes(identity)
    if not 1 <= len(identity) <= MAX_IDENTITY:
        raise ValueError(f"DTLS PSK identity must be 1..{MAX_IDENTITY} bytes, got {len(identity)}")
    if client and b"\x00" in identity:
        raise ValueError("DTLS PSK client identity must not contain 0x00 (aiocoap cuts it there)")
    return identity


def check_psk(psk: bytes) -> bytes:
    if not isinstance(psk, bytes | bytearray):
        raise TypeError("DTLS PSK must be bytes")
    psk = bytes(psk)
    if not 1 <= len(psk) <= MAX_PSK:
        raise ValueError(f"DTLS PSK must be 1..{MAX_PSK} bytes, got {len(psk)}")
    return psk


class PskIndex:
    """A credentials item answering ``find_dtls_psk`` from a dict identity -> (psk, label).

    ``loader`` (optional) is asked on a miss, at handshake time; what it returns is checked and
    kept. Removing an identity stops new handshakes only: see ``drop_sessions``.
    """

    def __init__(self, loader: Loader | None = None) -> None:
        # The stored bytes objects are what find_dtls_psk returns: the C side reads from them.
        self._by_identity: dict[bytes, tuple[bytes, object]] = {}
        self._loader = loader

    def add(self, identity: bytes, psk: bytes, label: object) -> None:
        self._by_identity[check_identity(identity)] = (check_psk(psk), label)

    def remove(self, identity: bytes) -> bool:
        return self._by_identity.pop(bytes(identity), None) is not None

    def find_dtls_psk(self, identity: bytes) -> tuple[bytes, object]:
        found = self._by_identity.get(identity)
        if found is None and self._loader is not None:
            found = self._load(identity)
        if found is None:
            raise KeyError(identity)
        return found

    def _load(self, identity: bytes) -> tuple[bytes, object] | None:
        # Only KeyError may leave find_dtls_psk: anything else would surface inside tinydtls.
        try:
            loaded = self._loader(identity) if self._loader is not None else None
            if loaded is None:
                return None
            self.add(identity, *loaded)
        except Exception:
            log.exception("DTLS PSK loader failed for identity %r", identity)
            return None
        return self._by_identity[identity]

    def __contains__(self, identity: object) -> bool:
        return identity in self._by_identity

    def __len__(self) -> int:
        return len(self._by_identity)

    def __bool__(self) -> bool:  # never replaced by aiocoap as "no credentials"
        return True


class DtlsCredentialsMap(CredentialsMap):  # type: ignore[misc]
    """A CredentialsMap whose ``find_dtls_psk`` also asks items that have ``find_dtls_psk``."""

    def find_dtls_psk(self, identity: bytes) -> tuple[bytes, object]:
        # Whatever goes wrong must leave as KeyError (anything else surfaces inside tinydtls), and
        # the key must be bytes held by the item (the C side reads from the object returned).
        try:
            psk, label = self._find(identity)
            if type(psk) is not bytes or check_psk(psk) is not psk:
                raise ValueError("DTLS PSK must be bytes of 1..16")
        except KeyError:
            raise
        except Exception as exc:
            log.exception("DTLS PSK lookup failed for identity %r", identity)
            raise KeyError(identity) from exc
        return psk, label

    def _find(self, identity: bytes) -> tuple[Any, object]:
        for item in list(self.values()):
            if hasattr(item, "find_dtls_psk"):
                try:
                    found: tuple[Any, object] = item.find_dtls_psk(identity)
                    return found
                except KeyError:
                    continue
        static: tuple[Any, object] = super().find_dtls_psk(identity)  # items with as_dtls_psk
        return static

    def __bool__(self) -> bool:
        return True


def dtls_client_credentials(psk: bytes, identity: bytes) -> DTLS:
    return DTLS(psk=check_psk(psk), client_identity=check_identity(identity, client=True))


def client_credentials_key(host: str, port: int | None) -> str:
    """The pattern aiocoap matches coaps request URIs against (default port left out)."""
    return f"coaps://{hostportjoin(host, None if port in (None, COAPS_PORT) else port)}/*"


def install_client_credentials(context: aiocoap.Context, host: str, port: int | None,
                               psk: bytes, identity: bytes) -> str:
    """Use (psk, identity) for every coaps request to host:port; returns the map key.

    aiocoap pools client sessions by (host, port, identity), not by key: after changing the key
    of an identity, use a new client context (or wait until the old session is gone).
    """
    key = client_credentials_key(host, port)
    context.client_credentials[key] = dtls_client_credentials(psk, identity)
    return key


def dtls_server_port(bind_port: int | None) -> int:
    """The port aiocoap's DTLS server binds for a plain bind port: bind + (5684 - 5683), so
    5683 -> 5684 and None -> 5684. Bind port 0 would give port 1; ``create_server`` instead picks
    a free pair (P, P + 1)."""
    return DEFAULT_COAPS_PORT if bind_port is None else bind_port + PORT_OFFSET


def _free_port_pair(host: str, attempts: int = 50) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(attempts):
        with socket.socket(family, socket.SOCK_DGRAM) as first:
            first.bind((host, 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket(family, socket.SOCK_DGRAM) as second:
                try:
                    second.bind((host, port + 1))
                except OSError:
                    continue
        return port
    raise OSError(f"no free UDP port pair on {host}")


async def create_server(site: Any, bind: tuple[str, int], credentials: PskLookup, *,
                        plain: bool = True, extra_transports: Sequence[str] = (),
                        max_sessions: int = MAX_SESSIONS, coaps: int | None = None) -> aiocoap.Context:
    """A server context: plain CoAP (udp6) on ``bind`` and DTLS on ``coaps``, by default
    ``dtls_server_port(port)`` (aiocoap's layout).

    ``bind`` needs a concrete address (tinydtls_server refuses ``::``/``0.0.0.0``); port 0 picks
    a free pair. Listing ``tinydtls_server`` explicitly makes AIOCOAP_DTLSSERVER_ENABLED
    unnecessary. ``coaps_port(ctx)`` / ``coap_port(ctx)`` tell the ports actually bound.
    """
    host, port = bind
    if host in ("", "::", "0.0.0.0"):
        raise ValueError("the DTLS server needs a concrete bind address, not the any-address")
    if (isinstance(credentials, CredentialsMap) and not isinstance(credentials, DtlsCredentialsMap)
            and (not credentials or any(hasattr(v, "find_dtls_psk") for v in credentials.values()))):
        raise TypeError("use DtlsCredentialsMap: a plain CredentialsMap ignores find_dtls_psk items "
                        "and an empty one is replaced by aiocoap")
    if coaps is not None and coaps != (port + PORT_OFFSET if port else None):
        return await _create_split(site, (host, port), coaps, credentials, plain=plain,
                                   extra_transports=extra_transports, max_sessions=max_sessions)
    transports = ["tinydtls_server", *(["udp6"] if plain else []), *extra_transports]
    for attempt in range(5):
        use_port = _free_port_pair(host) if port == 0 else port
        try:
            context = await aiocoap.Context.create_server_context(
                site, bind=(host, use_port), transports=transports, server_credentials=credentials)
        except OSError:
            if port != 0 or attempt == 4:
                raise
            continue
        _limit_sessions(context, max_sessions)
        return context
    raise AssertionError("unreachable")


async def _create_split(site: Any, bind: tuple[str, int], coaps: int, credentials: PskLookup, *, plain: bool,
                        extra_transports: Sequence[str], max_sessions: int) -> aiocoap.Context:
    """DTLS on ``coaps`` and plain CoAP on ``bind``, any two ports: aiocoap binds its DTLS server at
    the port it is given + 1, so it gets ``coaps - 1``; udp6 is added to the same context after."""
    if not 1 <= coaps <= 65535:
        raise ValueError(f"DTLS port must be 1..65535, got {coaps}")
    host, port = bind
    context = await aiocoap.Context.create_server_context(
        site, bind=(host, coaps - PORT_OFFSET), transports=["tinydtls_server", *extra_transports],
        server_credentials=credentials)
    try:
        if plain:  # what create_server_context does for "udp6" (aiocoap has no public way to add one)
            await context._append_tokenmanaged_messagemanaged_transport(
                lambda mman: MessageInterfaceUDP6.create_server_transport_endpoint(
                    mman, log=context.log, loop=context.loop, bind=(host, port), multicast=[]))
    except BaseException:
        await context.shutdown()
        raise
    _limit_sessions(context, max_sessions)
    return context


def _dtls_pool(context: aiocoap.Context) -> Any:
    for interface in context.request_interfaces:
        messages = getattr(getattr(interface, "token_interface", None), "message_interface", None)
        if isinstance(messages, MessageInterfaceTinyDTLSServer):
            return messages._pool
    raise LookupError("context has no tinydtls_server transport")


def coaps_port(context: aiocoap.Context) -> int:
    return int(_dtls_pool(context)._transport.get_extra_info("sockname")[1])


def _drop(connection: Any, reason: str) -> None:
    """Send close_notify, then forget the session. An aiocoap client handshakes again on its next
    request (its first datagram is lost; CoAP retransmits); without the alert it would keep
    sending into a session the server no longer has and time out."""
    if connection._psk_store._claims is not None:  # else no key was ever found: no peer to notify
        printed = io.StringIO()  # DTLSSocket print()s "Error in close: -1" (a session already gone)
        with contextlib.suppress(Exception), contextlib.redirect_stdout(printed):
            connection._dtls_socket.close(connection._dtls_session)
        if printed.getvalue():
            log.debug("tinydtls: %s", printed.getvalue().strip())
    connection._inject_error(coap_error.LibraryShutdown(reason))


def sessions(context: aiocoap.Context) -> list[tuple[Any, object]]:
    """(client socket address, claims) per server-side session entry. The claims are set once a
    key was looked up, so entries of failed (wrong-key) handshakes carry a label too; unknown
    identities show None. Entries stay after a client's close_notify until evicted."""
    return [(addr, conn._psk_store._claims) for addr, conn in _dtls_pool(context)._connections.items()]


def drop_sessions(context: aiocoap.Context, label: object | None = None) -> int:
    """Close the live DTLS sessions authenticated as ``label`` (all sessions if None).

    Removing a key from a ``PskIndex`` does not touch sessions already established; call this
    too when a token expires or is replaced. Returns how many sessions were dropped."""
    pool = _dtls_pool(context)
    doomed = [c for c in list(pool._connections.values()) if label is None or c._psk_store._claims == label]
    for connection in doomed:
        _drop(connection, "session dropped")
    return len(doomed)


def _limit_sessions(context: aiocoap.Context, limit: int) -> None:
    """Evict the least recently used session before a new client address exceeds ``limit``
    (aiocoap keeps one tinydtls context per address ever seen, also for failed handshakes)."""
    pool = _dtls_pool(context)
    receive = pool.datagram_received

    def datagram_received(data: bytes, sockaddr: Any) -> None:
        connections = pool._connections
        while sockaddr not in connections and len(connections) >= limit:
            _drop(next(iter(connections.values())), "session evicted (session limit)")
        receive(data, sockaddr)

    pool.datagram_received = datagram_received
    dtls_flights.answer_retransmissions(pool)  # RFC 6347 §4.2.4: a lost final flight is sent again
