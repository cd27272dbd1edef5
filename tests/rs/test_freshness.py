"""Stateless cnonces (RFC 9200 §5.3.1, §5.10.1.1), sans I/O: stamp and MAC, each taken once,
a bounded used-set whose overflow raises a floor instead of forgetting."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ace.messages import CreationHints
from ace.rs.denied import AccessDenied
from ace.rs.freshness import CNONCE_LEN, MAX_LEAD, STAMP_LEN, Freshness

LIFETIME = 60.0


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def fresh(clock: Clock | None = None, *, seed: int = 1, max_used: int = 16) -> Freshness:
    return Freshness("rs1", clock=clock or Clock(), rng=random.Random(seed).randbytes, cnonce_lifetime=LIFETIME,
                     max_used=max_used)


def hints() -> CreationHints:
    return CreationHints(as_uri="coap://as.example/token", cnonce=b"new")


def accepted(f: Freshness, cnonce: bytes | None) -> bool:
    try:
        f.check_cnonce(cnonce, hints)
    except AccessDenied as exc:
        assert exc.coap_code == (4, 1) and exc.hints is not None and exc.hints.cnonce == b"new"
        return False
    return True


def new(f: Freshness) -> bytes:
    cnonce = f.new_cnonce()
    assert cnonce is not None and len(cnonce) == CNONCE_LEN
    return cnonce


def test_cnonces_are_distinct_even_with_the_clock_standing_still() -> None:
    f = fresh()
    cnonces = [new(f) for _ in range(1000)]
    assert len(set(cnonces)) == 1000
    assert all(accepted(f, c) for c in cnonces[-10:])


def test_handing_cnonces_out_stores_nothing() -> None:
    clock = Clock()
    f = fresh(clock)
    first = new(f)
    for _ in range(5000):  # far more than any bound on outstanding cnonces
        clock.t += 0.001
        new(f)
    assert f.used_cnonces() == 0
    assert accepted(f, first)  # not displaced by the others


def test_each_cnonce_is_taken_once() -> None:
    f = fresh()
    c = new(f)
    assert accepted(f, c)
    assert not accepted(f, c)
    assert f.used_cnonces() == 1


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda c: c[:-1], id="truncated"),
    pytest.param(lambda c: c[:STAMP_LEN], id="stamp-only"),
    pytest.param(lambda c: c + b"\x00", id="extended"),
    pytest.param(lambda c: c[:-1] + bytes([c[-1] ^ 1]), id="tag-bit-flipped"),
    pytest.param(lambda c: bytes([c[0] ^ 1]) + c[1:], id="stamp-changed"),
    pytest.param(lambda c: b"", id="empty"),
    pytest.param(lambda c: b"\x00" * CNONCE_LEN, id="zeros"),
])
def test_forged_cnonces_are_refused(mangle: Callable[[bytes], bytes]) -> None:
    f = fresh()
    c = new(f)
    assert not accepted(f, mangle(c))
    assert accepted(f, c)  # the genuine one is still good


def test_a_cnonce_of_another_rs_or_an_earlier_run_is_refused() -> None:
    clock = Clock()
    earlier = fresh(clock, seed=1)
    c = new(earlier)
    restarted = fresh(clock, seed=2)  # a new secret at start
    assert not accepted(restarted, c)
    assert not accepted(fresh(clock), None)


def test_a_cnonce_older_than_the_lifetime_is_refused() -> None:
    clock = Clock()
    f = fresh(clock)
    young, old = new(f), new(f)
    clock.t += LIFETIME - 1
    assert accepted(f, young)
    clock.t += 2
    assert not accepted(f, old)


def test_a_clock_stepping_back_does_not_extend_a_cnonce() -> None:
    clock = Clock()
    f = fresh(clock)
    c = new(f)
    clock.t -= 3600  # the clock is set back an hour: time at the RS goes on from where it was
    later = new(f)
    assert later != c and later[:STAMP_LEN] > c[:STAMP_LEN]
    clock.t += LIFETIME + 1
    assert not accepted(f, c)


def test_used_cnonces_leave_the_used_set_when_they_expire() -> None:
    clock = Clock()
    f = fresh(clock)
    for _ in range(10):
        assert accepted(f, new(f))
    clock.t += LIFETIME + 1
    assert accepted(f, new(f))
    assert f.used_cnonces() == 1


def test_a_full_used_set_raises_a_floor_and_no_replay_gets_in() -> None:
    f = fresh(max_used=4)
    c = [new(f) for _ in range(8)]
    for i in (1, 2, 3, 4):
        assert accepted(f, c[i])
    assert accepted(f, c[6])  # the used-set is full: c[1], the oldest, leaves and becomes the floor
    assert f.used_cnonces() == 4
    assert not any(accepted(f, c[i]) for i in (1, 2, 3, 4, 6))  # replays: below the floor or kept
    assert not accepted(f, c[0])  # never used, but not after the floor: refused too
    assert accepted(f, c[5]) and accepted(f, c[7])
    assert not any(accepted(f, x) for x in c)
    assert f.used_cnonces() == 4


def test_many_clients_over_a_small_used_set_never_admit_a_replay() -> None:
    f = fresh(max_used=8)
    taken: list[bytes] = []
    for _ in range(200):
        c = new(f)
        assert accepted(f, c)
        taken.append(c)
        assert f.used_cnonces() <= 8
    assert not any(accepted(f, c) for c in taken)


def test_new_cnonces_are_rate_limited_by_the_stamps() -> None:
    clock = Clock()
    f = fresh(clock)
    handed = [f.new_cnonce() for _ in range(MAX_LEAD + 2)]  # a second's worth and more, the clock still
    assert None not in handed[:MAX_LEAD] and handed[-1] is None
    clock.t += 2
    assert accepted(f, new(f))


def test_an_rs_without_cnonce_neither_hands_out_nor_checks() -> None:
    f = Freshness("rs1", clock=Clock(), rng=random.Random(1).randbytes)
    assert f.new_cnonce() is None
    f.check_cnonce(None, hints)


@given(st.binary(max_size=3 * CNONCE_LEN))
def test_arbitrary_bytes_are_never_taken(junk: bytes) -> None:
    f = fresh()
    new(f)
    assert not accepted(f, junk)
