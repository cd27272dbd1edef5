"""The one error boundary of our CoAP resources: ``@refusing`` on a render method turns a
``RemoteError`` it raises into the response (``ace.replies.reply_of`` in the resource's
``error_form``, set by its server from as.toml / rs.toml: ``answer_in``; then ``reply_message``)
and one log line, "<method> <path> [from <peer>] refused: <error>". Where anyone may send, the
lines are rate limited per resource (``RateLimitedLog``): a flood of bad requests must not
become a flood of log lines.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import aiocoap

from ace.coap.peers import Peer, name_of
from ace.coap.ratelog import RateLimitedLog
from ace.coap.render import code_of
from ace.errors import RemoteError
from ace.replies import DEFAULT_FORM, ErrorForm
from ace.requester import Requester

Render = Callable[[Any, aiocoap.Message], Awaitable[aiocoap.Message]]
PeerOf = Callable[[Any, aiocoap.Message], "Peer | Requester | None"]


def reply_message(error: RemoteError, form: ErrorForm = DEFAULT_FORM) -> aiocoap.Message:
    """``error``'s reply in ``form`` as a CoAP response (no Content-Format option where it names none)."""
    code, payload, content_format = form.reply(error)
    return aiocoap.Message(code=code_of(code), payload=payload, content_format=content_format)


def answer_in(form: ErrorForm, *resources: Any) -> None:
    """The server's error form for its ``resources``' refusals (without: ``DEFAULT_FORM``)."""
    for resource in resources:
        resource.error_form = form


def refusing(logger: logging.Logger, *, level: int = logging.WARNING, limited: bool = True, brief: bool = False,
             peer: PeerOf | None = None) -> Callable[[Callable[..., Awaitable[aiocoap.Message]]], Render]:
    """Decorates ``render(self, request)`` of a resource with a ``path``; with ``peer``,
    ``render(self, request, who)``: ``who = peer(self, request)`` is worked out once, before it
    runs, and named in the log line (``peers.name_of``). The line names the error (its repr), or
    with ``brief`` only its description."""
    limiters: weakref.WeakKeyDictionary[Any, RateLimitedLog] = weakref.WeakKeyDictionary()

    def log_of(resource: Any) -> Callable[..., None]:
        if not limited:
            return logger.log
        if resource not in limiters:
            limiters[resource] = RateLimitedLog(logger)
        return limiters[resource].log

    def wrap(render: Callable[..., Awaitable[aiocoap.Message]]) -> Render:
        @functools.wraps(render)
        async def answer(self: Any, request: aiocoap.Message) -> aiocoap.Message:
            who = peer(self, request) if peer is not None else None
            try:
                return await (render(self, request) if peer is None else render(self, request, who))
            except RemoteError as exc:
                sender = "" if peer is None else f" from {name_of(who)}"
                why = exc.description if brief else repr(exc)
                log_of(self)(level, "%s %s%s refused: %s", request.code.name, self.path, sender, why)
                return reply_message(exc, getattr(self, "error_form", DEFAULT_FORM))
        return answer
    return wrap
