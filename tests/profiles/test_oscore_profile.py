"""The OSCORE profile's key material (RFC 9203 §3.2, §4.1–4.3): salt, derive, recipient IDs."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from support import counter_rng
from vectors import load_vector

from ace.errors import DecodeError, ErrorCode
from ace.profiles import ids, oscore
from ace.profiles.ids import RecipientIdPool
from ace.profiles.oscore import derive, master_salt
from ace.tokens.cnf import OscoreInputMaterial
from ace.tokens.oscore_params import OscoreContextParams

MS = bytes(range(16))
N1 = bytes.fromhex("018a278f7faab55a")
N2 = bytes.fromhex("25a8991cd700ac01")
CLIENT_RID = b"\x01"  # ace_client_recipientid (ID1)
SERVER_RID = b"\x02"  # ace_server_recipientid (ID2)


def material(**kw: object) -> OscoreInputMaterial:
    fields: dict[str, object] = {"id": b"\x01", "ms": MS}
    fields.update(kw)
    return OscoreInputMaterial(**fields)  # type: ignore[arg-type]


def both_sides(m: OscoreInputMaterial) -> tuple[OscoreContextParams, OscoreContextParams]:
    client = derive(m, nonce1=N1, nonce2=N2, sender_id=SERVER_RID, recipient_id=CLIENT_RID)
    rs = derive(m, nonce1=N1, nonce2=N2, sender_id=CLIENT_RID, recipient_id=SERVER_RID)
    return client, rs


# -- Master Salt (RFC 9203 §4.3) --------------------------------------------------------


def test_master_salt_matches_rfc9203_figure_13() -> None:
    values = load_vector("ace_rfc9203_examples.json")["examples"]["figure_13"]["values"]
    salt = master_salt(bytes.fromhex(values["input_salt"]), bytes.fromhex(values["nonce1"]),
                       bytes.fromhex(values["nonce2"]))
    assert salt.hex() == values["master_salt_hex_from_rfc"]


def test_absent_salt_contributes_nothing() -> None:
    # RFC 9203 §4.3: salt is "the CBOR byte string received from the AS"; none received, none
    # concatenated (ace-java derives the same: Master Salt = bstr(N1) | bstr(N2))
    assert master_salt(None, N1, N2) == b"\x48" + N1 + b"\x48" + N2


def test_present_empty_salt_is_its_cbor_byte_string() -> None:
    assert master_salt(b"", N1, N2) == b"\x40" + b"\x48" + N1 + b"\x48" + N2


def test_master_salt_uses_cbor_heads_for_longer_nonces() -> None:
    n1, n2 = bytes(24), bytes(32)
    assert master_salt(b"s", n1, n2) == b"\x41s" + b"\x58\x18" + n1 + b"\x58\x20" + n2


# -- derive (RFC 9203 §4.3) -------------------------------------------------------------


def test_client_and_rs_contexts_mirror() -> None:
    client, rs = both_sides(material(salt=b"\xaa\xbb", context_id=b"\x0c"))
    assert client.sender_id == rs.recipient_id == SERVER_RID
    assert client.recipient_id == rs.sender_id == CLIENT_RID
    assert client.master_secret == rs.master_secret == MS
    assert client.master_salt == rs.master_salt == master_salt(b"\xaa\xbb", N1, N2)
    assert client.id_context == rs.id_context == b"\x0c"
    assert (client.alg, client.hkdf) == (rs.alg, rs.hkdf) == (10, "sha256")


def test_defaults_without_optional_parameters() -> None:
    client, _ = both_sides(material())
    assert client.id_context is None
    assert client.alg == oscore.DEFAULT_ALG == 10
    assert client.hkdf == "sha256"
    assert client.master_salt == b"\x48" + N1 + b"\x48" + N2  # RFC 9203 §4.3: no salt received, none added


@pytest.mark.parametrize(("hkdf", "name"), [(None, "sha256"), (-10, "sha256"), (5, "sha256"),
                                            (-11, "sha512"), (7, "sha512")])
def test_supported_hkdf_values(hkdf: int | None, name: str) -> None:
    assert both_sides(material(hkdf=hkdf))[0].hkdf == name


@pytest.mark.parametrize("alg", [10, 11, 12, 13, 30, 31, 32, 33, 1, 2, 3])
def test_supported_aead_values(alg: int) -> None:
    assert both_sides(material(alg=alg))[1].alg == alg


def test_repr_hides_master_secret() -> None:
    client, _ = both_sides(material())
    assert MS.hex() not in repr(client) and repr(MS) not in repr(client)


def test_equal_ids_are_refused() -> None:
    # RFC 9203 §4.2: ID1 and ID2 MUST differ; no context may be derived otherwise
    with pytest.raises(DecodeError, match="equal"):
        derive(material(), nonce1=N1, nonce2=N2, sender_id=b"\x07", recipient_id=b"\x07")


def test_missing_master_secret_is_refused() -> None:
    with pytest.raises(DecodeError):
        derive(material(ms=b""), nonce1=N1, nonce2=N2, sender_id=SERVER_RID, recipient_id=CLIENT_RID)
    with pytest.raises(DecodeError):
        oscore.validate_material(material(ms=b""))


@pytest.mark.parametrize("kw", [
    {"alg": 99}, {"alg": "AES-CCM-16-64-128"}, {"alg": -7},
    {"hkdf": 99}, {"hkdf": "HKDF SHA-256"},
    {"version": 2}, {"version": 0},
], ids=repr)
def test_unsupported_parameters_are_unsupported_pop_key(kw: dict[str, object]) -> None:
    m = material(**kw)
    with pytest.raises(DecodeError) as derive_err:
        derive(m, nonce1=N1, nonce2=N2, sender_id=SERVER_RID, recipient_id=CLIENT_RID)
    assert derive_err.value.error_code is ErrorCode.UNSUPPORTED_POP_KEY
    assert derive_err.value.coap_code == (4, 0)
    with pytest.raises(DecodeError) as validate_err:
        oscore.validate_material(m)
    assert validate_err.value.error_code is ErrorCode.UNSUPPORTED_POP_KEY


def test_version_one_is_accepted() -> None:
    oscore.validate_material(material(version=1))


@pytest.mark.parametrize(("n", "ok"), [(0, False), (7, False), (8, True), (32, True), (33, False)])
def test_nonce_length_bounds(n: int, ok: bool) -> None:
    if ok:
        oscore.check_nonce(bytes(n), "nonce1")
    else:
        with pytest.raises(DecodeError, match="nonce1"):
            oscore.check_nonce(bytes(n), "nonce1")


@pytest.mark.parametrize(("n", "ok"), [(0, True), (7, True), (8, False)])
def test_recipient_id_length_bound(n: int, ok: bool) -> None:
    if ok:
        oscore.check_recipient_id(bytes(n), "rid")
    else:
        with pytest.raises(DecodeError, match="rid"):
            oscore.check_recipient_id(bytes(n), "rid")


# -- RecipientIdPool --------------------------------------------------------------------


def seeded(seed: int) -> Callable[[int], bytes]:
    r = random.Random(seed)
    return r.randbytes


def test_pool_hands_out_unique_one_byte_ids_first() -> None:
    pool = RecipientIdPool(seeded(1))
    ids = [pool.allocate() for _ in range(200)]
    assert len(set(ids)) == 200
    assert all(len(i) == 1 for i in ids)
    assert len(pool) == 200 and all(i in pool for i in ids)


def test_pool_avoids_the_given_id() -> None:
    pool = RecipientIdPool(lambda n: b"\x00" * n)  # the rng insists on the avoided value
    rid = pool.allocate(avoid=b"\x00")
    assert rid != b"\x00" and len(rid) == 1
    assert b"\x00" not in pool


def test_pool_never_repeats_with_a_stuck_rng() -> None:
    pool = RecipientIdPool(lambda n: b"\x05" * n)
    ids = [pool.allocate() for _ in range(20)]
    assert len(set(ids)) == 20


def test_pool_grows_to_two_bytes_when_one_byte_space_is_used() -> None:
    pool = RecipientIdPool(seeded(2))
    one_byte = [pool.allocate() for _ in range(255)]
    assert all(len(i) == 1 for i in one_byte) and len(set(one_byte)) == 255
    # 255 of 256 in use: the rule (in use + 1 >= space) moves on to two bytes
    nxt = pool.allocate()
    assert len(nxt) == 2


def test_pool_full_one_byte_space_with_avoid() -> None:
    pool = RecipientIdPool(seeded(3))
    for n in range(256):
        assert pool.claim(bytes([n]))
    rid = pool.allocate(avoid=b"\x00\x00")
    assert len(rid) == 2 and rid != b"\x00\x00"


def test_release_makes_an_id_reusable() -> None:
    pool = RecipientIdPool(lambda n: b"\x09" * n)
    rid = pool.allocate()
    assert rid == b"\x09"
    assert pool.allocate() != b"\x09"
    pool.release(rid)
    assert rid not in pool
    assert pool.allocate() == b"\x09"


def test_release_of_unknown_id_is_harmless() -> None:
    pool = RecipientIdPool(counter_rng())
    pool.release(b"\xff\xff")
    assert len(pool) == 0


def test_claim_reports_conflicts() -> None:
    pool = RecipientIdPool(counter_rng())
    assert pool.claim(b"\x01")
    assert not pool.claim(b"\x01")
    assert pool.allocate(avoid=None) != b"\x01"


def test_pool_is_bounded() -> None:
    pool = RecipientIdPool(seeded(4), max_len=1)
    ids = {pool.allocate() for _ in range(255)}
    assert len(ids) == 255
    with pytest.raises(DecodeError) as err:
        pool.allocate()
    assert err.value.coap_code == (5, 3)


def test_pool_default_bound_is_the_oscore_id_limit() -> None:
    assert ids.MAX_ID_LEN == 7
    pool = RecipientIdPool(seeded(5))
    assert all(len(pool.allocate()) <= ids.MAX_ID_LEN for _ in range(50))


def test_reserved_and_kept_clear_ids_are_never_handed_out() -> None:
    pool = RecipientIdPool(lambda n: b"\x07" * n)  # the rng insists on a reserved id
    assert pool.reserve(b"\x07")  # e.g. a live EDHOC C_R
    assert pool.allocate() != b"\x07" and not pool.claim(b"\x07")
    assert b"\x07" not in pool and pool.reserved == {b"\x07"}
    pool.unreserve(b"\x07")
    assert pool.allocate() == b"\x07"
    assert not pool.reserve(b"\x07")  # handed out already: the caller is told
    clear = RecipientIdPool(seeded(6))
    clear.keep_clear(bytes([n]) for n in range(200))  # another allocator's space
    ids = {clear.allocate() for _ in range(60)}
    assert all(len(i) == 2 or i[0] >= 200 for i in ids) and len(ids) == 60
