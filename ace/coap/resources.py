"""The kinds of ``[[rs.resources]]`` entries beyond a value (``ace.coap.devices.ValueResource``):

- a file (``file = "/sys/..."``): GET reads it (at most ``max_bytes``; a larger file is 5.00),
  PUT/POST write the payload to it (what ``accept`` takes, at most ``max_bytes``); observed, it
  is read every ``poll`` seconds and a change is notified;
- a Python handler (``handler = "module:attr"``): an async callable ``(request, binding) ->
  response`` (``binding.claims``: the token's claims), whose ``observed(notify)``, if it has
  one, is called with a callable to announce changes while observed (None when the last
  observer goes); or an aiocoap ``Resource`` (an instance, or a class made without arguments),
  whose ``render`` answers, and an ``ObservableResource`` announces its changes.

The scope check stays the RS core's (``ProtectedResource``): a handler sees only requests its
token allows.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any

import aiocoap
import aiocoap.interfaces

from ace.coap.devices import TEXT_PLAIN, ResourceSpec, ValueResource
from ace.coap.observe import Notify, Served
from ace.coap.ratelog import RateLimitedLog
from ace.coap.rs_server import Handler
from ace.errors import ConfigError
from ace.rs.store import Binding

log = logging.getLogger(__name__)


def table_resources(specs: tuple[ResourceSpec, ...], base: Path | None = None) -> dict[str, Served]:
    """The handlers of the ``[[rs.resources]]`` entries (each path once; the config checked that);
    a handler module (looked up on ``sys.path``, then in ``base``) that cannot be used is a ConfigError."""
    return {spec.path: served(spec, base) for spec in specs}


def served(spec: ResourceSpec, base: Path | None = None) -> Served:
    """The handlers of one entry, by kind."""
    if spec.file is not None:
        return FileResource(spec).served()
    if spec.handler is not None:
        return handler_of(spec, base)
    return ValueResource(spec).served()


def _text(code: aiocoap.numbers.codes.Code, text: str) -> aiocoap.Message:
    return aiocoap.Message(code=code, payload=text.encode(), content_format=TEXT_PLAIN)


class FileResource:
    """A file: read on GET (and while observed, every ``poll`` seconds), written on PUT/POST.
    Opened non-blocking and never created: a device file is read and written as it is."""

    def __init__(self, spec: ResourceSpec) -> None:
        assert spec.file is not None
        self.spec, self.path = spec, Path(spec.file)
        self._poller: asyncio.Task[None] | None = None
        self._readable = True  # what the last read found: a change of it is logged, once
        self._log = RateLimitedLog(log)

    def read(self) -> bytes | None:
        """The file's content, None when it cannot be read or is larger than ``max_bytes``. A
        character device (``/dev/i2c-1``...) is a stream: one read of at most ``max_bytes``."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                stream = stat.S_ISCHR(os.fstat(fd).st_mode)
                data = os.read(fd, self.spec.max_bytes + (0 if stream else 1))
            finally:
                os.close(fd)
        except OSError as exc:
            self._readable_now(False, exc.strerror or type(exc).__name__)
            return None
        self._readable_now(True, "")
        return data if len(data) <= self.spec.max_bytes else None

    def _readable_now(self, readable: bool, reason: str) -> None:
        """Log a change only: a file unreadable for hours is one line, not one per poll."""
        if readable == self._readable:
            return
        self._readable = readable
        if readable:
            self._log.log(logging.INFO, "%s: %s is readable again", self.spec.path, self.path)
        else:
            self._log.log(logging.WARNING, "%s: cannot read %s (%s)", self.spec.path, self.path, reason)

    async def get(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        data = self.read()
        if data is None:
            return _text(aiocoap.INTERNAL_SERVER_ERROR, "cannot read the resource")
        cf = TEXT_PLAIN if self.spec.content_format is None else self.spec.content_format
        return aiocoap.Message(code=aiocoap.CONTENT, payload=data, content_format=cf)

    async def put(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        if len(request.payload) > self.spec.max_bytes:
            return _text(aiocoap.REQUEST_ENTITY_TOO_LARGE, f"Invalid payload: at most {self.spec.max_bytes} bytes")
        try:
            text = request.payload.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if not self.spec.valid(text.strip()):
            what = "an integer" if self.spec.accept == "integer" else "non-empty UTF-8 text"
            return _text(aiocoap.BAD_REQUEST, f"Invalid payload: {what}")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK)
            try:
                written = _write_all(fd, request.payload)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("%s: cannot write %s (%s)", self.spec.path, self.path, exc.strerror)
            return _text(aiocoap.INTERNAL_SERVER_ERROR, "cannot write the resource")
        if written < len(request.payload):  # 2.04 would say the whole payload is there
            log.warning("%s: wrote %d of %d bytes to %s (the file took no more)", self.spec.path, written,
                        len(request.payload), self.path)
            return _text(aiocoap.INTERNAL_SERVER_ERROR, "cannot write the whole payload")
        return aiocoap.Message(code=aiocoap.CHANGED)

    def watch(self, notify: Notify | None) -> None:
        """Poll while observed: a changed content is notified (RFC 7641 §4.2)."""
        if self._poller is not None:
            self._poller.cancel()  # cancel() awaits nothing here: the task ends at its next await
            self._poller = None
        if notify is not None:
            self._poller = asyncio.get_running_loop().create_task(self._poll(notify))

    async def _poll(self, notify: Notify) -> None:
        last = self.read()
        while True:
            await asyncio.sleep(self.spec.poll)
            now = self.read()
            if now != last:
                last = now
                notify()

    def served(self) -> Served:
        handlers: dict[str, Handler] = {"GET": self.get, "PUT": self.put, "POST": self.put}
        return Served({m: handlers[m] for m in self.spec.methods}, self.watch)


def _write_all(fd: int, data: bytes) -> int:
    """Write until all of ``data`` is written or a write takes nothing; how many bytes went."""
    done = 0
    while done < len(data):
        n = os.write(fd, data[done:])
        if n <= 0:
            break
        done += n
    return done


# -- handlers ------------------------------------------------------------------------------------

def handler_of(spec: ResourceSpec, base: Path | None = None) -> Served:
    """``module:attr`` imported (from ``sys.path``, then ``base``: rs.toml's directory) and wrapped."""
    assert spec.handler is not None
    where = f"[[rs.resources]] {spec.path}: handler {spec.handler!r}"
    return served_target(spec, _import(spec.handler, where, base), where)


def served_target(spec: ResourceSpec, target: Any, where: str) -> Served:
    """An async handler ``(request, binding) -> response`` or an aiocoap ``Resource`` (or its class),
    wrapped for ``ProtectedResource`` (also ``ace.ResourceServerApp.protect``'s)."""
    if inspect.isclass(target) and issubclass(target, aiocoap.interfaces.Resource):
        try:
            target = target()
        except Exception as exc:
            raise ConfigError(f"{where}: cannot make the resource ({type(exc).__name__}: {exc})") from None
    if isinstance(target, aiocoap.interfaces.Resource):
        return _aiocoap_resource(spec, target)
    call = getattr(target, "__call__", None)  # noqa: B004 (an object with an async __call__ counts)
    if not (inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(call)):
        raise ConfigError(f"{where}: not an async callable (request, binding) -> response, "
                          "nor an aiocoap Resource")
    handler = _checked(spec, target)
    watch = getattr(target, "observed", None)
    return Served({m: handler for m in spec.methods}, watch if callable(watch) else None)


def _import(name: str, where: str, base: Path | None) -> Any:
    module_name, _, attr = name.partition(":")
    # a handler module next to rs.toml: that directory is searched for this import only, never for the
    # imports the process makes later (a directory others may write to must not supply them)
    added = base is not None and str(base) not in sys.path
    if added:
        sys.path.append(str(base))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the module is the operator's: any failure is a config error
        raise ConfigError(f"{where}: cannot import {module_name!r} ({type(exc).__name__}: {exc})") from None
    finally:
        if added:
            sys.path.remove(str(base))
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(f"{where}: module {module_name!r} has no {attr!r}")
    return target


def _checked(spec: ResourceSpec, handler: Any) -> Handler:
    """The handler, its answer checked (a message) and given the entry's content format if it has none."""
    async def answer(request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        response = await handler(request, binding)
        if not isinstance(response, aiocoap.Message):
            log.error("%s: handler %s answered %r, not an aiocoap.Message", spec.path, spec.handler, type(response))
            return aiocoap.Message(code=aiocoap.INTERNAL_SERVER_ERROR)
        if spec.content_format is not None and response.opt.content_format is None and response.payload:
            response.opt.content_format = spec.content_format
        return response
    return answer


def _aiocoap_resource(spec: ResourceSpec, resource: Any) -> Served:
    async def render(request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        return await resource.render(request)

    watch = _RelayWatch(resource).watch if isinstance(resource, aiocoap.interfaces.ObservableResource) else None
    return Served({m: _checked(spec, render) for m in spec.methods}, watch)


class _RelayWatch:
    """An aiocoap ``ObservableResource``'s changes (its ``updated_state``) relayed as notifications:
    one observation of ours registered with it while our resource is observed."""

    def __init__(self, resource: Any) -> None:
        self.resource = resource
        self.notify: Notify | None = None
        self._cancel: Any = None
        self._pending: asyncio.Task[None] | None = None

    def watch(self, notify: Notify | None) -> None:
        self.notify = notify
        if notify is None:
            if self._cancel is not None:
                self._cancel()
                self._cancel = None
        elif self._cancel is None and self._pending is None:
            self._pending = asyncio.get_running_loop().create_task(self._register())

    async def _register(self) -> None:
        try:
            await self.resource.add_observation(aiocoap.Message(code=aiocoap.GET), self)
        finally:
            self._pending = None

    # what aiocoap's resource calls on its ServerObservation
    def accept(self, cancellation: Any) -> None:
        self._cancel = cancellation
        if self.notify is None:  # the last observer left while registering
            self._cancel()
            self._cancel = None

    def deregister(self, reason: object = None) -> None:
        self._cancel = None

    def trigger(self, response: object = None, *, is_last: bool = False) -> None:
        if self.notify is not None:
            self.notify()
