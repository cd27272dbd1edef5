"""Three device types: thermometer, door lock, light; their tables, roles and actions.

Each type is a static resource table (``devices.node.Resource`` rows), the AIF scopes
(RFC 9237, REST model: [path, method bits]) its roles get from the Resource Owner, and the
actions a client may try. Handlers tolerate the same request twice (RIOT nanocoap style):
GET is safe, PUT sets a state (idempotent by RFC 7252 §5.8.3), and the light's POST, a
relative step, carries a command id so a repeated command is answered again without being
applied twice. Payloads are short text; a malformed one gets 4.00, never an exception.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiocoap

from ace.cbor.scope import AifScope, method_bit
from ace.rs.store import Binding
from devices.node import Resource, ResourceTable

TEXT_PLAIN = 0
MAX_COMMANDS_REMEMBERED = 8  # the light's duplicate-detection window, per node


def _perms(*methods: str) -> int:
    return sum(method_bit(m) for m in methods)


def _aif(*entries: tuple[str, int]) -> bytes:
    return AifScope.of(entries).encode()


def _text(code: aiocoap.numbers.codes.Code, payload: bytes) -> aiocoap.Message:
    return aiocoap.Message(code=code, payload=payload, content_format=TEXT_PLAIN)


@dataclass(frozen=True, slots=True)
class Action:
    """Something a client may try on a device: a method on a path with a payload."""

    method: str
    path: str
    payload: bytes = b""

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def payload_for(self, command_id: int) -> bytes:
        """The payload to send; ``{id}`` becomes a command id unique to this attempt."""
        return self.payload.replace(b"{id}", str(command_id).encode())


@dataclass(frozen=True, slots=True)
class DeviceType:
    name: str
    make_table: Callable[[int], ResourceTable]  # seed -> a fresh table with its own state
    roles: Mapping[str, bytes]  # role -> AIF scope (encoded) the Resource Owner grants it
    actions: tuple[Action, ...]

    def allows(self, role: str, action: Action) -> bool:
        return AifScope.decode(self.roles[role]).allows(action.path, action.method)


# -- thermometer --------------------------------------------------------------------------

class Thermometer:
    def __init__(self, seed: int) -> None:
        self.base = 18.0 + random.Random(seed).uniform(0, 6)
        self._rng = random.Random(seed)

    async def handle(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        value = self.base + self._rng.uniform(-0.5, 0.5)
        return _text(aiocoap.CONTENT, f"{value:.1f}".encode())


def thermometer_table(seed: int) -> ResourceTable:
    return (Resource("/temp", ("GET",), Thermometer(seed).handle),)


THERMOMETER = DeviceType(
    name="thermometer", make_table=thermometer_table,
    roles={"reader": _aif(("/temp", _perms("GET"))), "operator": _aif(("/temp", _perms("GET")))},
    actions=(Action("GET", "/temp"), Action("PUT", "/temp", b"30.0")),  # nobody may set the temperature
)


# -- door lock ----------------------------------------------------------------------------

class DoorLock:
    STATES = (b"locked", b"unlocked")

    def __init__(self, seed: int) -> None:
        self.state = b"locked"
        self.battery = 60 + seed % 40

    async def handle(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        if request.code == aiocoap.GET:
            return _text(aiocoap.CONTENT, self.state)
        value = request.payload.strip().lower()
        if value not in self.STATES:
            return _text(aiocoap.BAD_REQUEST, b"payload must be locked or unlocked")
        self.state = value  # setting the same state twice is the same as once
        return aiocoap.Message(code=aiocoap.CHANGED)

    async def battery_level(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        return _text(aiocoap.CONTENT, str(self.battery).encode())


def door_lock_table(seed: int) -> ResourceTable:
    lock = DoorLock(seed)
    return (Resource("/lock", ("GET", "PUT"), lock.handle), Resource("/battery", ("GET",), lock.battery_level))


DOOR_LOCK = DeviceType(
    name="lock", make_table=door_lock_table,
    roles={"reader": _aif(("/lock", _perms("GET")), ("/battery", _perms("GET"))),
           "operator": _aif(("/lock", _perms("GET", "PUT")), ("/battery", _perms("GET"))),
           "maintainer": _aif(("/battery", _perms("GET")))},
    actions=(Action("GET", "/lock"), Action("PUT", "/lock", b"unlocked"), Action("PUT", "/lock", b"locked"),
             Action("GET", "/battery")),
)


# -- light --------------------------------------------------------------------------------

class Light:
    """GET the level (0–100), PUT a level, POST ``<command id> <step>`` to dim relatively."""

    def __init__(self, seed: int) -> None:
        self.level = seed % 101
        self._done: OrderedDict[tuple[bytes, bytes], int] = OrderedDict()  # (label, id) -> level after

    async def handle(self, request: aiocoap.Message, binding: Binding) -> aiocoap.Message:
        if request.code == aiocoap.GET:
            return _text(aiocoap.CONTENT, str(self.level).encode())
        if request.code == aiocoap.PUT:
            level = _int(request.payload)
            if level is None or not 0 <= level <= 100:
                return _text(aiocoap.BAD_REQUEST, b"payload must be a level 0-100")
            self.level = level
            return aiocoap.Message(code=aiocoap.CHANGED)
        return self._step(request.payload, binding.label)

    def _step(self, payload: bytes, label: bytes) -> aiocoap.Message:
        parts = payload.split()
        step = _int(parts[1]) if len(parts) == 2 else None
        if step is None or not parts[0] or len(parts[0]) > 16:
            return _text(aiocoap.BAD_REQUEST, b"payload must be '<command id> <step>'")
        key = (label, parts[0])
        if key not in self._done:  # a repeated command is answered again, not applied again
            self.level = max(0, min(100, self.level + step))
            self._done[key] = self.level
            while len(self._done) > MAX_COMMANDS_REMEMBERED:
                self._done.popitem(last=False)
        return _text(aiocoap.CHANGED, str(self._done[key]).encode())


def _int(raw: bytes) -> int | None:
    try:
        return int(raw.strip())
    except ValueError:
        return None


def light_table(seed: int) -> ResourceTable:
    return (Resource("/light", ("GET", "PUT", "POST"), Light(seed).handle),)


LIGHT = DeviceType(
    name="light", make_table=light_table,
    roles={"reader": _aif(("/light", _perms("GET"))),
           "operator": _aif(("/light", _perms("GET", "PUT", "POST")))},
    actions=(Action("GET", "/light"), Action("PUT", "/light", b"40"), Action("POST", "/light", b"{id} +10")),
)

DEVICE_TYPES: tuple[DeviceType, ...] = (THERMOMETER, DOOR_LOCK, LIGHT)
ROLES = ("operator", "reader")  # what fleet clients are: read and write, or read only
