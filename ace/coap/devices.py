"""The RS's demo resources: a temperature sensor and an LED actuator."""

from __future__ import annotations

import random

import aiocoap

from ace.coap.rs_server import Handler
from ace.rs.store import Binding

TEXT_PLAIN = 0


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
    temp, led = Thermometer(), Led()
    return {"/temp": {"GET": temp.get}, "/led": {"GET": led.get, "PUT": led.put}}
