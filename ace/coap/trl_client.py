"""Observing the Token Revocation List (RFC 9770) at the AS, for the RS and the client (the AS's
/revoke/trl resource is ``ace.coap.trl``). ``TrlObserver`` keeps an observation of the TRL open
(re-registering after errors, with backoff, and periodically) and hands each full set to a
callback; ``TrlLink`` is one with its own client context, for the RS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import aiocoap
from aiocoap import oscore

from ace.cbor.labels import ContentFormat
from ace.coap.introspect_client import as_client_context, uri_at_as
from ace.coap.tasks import cancel
from ace.errors import AceError
from ace.store.base import SequenceNumberStore
from ace.tokens.oscore_params import OscoreContextParams
from ace.trl_wire import decode_full_set

log = logging.getLogger(__name__)
TRL_CF = int(ContentFormat.ACE_TRL_CBOR)
REQUEST_TIMEOUT = 10.0
RETRY_MIN, RETRY_MAX = 0.5, 30.0  # observer backoff after a failed or ended observation
REREGISTER_SECONDS = 300.0  # an observation is renewed this often (a silently lost one recovers)


def trl_uri(as_uri: str, path: str = "/revoke/trl") -> str:
    """The TRL's URI at the AS whose token endpoint (or any URI) is ``as_uri``."""
    return uri_at_as(as_uri, path)


class TrlObserver:
    """Observes the TRL at ``uri`` over ``context`` (which must hold the credentials for the AS)
    and calls ``on_revoked`` with each full set received."""

    def __init__(self, uri: str, on_revoked: Callable[[list[bytes]], object], *,
                 timeout: float = REQUEST_TIMEOUT, reregister: float = REREGISTER_SECONDS) -> None:
        self.uri, self.on_revoked, self.timeout, self.reregister = uri, on_revoked, timeout, reregister
        self.context: Any = None
        self.notifications = 0  # full sets received (tests wait on it)
        self.received = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, context: Any) -> None:
        self.context = context
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        delay = RETRY_MIN
        while True:
            try:
                if await self._observe_once():
                    delay = RETRY_MIN
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the AS away, restarted, refusing us: try again later
                log.info("observing the TRL at %s: %s", self.uri, type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _observe_once(self) -> bool:
        """One registration; True if it delivered anything. Ends on error, on a non-observe
        answer, or after ``reregister`` seconds."""
        request = self.context.request(aiocoap.Message(code=aiocoap.GET, uri=self.uri, observe=0))
        observation = request.observation
        try:
            try:
                first = await asyncio.wait_for(request.response, self.timeout)
            except oscore.NotAProtectedMessage as exc:  # e.g. the AS lost our context: 4.01
                # never taken: anyone on the path can send an unprotected answer (RFC 9770 §6)
                log.warning("TRL at %s answered unprotected: %s", self.uri, exc.plain_message.code)
                return False
            ok = self._take(first)
            if not ok or first.opt.observe is None or observation is None:
                return ok
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.reregister):
                    async for notification in observation:
                        self._take(notification)
            return True
        finally:
            if observation is not None and not observation.cancelled:
                observation.cancel()

    def _take(self, message: aiocoap.Message) -> bool:
        if not message.code.is_successful():
            log.info("TRL at %s answered %s", self.uri, message.code)
            return False
        if message.opt.content_format not in (None, TRL_CF):
            log.warning("TRL at %s answered content format %s", self.uri, message.opt.content_format)
            return False
        try:
            hashes = decode_full_set(message.payload)
        except AceError as exc:
            log.warning("TRL at %s sent a malformed set: %s", self.uri, exc)
            return False
        self.notifications += 1
        self.on_revoked(hashes)
        self.received.set()
        return True


class TrlLink:
    """A ``TrlObserver`` with its own client context, protected by a pre-established OSCORE
    context with the AS (the RS's ``RsRecord.oscore``, its sequence numbers persisted)."""

    def __init__(self, uri: str, secret: OscoreContextParams, seqno_store: SequenceNumberStore,
                 on_revoked: Callable[[list[bytes]], object], *, close_store: bool = False) -> None:
        self.secret, self.seqno_store, self.close_store = secret, seqno_store, close_store
        self.observer = TrlObserver(uri, on_revoked)
        self.context: Any = None

    async def start(self) -> None:
        self.context = await as_client_context(self.observer.uri, self.secret, self.seqno_store)
        self.observer.start(self.context)

    async def stop(self) -> None:
        await self.observer.stop()
        if self.context is not None:
            await self.context.shutdown()
            self.context = None
        close = getattr(self.seqno_store, "close", None) if self.close_store else None
        if close is not None:
            close()
