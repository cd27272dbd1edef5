"""The RS's resources: the demo (a temperature sensor and an LED actuator), or the ones rs.toml
declares in its ``[[rs.resources]]`` table (``ResourceSpec``): a value that GET shows and that
PUT/POST, where allowed, replace; a file or a Python handler (``ace.coap.resources``, whose
``table_resources`` builds the table's)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import aiocoap

from ace.coap.observe import Notify, Served
from ace.coap.rs_server import Handler
from ace.rs.store import Binding

TEXT_PLAIN = 0
RESOURCE_METHODS = ("GET", "PUT", "POST")  # what a value or file resource can answer (others: 4.05)
HANDLER_METHODS = ("GET", "POST", "PUT", "DELETE", "FETCH", "PATCH", "iPATCH")  # a handler's (AIF's, RFC 9237)
VALUE_KINDS = ("text", "integer")  # what PUT/POST may store: any non-empty UTF-8 text, or a decimal integer
MAX_VALUE_BYTES = 1024  # a stored value is at most this long (memory stays bounded): longer gets 4.13
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")  # as ace-java's test RS parses /temp (Integer.parseInt), bounded


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceSpec:
    """One ``[[rs.resources]]`` entry: ``path``, its ``methods``, the initial ``value``, what GET answers
    (``answer``: ``{value}`` stands for the current value) and what PUT/POST ``accept``; or instead
    of a value a ``file`` (at most ``max_bytes``, polled every ``poll`` seconds while observed) or
    a ``handler`` (``module:attr``). ``content_format``: of GET's answers (a handler's by default)."""

    path: str
    methods: tuple[str, ...] = ("GET",)
    value: str = ""
    answer: str = "{value}"
    accept: str = "text"
    content_format: int | None = None
    file: str | None = None
    max_bytes: int = 16384
    poll: float = 1.0
    handler: str | None = None

    def valid(self, value: str) -> bool:
        return bool(value) and (self.accept == "text" or _INTEGER.fullmatch(value) is not None)


class ValueResource:
    """GET: 2.05 with the answer (text/plain); PUT/POST: a valid payload replaces the value, 2.04;
    an empty or invalid one gets 4.00 (as ace-java's test RS answers its /temp and /config)."""

    def __init__(self, spec: ResourceSpec) -> None:
        self.spec, self.value = spec, spec.value
        self.notify: Notify | None = None  # set while observed (RFC 7641): a changed value is notified

    def watch(self, notify: Notify | None) -> None:
        self.notify = notify

    async def get(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        text = self.spec.answer.replace("{value}", self.value)
        cf = TEXT_PLAIN if self.spec.content_format is None else self.spec.content_format
        return aiocoap.Message(code=aiocoap.CONTENT, payload=text.encode(), content_format=cf)

    async def put(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        if len(request.payload) > MAX_VALUE_BYTES:
            return aiocoap.Message(code=aiocoap.REQUEST_ENTITY_TOO_LARGE, payload=b"Invalid payload: too long",
                                   content_format=TEXT_PLAIN)
        try:
            value = request.payload.decode("utf-8")
        except UnicodeDecodeError:
            value = ""
        if not self.spec.valid(value):
            what = "an integer" if self.spec.accept == "integer" else "non-empty UTF-8 text"
            return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=f"Invalid payload: {what}".encode(),
                                   content_format=TEXT_PLAIN)
        old, self.value = self.value, str(int(value)) if self.spec.accept == "integer" else value  # "+07": "7"
        if self.notify is not None and self.value != old:
            self.notify()
        return aiocoap.Message(code=aiocoap.CHANGED)

    def served(self) -> Served:
        handlers: dict[str, Handler] = {"GET": self.get, "PUT": self.put, "POST": self.put}
        return Served({m: handlers[m] for m in self.spec.methods}, self.watch)


class Thermometer:
    def __init__(self, base: float = 21.0) -> None:
        self.base = base

    async def get(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        value = self.base + random.uniform(-0.5, 0.5)
        return aiocoap.Message(code=aiocoap.CONTENT, payload=f"{value:.1f}".encode(), content_format=TEXT_PLAIN)


class Led:
    def __init__(self) -> None:
        self.on = False

    async def get(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.CONTENT, payload=b"on" if self.on else b"off", content_format=TEXT_PLAIN)

    async def put(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        value = request.payload.strip().lower()
        if value not in (b"on", b"off", b"1", b"0"):
            return aiocoap.Message(code=aiocoap.BAD_REQUEST, payload=b"payload must be on or off")
        self.on = value in (b"on", b"1")
        return aiocoap.Message(code=aiocoap.CHANGED)


def demo_resources() -> dict[str, dict[str, Handler]]:
    """Without ``[[rs.resources]]`` in rs.toml: /temp (GET) and /led (GET, PUT)."""
    temp, led = Thermometer(), Led()
    return {"/temp": {"GET": temp.get}, "/led": {"GET": led.get, "PUT": led.put}}
