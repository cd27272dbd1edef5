"""Observe on the RS without sockets: an observation's expiry timer follows the token that
currently authorizes it (a replacement with a later or an earlier exp), and a stopped resource
is never watched again, however aiocoap then ends its observations."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import aiocoap

from ace.coap.observe import EXPIRY_MARGIN, Observations, Served
from ace.coap.rs_server import ProtectedResource


class Observation:
    """What aiocoap's ServerObservation offers the resource."""

    def __init__(self) -> None:
        self.cancel: Any = None
        self.triggered: list[Any] = []

    def accept(self, cancel: Any) -> None:
        self.cancel = cancel

    def deregister(self) -> None:
        pass

    def trigger(self, response: Any = None, *, is_last: bool = False) -> None:
        self.triggered.append(response)


def binding(token_hash: bytes, expires_in: float) -> Any:
    return SimpleNamespace(label=b"L", token_hash=token_hash, expires_at=time.time() + expires_in)


async def sweeps_after_replacement(first: float, second: float) -> list[float]:
    """When the sweep runs for an observation whose token (``first`` s left) a token with
    ``second`` s left replaced over the same channel."""
    started, swept = time.monotonic(), []
    core = SimpleNamespace(clock=time.time, bindings={})
    held = Observations(core, lambda: swept.append(time.monotonic() - started))  # type: ignore[arg-type]
    old = binding(b"old", first)
    core.bindings[b"L"] = old
    assert held.add(old, Observation())
    core.bindings[b"L"] = binding(b"new", second)  # RFC 9203 §4.1: an update over the same channel
    held.end([old])
    await asyncio.sleep(max(first, second) + 0.3)
    held.close()
    return swept


async def test_a_later_token_moves_the_expiry_sweep_later() -> None:
    swept = await sweeps_after_replacement(0.2, 0.6)
    assert len(swept) == 1 and swept[0] >= 0.6  # not at the replaced token's expiry


async def test_an_earlier_token_moves_the_expiry_sweep_earlier() -> None:
    swept = await sweeps_after_replacement(0.8, 0.2)
    assert len(swept) == 1 and swept[0] < 0.2 + EXPIRY_MARGIN + 0.3


async def test_a_stopped_resource_is_not_watched_again() -> None:
    watched: list[bool] = []
    core = SimpleNamespace(clock=time.time, bindings={b"L": binding(b"t", 60)})
    server = SimpleNamespace(core=core, observations=Observations(core, lambda: None))  # type: ignore[arg-type]
    resource = ProtectedResource(server, "/temp", Served({"GET": None}, lambda n: watched.append(n is not None)))
    observers = [Observation(), Observation()]
    request = aiocoap.Message(code=aiocoap.GET, observe=0)
    request.remote = SimpleNamespace(authenticated_claims=[b"L"])
    for observer in observers:
        await resource.add_observation(request, observer)
    assert watched == [True]
    server.observations.close()
    resource.close()  # RsServer.stop
    for observer in observers:  # then aiocoap's shutdown ends each observation
        observer.cancel()
    assert watched == [True, False]  # not restarted when one of two observers remained
