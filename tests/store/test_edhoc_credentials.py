"""Who owns an EDHOC credential (kid, RFC 9679 thumbprint), in both AS stores: registered by the
operator, else the first presenter; a key has one owner across all audiences, a kid one per
audience (issue 17); ``edhoc_owner`` only reads; ``log_token`` records the claim in the token's own
write or refuses both; bounded per client, gone with the client.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from store_support import TA, TB, TC, claim
from support import NOW, fixed_clock

from ace.store import base
from ace.store.base import AsStore, ClientRecord, IssuedToken
from ace.store.sqlite import SqliteAsStore

# --- the first presenter keeps it ---------------------------------------------------------


def test_first_presenter_keeps_kid_and_key_for_good(store: AsStore) -> None:
    assert claim(store, "b", b"kA", TB) is None  # b squats a's kid first
    assert claim(store, "a", b"kA", TA) == "b"  # by kid
    assert claim(store, "a", b"kX", TB) == "b"  # by key
    assert claim(store, "b", b"kA", TB, now=NOW + 10**6) is None  # b's still, however long after
    assert claim(store, "a", b"kA", TA, now=NOW + 10**6) == "b"
    assert claim(store, "a", b"kA", TA, audience="rs2") is None  # per audience
    assert claim(store, "b", b"kA", TB, audience="rs2") == "a"
    assert claim(store, "a", b"kZ", TA) is None  # a's own new key and kid at rs1: a's
    assert store.edhoc_credentials("a") == [("rs1", b"kZ", TA), ("rs2", b"kA", TA)]


def test_registration_wins_over_first_presenters(store: AsStore) -> None:
    assert claim(store, "b", b"kA", TB) is None
    store.register_edhoc_credential("a", kid=b"kA", thumbprint=TA, now=NOW)
    assert store.edhoc_credentials("b") == []  # b's squatting row went
    assert claim(store, "a", b"kA", TA) is None and claim(store, "a", b"kA", TA, audience="rs9") is None
    assert store.edhoc_credentials("a") == [(None, b"kA", TA)]  # registered: nothing recorded per audience
    for kid, thumb in ((b"kA", TB), (b"kB", TA), (b"kA", TA)):
        assert claim(store, "b", kid, thumb) == "a" and claim(store, "b", kid, thumb, audience="rs9") == "a"
    with pytest.raises(ValueError, match="registered for 'a'"):
        store.register_edhoc_credential("b", kid=b"kA", thumbprint=TB, now=NOW)
    store.register_edhoc_credential("a", kid=b"kA", thumbprint=TA, now=NOW)  # idempotent
    assert store.edhoc_credentials("a") == [(None, b"kA", TA)]


def test_credentials_are_bounded_and_go_with_their_client(store: AsStore) -> None:
    for n in range(6):  # limit 4: the least recently used go
        assert claim(store, "a", b"k%d" % n, bytes([n]) * 32, now=NOW + n) is None
    assert claim(store, "a", b"k2", bytes([2]) * 32, now=NOW + 9) is None  # used again
    assert claim(store, "a", b"k6", bytes([6]) * 32, now=NOW + 10) is None
    assert {kid for _, kid, _ in store.edhoc_credentials("a")} == {b"k2", b"k4", b"k5", b"k6"}
    assert claim(store, "b", b"k0", TB) is None  # a's evicted one: free
    store.put_client(ClientRecord(client_id="a"))
    store.register_edhoc_credential("a", kid=b"kR", thumbprint=TA, now=NOW)
    assert store.remove_client("a")
    assert store.edhoc_credentials("a") == []
    assert claim(store, "b", b"k5", TA) is None  # a's kid and registered key are free now


BAD_CALLS: list[tuple[str, Callable[[AsStore], object], type[Exception]]] = [
    ("empty kid", lambda s: claim(s, "a", b"", TA), ValueError),
    ("long kid", lambda s: claim(s, "a", b"k" * 65, TA), ValueError),
    ("short thumbprint", lambda s: claim(s, "a", b"k", b"t"), ValueError),
    ("str kid", lambda s: claim(s, "a", "k", TA), TypeError),  # type: ignore[arg-type]
    ("negative limit", lambda s: claim(s, "a", b"k", TA, limit=-1), ValueError),
    ("register bytearray", lambda s: s.register_edhoc_credential("a", kid=b"k", thumbprint=bytearray(TA),
                                                                 now=0), TypeError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("name", "call", "error"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_calls_refused(store: AsStore, name: str, call: Callable[[AsStore], object],
                           error: type[Exception]) -> None:
    with pytest.raises(error):
        call(store)
    assert store.edhoc_credentials("a") == []


# --- one owner per key, one per kid and audience ------------------------------------------


def tok(n: int, client: str, audience: str = "rs1") -> IssuedToken:
    return IssuedToken(cti=bytes([n]), client_id=client, audience=audience, scope="r", issued_at=NOW,
                       expires_at=NOW + 60, token_hash=bytes([n]) * 32, pop_kid=b"k%d" % n, pop_thumbprint=TA)


def edhoc(kid: bytes, thumb: bytes, limit: int = 4) -> base.EdhocClaim:
    return base.EdhocClaim(kid=kid, thumbprint=thumb, limit=limit)  # (base.: write_v8_fixture runs on schema 8)


def test_a_key_has_one_owner_at_every_audience(store: AsStore) -> None:
    assert claim(store, "a", b"kA", TA) is None  # a's key, first presented at rs1
    assert claim(store, "b", b"kA", TA, audience="rs2") == "a"  # old: None, b's at rs2 for good
    assert claim(store, "b", b"kB", TA, audience="rs2") == "a"  # under another kid too
    assert claim(store, "a", b"kA", TA, audience="rs2") is None  # a, where it had not been yet
    assert claim(store, "a", b"kZ", TA, audience="rs3") is None  # its key under another kid elsewhere
    assert store.edhoc_credentials("a") == [("rs1", b"kA", TA), ("rs2", b"kA", TA), ("rs3", b"kZ", TA)]
    assert store.edhoc_credentials("b") == []


def test_a_kid_has_one_owner_per_audience(store: AsStore) -> None:
    assert claim(store, "a", b"k", TA) is None
    assert claim(store, "b", b"k", TB) == "a"  # a's kid at rs1
    assert claim(store, "b", b"k", TB, audience="rs2") is None  # short kids repeat across RSs
    assert claim(store, "a", b"k", TA, audience="rs2") == "b"  # ... and there it is b's
    assert claim(store, "c", b"k", TC, audience="rs3") is None


def test_edhoc_owner_only_reads(store: AsStore) -> None:
    assert store.edhoc_owner("a", "rs1", kid=b"kA", thumbprint=TA) is None
    assert store.edhoc_credentials("a") == []  # nothing recorded
    assert claim(store, "a", b"kA", TA) is None
    for audience, kid, thumb in (("rs1", b"kA", TB), ("rs2", b"kB", TA), ("rs1", b"kX", TA)):
        assert store.edhoc_owner("b", audience, kid=kid, thumbprint=thumb) == "a", (audience, kid)
    assert store.edhoc_owner("b", "rs2", kid=b"kA", thumbprint=TB) is None
    assert store.edhoc_owner("a", "rs2", kid=b"kA", thumbprint=TA) is None
    store.register_edhoc_credential("r", kid=b"kR", thumbprint=TC, now=NOW)
    assert store.edhoc_owner("b", "rs9", kid=b"kR", thumbprint=TB) == "r"
    assert store.edhoc_owner("r", "rs9", kid=b"kR", thumbprint=TC) is None
    assert store.edhoc_credentials("b") == []


def test_log_token_claims_with_the_token_or_writes_nothing(store: AsStore) -> None:
    assert store.log_token(tok(1, "a"), edhoc_claim=edhoc(b"kA", TA)) is None
    assert store.edhoc_credentials("a") == [("rs1", b"kA", TA)]
    assert store.log_token(tok(2, "b", "rs2"), purge_before=NOW + 10**6, purge_limit=8,
                           edhoc_claim=edhoc(b"kB", TA)) == "a"  # a's key: refused, nothing written
    assert [t.cti for t in store.issued_tokens()] == [b"\x01"] and store.edhoc_credentials("b") == []
    assert store.find_token_by_cti(b"\x02") is None
    assert store.log_token(tok(2, "b", "rs2"), edhoc_claim=edhoc(b"kB", TB)) is None
    assert store.edhoc_credentials("b") == [("rs2", b"kB", TB)]
    assert store.log_token(tok(3, "a"), edhoc_claim=edhoc(b"kA", TA)) is None  # its own again
    with pytest.raises(ValueError, match="cti"):  # a logged cti: no claim either
        store.log_token(tok(3, "c"), edhoc_claim=edhoc(b"kC", TC))
    for bad, error in ((edhoc(b"", TC), ValueError), (edhoc(b"kC", b"t"), ValueError),
                       (edhoc(b"kC", TC, limit=-1), ValueError), (edhoc("kC", TC), TypeError)):  # type: ignore[arg-type]
        with pytest.raises(error):
            store.log_token(tok(4, "c"), edhoc_claim=bad)
    assert store.edhoc_credentials("c") == [] and store.find_token_by_cti(b"\x04") is None


def test_the_claim_is_bounded(store: AsStore) -> None:
    for n in range(6):
        assert store.log_token(tok(10 + n, "a"), edhoc_claim=edhoc(b"k%d" % n, bytes([n]) * 32, limit=3)) is None
    assert {kid for _, kid, _ in store.edhoc_credentials("a")} == {b"k3", b"k4", b"k5"}


def test_register_edhoc_key(db: Path) -> None:
    from ace.cbor.labels import Curve
    from ace.tokens.crypto import generate
    from ace.tokens.keys import thumbprint
    key = generate(Curve.P_256, kid=b"cA")
    with SqliteAsStore(db, clock=fixed_clock()) as s:
        with pytest.raises(ValueError, match="public key"):
            s.register_edhoc_key("a", key)  # the private part stays with the client
        s.register_edhoc_key("a", key.public())
        assert s.edhoc_credentials("a") == [(None, b"cA", thumbprint(key.public()))]
        assert s.edhoc_owner("b", "rs1", kid=b"cX", thumbprint=thumbprint(key.public())) == "a"
