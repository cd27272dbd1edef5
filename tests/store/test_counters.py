"""Numbers the AS stores hand out: the cti counter, named counters (``next_counter``, e.g. exi
sequence numbers per RS) and persisted OSCORE sequence numbers: strictly increasing, unique
across threads, never lowered.
"""

from __future__ import annotations

import itertools
import threading

from ace.store.base import AsStore

# --- cti ----------------------------------------------------------------------------------


def test_next_cti_strictly_increasing(store: AsStore) -> None:
    values = [store.next_cti() for _ in range(50)]
    assert all(a < b for a, b in itertools.pairwise(values))


def test_next_cti_unique_across_threads(store: AsStore) -> None:
    seen: list[int] = []

    def work() -> None:
        seen.extend(store.next_cti() for _ in range(25))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 100 and len(set(seen)) == 100


# --- named counters -----------------------------------------------------------------------


def test_counters_count_from_one_per_name(store: AsStore) -> None:
    assert [store.next_counter("rs1") for _ in range(3)] == [1, 2, 3]
    assert store.next_counter("rs2") == 1
    assert store.next_counter("rs1") == 4
    # names that look like the cti counter or like the stored prefix are counters of their own
    for name in ("cti", "counter:rs1", "RS1", "rs1 ", "é"):
        assert store.next_counter(name) == 1
    assert store.next_counter("rs2") == 2 and store.next_counter("cti") == 2


def test_counters_leave_the_cti_alone(store: AsStore) -> None:
    first = store.next_cti()
    for _ in range(100):
        store.next_counter("cti")
    assert store.next_cti() == first + 1


def test_counter_unique_across_threads(store: AsStore) -> None:
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def work(name: str) -> None:
        seen[name].extend(store.next_counter(name) for _ in range(25))

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b") * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(seen["a"]) == sorted(seen["b"]) == list(range(1, 76))


# --- sequence numbers ---------------------------------------------------------------------


def test_sequence_numbers(store: AsStore) -> None:
    assert store.load_sequence_number("as-c1") is None
    store.persist_sequence_number("as-c1", 0)
    assert store.load_sequence_number("as-c1") == 0
    store.persist_sequence_number("as-c1", 2**40 - 1)
    store.persist_sequence_number("as-c1", 7)  # a late, smaller value never lowers the mark
    store.persist_sequence_number("as-c2", 20)
    assert store.load_sequence_number("as-c1") == 2**40 - 1 and store.load_sequence_number("as-c2") == 20
