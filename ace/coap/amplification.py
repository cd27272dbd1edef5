"""Amplification limits on what a server sends to addresses nobody verified (RFC 7252 §11.3,
RFC 9175 §2.4 item 3 and §2.6).

``AmplificationGuard`` wraps a server's site. An answer to a request that is neither DTLS nor
(successfully) OSCORE protected goes to an address nobody verified: to a NON request it is
never larger than the request; an amplifying error answer to a CON request goes out as long as
the source's and the server's token buckets allow (``AnswerLimiter``). Past that, the bare code
with an Echo option (``EchoStamp``: stateless, a MAC of the source address and a coarse time)
answers; a request that echoes a fresh value for its own source address proves the address is
reachable and gets its full answer whatever the buckets say. Echo does not make a request
fresh in the sense of RFC 9175 §2.3 (the value is not integrity protected end to end); it only
verifies the address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiocoap
import aiocoap.error

from ace.coap.peers import address_of

SOURCE_RATE, SOURCE_BURST = 50.0, 100.0  # amplifying error answers per second, and at once, per source
TOTAL_RATE, TOTAL_BURST = 500.0, 1000.0  # the same over all sources together (many spoofed victims)
MAX_SOURCES = 1024  # source addresses remembered; the least recently answered is forgotten first
_SILENT = 0b11010  # RFC 7967 No-Response: suppress 2.xx, 4.xx and 5.xx

ECHO_VERSION = 1
ECHO_MAC_LEN = 7  # bytes of HMAC-SHA256 kept: a forged value gets one amplified answer in 2**56 tries
ECHO_LEN = 1 + 4 + ECHO_MAC_LEN  # version, coarse time (seconds, 32 bits), MAC: 12 bytes
ECHO_OPTION_SIZE = 2 + ECHO_LEN  # on the wire alone: header byte, extended delta (252 - 13), value
ECHO_LIFETIME = 45.0  # seconds an Echo value verifies its address: RFC 7252 MAX_TRANSMIT_SPAN, so that a
# request echoing it still counts when its own retransmissions arrive late
AMPLIFICATION_FACTOR = 3  # RFC 9175 §2.4 item 3: at most three times the request to an unverified address


class EchoStamp:
    """Stateless Echo values for address verification (RFC 9175 §2.4 item 3, §2.3: the value
    SHOULD be a MAC of the claimed address). A value is version, time and a truncated
    HMAC-SHA256 over both and the source address under a per-process random key; it verifies
    for ``lifetime`` seconds, for that address only. Nothing is stored per value."""

    def __init__(self, *, key: bytes | None = None, clock: Callable[[], float] = time.monotonic,
                 lifetime: float = ECHO_LIFETIME) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        self.clock, self.lifetime = clock, lifetime

    def _mac(self, stamp: bytes, source: str) -> bytes:
        return hmac.new(self._key, stamp + source.encode(), hashlib.sha256).digest()[:ECHO_MAC_LEN]

    def issue(self, source: str) -> bytes:
        stamp = bytes([ECHO_VERSION]) + (int(self.clock()) & 0xFFFFFFFF).to_bytes(4, "big")
        return stamp + self._mac(stamp, source)

    def verify(self, value: bytes | None, source: str) -> bool:
        if value is None or len(value) != ECHO_LEN or value[0] != ECHO_VERSION:
            return False
        if not hmac.compare_digest(value[5:], self._mac(value[:5], source)):
            return False
        age = (int(self.clock()) - int.from_bytes(value[1:5], "big")) & 0xFFFFFFFF  # a future stamp: huge
        return age <= self.lifetime


def _refill(bucket: tuple[float, float], rate: float, burst: float, now: float) -> float:
    tokens, at = bucket
    return min(burst, tokens + max(0.0, now - at) * rate)


class AnswerLimiter:
    """Token buckets for error answers larger than the unauthenticated CON request they answer:
    one per source address (a spoofed victim) and one for all sources."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 per_source: tuple[float, float] = (SOURCE_RATE, SOURCE_BURST),
                 total: tuple[float, float] = (TOTAL_RATE, TOTAL_BURST), max_sources: int = MAX_SOURCES) -> None:
        self.clock, self.per_source, self.total, self.max_sources = clock, per_source, total, max_sources
        self._sources: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, when)
        self._all = (total[1], clock())
        self.refused = 0

    def allow(self, source: str) -> bool:
        now = self.clock()
        everyone = _refill(self._all, *self.total, now)
        own = _refill(self._sources.pop(source, (self.per_source[1], now)), *self.per_source, now)
        ok = everyone >= 1.0 and own >= 1.0
        if ok:
            everyone, own = everyone - 1.0, own - 1.0
        else:
            self.refused += 1
        self._all = (everyone, now)
        self._sources[source] = (own, now)
        if len(self._sources) > self.max_sources:
            self._sources.popitem(last=False)
        return ok


def wire_size(msg: aiocoap.Message, token: bytes) -> int:
    """Bytes ``msg`` takes in a datagram with ``token`` (RFC 7252 §3: header, token, options, payload)."""
    return 4 + len(token) + len(msg.opt.encode()) + (1 + len(msg.payload) if msg.payload else 0)


def _bare(response: aiocoap.Message, no_response: int | None, echo: bytes | None = None) -> aiocoap.Message:
    """The response code alone: no payload, no option but Echo if given (4 bytes plus the
    request's token, plus ``ECHO_OPTION_SIZE`` with Echo)."""
    bare = aiocoap.Message(code=response.code)
    bare.opt.no_response = no_response
    bare.opt.echo = echo
    return bare


def _rendered(exc: aiocoap.error.RenderableError) -> aiocoap.Message:
    try:
        message = exc.to_message()
    except Exception:
        message = None
    return message if message is not None else aiocoap.Message(code=aiocoap.INTERNAL_SERVER_ERROR)


class _GuardedPipe:
    """The pipe an unauthenticated request's site sees: each answer passes ``AmplificationGuard.admit``."""

    def __init__(self, pipe: Any, guard: AmplificationGuard) -> None:
        self._pipe, self._guard = pipe, guard
        self.request = self._original = pipe.request  # the site replaces ``request`` (path stripped)
        self._size = wire_size(self._original, self._original.token)

    def add_response(self, response: aiocoap.Message, is_last: bool = False) -> None:
        self._pipe.add_response(self._guard.admit(self._original, self._size, response), is_last)

    def __getattr__(self, name: str) -> Any:  # on_interest_end, add_exception, log ...
        return getattr(self._pipe, name)


class AmplificationGuard:
    """A server's outermost site (around aiocoap's OSCORE site wrapper); see the module's text."""

    def __init__(self, site: Any, limiter: AnswerLimiter | None = None, echo: EchoStamp | None = None) -> None:
        self.site = site
        self.limiter = limiter or AnswerLimiter()
        self.echo = echo or EchoStamp()
        self.shrunk = 0  # answers cut down (tests and operators look)
        self.verified = 0  # answers sent in full because the request echoed a valid value

    async def render_to_pipe(self, pipe: Any) -> None:
        if getattr(pipe.request.remote, "scheme", None) == "coaps":  # DTLS: authenticated, address checked
            await self.site.render_to_pipe(pipe)
            return
        guarded = _GuardedPipe(pipe, self)
        try:
            await self.site.render_to_pipe(guarded)
        except aiocoap.error.RenderableError as exc:  # rendered here, so that the guard sees it too
            guarded.add_response(_rendered(exc), is_last=True)

    def admit(self, request: aiocoap.Message, request_size: int, response: aiocoap.Message) -> aiocoap.Message:
        if response.opt.oscore is not None:  # OSCORE-protected: the request was authenticated
            return response
        sent = response.copy(no_response=None) if response.opt.no_response is not None else response
        if wire_size(sent, request.token) <= request_size:  # (No-Response is not sent, RFC 7967)
            return response
        source = address_of(request.remote)
        if self.echo.verify(request.opt.echo, source):  # RFC 9175 §2.4 item 3: a verified address
            self.verified += 1
            return response
        error = not response.code.is_successful()
        if request.mtype == aiocoap.NON:  # RFC 7252 §11.3: no amplification for a spoofable request
            self.shrunk += 1
            return _bare(response, response.opt.no_response if error else _SILENT)
        if not error or self.limiter.allow(source):
            return response
        self.shrunk += 1
        return self._challenge(request, request_size, response, source)

    def _challenge(self, request: aiocoap.Message, request_size: int, response: aiocoap.Message,
                   source: str) -> aiocoap.Message:
        """RFC 9175 §2.6: the bare code with an Echo the client repeats to verify its address;
        without Echo if that would exceed three times the request (RFC 9175 §2.4 item 3)."""
        bare = _bare(response, response.opt.no_response)
        if wire_size(bare, request.token) + ECHO_OPTION_SIZE > AMPLIFICATION_FACTOR * request_size:
            return bare
        return _bare(response, response.opt.no_response, self.echo.issue(source))
