"""``ace.Client``: call ACE-protected CoAP resources from Python, the whole flow behind each call.

A thin façade over ``ace.coap.client.ClientRunner`` (what ``ace client`` runs): a request first
goes unprotected, the RS's AS Request Creation Hints lead to a token from the AS, the token goes
to the RS's /authz-info (with the EDHOC profile: inside EDHOC), and the request is sent again over
the channel that made (RFC 9200 §5); later requests to that RS reuse the session until its token
is refused. client.toml's ``token_upload`` has the AS upload the token to the RS instead; EDHOC
then names it by session_id (draft-ietf-ace-workflow-and-params-08 §3.1, §9).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from pathlib import Path
from types import TracebackType
from typing import Any

import aiocoap
from aiocoap import oscore

from ace.client.flow import Done, ResourceRequest, Response
from ace.coap.client import ClientRunner, origin_of
from ace.coap.render import pair_of

__all__ = ["Client", "RequestFailed", "Response"]

log = logging.getLogger(__name__)


class RequestFailed(Exception):
    """The flow stopped before the resource answered: ``step`` (``"token"``, ``"authz-info"``,
    ``"hints"``, ``"edhoc"``, ``"update"``...) says where, ``response`` holds the answer that stopped it, if any."""

    def __init__(self, step: str, error: str, response: Response | None = None) -> None:
        super().__init__(f"{step}: {error}")
        self.step, self.error, self.response = step, error, response


class Client:
    """An ACE client (RFC 9200) as an async context manager.

    >>> async with Client.from_config("client.toml") as c:
    ...     r = await c.get("coap://[::1]:5683/temp")
    ...     print(r.code, r.payload)       # (2, 5) b'21.5'
    ...     async for n in c.observe("coap://[::1]:5683/temp"):
    ...         print(n.payload)

    Each call returns the resource's ``Response`` (``code`` as ``(class, detail)``, ``payload``,
    ``content_format``), whatever its code: a refusal such as 4.03 (the token's scope does not cover
    the request) is a response. ``RequestFailed`` is raised when no answer of the resource came
    (the AS refused a token, the RS refused it, forged hints...).
    """

    def __init__(self, runner: ClientRunner) -> None:
        """Wrap a ``ClientRunner`` (not started yet); ``from_config`` builds one."""
        self.runner = runner
        """The underlying ``ClientRunner`` (advanced use; its interface may change)."""

    @classmethod
    def from_config(cls, path: str | Path, *, scope: str | None = None, profile: int | None = None,
                    timeout: float | None = None) -> Client:
        """A client from a client.toml, as ``ace client`` builds it. ``scope`` and ``profile``
        override the file's; ``timeout``: seconds each CoAP request may take (30 by default)."""
        from ace.cli import roles
        from ace.cli.config_client import load_client

        runner = roles.build_client(load_client(Path(path)), scope=scope, profile=profile)
        if timeout is not None:
            runner.timeout = timeout
        return cls(runner)

    async def start(self) -> None:
        """Open the CoAP client context (``async with`` does this)."""
        await self.runner.start()

    async def close(self) -> None:
        """Close the context and persist the sequence numbers (``async with`` does this)."""
        await self.runner.stop()

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def request(self, method: str, uri: str, payload: bytes = b"",
                      content_format: int | None = None) -> Response:
        """``method`` on ``uri``, getting and posting a token first when the RS asks for one."""
        outcome = await self.runner.request(ResourceRequest(method=method.upper(), uri=uri, payload=payload,
                                                            content_format=content_format))
        if not isinstance(outcome, Done):
            raise RequestFailed(outcome.step, outcome.error, outcome.response)
        return outcome.response

    async def update_access(self, uri: str, scope: str | bytes) -> Response:
        """EDHOC profile (draft-ietf-ace-edhoc-oscore-profile-11 §4.6): ask the AS for ``scope`` on the
        live session with ``uri``'s RS and POST the new token over the session's OSCORE context; the
        session keeps its context. Returns the RS's answer (2.01); ``RequestFailed`` at step
        ``"update"`` when there is no such session, the AS refuses or the RS refuses the token."""
        outcome = await self.runner.update(origin_of(uri), scope)
        if not isinstance(outcome, Done):
            raise RequestFailed(outcome.step, outcome.error, outcome.response)
        return outcome.response

    async def get(self, uri: str) -> Response:
        """GET ``uri``."""
        return await self.request("GET", uri)

    async def put(self, uri: str, payload: bytes, content_format: int | None = None) -> Response:
        """PUT ``payload`` to ``uri``."""
        return await self.request("PUT", uri, payload, content_format)

    async def post(self, uri: str, payload: bytes, content_format: int | None = None) -> Response:
        """POST ``payload`` to ``uri``."""
        return await self.request("POST", uri, payload, content_format)

    async def delete(self, uri: str) -> Response:
        """DELETE ``uri``."""
        return await self.request("DELETE", uri)

    async def observe(self, uri: str) -> AsyncGenerator[Response, None]:
        """Observe ``uri`` (RFC 7641): the first answer, then each notification, until the RS ends
        the observation (e.g. a final 4.01 when the token expires or is revoked: yielded, then the
        iteration stops) or you leave the loop (the observation is cancelled). No answer to the
        observation request within the client's timeout is ``RequestFailed``, as for ``get``."""
        first = await self.request("GET", uri)  # a session with the RS, token and all
        session = self.runner.flow.sessions.get(origin_of(uri))
        if not first.success or session is None:
            yield first
            return
        route = self.runner.channels[session.context.profile].route(session, uri)
        msg = aiocoap.Message(code=aiocoap.GET, uri=route.uri, observe=0)
        full = msg.get_request_uri()
        self.runner.context.client_credentials.pop(full, None)  # the flow's first, unprotected try left it plain
        self.runner.secure(full, route.security, route.handshake)
        # block-wise handled here (a notification's rest fetched with a GET): aiocoap's block-wise layer
        # would follow the observation with an iterator of its own that keeps the error a final
        # unprotected 4.01 ended it with, and raises it again when collected
        pending = self.runner.context.request(msg, handle_blockwise=False)
        iterator: Any = None
        try:
            try:
                first_answer = await asyncio.wait_for(pending.response, self.runner.timeout)
            except TimeoutError as exc:  # as get() says it: no answer of the resource
                raise RequestFailed("protected", self.runner._unanswered(exc, "protected", "GET", uri)) from None
            yield _response(await self._whole(first_answer, route.uri))
            iterator = pending.observation.__aiter__()  # aiocoap's, an __anext__ only
            while True:
                try:
                    answer = await iterator.__anext__()
                except StopAsyncIteration:
                    return
                yield _response(await self._whole(answer, route.uri))
        except oscore.NotAProtectedMessage as exc:  # the RS dropped the context with the token (RFC 8613 §8.2)
            plain = exc.plain_message
            if plain.code.is_successful():  # an OSCORE server answers unprotected only with errors: not taken
                log.warning("observation of %s: an unprotected %s is not taken", uri, plain.code)
                yield Response((5, 2), b"unprotected success answer")  # 5.02, as the client runner says
            else:
                yield _response(plain)
        except aiocoap.error.Error as exc:
            log.info("observation of %s ended: %s", uri, exc)
        finally:
            if not pending.observation.cancelled:
                pending.observation.cancel()
            if iterator is not None:  # seen: aiocoap's iterator would raise its error again when collected
                with contextlib.suppress(AttributeError):
                    iterator._future = asyncio.get_running_loop().create_future()

    async def _whole(self, answer: Any, uri: str) -> Any:
        """``answer``, or, when it is the first block of more (Block2), the whole representation,
        fetched with a GET without Observe (RFC 7959 §2.6)."""
        block2 = answer.opt.block2
        if block2 is None or not block2.more:
            return answer
        return await asyncio.wait_for(self.runner.context.request(aiocoap.Message(code=aiocoap.GET, uri=uri)).response,
                                      self.runner.timeout)


def _response(message: Any) -> Response:
    cf = message.opt.content_format
    return Response(pair_of(message.code), message.payload, None if cf is None else int(cf))
