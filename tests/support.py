"""Small helpers shared by tests (importable: tests/ is on sys.path): deterministic clocks and
rngs, ``bounded`` (every await on loopback with a timeout), ``until`` (a bounded poll) and
``Reply`` (a CoAP response as the tests look at it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import cbor2

from ace.cbor.labels import ContentFormat, Param

NOW = 1_700_000_000
TIMEOUT = 5.0  # seconds for any one await on loopback
ACE_CBOR = int(ContentFormat.ACE_CBOR)
T = TypeVar("T")


def counter_rng(seed: int = 0) -> Callable[[int], bytes]:
    """A deterministic rng: each call returns a fresh, predictable byte pattern."""
    state = {"n": seed}

    def rng(n: int) -> bytes:
        state["n"] += 1
        return (state["n"].to_bytes(4, "big") * (n // 4 + 1))[:n]

    return rng


def fixed_clock(t: float = NOW) -> Callable[[], float]:
    return lambda: t


async def bounded(aw: Awaitable[T], timeout: float = TIMEOUT) -> T:
    return await asyncio.wait_for(aw, timeout)


async def until(cond: Callable[[], bool], timeout: float = 8.0) -> None:
    """Wait (bounded) until ``cond()`` holds, polling every 20 ms."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@dataclass(frozen=True, slots=True)
class Reply:
    """A CoAP response as the tests see it; ``protected`` False: it came back unprotected."""

    code: tuple[int, int]
    payload: bytes
    content_format: int | None
    protected: bool
    size: int = field(default=0, compare=False)  # bytes of the answer's datagram (UDP)
    request_size: int = field(default=0, compare=False)  # bytes of the request's datagram, as sent

    @property
    def error(self) -> int | None:
        """The RFC 9200 §5.8.3 error code of an ace+cbor error map, else None."""
        if self.content_format != ACE_CBOR or not self.payload:
            return None
        value = cbor2.loads(self.payload)
        return value.get(int(Param.ERROR)) if isinstance(value, dict) else None

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")
