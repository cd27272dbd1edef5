"""The Resource Owner's grants in both AS stores: text and AIF (bytes) scopes kept apart and
round-tripped exactly, adding idempotent, revoking counted; ``memory`` and ``sqlite`` agree.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ace.store.base import AsStore, Grant
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore


def test_grants_keep_text_and_bytes_scopes_apart(store: AsStore) -> None:
    text, aif = Grant(client_id="c", audience="rs1", scope="r"), Grant(client_id="c", audience="rs1", scope=b"r")
    store.add_grant(text)
    store.add_grant(aif)
    got = store.grants_for("c", "rs1")
    assert got == [text, aif] and type(got[0].scope) is str and type(got[1].scope) is bytes
    assert store.grants_for("c", "rs2") == [] and store.grants_for("d", "rs1") == []
    assert store.revoke_grant("c", "rs1", b"r") == 1
    assert store.grants_for("c", "rs1") == [text]


def test_add_grant_is_idempotent_and_updates_default(store: AsStore) -> None:
    g = Grant(client_id="c", audience="rs1", scope="r w")
    other = Grant(client_id="c", audience="rs1", scope=b"\x82\x61/\x01")
    for _ in range(3):
        store.add_grant(g)
    store.add_grant(other)
    assert store.list_grants() == [g, other]
    g_default = Grant(client_id="c", audience="rs1", scope="r w", default=True)
    store.add_grant(g_default)
    assert store.list_grants() == [g_default, other]  # updated in place, still first


def test_revoke_grant_counts(store: AsStore) -> None:
    rows: list[tuple[str, str, str | bytes]] = [("c", "a", "x"), ("c", "a", "y"), ("c", "a", b"x"), ("c", "b", "x"),
                                                ("d", "a", "x")]
    for client, aud, scope in rows:
        store.add_grant(Grant(client_id=client, audience=aud, scope=scope))
    assert store.revoke_grant("c", "a", "zz") == 0
    assert store.revoke_grant("c", "a", "x") == 1
    assert store.revoke_grant("c", "a") == 2
    assert store.revoke_grant("c", "a") == 0
    assert [(g.client_id, g.audience) for g in store.list_grants()] == [("c", "b"), ("d", "a")]


SCOPES = st.one_of(st.text(max_size=40), st.binary(max_size=40))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scopes=st.lists(SCOPES, max_size=6), default=st.booleans())
def test_scope_round_trips_exactly(store: AsStore, scopes: list[str | bytes], default: bool) -> None:
    store.revoke_grant("c", "rs")
    grants = [Grant(client_id="c", audience="rs", scope=s, default=default) for s in dict.fromkeys(scopes)]
    for g in grants:
        store.add_grant(g)
    got = store.grants_for("c", "rs")
    assert got == grants and [type(g.scope) for g in got] == [type(g.scope) for g in grants]


GRANT_OPS = st.lists(
    st.tuples(st.sampled_from(["add", "revoke"]), st.sampled_from(["c", "d"]), st.sampled_from(["a", "b"]),
              st.one_of(st.none(), st.sampled_from(["r", "w", b"r", b"\x01"])), st.booleans()),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(ops=GRANT_OPS)
def test_memory_and_sqlite_agree_on_grants(tmp_path_factory: pytest.TempPathFactory,
                                           ops: list[tuple[str, str, str, str | bytes | None, bool]]) -> None:
    mem = MemoryAsStore()
    with SqliteAsStore(tmp_path_factory.mktemp("agree") / "as.db") as sql:
        for op, client, aud, scope, default in ops:
            if op == "add":
                grant = Grant(client_id=client, audience=aud, scope=scope or "r", default=default)
                mem.add_grant(grant)
                sql.add_grant(grant)
            else:
                assert mem.revoke_grant(client, aud, scope) == sql.revoke_grant(client, aud, scope)
        assert mem.list_grants() == sql.list_grants()
