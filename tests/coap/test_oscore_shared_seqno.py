"""Two senders of one OSCORE context (the AS and ``ace token upload --as-context``) sharing the AS's
store: their sequence numbers come from disjoint ranges reserved atomically there, so no number (AES-CCM
nonce, RFC 8613 §5.2) is ever taken twice, and one sender skips a range the other reserved since."""

from __future__ import annotations

import random
from pathlib import Path

from ace.coap import contexts
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.oscore_params import OscoreContextParams

SECRET = OscoreContextParams(master_secret=bytes(range(16)), sender_id=b"as", recipient_id=b"rs")


def test_two_processes_never_share_a_number(tmp_path: Path) -> None:
    the_as, cli = SqliteAsStore(tmp_path / "as.db"), SqliteAsStore(tmp_path / "as.db")  # two connections
    try:
        a = contexts.from_secret(SECRET, store=the_as, claims=["as"])
        taken = [a.new_sequence_number() for _ in range(5)]
        rng = random.Random(7)
        for _ in range(6):  # an upload from the CLI now and then, with its own context each time
            c = contexts.from_secret(SECRET, store=cli, claims=["as"])
            mine = [c.new_sequence_number() for _ in range(rng.randrange(1, 3))]
            assert min(mine) >= max(taken)
            after = a.new_sequence_number()  # the AS moves past the CLI's range at once (the RS's replay window)
            assert after > max(mine)
            taken += mine + [after] + [a.new_sequence_number() for _ in range(rng.randrange(1, 40))]
        assert len(taken) == len(set(taken))
    finally:
        the_as.close()
        cli.close()


def test_restart_resumes_above_every_reservation() -> None:
    store = MemoryAsStore()
    first = contexts.from_secret(SECRET, store=store, claims=["as"])
    used = [first.new_sequence_number() for _ in range(3)]
    again = contexts.from_secret(SECRET, store=store, claims=["as"])
    resumed = again.new_sequence_number()
    assert resumed > max(used) and first.new_sequence_number() not in (*used, resumed)
