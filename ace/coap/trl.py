"""The Token Revocation List on CoAP (RFC 9770): the AS's /revoke/trl resource.

``TrlResource`` answers GET /revoke/trl (full and diff queries with the Cursor extension,
application/ace-trl+cbor; see ``ace.authz_server.trl``) to registered clients and RSs over
their OSCORE context with the AS (or a client's DTLS-PSK session), 4.01 to anyone else, 4.00
with problem details (application/concise-problem-details+cbor) to a bad query, and keeps
RFC 7641 observations: after a change each observer's query is evaluated again and the
observer notified if its answer changed (an observer of a diff query gets diff notifications,
RFC 9770 §11). ``TrlWatch`` is the AS's bounded task that notices revocations written to the
store by other processes (``ace revoke``) by polling ``revoked_since`` every POLL_SECONDS
(``TrlEndpoint.ingest``) and purges the entries of expired tokens; ``TrlWatch.poll`` is what
an in-process revocation calls to notify at once. The RS's and the client's observers are in
``ace.coap.trl_client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import aiocoap
import aiocoap.resource

from ace.authz_server.trl import TrlEndpoint
from ace.coap import contexts
from ace.coap.boundary import refusing
from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.render import BoundedBody
from ace.coap.tasks import cancel
from ace.coap.trl_client import TRL_CF
from ace.errors import RemoteError
from ace.requester import Requester, RsPeer
from ace.store.base import AsStore

log = logging.getLogger(__name__)
MAX_OBSERVERS = 256  # observations of the TRL kept at once; more get plain answers
POLL_SECONDS = 1.0  # how often the AS looks for revocations made by another process
PURGE_SECONDS = 60.0  # how often it forgets the entries of expired tokens
TOKEN_PURGE_PER_TICK = 1024  # expired token-log rows forgotten per purge at most (bounded work)


# -- the AS: the RSs' contexts ---------------------------------------------------------

def rs_context(store: AsStore, audience: str) -> MemoryOscoreContext | None:
    """The AS's side of an RS's OSCORE context (``RsRecord.oscore``), claiming ``RsPeer``."""
    rs = store.get_rs(audience)
    if rs is None or rs.oscore is None:
        return None
    return contexts.from_secret(rs.oscore, store=store, claims=[RsPeer(rs.audience)])


def add_rs_contexts(index: contexts.ContextIndex, store: AsStore) -> int:
    """Put the RSs' contexts into ``index``, never displacing a client's (same Sender ID)."""
    taken = {(c.recipient_id, c.id_context) for c in index}
    n = 0
    for rs in store.list_rs():
        ctx = rs_context(store, rs.audience)
        if ctx is None:
            continue
        if (ctx.recipient_id, ctx.id_context) in taken:
            log.warning("RS %s: its OSCORE Sender ID is a client's; it cannot reach the TRL", rs.audience)
            continue
        index.add(ctx)
        n += 1
    return n


def find_rs_context(store: AsStore, kid: bytes, kid_context: bytes | None) -> MemoryOscoreContext | None:
    """An RS registered after start, found by the Sender ID of its context (few RSs: a scan)."""
    for rs in store.list_rs():
        if rs.oscore is not None and (rs.oscore.recipient_id, rs.oscore.id_context) == (kid, kid_context):
            return rs_context(store, rs.audience)
    return None


# -- the AS: the resource ----------------------------------------------------------------

def _content(payload: bytes) -> aiocoap.Message:
    return aiocoap.Message(code=aiocoap.CONTENT, payload=payload, content_format=TRL_CF)


_REFUSED = b""  # an observer's last answer was an error (never a valid TRL payload)


class TrlResource(BoundedBody, aiocoap.resource.ObservableResource):  # type: ignore[misc]
    """GET /revoke/trl (RFC 9770 §6), observable (RFC 7641); a TrlError is answered with
    problem details (RFC 9770 §6.3, ``TrlError.reply_body``)."""

    path = "/revoke/trl"

    def __init__(self, endpoint: TrlEndpoint, requester: Callable[[aiocoap.Message], Requester | None]) -> None:
        super().__init__()
        self.endpoint, self.requester = endpoint, requester
        # observation -> (who, its query, last payload)
        self.watchers: dict[Any, tuple[Requester, tuple[str, ...], bytes]] = {}

    async def add_observation(self, request: aiocoap.Message, serverobservation: Any) -> None:
        who = self.requester(request)
        query = tuple(request.opt.uri_query)
        payload = None
        if who is not None and request.code == aiocoap.GET and len(self.watchers) < MAX_OBSERVERS:
            with contextlib.suppress(RemoteError):
                payload = self.endpoint.handle(who, query)
        serverobservation.accept(lambda: self.watchers.pop(serverobservation, None))
        if who is None or payload is None:  # (aiocoap needs the accept) the answer goes without Observe
            serverobservation.deregister()
            return
        self.watchers[serverobservation] = (who, query, payload)

    @refusing(log, level=logging.INFO, limited=False, brief=True, peer=lambda self, request: self.requester(request))
    async def render_get(self, request: aiocoap.Message, who: Requester | None) -> aiocoap.Message:
        return _content(self.endpoint.handle(who, request.opt.uri_query))

    def changed(self) -> int:
        """The TRL changed: notify each observer whose answer did; returns how many."""
        n = 0
        for obs, (who, query, last) in list(self.watchers.items()):
            try:
                payload = self.endpoint.handle(who, query)
            except RemoteError:  # e.g. its cursor is out of bound now: it gets the error (and its
                payload = _REFUSED  # observation ends, RFC 7641 §3.2)
            if payload != last:
                self.watchers[obs] = (who, query, payload)
                obs.trigger()  # rendered again from the original request: its sender is checked anew
                n += 1
        return n


class TrlWatch:
    """The AS's bounded task: new TRL entries (any writer) and purges → ``resource.changed``.
    The update collections (``TrlEndpoint``) take the new entries; ``generation`` tells whether
    anything changed since the observers were last looked at (a request may have taken them)."""

    def __init__(self, store: AsStore, resource: TrlResource, *, clock: Callable[[], float] = time.time,
                 interval: float = POLL_SECONDS, purge_interval: float = PURGE_SECONDS) -> None:
        self.store, self.resource, self.clock = store, resource, clock
        self.endpoint = resource.endpoint
        self.interval, self.purge_interval = interval, purge_interval
        self.seen = self.endpoint.generation
        self._task: asyncio.Task[None] | None = None

    @property
    def cursor(self) -> int:
        """The last store position taken."""
        return self.endpoint.position

    def catch_up(self) -> None:
        """Take every entry already there as known (they need no notification)."""
        self.endpoint.catch_up()
        self.seen = self.endpoint.generation

    def _notify(self) -> int:
        if self.endpoint.generation == self.seen:
            return 0
        self.seen = self.endpoint.generation
        return self.resource.changed()

    def poll(self) -> int:
        """One step: take new entries, notify the observers; returns how many were notified.
        Called by the task every ``interval``, and directly after an in-process revocation."""
        self.endpoint.ingest()
        return self._notify()

    def purge(self) -> int:
        now = int(self.clock())
        n = self.endpoint.purge(now)
        if n:
            log.info("forgot %d revoked hashes of expired tokens", n)
        self._notify()
        # the token log too, not only when a token is issued: an AS issuing nothing keeps no
        # expired rows (a bounded batch per tick)
        forgotten = self.store.purge_tokens(now, TOKEN_PURGE_PER_TICK)
        if forgotten:
            log.info("forgot %d expired token-log rows", forgotten)
        return n

    async def _run(self) -> None:
        last_purge = time.monotonic()
        while True:
            await asyncio.sleep(self.interval)
            try:
                n = self.poll()
                if time.monotonic() - last_purge >= self.purge_interval:
                    last_purge = time.monotonic()
                    self.purge()
            except Exception:  # a bug or a store hiccup must not end the watching for good
                log.exception("watching the TRL failed")
                continue
            if n:
                log.info("notified %d TRL observer(s)", n)

    def start(self) -> None:
        self.catch_up()
        self.purge()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
