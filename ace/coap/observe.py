"""Observe (RFC 7641) on the RS's protected resources, tied to the access token that allowed it.

A resource kind that can announce changes hands its handlers over as ``Served`` with a ``watch``:
called with a ``notify`` callable when the resource's first observer comes, with None when the
last one goes (a file resource polls only while watched). ``Observations`` holds every accepted
observation by the binding (label and token hash) that authorized it, bounded in number; when the
RS drops a binding (it expired, a newer token replaced it, the TRL revoked it: ``RsServer.uninstall_all``),
its observations end: a final 4.01 with AS Request Creation Hints, protected by the channel the
observation was made over (RFC 9200 §5.10.2: the token is no longer valid). Where the channel stays
with new rights (an update over the same channel, RFC 9203 §4.1), the resource is rendered again
and the core decides. A timer at the (current) token's expiry makes the RS sweep then, not at its next round.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import aiocoap

from ace.coap.boundary import reply_message
from ace.errors import UNAUTHORIZED
from ace.rs.denied import AccessDenied
from ace.rs.server import ResourceServer
from ace.rs.store import Binding

Notify = Callable[[], None]
Watch = Callable[[Notify | None], None]
MAX_OBSERVATIONS = 256  # observations one RS keeps; more are answered once, not observed
PER_BINDING = 8  # observations one token may hold
EXPIRY_MARGIN = 0.05  # seconds after a token's expiry that its observations are swept


class Served(dict[str, Any]):
    """A resource's handlers by method, and ``watch``: how it announces changes (None: it does not)."""

    def __init__(self, handlers: dict[str, Any], watch: Watch | None = None) -> None:
        super().__init__(handlers)
        self.watch = watch


class _Observation:  # a plain slotted class: no dataclass to build at start (issue 14: cold start)
    __slots__ = ("label", "timer", "token_hash")

    def __init__(self, label: bytes, token_hash: bytes, timer: asyncio.TimerHandle | None) -> None:
        self.label, self.token_hash, self.timer = label, token_hash, timer


class Observations:
    """Accepted observations (aiocoap ``ServerObservation``s) by the binding that authorized them."""

    def __init__(self, core: ResourceServer, sweep: Callable[[], object], *,
                 limit: int = MAX_OBSERVATIONS, per_binding: int = PER_BINDING) -> None:
        self.core, self.sweep, self.limit, self.per_binding = core, sweep, limit, per_binding
        self._held: dict[Any, _Observation] = {}

    def __len__(self) -> int:
        return len(self._held)

    def add(self, binding: Binding, observation: Any) -> bool:
        """Hold ``observation`` for ``binding``; False when the bounds are reached."""
        mine = sum(1 for o in self._held.values() if o.label == binding.label)
        if len(self._held) >= self.limit or mine >= self.per_binding:
            return False
        self._held[observation] = _Observation(binding.label, binding.token_hash, self._timer(binding))
        return True

    def _timer(self, binding: Binding) -> asyncio.TimerHandle | None:
        """A sweep just after ``binding``'s expiry (None: it does not expire)."""
        if binding.expires_at is None:
            return None
        delay = max(0.0, binding.expires_at - self.core.clock()) + EXPIRY_MARGIN
        return asyncio.get_running_loop().call_later(delay, self.sweep)

    def remove(self, observation: Any) -> None:
        held = self._held.pop(observation, None)
        if held is not None and held.timer is not None:
            held.timer.cancel()

    def end(self, bindings: Iterable[Binding]) -> None:
        """The observations of these dropped bindings end now (their channels go too)."""
        gone = {(b.label, b.token_hash) for b in bindings}
        if not gone or not self._held:
            return
        for observation, held in list(self._held.items()):
            if (held.label, held.token_hash) not in gone:
                continue
            current = self.core.bindings.get(held.label)
            if current is not None:  # same channel, new rights: the core decides on the next rendering
                held.token_hash = current.token_hash
                if held.timer is not None:
                    held.timer.cancel()
                held.timer = self._timer(current)  # the current token's expiry ends it, later or earlier
                observation.trigger()
                continue
            self.remove(observation)
            observation.trigger(self.final(), is_last=True)

    def final(self) -> aiocoap.Message:
        # RFC 9200 §5.10.2: no valid token → 4.01 with AS Request Creation Hints
        return reply_message(AccessDenied("access token no longer valid", coap_code=UNAUTHORIZED,
                                          hints=self.core.hints()))

    def close(self) -> None:
        for observation in list(self._held):
            self.remove(observation)
