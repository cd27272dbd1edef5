"""DTLS handshake flights under loss (RFC 6347 §4.2.4), around aiocoap's tinydtls transports.

Traced on a lossy link, tinydtls (DTLSSocket 0.2.3) loses handshakes in two ways:

* its retransmission timer starts at 2 s and doubles (2, 4, 8 s), so one lost datagram of the
  ten a PSK handshake takes costs seconds, and a few cost the whole exchange;
* a server that sent its final flight (ChangeCipherSpec, Finished) does not send it again when
  the client retransmits its own final flight (§4.2.4: it MUST), so when that flight is lost
  the handshake never completes.

``answer_retransmissions(pool)`` (server): each handshake datagram received is remembered with
the handshake datagrams tinydtls sent in answer to it; when the very same bytes come again (a
retransmission), the remembered answer is sent again instead (at most ``MAX_ANSWERS`` times per
session), and tinydtls does not see the copy. ``retransmit_flights(context, initial)`` (client):
while a handshake runs, the client's last flight is sent again, byte for byte, after ``initial``
seconds, then doubling, at most ``MAX_RESENDS`` times per flight (tinydtls's own timer still
runs; its copies carry new record numbers). Byte-identical copies are safe: tinydtls drops a
handshake message whose message_seq it has processed (RFC 6347 §4.2.2). Only handshake and
ChangeCipherSpec records are touched; application data never is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import OrderedDict
from typing import Any

import aiocoap

HANDSHAKE_TYPES = (20, 22)  # ChangeCipherSpec, Handshake (RFC 6347 §4.1)
CLIENT_KEY_EXCHANGE = 16  # handshake message type (RFC 5246 §7.4)
MAX_REMEMBERED = 8  # received handshake datagrams remembered per session (a handshake has ~5)
MAX_ANSWERS = 16  # flights sent again per session: a peer replaying datagrams gets no more
ANSWER_GAP = 0.03  # seconds: the other datagrams of a retransmitted flight get no second answer
MAX_RESENDS = 6  # client: copies of one flight
RFC_INITIAL = 1.0  # seconds, RFC 6347 §4.2.4.1's initial timer


def records(data: bytes) -> list[bytes]:
    """The DTLS records of a datagram (RFC 6347 §4.1: 13-byte header, 2-byte length at 11)."""
    out, i = [], 0
    while i + 13 <= len(data):
        end = i + 13 + int.from_bytes(data[i + 11:i + 13], "big")
        out.append(data[i:end])
        i = end
    return out


def is_handshake(data: bytes) -> bool:
    return len(data) >= 13 and data[0] in HANDSHAKE_TYPES


def _copy(data: bytes) -> bytes:
    """A copy that is really one: DTLSSocket decrypts a received datagram in place, in the very
    bytes object it was given (``bytes(data)`` would return that same object)."""
    return bytes(memoryview(data))


class _Answers:
    """Per server session: the peer's handshake datagrams (by ``flight_key``) -> the flight sent
    in answer to the flight they were part of."""

    def __init__(self) -> None:
        self.by_request: OrderedDict[bytes, list[bytes]] = OrderedDict()
        self.pending: list[bytes] = []  # received since the last answer: the peer's flight so far
        self.resent = 0
        self.last = 0.0  # monotonic time of the last answer sent again
        self.seen_key_exchange = False  # the client's ClientKeyExchange went to tinydtls
        self.seen_ccs = False  # and its ChangeCipherSpec

    def premature(self, data: bytes) -> bool:
        """A record tinydtls would take for a broken handshake, as it comes before the record it
        follows (a lost or reordered datagram): a ChangeCipherSpec before the ClientKeyExchange,
        an encrypted record (epoch 1: the Finished) before the ChangeCipherSpec. Dropped; the
        client sends its flight again (RFC 6347 §4.2.4)."""
        for record in records(data):  # a datagram may carry a whole flight (OpenSSL sends CKE, CCS, Finished)
            if record[0] not in HANDSHAKE_TYPES:
                return False  # application data and alerts are never touched
            epoch = int.from_bytes(record[3:5], "big")
            if record[0] == 22 and epoch == 0 and len(record) > 13 and record[13] == CLIENT_KEY_EXCHANGE:
                self.seen_key_exchange = True
            elif record[0] == 20 and epoch == 0:
                if not self.seen_key_exchange:
                    return True
                self.seen_ccs = True
            elif epoch > 0 and not self.seen_ccs:
                return True
        return False

    def remember(self, key: bytes, sent: list[bytes]) -> None:
        self.pending.append(key)
        del self.pending[:-MAX_REMEMBERED]
        if not sent:
            return
        for request in self.pending:
            self.by_request[request] = sent
            self.by_request.move_to_end(request)
        self.pending = []
        while len(self.by_request) > MAX_REMEMBERED:
            self.by_request.popitem(last=False)

    def again(self, key: bytes) -> list[bytes] | None:
        """The flight to send again for a retransmitted datagram, [] to drop it quietly, None
        for a datagram not seen before."""
        sent = self.by_request.get(key)
        if sent is None:
            return None
        now = time.monotonic()
        if self.resent >= MAX_ANSWERS or now - self.last < ANSWER_GAP:
            return []  # the rest of a flight already answered, or a peer replaying
        self.resent, self.last = self.resent + 1, now
        return sent


def flight_key(data: bytes) -> bytes:
    """What a retransmission keeps: an epoch-0 record's type and body (a retransmission gets a new
    record sequence number, RFC 6347 §4.2.4); an encrypted record's bytes."""
    epoch = int.from_bytes(data[3:5], "big")
    return data[:1] + data[13:] if epoch == 0 else data


def answer_retransmissions(pool: Any) -> None:
    """Server side (an aiocoap tinydtls_server pool): answer a retransmitted handshake flight
    with the flight sent for it the first time (RFC 6347 §4.2.4)."""
    receive = pool.datagram_received
    transport = pool._transport
    sendto = transport.sendto
    answers: weakref.WeakKeyDictionary[Any, _Answers] = weakref.WeakKeyDictionary()
    capture: list[tuple[Any, list[bytes]]] = []  # (peer address, datagrams) while tinydtls runs

    def captured_sendto(data: bytes, addr: Any = None) -> None:
        if capture and addr == capture[-1][0] and is_handshake(data):
            capture[-1][1].append(_copy(data))
        sendto(data, addr)

    def datagram_received(data: bytes, sockaddr: Any) -> None:
        received = _copy(data)  # before tinydtls decrypts it in place
        connection = pool._connections.get(sockaddr)
        state = answers.get(connection) if connection is not None else None
        if state is not None and is_handshake(received):
            again = state.again(flight_key(received))
            if again is not None:  # tinydtls would ignore it (or start over): answered here
                for datagram in again:
                    sendto(datagram, sockaddr)
                return
        if state is not None and state.premature(received):
            return
        capture.append((sockaddr, []))
        try:
            receive(data, sockaddr)
        finally:
            _, sent_now = capture.pop()
        connection = pool._connections.get(sockaddr)
        if connection is not None and is_handshake(received):
            answers.setdefault(connection, _Answers()).remember(flight_key(received), sent_now)

    transport.sendto = captured_sendto
    pool.datagram_received = datagram_received


def retransmit_flights(context: aiocoap.Context, initial: float = RFC_INITIAL) -> None:
    """Client side: every DTLS session ``context`` opens from now on sends its handshake flights
    again after ``initial`` seconds (doubling) until the handshake completes."""
    interface = _tinydtls_client(context)
    make = interface._connection_for_address

    def connection_for_address(host: str, port: int, psk_id: bytes, psk: bytes) -> Any:
        known = interface._pool.get((host, port, psk_id))
        connection = make(host, port, psk_id, psk)
        if connection is not known:
            _Flights(connection, initial).install()
        return connection

    interface._connection_for_address = connection_for_address


def _tinydtls_client(context: aiocoap.Context) -> Any:
    from aiocoap.transports.tinydtls import MessageInterfaceTinyDTLS
    for interface in context.request_interfaces:
        messages = getattr(getattr(interface, "token_interface", None), "message_interface", None)
        if isinstance(messages, MessageInterfaceTinyDTLS):
            return messages
    raise LookupError("context has no tinydtls (client) transport")


class _Flights:
    """One client session's current flight and the task sending it again."""

    def __init__(self, connection: Any, initial: float) -> None:
        self.connection = weakref.ref(connection)  # aiocoap's pool is weak: we must not keep it
        self.initial = initial
        self.flight: list[bytes] = []
        self.open = False  # the flight still takes datagrams (same loop iteration)
        self.task: asyncio.Task[None] | None = None

    def install(self) -> None:
        connection: Any = self.connection()
        write = connection._write  # tinydtls calls it through a weak accessor looked up per call

        def recording_write(recipient: Any, data: bytes) -> int:
            if is_handshake(data):
                self._record(_copy(data))
            written: int = write(recipient, data)
            return written

        connection._write = recording_write

    def _record(self, data: bytes) -> None:
        if not self.open:  # the first datagram of a new flight
            self.flight, self.open = [], True
            asyncio.get_running_loop().call_soon(self._close_flight)
        self.flight.append(data)

    def _close_flight(self) -> None:
        self.open = False
        if self.task is not None:
            self.task.cancel()
        self.task = asyncio.get_running_loop().create_task(self._resend(list(self.flight)))

    async def _resend(self, flight: list[bytes]) -> None:
        delay = self.initial
        for _ in range(MAX_RESENDS):
            await asyncio.sleep(delay)
            connection = self.connection()
            if connection is None or connection._queue is None or connection._startup.done():
                return  # gone, or the handshake completed (queue flushed), or it failed
            transport = getattr(connection, "_transport", None)
            if transport is None or transport.is_closing():
                return
            for datagram in flight:
                with contextlib.suppress(OSError):
                    transport.sendto(datagram)
            delay *= 2


# -- tinydtls's log noise ---------------------------------------------------------------------

ALERT_NAMES = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
               47: "illegal_parameter", 51: "decrypt_error", 80: "internal_error", 90: "user_canceled"}


class AlertLogFilter(logging.Filter):
    """aiocoap logs every DTLS alert it has no use for at WARNING ("Unhandled alert level 1 code
    0": mostly a peer's ordinary close_notify). Such a record is reworded with the alert's name
    (RFC 5246 §7.2) and kept only when its logger is enabled for DEBUG."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self.logger = logger

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Unhandled alert level %d code %d" or not isinstance(record.args, tuple):
            return True
        level, code = record.args
        name = ALERT_NAMES.get(code, str(code)) if isinstance(code, int) else str(code)
        record.msg, record.args = "DTLS alert from a peer: %s (level %s)", (name, level)
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self.logger.isEnabledFor(logging.DEBUG)


def quiet_alerts() -> None:
    """Install ``AlertLogFilter`` on aiocoap's loggers (idempotent)."""
    for name in ("coap", "coap-server"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, AlertLogFilter) for f in logger.filters):
            logger.addFilter(AlertLogFilter(logger))


quiet_alerts()
