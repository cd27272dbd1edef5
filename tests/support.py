"""Small deterministic helpers shared by tests (importable: tests/ is on sys.path)."""

from __future__ import annotations

from collections.abc import Callable

NOW = 1_700_000_000


def counter_rng(seed: int = 0) -> Callable[[int], bytes]:
    """A deterministic rng: each call returns a fresh, predictable byte pattern."""
    state = {"n": seed}

    def rng(n: int) -> bytes:
        state["n"] += 1
        return (state["n"].to_bytes(4, "big") * (n // 4 + 1))[:n]

    return rng


def fixed_clock(t: float = NOW) -> Callable[[], float]:
    return lambda: t
