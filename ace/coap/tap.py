"""What the client's CoAP context puts on the wire, for the trace (``ace demo``, ``ace client --trace``).

``MessageTap`` sits on aiocoap 0.4.17's message layer (``MessageManager``: every CoAP message
sent or received, over UDP and inside DTLS) and on tinydtls client connections (the datagrams of
the DTLS handshake, which CoAP never sees). Bounded; it only measures and never changes a message.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import aiocoap
from aiocoap.message import Direction

log = logging.getLogger(__name__)

EDHOC_PATH = (".well-known", "edhoc")  # RFC 9528 Appendix A.2
HANDSHAKE_TYPES = (20, 21, 22)  # DTLS record content types other than application data (23)


class MessageTap:
    """Every CoAP message as (outgoing, message, whole encoded bytes), and DTLS handshake datagrams
    as ("dtls", outgoing, bytes). Received messages are re-encoded (aiocoap's encoding, as the peer's)."""

    def __init__(self, limit: int = 64) -> None:
        self.seen: deque[tuple[Any, ...]] = deque(maxlen=limit)
        self.count = 0

    def install(self, context: Any) -> None:
        for ri in context.request_interfaces:
            manager = getattr(ri, "token_interface", None)
            if manager is None or not hasattr(manager, "_send_via_transport"):
                continue
            manager._send_via_transport = self._wrap(True, manager._send_via_transport)
            manager.dispatch_message = self._wrap(False, manager.dispatch_message)
            iface = getattr(manager, "message_interface", None)
            if hasattr(iface, "_connection_for_address"):
                self._tap_dtls(iface)

    def _wrap(self, outgoing: bool, pass_on: Any) -> Any:
        def tapped(message: aiocoap.Message) -> Any:
            self._message(outgoing, message)
            return pass_on(message)
        return tapped

    def _tap_dtls(self, iface: Any) -> None:
        connect, tapped = iface._connection_for_address, self

        def connection_for_address(*args: Any) -> Any:
            conn = connect(*args)
            if not getattr(conn, "_ace_tapped", False):
                conn._ace_tapped = True
                write, protocol = conn._write, conn.SingleConnection

                def counted_write(recipient: Any, data: bytes) -> Any:
                    tapped._datagram(True, data)
                    return write(recipient, data)

                class Counted(protocol):  # type: ignore[misc, valid-type]
                    def datagram_received(self, data: bytes, addr: Any) -> None:
                        tapped._datagram(False, data)
                        super().datagram_received(data, addr)

                conn._write, conn.SingleConnection = counted_write, Counted
            return conn

        iface._connection_for_address = connection_for_address

    def _datagram(self, outgoing: bool, data: bytes) -> None:
        if data[:1] and data[0] in HANDSHAKE_TYPES:  # the first record's content type (RFC 6347 §4.1)
            self._add(("dtls", outgoing, len(data)))

    def _message(self, outgoing: bool, message: aiocoap.Message) -> None:
        try:
            if not outgoing:  # aiocoap encodes outgoing messages only: a copy, turned around
                message = message.copy()
                message.direction = Direction.OUTGOING
            self._add((outgoing, message, len(message.encode())))
        except Exception:  # the tap only measures: whatever it fails on, the message goes on uncounted
            log.debug("a message was not measured", exc_info=True)

    def _add(self, item: tuple[Any, ...]) -> None:
        self.seen.append(item)
        self.count += 1

    def since(self, mark: int) -> tuple[int | None, int | None, tuple[tuple[str, int], ...]]:
        """Since ``mark``: the request's and the response's whole-message sizes, and the handshake
        messages among them as ("edhoc request" | "edhoc response" | "dtls sent" | "dtls received", bytes)."""
        new = list(self.seen)[max(0, len(self.seen) - (self.count - mark)):]
        edhoc_tokens: set[bytes] = set()
        tokens: set[bytes] = set()  # answers to other requests (an observed TRL) are not this exchange's
        shake: list[tuple[str, int]] = []
        req = resp = None
        for item in new:
            if item[0] == "dtls":
                shake.append(("dtls sent" if item[1] else "dtls received", item[2]))
                continue
            outgoing, m, size = item
            if outgoing and m.code.is_request():
                if tuple(m.opt.uri_path) == EDHOC_PATH:
                    edhoc_tokens.add(m.token)
                    shake.append(("edhoc request", size))
                    continue
                if m.opt.edhoc:  # RFC 9668 §3: message_3 combined with the first OSCORE request
                    shake.append(("edhoc request", size))
                tokens.add(m.token)
                req = size  # the last one sent: after an Echo (RFC 9175), the one answered
            elif not outgoing and m.code.is_response():
                if m.token in edhoc_tokens:
                    shake.append(("edhoc response", size))
                    continue
                if m.token in tokens:
                    resp = size
        return req, resp, tuple(shake)


__all__ = ["MessageTap"]
