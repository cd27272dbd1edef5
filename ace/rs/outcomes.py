"""What the RS core's calls return to the I/O layer (``ace.rs.server``): the answer, and the
bindings whose channels must go now (no side channel: each call reports what it dropped)."""

from __future__ import annotations

from dataclasses import dataclass

from ace.rs.store import Binding


@dataclass(frozen=True, slots=True)
class AuthzInfoOutcome:
    payload: bytes  # the 2.01 body
    binding: Binding
    new: bool  # False: a retransmission answered from the stored binding
    dropped: list[Binding]  # bindings whose channels the I/O layer must remove now


@dataclass(slots=True)  # not frozen: built on every authorized request, and frozen costs ~0.3 µs more
class Access:
    """``authorize``'s yes: the binding that allows the request, and the bindings its first use
    replaced (their channels go now)."""

    binding: Binding
    dropped: tuple[Binding, ...] = ()
