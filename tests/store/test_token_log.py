"""The AS's log of issued tokens in both stores: newest first, by PoP kid, by client and
audience (``find_tokens``), by cti and hash, live counts, PoP holders (kid or RFC 9679
thumbprint), a requester's revoked hashes (the TRL joined with the log), and the bounded purge
that spares tokens on the TRL; ``memory`` and ``sqlite`` agree.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_support import V3_TOKENS, h, kid_tok, tok, token, v3_token
from support import NOW

from ace.store.base import AsStore
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore

# --- the log ------------------------------------------------------------------------------


def test_token_log_newest_first(store: AsStore) -> None:
    tokens = [token(b"\x01", "r"), token(b"\x02", b"\x83"), token(b"\x03", None)]
    for t in tokens:
        store.log_token(t)
    assert store.issued_tokens() == tokens[::-1]
    assert store.issued_tokens(limit=2) == tokens[:0:-1]
    assert store.issued_tokens(limit=0) == []
    with pytest.raises(ValueError, match="already logged"):
        store.log_token(token(b"\x01"))
    assert len(store.issued_tokens()) == 3


# --- PoP kid of issued tokens -------------------------------------------------------------


def test_find_token_by_pop_kid_returns_the_newest(store: AsStore) -> None:
    tokens = [
        kid_tok(1, b"k1"), kid_tok(2, b"k1", at=NOW + 10), kid_tok(3, b"k2"), kid_tok(4, b"k1", client_id="d"),
        kid_tok(5, b"k1", audience="rs2"), kid_tok(6, None), kid_tok(7, b""),
        kid_tok(8, b"k1", at=NOW - 100),  # logged last, so the newest, whatever its iat says
    ]
    for t in tokens:
        store.log_token(t)
    assert store.issued_tokens() == tokens[::-1]  # pop_kid round-trips, None and b"" kept apart
    assert store.find_token_by_pop_kid("c", "rs1", b"k1") == tokens[7]
    assert store.find_token_by_pop_kid("c", "rs1", b"k2") == tokens[2]
    assert store.find_token_by_pop_kid("d", "rs1", b"k1") == tokens[3]
    assert store.find_token_by_pop_kid("c", "rs2", b"k1") == tokens[4]
    assert store.find_token_by_pop_kid("c", "rs1", b"") == tokens[6]
    for client, aud, kid in [("c", "rs1", b"k3"), ("d", "rs1", b"k2"), ("d", "rs2", b"k1"), ("e", "rs1", b"k1"),
                             ("c", "rs3", b"k1"), ("c", "rs1", b"k"), ("c", "rs1", b"k1\x00")]:
        assert store.find_token_by_pop_kid(client, aud, kid) is None
    store.log_token(kid_tok(9, b"k2"))
    assert store.find_token_by_pop_kid("c", "rs1", b"k2") == kid_tok(9, b"k2")


def test_find_token_by_pop_kid_on_empty_log(store: AsStore) -> None:
    assert store.find_token_by_pop_kid("c", "rs1", b"k1") is None


def test_bad_pop_kid_refused(store: AsStore) -> None:
    with pytest.raises(TypeError, match="pop_kid must be bytes"):
        store.log_token(kid_tok(1, "k1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pop_kid must be bytes"):
        store.find_token_by_pop_kid("c", "rs1", None)  # type: ignore[arg-type]
    assert store.issued_tokens() == []


# --- find_tokens --------------------------------------------------------------------------


def test_find_tokens_filters_newest_first(store: AsStore) -> None:
    assert store.find_tokens() == [] and store.find_tokens("e1") == []
    for t in V3_TOKENS:
        store.log_token(t)
    late = v3_token(6, "e1", "rs4", expires=None)
    store.log_token(late)
    newest_first = [late, *V3_TOKENS[::-1]]
    assert store.find_tokens() == newest_first == store.issued_tokens()
    assert store.find_tokens("e1") == [late, V3_TOKENS[3], V3_TOKENS[2], V3_TOKENS[0]]
    assert store.find_tokens(client_id="e1", audience="rs4") == [late, V3_TOKENS[3], V3_TOKENS[0]]
    assert store.find_tokens(audience="rs4") == [late, V3_TOKENS[3], V3_TOKENS[1], V3_TOKENS[0]]
    assert store.find_tokens(audience="rs5") == [V3_TOKENS[4], V3_TOKENS[2]]
    assert store.find_tokens("p2", "rs5") == [V3_TOKENS[4]]
    for client, aud in [("p2", "rs4"), ("E1", None), (None, "rs"), ("", None), (None, ""), ("rs4", None)]:
        assert store.find_tokens(client, aud) == []


# --- lookups by identity ------------------------------------------------------------------


def test_find_token_by_cti(store: AsStore) -> None:
    store.log_token(tok(1, thumb=b"\x77" * 32))
    store.log_token(tok(2, "c2", "rs2", None, kid=b"k"))
    assert store.find_token_by_cti(b"\x00\x01") == tok(1, thumb=b"\x77" * 32)
    assert store.find_token_by_cti(b"\x00\x02") == tok(2, "c2", "rs2", None, kid=b"k")
    assert store.find_token_by_cti(b"\x00\x03") is None and store.find_token_by_cti(b"\x01") is None


def test_find_tokens_by_hash_in_log_order(store: AsStore) -> None:
    for n in range(1, 301):  # more than one SQL chunk
        store.log_token(tok(n, "c2" if n % 2 else "c1"))
    assert store.find_tokens_by_hash([]) == []
    assert store.find_tokens_by_hash([h(3), h(1), h(999), h(3)]) == [tok(1, "c2"), tok(3, "c2")]
    found = store.find_tokens_by_hash({h(n) for n in range(1, 400)})
    assert [t.cti for t in found] == [n.to_bytes(2, "big") for n in range(1, 301)]


def test_count_live_tokens(store: AsStore) -> None:
    for t in (tok(1), tok(2), tok(3, expires_at=NOW), tok(4, expires_at=None), tok(5, "c2"), tok(6, audience="rs2"),
              tok(7)):
        store.log_token(t)
    assert store.count_live_tokens("c1", "rs1", NOW, 10) == 4  # 1, 2, 4, 7 (3 expires at NOW)
    store.revoke_token(h(7), revoked_at=NOW, expires_at=NOW + 60)
    assert store.count_live_tokens("c1", "rs1", NOW, 10) == 3  # a revoked token is not live
    assert store.count_live_tokens("c1", "rs1", NOW + 60, 10) == 1  # only the one without expiry
    assert store.count_live_tokens("c2", "rs1", NOW, 10) == 1 and store.count_live_tokens("c3", "rs1", NOW, 10) == 0
    assert store.count_live_tokens("c1", "rs1", NOW, 2) == 2 and store.count_live_tokens("c1", "rs1", NOW, 0) == 0


def test_pop_holders(store: AsStore) -> None:
    store.log_token(tok(1, "a", kid=b"K", thumb=b"T" * 32))
    store.log_token(tok(2, "b", kid=b"L", thumb=b"U" * 32))
    store.log_token(tok(3, "c", kid=b"K", expires_at=NOW - 1, thumb=b"V" * 32))  # expired: holds nothing
    store.log_token(tok(4, "d", "rs2", kid=b"K", thumb=b"T" * 32))  # another audience
    store.log_token(tok(5, "e", kid=b"M", thumb=b"W" * 32))
    store.revoke_token(h(5), revoked_at=NOW, expires_at=NOW + 60)  # revoked, still live: still held
    # an OSCORE material id or a DTLS kid (no thumbprint) is another id space: it holds no credential
    store.log_token(tok(6, "f", kid=b"K"))
    store.log_token(tok(7, "g", kid=b"N"))
    assert store.pop_holders("rs1", NOW, pop_kid=b"N", pop_thumbprint=None) == []
    assert store.pop_holders("rs1", NOW, pop_kid=b"K", pop_thumbprint=None) == ["a"]
    assert store.pop_holders("rs1", NOW, pop_kid=b"X", pop_thumbprint=b"U" * 32) == ["b"]
    assert store.pop_holders("rs1", NOW, pop_kid=b"K", pop_thumbprint=b"U" * 32) == ["a", "b"]
    assert store.pop_holders("rs1", NOW, pop_kid=b"M", pop_thumbprint=None) == ["e"]
    assert store.pop_holders("rs2", NOW, pop_kid=b"K", pop_thumbprint=b"T" * 32) == ["d"]
    assert store.pop_holders("rs1", NOW + 60, pop_kid=b"K", pop_thumbprint=b"T" * 32) == []
    assert store.pop_holders("rs1", NOW, pop_kid=None, pop_thumbprint=None) == []


def test_pop_holders_is_bounded(store: AsStore) -> None:
    for n in range(20):
        store.log_token(tok(n, f"c{n:02d}", kid=b"K", thumb=bytes([n]) * 32))
    assert store.pop_holders("rs1", NOW, pop_kid=b"K", pop_thumbprint=None) == [f"c{n:02d}" for n in range(8)]


# --- the TRL per requester, joined --------------------------------------------------------


def test_revoked_hashes_per_requester(store: AsStore) -> None:
    for t in (tok(1), tok(2, "c2"), tok(3, audience="rs2"), tok(4, expires_at=NOW + 5), tok(5), tok(6, "c2", "rs2")):
        store.log_token(t)
    for n in (5, 2, 1, 4, 6, 99):  # 99: a hash no logged token has
        store.revoke_token(h(n), revoked_at=NOW, expires_at=None)
    assert store.revoked_hashes(client_id="c1", now=NOW, limit=10) == [h(5), h(1), h(4)]  # revocation order
    assert store.revoked_hashes(client_id="c1", now=NOW + 5, limit=10) == [h(5), h(1)]  # 4 expired
    assert store.revoked_hashes(audience="rs1", now=NOW, limit=10) == [h(5), h(2), h(1), h(4)]
    assert store.revoked_hashes(audience="rs2", now=NOW, limit=10) == [h(6)]
    assert store.revoked_hashes(client_id="c2", audience="rs2", now=NOW, limit=10) == [h(6)]
    assert store.revoked_hashes(now=NOW, limit=10) == [h(5), h(2), h(1), h(4), h(6)]
    assert store.revoked_hashes(client_id="c1", now=NOW, limit=2) == [h(5), h(1)]
    assert store.revoked_hashes(client_id="nobody", now=NOW, limit=10) == []


# --- the purge ----------------------------------------------------------------------------


def test_purge_tokens_bounded_oldest_first_and_spares_the_trl(store: AsStore) -> None:
    expiries = {1: NOW - 5, 2: NOW - 50, 3: NOW, 4: None, 5: NOW - 1, 6: NOW - 50, 7: NOW - 60}
    for n, exp in expiries.items():
        store.log_token(tok(n, expires_at=exp))
    store.revoke_token(h(7), revoked_at=NOW - 100, expires_at=NOW - 60)  # on the TRL: kept
    assert store.purge_tokens(NOW, 2) == 2  # the two that expired first and are not on the TRL
    assert store.find_token_by_cti(b"\x00\x02") is None and store.find_token_by_cti(b"\x00\x06") is None
    assert store.purge_tokens(NOW, 0) == 0
    assert store.purge_tokens(NOW, 10) == 2  # NOW - 5, NOW - 1; NOW itself stays
    assert [t.cti[1] for t in store.issued_tokens(limit=20)] == [7, 4, 3]
    assert store.purge_tokens(2**63 - 1, 10) == 1  # 3; never one without expiry, nor one on the TRL
    assert store.purge_revoked(NOW) == 1 and store.purge_tokens(NOW, 10) == 1  # off the TRL, then purged
    assert store.issued_tokens(limit=20) == [tok(4, expires_at=None)]
    store.log_token(tok(2, expires_at=None))  # cti uniqueness is the counters', not the purged rows'


def test_log_token_purges_in_the_same_write(store: AsStore) -> None:
    store.log_token(tok(1, expires_at=NOW - 5))
    store.log_token(tok(2, expires_at=NOW - 1), purge_before=NOW, purge_limit=0)
    store.log_token(tok(3), purge_before=NOW, purge_limit=1)  # the one that expired first goes
    assert [t.cti[1] for t in store.issued_tokens()] == [3, 2]
    with pytest.raises(ValueError):
        store.log_token(tok(4), purge_before=-1, purge_limit=1)
    assert store.find_token_by_cti(b"\x00\x04") is None  # nothing written
    store.log_token(tok(4), purge_before=NOW, purge_limit=64)
    assert [t.cti[1] for t in store.issued_tokens()] == [4, 3]


TOKEN_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("log"), st.integers(0, 12), st.sampled_from(["a", "b"]), st.one_of(st.none(),
                                                                                               st.integers(0, 20))),
        st.tuples(st.just("revoke"), st.integers(0, 12), st.just(""), st.integers(0, 20)),
        st.tuples(st.just("purge"), st.integers(0, 25), st.just(""), st.integers(0, 3)),
        st.tuples(st.just("purge_trl"), st.integers(0, 25), st.just(""), st.none()),
    ),
    max_size=30,
)


def _observe(s: AsStore, now: int) -> tuple[object, ...]:
    hashes, ctis = [h(n) for n in range(13)], [n.to_bytes(2, "big") for n in range(13)]
    live = (s.count_live_tokens("a", "rs1", now, 50), s.count_live_tokens("b", "rs1", now, 1))
    return (s.issued_tokens(limit=50), *live,
            s.revoked_hashes(client_id="a", now=now, limit=50), s.revoked_hashes(audience="rs1", now=now, limit=50),
            s.pop_holders("rs1", now, pop_kid=b"k", pop_thumbprint=None), s.find_tokens_by_hash(hashes),
            [s.find_token_by_cti(c) for c in ctis])


@settings(max_examples=40, deadline=None)
@given(ops=TOKEN_OPS)
def test_memory_and_sqlite_agree_on_the_token_log(tmp_path_factory: pytest.TempPathFactory,
                                                  ops: list[tuple[str, int, str, int | None]]) -> None:
    mem = MemoryAsStore()
    with SqliteAsStore(tmp_path_factory.mktemp("agree") / "as.db") as sql:
        for op, a, who, b in ops:
            for s in (mem, sql):
                if op == "log" and s.find_token_by_cti(a.to_bytes(2, "big")) is None:
                    s.log_token(tok(a, who, expires_at=b, kid=b"k" if a % 3 == 0 else None))
                elif op == "revoke":
                    s.revoke_token(h(a), revoked_at=0, expires_at=b)
                elif op == "purge_trl":
                    s.purge_revoked(a)
            if op == "purge":
                assert b is not None and mem.purge_tokens(a, b) == sql.purge_tokens(a, b)
            for now in (0, 10, 30):
                assert _observe(mem, now) == _observe(sql, now)


BAD_CALLS: list[tuple[str, Callable[[AsStore], object], type[Exception]]] = [
    ("str cti", lambda s: s.find_token_by_cti("x"), TypeError),  # type: ignore[arg-type]
    ("hashes as bytes", lambda s: s.find_tokens_by_hash(b"\x01" * 33), TypeError),
    ("str in hashes", lambda s: s.find_tokens_by_hash(["ab"]), TypeError),  # type: ignore[list-item]
    ("negative now", lambda s: s.count_live_tokens("c", "a", -1, 1), ValueError),
    ("negative count limit", lambda s: s.count_live_tokens("c", "a", 0, -1), ValueError),
    ("float now", lambda s: s.pop_holders("a", 1.5, pop_kid=b"k", pop_thumbprint=None), TypeError),  # type: ignore
    ("negative limit", lambda s: s.purge_tokens(0, -1), ValueError),
    ("bytes client", lambda s: s.revoked_hashes(client_id=b"c", now=0, limit=1), TypeError),  # type: ignore
    ("bytearray thumbprint", lambda s: s.log_token(tok(1, thumb=bytearray(32))), TypeError),  # type: ignore
]


@pytest.mark.parametrize(("name", "call", "error"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_calls_refused(store: AsStore, name: str, call: Callable[[AsStore], object],
                           error: type[Exception]) -> None:
    with pytest.raises(error):
        call(store)
    assert store.issued_tokens() == []
