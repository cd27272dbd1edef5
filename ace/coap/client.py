"""Runs the client's flow (``ace.client.flow``) over aiocoap.

The runner turns actions into CoAP requests and responses into events. The AS is reached
over the client's pre-established, persisted OSCORE context; an RS over the context the
flow derived (installed under the RS origin while a session lives). POST /authz-info is
always sent unprotected (RFC 9203 §4.1): a more specific credentials entry says so. Every
exchange can be reported to an observer (the demo prints the bytes); payloads holding
keys are the caller's to redact. Each request is bounded in time (``timeout``); while one waits
for its answer (aiocoap retransmits a confirmable request), ``on_wait`` is told once, after
``RETRY_NOTICE`` seconds. When no answer comes, the flow gets the runner's own 5.04 with
``Response.local`` saying what was tried and what to check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import aiocoap
from aiocoap import oscore

from ace.cbor.labels import ContentFormat
from ace.client.flow import (
    Action,
    ClientFlow,
    Done,
    Failed,
    ResourceRequest,
    Response,
    SendAuthzInfo,
    SendResource,
    SendTokenRequest,
)
from ace.coap import contexts, dtls
from ace.coap.client_channels import CLIENT_CHANNELS, ClientChannel, Handshake
from ace.coap.edhoc_client import EdhocFailed, TokenTooLarge
from ace.coap.render import pair_of
from ace.coap.tap import MessageTap
from ace.coap.trl_client import TrlObserver
from ace.store.base import DtlsPsk, SequenceNumberStore
from ace.tokens.oscore_params import OscoreContextParams

log = logging.getLogger(__name__)
MAX_STEPS = 8
REQUEST_TIMEOUT = 30.0
RETRY_NOTICE = 2.0  # seconds: RFC 7252 §4.8 ACK_TIMEOUT, when the first retransmission goes out
_SERVER = {"token": "ace as"}  # the command that would be serving the peer of each step (else `ace rs`)


def quiet_abandoned_requests(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A loop exception handler for a process that owns its loop (``ace client``): a request given
    up on (``timeout``) still runs inside aiocoap's OSCORE transport; shut down, it fails, and
    aiocoap 0.4.17 reports that with ``log.error(..., exception=...)``, a TypeError whose traceback
    asyncio prints. That one is dropped (at debug level); anything else goes to the default handler."""
    exc = context.get("exception")
    if isinstance(exc, TypeError) and "unexpected keyword argument 'exception'" in str(exc):
        log.debug("an abandoned request ended with the CoAP context")
        return
    loop.default_exception_handler(context)


class _Plain:
    """A credentials entry meaning "send this one unprotected"."""


PLAIN = _Plain()


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request/response pair, as the demo shows it."""

    step: str
    method: str
    uri: str
    request_payload: bytes
    response: Response
    protected: bool
    elapsed: float
    # whole CoAP messages (RFC 7252 §3) as the transport sent and received them (the outer message
    # under OSCORE; inside the DTLS record under DTLS); None when not seen
    request_message_bytes: int | None = None
    response_message_bytes: int | None = None
    # handshake messages seen inside this exchange (ace.coap.tap.MessageTap.since): (what, bytes)
    handshake: tuple[tuple[str, int], ...] = ()


def _with_port(parts: SplitResult, port: int) -> str:
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _normalized_origin(uri: str) -> str:
    """The origin as aiocoap spells it (default ports dropped, hosts bracketed)."""
    return origin_of(aiocoap.Message(code=aiocoap.POST, uri=uri).get_request_uri())


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


class ClientRunner:
    def __init__(self, flow: ClientFlow, *, as_secret: OscoreContextParams | None, as_uri: str | None,
                 as_psk: DtlsPsk | None = None,
                 seqno_store: SequenceNumberStore, observer: Callable[[Exchange], None] | None = None,
                 timeout: float = REQUEST_TIMEOUT, dtls_port_offset: int = 1,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.flow, self.as_secret, self.as_uri, self.as_psk = flow, as_secret, as_uri, as_psk
        self.seqno_store, self.observer, self.timeout = seqno_store, observer, timeout
        self.on_wait = on_wait  # told (once per request) that an answer is late and the request is retried
        self.retry_notice = RETRY_NOTICE
        self.dtls_port_offset = dtls_port_offset
        self.context: Any = None
        # how a session's channel protects a request (``ace.coap.client_channels``), by profile number
        self.channels: dict[int, ClientChannel] = {n: make(self) for n, make in CLIENT_CHANNELS.items()}
        self._as_security: Any = None  # the OSCORE context or DTLS credentials for the AS
        self._as_origin = ""
        self._lock = asyncio.Lock()  # the flow has one request in flight
        self._dtls_sessions: dict[str, Any] = {}
        self.trl: TrlObserver | None = None  # observes the AS's TRL (RFC 9770) when configured
        self.tap = MessageTap() if observer is not None else None  # whole-message sizes for the trace

    def revoked(self, hashes: list[bytes]) -> None:
        """The AS's TRL (RFC 9770 §11.2): sessions with a revoked token are dropped, never used again."""
        for origin in self.flow.drop_revoked(hashes):
            for channel in self.channels.values():
                channel.forget(origin)
            log.info("dropped the session with %s: its token was revoked", origin)

    async def start(self) -> None:
        self.context = await aiocoap.Context.create_client_context(transports=["oscore", "tinydtls", "udp6"])
        if self.tap is not None:
            self.tap.install(self.context)
        if self.as_uri is None:
            return
        self._as_origin = _normalized_origin(self.as_uri)
        if self.as_psk is not None and self.as_uri.startswith("coaps:"):  # RFC 9202 §3.1: DTLS to the AS
            self._as_security = dtls.dtls_client_credentials(self.as_psk.key, self.as_psk.identity)
        elif self.as_secret is not None:
            self._as_security = contexts.from_secret(self.as_secret, store=self.seqno_store, claims=["as"])
        if self._as_security is not None:
            self.context.client_credentials[self._as_origin + "/*"] = self._as_security
            if self.trl is not None:  # over the same secure association with the AS
                self.trl.start(self.context)

    async def stop(self) -> None:
        """Shut the CoAP context down and release the sequence-number store (it is ours)."""
        self._dtls_sessions.clear()
        for channel in self.channels.values():
            channel.close()
        if self.trl is not None:
            await self.trl.stop()
        if self.context is not None:
            await self.context.shutdown()
            self.context = None
        close = getattr(self.seqno_store, "close", None)
        if close is not None:
            close()

    async def request(self, request: ResourceRequest) -> Done | Failed:
        async with self._lock:
            return await self._drive(self.flow.start(request), request.origin)

    async def update(self, origin: str, scope: str | bytes) -> Done | Failed:
        """Update the access rights of the EDHOC session with ``origin`` to ``scope`` (EP-11 §4.6):
        a new token from the AS, POSTed to the RS over the session's OSCORE context."""
        async with self._lock:
            return await self._drive(self.flow.update(origin_of(origin), scope), origin)

    async def _drive(self, action: Action, origin: str) -> Done | Failed:
        for _ in range(MAX_STEPS):
            if isinstance(action, Failed) and action.step == "hints":  # forged or stale creation hints
                log.warning("refused: %s", action.error)
            if isinstance(action, (Done, Failed)):
                return action
            try:
                response = await self._perform(action)
            except (EdhocFailed, TokenTooLarge) as exc:  # EP-11 §4.3: no EDHOC session with the RS
                log.info("EDHOC with %s failed: %s", origin_of(origin), exc)
                return self.flow.abort("edhoc", f"EDHOC with RS at {origin_of(origin)} failed: {exc}")
            action = self.flow.on_response(response)
        return Failed("client", f"flow did not finish in {MAX_STEPS} steps")

    async def _perform(self, action: SendResource | SendTokenRequest | SendAuthzInfo) -> Response:
        if isinstance(action, SendTokenRequest):
            if self._as_security is None or _normalized_origin(action.as_uri) != self._as_origin:
                # RFC 9203 §3.1: client-AS traffic is protected; never POST /token in the clear
                log.warning("no security context for the AS at %s; not asking it", action.as_uri)
                known = f"only for {self._as_origin}" if self._as_security is not None else "none is configured"
                return Response((4, 1), b"no security context for this AS",
                                local=f"was not asked: this client has no security context for it ({known}; "
                                      "as_uri, as_context or as_psk in its config)")
            return await self._send("token", "POST", action.as_uri, action.payload, ContentFormat.ACE_CBOR,
                                    self._as_security)
        if isinstance(action, SendAuthzInfo) and action.session is not None:  # EDHOC profile update, EP §4.6.1
            route = self.channels[action.session.context.profile].route(action.session, action.uri)
            return await self._send("authz-info (protected)", "POST", route.uri, action.payload,
                                    action.content_format, route.security, route.handshake)
        if isinstance(action, SendAuthzInfo):  # RFC 9203 §4.1, RFC 9202 §3.3: unprotected
            return await self._send("authz-info", "POST", self.plain_uri(action.uri), action.payload,
                                    action.content_format, PLAIN)
        req, session = action.request, action.session
        if session is None:
            return await self._send("resource", req.method, self.plain_uri(req.uri), req.payload,
                                    req.content_format, PLAIN)
        route = self.channels[session.context.profile].route(session, req.uri)  # as the session's profile says
        return await self._send(route.step, req.method, route.uri, req.payload, req.content_format, route.security,
                                route.handshake)

    def plain_uri(self, uri: str) -> str:
        """coaps://h:p/x -> coap://h:(p - offset)/x: where the RS takes unprotected requests."""
        parts = urlsplit(uri)
        if parts.scheme != "coaps":
            return uri
        return urlunsplit(("coap", _with_port(parts, (parts.port or 5684) - self.dtls_port_offset), *parts[2:]))

    def secure_uri(self, uri: str) -> str:
        """coap://h:p/x -> coaps://h:(p + offset)/x: the RS's DTLS port (aiocoap's tinydtls server)."""
        parts = urlsplit(uri)
        if parts.scheme != "coap":
            return uri
        return urlunsplit(("coaps", _with_port(parts, (parts.port or 5683) + self.dtls_port_offset), *parts[2:]))

    async def _answer(self, msg: aiocoap.Message, method: str, uri: str) -> Any:
        """The response to ``msg`` within ``timeout``; ``on_wait`` hears once if it is late."""
        notice = None
        if self.on_wait is not None and self.timeout > self.retry_notice:
            text = (f"no answer yet from {origin_of(uri)} ({method} {urlsplit(uri).path or '/'}) after "
                    f"{self.retry_notice:g} s; retrying until {self.timeout:g} s")
            notice = asyncio.get_running_loop().call_later(self.retry_notice, self.on_wait, text)
        try:
            return await asyncio.wait_for(self.context.request(msg).response, self.timeout)
        finally:
            if notice is not None:
                notice.cancel()

    def _unanswered(self, exc: BaseException, step: str, method: str, uri: str) -> str:
        """What happened to a request that got no answer, and what to check (for ``Response.local``)."""
        what = f"{method} {urlsplit(uri).path or '/'}"
        check = f"is `{_SERVER.get(step, 'ace rs')}` running there?"
        if isinstance(exc, TimeoutError):
            return f"did not answer within {self.timeout:g} s ({what}): {check}"
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, OSError):  # aiocoap wraps the socket's error
            cause = cause.__cause__
        reason = (cause.strerror if isinstance(cause, OSError) and cause.strerror else str(exc)) or type(exc).__name__
        reason = reason.split(" (")[0]  # "Connection refused (ECONNREFUSED, received through errqueue)"
        return f"could not be reached ({what}: {reason[:100]}): {check}"

    @staticmethod
    def _message(method: str, uri: str, payload: bytes, content_format: int | None) -> aiocoap.Message:
        msg = aiocoap.Message(code=aiocoap.Code[method.upper()], uri=uri, payload=payload)
        if content_format is not None:
            msg.opt.content_format = int(content_format)
        return msg

    def secure(self, full: str, security: Any, handshake: Handshake | None = None) -> None:
        """Install ``security`` (as ``_send`` takes it) for requests to ``full`` (aiocoap's spelling of the URI)."""
        creds = self.context.client_credentials
        if isinstance(security, _Plain):
            creds[full] = PLAIN  # more specific than "origin/*": this one goes unprotected
        elif handshake is not None:
            creds.pop(full, None)  # its credentials (or pinned context) sit under the origin already
        elif security is not None:
            creds.pop(full, None)
            creds[origin_of(full) + "/*"] = security

    async def _send(self, step: str, method: str, uri: str, payload: bytes, content_format: int | None,
                    security: Any, handshake: Handshake | None = None) -> Response:
        """Send one request; ``security``: an OSCORE context or DTLS credentials for the origin,
        PLAIN, or None (as configured, or as ``handshake`` installed under the origin)."""
        msg = self._message(method, uri, payload, content_format)
        full = msg.get_request_uri()  # aiocoap's own spelling, which its credentials lookup uses
        self.secure(full, security, handshake)
        protected = not isinstance(security, _Plain)
        pinned = handshake is not None and handshake.pinned  # a context the RS may have lost
        retry = False
        started, mark = time.monotonic(), self.tap.count if self.tap is not None else 0
        try:
            raw = await self._answer(msg, method, uri)
            if not protected and raw.opt.echo is not None and not raw.payload:
                # RFC 9175 §2.3: the server verifies our address (§2.4 item 3): resend once with its Echo
                echoed = self._message(method, uri, payload, content_format)
                echoed.opt.echo = raw.opt.echo
                raw = await self._answer(echoed, method, uri)
            response = Response(pair_of(raw.code), raw.payload, raw.opt.content_format)
            if handshake is not None:
                # aiocoap runs EDHOC on every request unless the derived context is pinned
                if raw.code == aiocoap.UNAUTHORIZED:
                    handshake.reset()
                else:
                    handshake.pin(raw)
            if origin_of(full).startswith("coaps:"):
                # aiocoap keeps DTLS sessions in a weak pool: without a reference each request
                # may cost a new handshake. One session per origin stays pinned while we use it.
                self._dtls_sessions[origin_of(full)] = raw.remote
        except oscore.NotAProtectedMessage as exc:  # e.g. 4.01 "Security context not found"
            plain = exc.plain_message
            if handshake is not None:  # the RS lost the context: handshake again next time
                handshake.reset()
                # 4.00: its C_R now names another context; 4.01 goes to the flow (a new token, then EDHOC)
                retry = pinned and plain.code == aiocoap.BAD_REQUEST
            response = Response(pair_of(plain.code), plain.payload, plain.opt.content_format)
            if plain.code.is_successful():  # an OSCORE server answers unprotected only with errors
                log.warning("%s %s: an unprotected %s is not taken", method, uri, plain.code)
                response = Response((5, 2), b"unprotected success answer")  # 5.02 Bad Gateway
        except EdhocFailed:  # our side of EDHOC gave up (MAC_2, a critical EAD_2...): the flow fails
            if handshake is not None:
                handshake.reset()
            raise
        except (TimeoutError, aiocoap.error.Error, OSError) as exc:
            log.info("%s %s failed: %s", method, uri, type(exc).__name__)  # the flow's Failed or Done says it
            # 5.04 Gateway Timeout, as a proxy would say; ``local`` says it is ours, and why
            response = Response((5, 4), str(exc).encode()[:80], local=self._unanswered(exc, step, method, uri))
        if self.observer is not None:
            sizes = self.tap.since(mark) if self.tap is not None else (None, None, ())
            self.observer(Exchange(step, method, uri, payload, response, protected, time.monotonic() - started,
                                   *sizes))
        if retry:  # once: the session is unpinned now, so the retry runs EDHOC and is not retried
            return await self._send(step, method, uri, payload, content_format, security, handshake)
        return response
