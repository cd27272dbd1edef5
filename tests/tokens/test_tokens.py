"""issue_token / verify_token: round trips for every algorithm, and a table of bad tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import cbor2
import pytest
from support import NOW, counter_rng

from ace.cbor import codec
from ace.cbor.labels import Alg
from ace.errors import (
    BAD_REQUEST,
    FORBIDDEN,
    UNAUTHORIZED,
    ClaimsError,
    DecodeError,
    ErrorCode,
    RemoteError,
    UnknownKeyError,
    VerificationError,
    WrongAudience,
)
from ace.tokens import cose
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.crypto import Kind
from ace.tokens.cwt import KeyRing, issue_token, peek_kid, verify_token
from ace.tokens.keys import CoseKey, symmetric_key

CASES = [
    ("encrypt0 AES-CCM-16-64-128", Kind.AEAD, Alg.AES_CCM_16_64_128, "k16"),
    ("encrypt0 AES-CCM-16-128-256 (alg 31)", Kind.AEAD, Alg.AES_CCM_16_128_256, "k32"),
    ("encrypt0 AES-CCM-16-128-128", Kind.AEAD, Alg.AES_CCM_16_128_128, "k16"),
    ("encrypt0 AES-CCM-64-64-128", Kind.AEAD, Alg.AES_CCM_64_64_128, "k16"),
    ("encrypt0 A128GCM", Kind.AEAD, Alg.A128GCM, "k16"),
    ("encrypt0 A256GCM", Kind.AEAD, Alg.A256GCM, "k32"),
    ("sign1 ES256", Kind.SIGN, Alg.ES256, "ec_key"),
    ("sign1 EdDSA", Kind.SIGN, Alg.EDDSA, "ed_key"),
    ("mac0 HMAC 256/64", Kind.MAC, Alg.HMAC_256_64, "k16"),
    ("mac0 HMAC 256/256", Kind.MAC, Alg.HMAC_256_256, "k32"),
    ("mac0 HMAC 512/512", Kind.MAC, Alg.HMAC_512_512, "k32"),
]


def verifier(key: CoseKey) -> CoseKey:
    return key if key.is_symmetric else key.public()


def clock(t: float = NOW) -> Callable[[], float]:
    return lambda: t


@pytest.mark.parametrize(("name", "kind", "alg", "keyname"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("tagging", ["untagged", "tagged", "cwt"])
def test_round_trip(request: pytest.FixtureRequest, claims: AccessTokenClaims, name: str, kind: Kind,
                    alg: Alg, keyname: str, tagging: str) -> None:
    key: CoseKey = request.getfixturevalue(keyname)
    token = issue_token(claims, key, kind=kind, alg=alg, tagged=tagging == "tagged", cwt_tag=tagging == "cwt",
                        rng=counter_rng())
    assert peek_kid(token) == key.kid
    got = verify_token(token, KeyRing([verifier(key)]), audience="rs1", clock=clock())
    assert got == claims
    first = codec.loads(token)
    if tagging == "cwt":
        assert first.tag == 61 and first.value.tag in (16, 17, 18)
    elif tagging == "tagged":
        assert first.tag in (16, 17, 18)
    else:
        assert isinstance(first, list)


def test_default_is_untagged_encrypt0_aes_ccm_16_64_128(claims: AccessTokenClaims, k16: CoseKey) -> None:
    token = issue_token(claims, k16, rng=counter_rng())
    item = codec.loads(token)
    assert isinstance(item, list) and len(item) == 3
    assert item[0] == bytes.fromhex("a1010a")  # {1: 10}
    assert item[1] == {4: b"k16", 5: counter_rng()(13)}


def test_exact_bytes_of_a_deterministic_mac0(k16: CoseKey) -> None:
    claims = AccessTokenClaims(aud="rs1", exp=NOW + 60, cti=b"\x01")
    token = issue_token(claims, k16, kind=Kind.MAC)
    protected, unprotected, payload, tag = codec.loads(token)
    assert protected == bytes.fromhex("a10104")
    assert unprotected == {4: b"k16"}
    assert payload == bytes.fromhex("a3 03 63 727331 04 1a 6553f13c 07 41 01".replace(" ", ""))
    assert len(tag) == 8
    assert token == codec.dumps([protected, unprotected, payload, tag])


def test_nested_sign1_in_encrypt0(claims: AccessTokenClaims, ec_key: CoseKey, k16: CoseKey) -> None:
    inner = issue_token(claims, ec_key, kind=Kind.SIGN, tagged=True)
    outer = cose.build(Kind.AEAD, inner, k16, kid=k16.kid, rng=counter_rng())
    got = verify_token(outer, KeyRing([k16, ec_key.public()]), audience="rs1", clock=clock())
    assert got == claims


def test_audience_none_skips_aud_check(claims: AccessTokenClaims, k16: CoseKey) -> None:
    token = issue_token(claims, k16, rng=counter_rng())
    assert verify_token(token, KeyRing([k16]), audience=None, clock=clock()) == claims


def test_aud_array_and_skew(claims: AccessTokenClaims, k16: CoseKey) -> None:
    token = issue_token(replace(claims, aud=("rs0", "rs1")), k16, rng=counter_rng())
    assert verify_token(token, KeyRing([k16]), audience="rs1", clock=clock()).audiences == ("rs0", "rs1")
    late = clock(NOW + 3600 + 20)
    assert verify_token(token, KeyRing([k16]), audience="rs1", clock=late, skew=30)
    with pytest.raises(ClaimsError):
        verify_token(token, KeyRing([k16]), audience="rs1", clock=late, skew=10)


def test_keyring_without_kid(claims: AccessTokenClaims) -> None:
    anon = symmetric_key(bytes(16))
    token = issue_token(claims, anon, rng=counter_rng())
    assert peek_kid(token) is None
    assert verify_token(token, KeyRing([anon]), audience="rs1", clock=clock()) == claims
    with pytest.raises(UnknownKeyError):
        verify_token(token, KeyRing([symmetric_key(bytes(16), kid=b"x")]), audience="rs1", clock=clock())


def test_second_key_with_same_kid_is_tried(claims: AccessTokenClaims, k16: CoseKey) -> None:
    token = issue_token(claims, k16, rng=counter_rng())
    other = symmetric_key(bytes(16), kid=k16.kid)
    assert verify_token(token, KeyRing([other, k16]), audience="rs1", clock=clock()) == claims


def test_accept_restricts_structures(claims: AccessTokenClaims, k16: CoseKey) -> None:
    token = issue_token(claims, k16, kind=Kind.MAC)
    with pytest.raises(VerificationError):
        verify_token(token, KeyRing([k16]), audience="rs1", clock=clock(), accept=frozenset({Kind.AEAD}))


# --- the bad-input table ---------------------------------------------------------------

Mutator = Callable[[dict[str, CoseKey], AccessTokenClaims], tuple[bytes, list[CoseKey]]]


def _tamper(token: bytes, index: int, at: int = -1) -> bytes:
    item = codec.loads(token)
    part = bytearray(item[index])
    part[at] ^= 0x01
    item[index] = bytes(part)
    return codec.dumps(item)


def _reencode(token: bytes, f: Callable[[list[object]], None]) -> bytes:
    item = codec.loads(token)
    f(item)
    return codec.dumps(item)


def _mac_with_public_key_bytes(keys: dict[str, CoseKey], c: AccessTokenClaims) -> tuple[bytes, list[CoseKey]]:
    """Alg confusion: HMAC a token with the RS's *public* key bytes as the secret."""
    pub = keys["ec"].public()
    secret = symmetric_key((pub.x or b"") + (pub.y or b""), kid=pub.kid)
    return issue_token(c, secret, kind=Kind.MAC, alg=Alg.HMAC_256_256), [pub]


def _raw_cose(protected: dict[int, object], unprotected: dict[int, object], body: bytes, tag: bytes | None) -> bytes:
    item: list[object] = [codec.dumps(protected) if protected else b"", unprotected, body]
    if tag is not None:
        item.append(tag)
    return codec.dumps(item)


BAD_TOKENS: list[tuple[str, Mutator, type[RemoteError], ErrorCode | None, tuple[int, int]]] = [
    ("not CBOR", lambda k, c: (b"\xff\x00", [k["k16"]]), DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("truncated", lambda k, c: (issue_token(c, k["k16"])[:-3], [k["k16"]]), DecodeError,
     ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("a map, not COSE", lambda k, c: (c.encode(), [k["k16"]]), DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("text protected header", lambda k, c: (_reencode(issue_token(c, k["k16"]), lambda i: i.__setitem__(0, "x")),
                                            [k["k16"]]), DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("duplicate key in protected header", lambda k, c: (
        _reencode(issue_token(c, k["k16"]), lambda i: i.__setitem__(0, bytes.fromhex("a2010a010a"))), [k["k16"]]),
     DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("label in both buckets", lambda k, c: (
        _reencode(issue_token(c, k["k16"]), lambda i: i[1].__setitem__(1, 10)), [k["k16"]]),
     DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("unknown critical header", lambda k, c: (
        _raw_cose({1: 4, 2: [99], 99: 1}, {4: b"k16"}, c.encode(), bytes(8)), [k["k16"]]),
     VerificationError, None, UNAUTHORIZED),
    ("detached payload", lambda k, c: (codec.dumps([bytes.fromhex("a10104"), {4: b"k16"}, None, bytes(8)]),
                                       [k["k16"]]), DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("tagged 17 but 3 elements", lambda k, c: (codec.dumps(cbor2.CBORTag(17, codec.loads(issue_token(c, k["k16"])))),
                                               [k["k16"]]), DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("oversize token", lambda k, c: (codec.dumps([b"", {}, bytes(5000)]), [k["k16"]]), DecodeError,
     ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("tampered ciphertext", lambda k, c: (_tamper(issue_token(c, k["k16"]), 2), [k["k16"]]), VerificationError,
     None, UNAUTHORIZED),
    ("tampered protected header", lambda k, c: (
        _reencode(issue_token(c, k["k16"]), lambda i: i.__setitem__(0, bytes.fromhex("a1010c"))), [k["k16"]]),
     VerificationError, None, UNAUTHORIZED),
    ("tampered ES256 signature", lambda k, c: (_tamper(issue_token(c, k["ec"], kind=Kind.SIGN), 3),
                                               [k["ec"].public()]), VerificationError, None, UNAUTHORIZED),
    ("tampered EdDSA payload", lambda k, c: (_tamper(issue_token(c, k["ed"], kind=Kind.SIGN), 2, 3),
                                             [k["ed"].public()]), VerificationError, None, UNAUTHORIZED),
    ("tampered MAC tag", lambda k, c: (_tamper(issue_token(c, k["k16"], kind=Kind.MAC), 3), [k["k16"]]),
     VerificationError, None, UNAUTHORIZED),
    ("short ES256 signature", lambda k, c: (
        _reencode(issue_token(c, k["ec"], kind=Kind.SIGN), lambda i: i.__setitem__(3, bytes(63))),
        [k["ec"].public()]), VerificationError, None, UNAUTHORIZED),
    ("wrong IV length", lambda k, c: (
        _reencode(issue_token(c, k["k16"]), lambda i: i[1].__setitem__(5, bytes(12))), [k["k16"]]),
     VerificationError, None, UNAUTHORIZED),
    ("HMAC with the public key as secret", _mac_with_public_key_bytes, VerificationError, None, UNAUTHORIZED),
    ("ES256 token, symmetric key with same kid", lambda k, c: (
        issue_token(c, k["ec"], kind=Kind.SIGN), [symmetric_key(bytes(32), kid=k["ec"].kid)]),
     VerificationError, None, UNAUTHORIZED),
    ("EdDSA token, P-256 key with same kid", lambda k, c: (
        issue_token(c, k["ed"], kind=Kind.SIGN), [k["ec"].public().with_kid(k["ed"].kid)]),
     VerificationError, None, UNAUTHORIZED),
    ("alg 31 with a 16-byte key", lambda k, c: (
        issue_token(c, k["k32"], alg=Alg.AES_CCM_16_128_256), [symmetric_key(bytes(16), kid=b"k32")]),
     VerificationError, None, UNAUTHORIZED),
    ("key pinned to another alg", lambda k, c: (
        issue_token(c, k["k16"], alg=Alg.AES_CCM_16_128_128),
        [symmetric_key(k["k16"].k or b"", kid=b"k16", alg=Alg.AES_CCM_16_64_128)]),
     VerificationError, None, UNAUTHORIZED),
    ("alg missing", lambda k, c: (_raw_cose({}, {4: b"k16"}, c.encode(), bytes(8)), [k["k16"]]),
     VerificationError, None, UNAUTHORIZED),
    ("alg unknown", lambda k, c: (_raw_cose({1: -65535}, {4: b"k16"}, c.encode(), bytes(8)), [k["k16"]]),
     VerificationError, None, UNAUTHORIZED),
    ("alg as text (none)", lambda k, c: (_raw_cose({1: "none"}, {4: b"k16"}, c.encode(), bytes(8)), [k["k16"]]),
     VerificationError, None, UNAUTHORIZED),
    ("AEAD alg on a 4-element message", lambda k, c: (_raw_cose({1: 10}, {4: b"k16"}, c.encode(), bytes(8)),
                                                      [k["k16"]]), VerificationError, None, UNAUTHORIZED),
    ("unknown kid", lambda k, c: (issue_token(c, k["k16"]), [symmetric_key(bytes(16), kid=b"other")]),
     UnknownKeyError, None, UNAUTHORIZED),
    ("wrong key", lambda k, c: (issue_token(c, k["k16"]), [symmetric_key(bytes(16), kid=b"k16")]),
     VerificationError, None, UNAUTHORIZED),
    ("wrong audience", lambda k, c: (issue_token(replace(c, aud="rs2"), k["k16"]), [k["k16"]]), WrongAudience,
     None, FORBIDDEN),
    ("no audience", lambda k, c: (issue_token(replace(c, aud=None), k["k16"]), [k["k16"]]), WrongAudience,
     None, FORBIDDEN),
    ("expired", lambda k, c: (issue_token(replace(c, exp=NOW - 31), k["k16"]), [k["k16"]]), ClaimsError, None,
     UNAUTHORIZED),
    ("not yet valid", lambda k, c: (issue_token(replace(c, nbf=NOW + 31), k["k16"]), [k["k16"]]), ClaimsError,
     None, UNAUTHORIZED),
    ("claims duplicate key", lambda k, c: (cose.build(Kind.MAC, bytes.fromhex("a203637273310363727331"), k["k16"],
                                                      kid=b"k16"), [k["k16"]]),
     DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("claims wrong type (exp text)", lambda k, c: (cose.build(Kind.MAC, codec.dumps({3: "rs1", 4: "soon"}), k["k16"],
                                                              kid=b"k16"), [k["k16"]]),
     DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("claims not a map", lambda k, c: (cose.build(Kind.MAC, codec.dumps([1]), k["k16"], kid=b"k16"), [k["k16"]]),
     DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
    ("cnf with two methods", lambda k, c: (
        cose.build(Kind.MAC, codec.dumps({3: "rs1", 8: {3: b"a", 4: {0: b"", 2: b""}}}), k["k16"], kid=b"k16"),
        [k["k16"]]),
     DecodeError, ErrorCode.INVALID_REQUEST, BAD_REQUEST),
]


@pytest.mark.parametrize(("name", "make", "error", "code", "coap"), BAD_TOKENS, ids=[b[0] for b in BAD_TOKENS])
def test_bad_tokens(ec_key: CoseKey, ed_key: CoseKey, k16: CoseKey, k32: CoseKey, claims: AccessTokenClaims,
                    name: str, make: Mutator, error: type[RemoteError], code: ErrorCode | None,
                    coap: tuple[int, int]) -> None:
    keys = {"ec": ec_key, "ed": ed_key, "k16": k16, "k32": k32}
    token, verify_keys = make(keys, claims)
    with pytest.raises(RemoteError) as info:
        verify_token(token, KeyRing(verify_keys), audience="rs1", clock=clock())
    assert type(info.value) is error, repr(info.value)
    assert info.value.error_code == code
    assert info.value.coap_code == coap
