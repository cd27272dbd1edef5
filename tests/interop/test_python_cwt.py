"""Interop with python-cwt (``cwt`` 3.3.0) as an independent CWT peer.

Both directions for ES256, EdDSA, HMAC 256/64, HMAC 256/256, AES-CCM-16-64-128 and
AES-CCM-16-128-256 (alg 31):

* tokens issued by ``ace.tokens.cwt.issue_token`` decode/verify with ``cwt.decode``;
* tokens issued by ``cwt.encode`` verify with ``ace.tokens.cwt.verify_token``;
* a token with one byte flipped is rejected by both.

python-cwt quirks (measured; see the interop notes): it cannot decode untagged COSE messages
(so our tokens are issued with ``tagged=True``, or with the CWT tag 61), it has no
AES-MAC (not used here), it adds iat/nbf/exp when the claims lack them, and it accepts
tokens up to 60 s past exp (and 60 s before nbf), where ace's default skew is 30 s.
python-cwt reads the wall clock (no clock injection), so the fixed claims below have a
past nbf/iat and an exp far in the future; ace's checks run against an injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2
import cwt
import pytest
from cwt import COSEKey
from interop_tokens import AUDIENCE, POP_KEY, tamper

from ace.cbor.labels import Alg, Curve
from ace.errors import ClaimsError, UnknownKeyError, VerificationError
from ace.tokens import cose
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import DEFAULT_SKEW, KeyRing, issue_token, verify_token
from ace.tokens.keys import CoseKey, symmetric_key

KID = b"as-key-1"
NOW = 1_750_000_000  # injected clock for ace (2025-06-15)
NBF = IAT = 1_700_000_000  # 2023-11-14: in the past for both clocks
EXP = 4_000_000_000  # 2096: far in the future for both clocks
NONCE = bytes(range(0xA0, 0xA0 + 13))  # fixed 13-byte AES-CCM nonce for python-cwt
PYTHON_CWT_LEEWAY = 60  # cwt.CWT default leeway (seconds) on exp and nbf
PYTHON_CWT_EXPIRES_IN = 3600  # cwt.CWT default lifetime when exp is absent


def _fixed_rng(n: int) -> bytes:
    """Deterministic IVs for our Encrypt0 (tests only; never reuse a nonce in real use)."""
    return bytes(range(1, n + 1))



CLAIMS = AccessTokenClaims(
    iss="as.example",
    sub="clientA",
    aud=AUDIENCE,
    exp=EXP,
    nbf=NBF,
    iat=IAT,
    cti=bytes.fromhex("0102030405060708"),
    cnf=CoseKeyCnf(POP_KEY),
    scope="r_temp rw_config",
)


@dataclass(frozen=True)
class Case:
    kind: Kind
    alg: Alg
    make_key: Callable[[], CoseKey]


CASES: dict[str, Case] = {
    "ES256": Case(Kind.SIGN, Alg.ES256, lambda: generate(Curve.P_256, kid=KID)),
    "EdDSA": Case(Kind.SIGN, Alg.EDDSA, lambda: generate(Curve.ED25519, kid=KID)),
    "HMAC256/64": Case(Kind.MAC, Alg.HMAC_256_64, lambda: symmetric_key(bytes(range(32)), kid=KID)),
    "HMAC256/256": Case(Kind.MAC, Alg.HMAC_256_256, lambda: symmetric_key(bytes(range(32)), kid=KID)),
    "AES-CCM-16-64-128": Case(
        Kind.AEAD, Alg.AES_CCM_16_64_128, lambda: symmetric_key(bytes(range(0x40, 0x50)), kid=KID)
    ),
    "AES-CCM-16-128-256": Case(
        Kind.AEAD, Alg.AES_CCM_16_128_256, lambda: symmetric_key(bytes(range(0x40, 0x60)), kid=KID)
    ),
}


@pytest.fixture(scope="module")
def keys() -> dict[str, CoseKey]:
    """One key per case; curve keys are generated once per module run."""
    return {name: case.make_key() for name, case in CASES.items()}


def _peer_key(key: CoseKey, alg: int, *, private: bool) -> Any:
    """The python-cwt COSEKey for ``key`` (public half only for verification)."""
    if not key.is_symmetric and not private:
        key = key.public()
    return COSEKey.new({**key.to_map(), 3: int(alg)})


def _claims_map(claims: AccessTokenClaims) -> dict[Any, Any]:
    """Plain CBOR-decoded form of our claims (what a peer sees)."""
    return cbor2.loads(claims.encode())  # type: ignore[no-any-return]


def _issue_ours(name: str, key: CoseKey, *, cwt_tag: bool) -> bytes:
    case = CASES[name]
    return issue_token(CLAIMS, key, kind=case.kind, alg=case.alg, tagged=True, cwt_tag=cwt_tag, rng=_fixed_rng)


def _issue_peer(name: str, key: CoseKey, claims: dict[Any, Any], *, tagged: bool = False) -> bytes:
    case = CASES[name]
    nonce = NONCE if case.kind is Kind.AEAD else b""
    # cwt.encode adds missing iat/nbf/exp to the dict it gets: hand it a copy
    return cwt.encode(dict(claims), _peer_key(key, case.alg, private=True), nonce=nonce, tagged=tagged)


def _ours_verify(token: bytes, key: CoseKey, *, now: float = NOW, skew: float = DEFAULT_SKEW) -> AccessTokenClaims:
    ring = KeyRing([key.public() if not key.is_symmetric else key])
    return verify_token(token, ring, audience=AUDIENCE, clock=lambda: now, skew=skew)


# --- (a) tokens we issue, verified by python-cwt ------------------------------------


@pytest.mark.parametrize("cwt_tag", [False, True], ids=["cose-tag", "cwt-tag"])
@pytest.mark.parametrize("name", list(CASES))
def test_our_token_decodes_with_python_cwt(name: str, cwt_tag: bool, keys: dict[str, CoseKey]) -> None:
    key = keys[name]
    token = _issue_ours(name, key, cwt_tag=cwt_tag)
    if cwt_tag:
        assert token[:2] == b"\xd8\x3d"  # tag 61
    decoded = cwt.decode(token, _peer_key(key, CASES[name].alg, private=False))
    assert decoded == _claims_map(CLAIMS)
    # python-cwt keeps our exp/nbf/iat as they are (it adds them only when encoding)
    assert (decoded[4], decoded[5], decoded[6]) == (EXP, NBF, IAT)
    assert decoded[8] == {1: POP_KEY.to_map()}
    # and our own verifier agrees on the same bytes
    assert _ours_verify(token, key) == CLAIMS


@pytest.mark.parametrize("name", list(CASES))
def test_python_cwt_cannot_decode_untagged(name: str, keys: dict[str, CoseKey]) -> None:
    """Documented peer limitation: an untagged COSE token is refused by python-cwt."""
    key, case = keys[name], CASES[name]
    token = issue_token(CLAIMS, key, kind=case.kind, alg=case.alg, rng=_fixed_rng)
    assert _ours_verify(token, key) == CLAIMS
    with pytest.raises(cwt.CWTError):
        cwt.decode(token, _peer_key(key, case.alg, private=False))


# --- (b) tokens python-cwt issues, verified by us -----------------------------------


@pytest.mark.parametrize("tagged", [False, True], ids=["cose-tag", "cwt-tag"])
@pytest.mark.parametrize("name", list(CASES))
def test_python_cwt_token_verifies_with_us(name: str, tagged: bool, keys: dict[str, CoseKey]) -> None:
    key = keys[name]
    token = _issue_peer(name, key, _claims_map(CLAIMS), tagged=tagged)
    first = cbor2.loads(token)
    assert isinstance(first, cbor2.CBORTag) and first.tag == (61 if tagged else {Kind.SIGN: 18, Kind.MAC: 17,
                                                                                 Kind.AEAD: 16}[CASES[name].kind])
    claims = _ours_verify(token, key)
    assert claims == CLAIMS
    assert claims.cnf == CoseKeyCnf(POP_KEY)
    # python-cwt did not touch claims that were present
    assert (claims.exp, claims.nbf, claims.iat) == (EXP, NBF, IAT)


@pytest.mark.parametrize("name", list(CASES))
def test_python_cwt_default_times_are_honoured(name: str, keys: dict[str, CoseKey]) -> None:
    """Without exp/nbf/iat python-cwt adds iat = nbf = now and exp = now + 3600."""
    key = keys[name]
    bare = {k: v for k, v in _claims_map(CLAIMS).items() if k not in (4, 5, 6)}
    before = int(time.time())
    token = _issue_peer(name, key, bare)
    after = int(time.time()) + 1

    issued = _ours_verify(token, key, now=before + 60)  # inside the window: nbf <= now <= exp
    assert issued.nbf is not None and issued.exp is not None and issued.iat is not None
    assert before <= issued.nbf <= after and issued.iat == issued.nbf
    assert issued.exp == issued.nbf + PYTHON_CWT_EXPIRES_IN
    assert (issued.aud, issued.cti, issued.scope, issued.cnf) == (CLAIMS.aud, CLAIMS.cti, CLAIMS.scope, CLAIMS.cnf)

    nbf, exp = issued.nbf, issued.exp
    for now in (nbf, (nbf + exp) / 2, exp, exp + DEFAULT_SKEW, nbf - DEFAULT_SKEW):
        _ours_verify(token, key, now=now)
    for now in (exp + DEFAULT_SKEW + 1, nbf - DEFAULT_SKEW - 1):
        with pytest.raises(ClaimsError):
            _ours_verify(token, key, now=now)
    # python-cwt itself (wall clock) accepts its own token
    assert cwt.decode(token, _peer_key(key, CASES[name].alg, private=False))[4] == exp


@pytest.mark.parametrize(
    ("offset", "peer_accepts", "ace_default_accepts"),
    [
        (-45, True, False),  # expired 45 s ago: inside python-cwt's 60 s, outside our 30 s
        (-20, True, True),  # expired 20 s ago: inside both
        (-90, False, False),  # expired 90 s ago: outside both
    ],
)
def test_exp_leeway_compared_with_python_cwt(
    offset: int, peer_accepts: bool, ace_default_accepts: bool, keys: dict[str, CoseKey]
) -> None:
    key, alg = keys["HMAC256/64"], Alg.HMAC_256_64
    wall = int(time.time())
    claims = {**_claims_map(CLAIMS), 4: wall + offset, 5: wall - 600, 6: wall - 600}
    token = _issue_peer("HMAC256/64", key, claims)

    if peer_accepts:
        assert cwt.decode(token, _peer_key(key, alg, private=False))[4] == wall + offset
    else:
        with pytest.raises(cwt.VerifyError, match="expired"):
            cwt.decode(token, _peer_key(key, alg, private=False))
    if ace_default_accepts:
        _ours_verify(token, key, now=wall)
    else:
        with pytest.raises(ClaimsError, match="expired"):
            _ours_verify(token, key, now=wall)
    # with python-cwt's leeway as our skew, we agree with it
    if peer_accepts:
        _ours_verify(token, key, now=wall, skew=PYTHON_CWT_LEEWAY)
    else:
        with pytest.raises(ClaimsError):
            _ours_verify(token, key, now=wall, skew=PYTHON_CWT_LEEWAY)


@pytest.mark.parametrize(("offset", "peer_accepts"), [(45, True), (90, False)])
def test_nbf_leeway_compared_with_python_cwt(offset: int, peer_accepts: bool, keys: dict[str, CoseKey]) -> None:
    key, alg = keys["HMAC256/256"], Alg.HMAC_256_256
    wall = int(time.time())
    claims = {**_claims_map(CLAIMS), 5: wall + offset, 6: wall}
    token = _issue_peer("HMAC256/256", key, claims)
    if peer_accepts:
        assert cwt.decode(token, _peer_key(key, alg, private=False))[5] == wall + offset
    else:
        with pytest.raises(cwt.VerifyError, match="not yet valid"):
            cwt.decode(token, _peer_key(key, alg, private=False))
    with pytest.raises(ClaimsError, match="nbf"):  # 45 s and 90 s are both beyond our 30 s
        _ours_verify(token, key, now=wall)


# --- (c) one flipped byte is rejected by both ----------------------------------------


@pytest.mark.parametrize("where", ["body", "last"])
@pytest.mark.parametrize("issuer", ["ace", "python-cwt"])
@pytest.mark.parametrize("name", list(CASES))
def test_tampered_token_rejected_by_both(name: str, issuer: str, where: str, keys: dict[str, CoseKey]) -> None:
    key = keys[name]
    token = _issue_ours(name, key, cwt_tag=False) if issuer == "ace" else _issue_peer(name, key, _claims_map(CLAIMS))
    # the untouched token is fine for both
    assert _ours_verify(token, key) == CLAIMS
    cwt.decode(token, _peer_key(key, CASES[name].alg, private=False))

    bad = tamper(token, where)
    with pytest.raises(VerificationError):
        _ours_verify(bad, key)
    with pytest.raises(cwt.CWTError):
        cwt.decode(bad, _peer_key(key, CASES[name].alg, private=False))


@pytest.mark.parametrize("name", list(CASES))
def test_wrong_key_rejected_by_both(name: str, keys: dict[str, CoseKey]) -> None:
    key, case = keys[name], CASES[name]
    other = case.make_key() if not key.is_symmetric else symmetric_key(bytes(b ^ 0x55 for b in key.k or b""), kid=KID)
    token = _issue_ours(name, key, cwt_tag=False)
    with pytest.raises(VerificationError):
        _ours_verify(token, other)
    with pytest.raises(cwt.CWTError):
        cwt.decode(token, _peer_key(other, case.alg, private=False))


# --- nested tokens (RFC 8392 §7.2: a signed CWT inside an encrypted one) --------------


def test_python_cwt_nested_sign1_in_encrypt0_verifies_with_us(keys: dict[str, CoseKey]) -> None:
    sig_key, enc_key = keys["ES256"], symmetric_key(bytes(range(0x40, 0x50)), kid=b"enc-key")
    inner = _issue_peer("ES256", sig_key, _claims_map(CLAIMS))
    # python-cwt refuses a tag-61 inner token ("Unsupported or unknown CBOR tag(61)"): the inner is tag 18
    outer = cwt.encode(inner, _peer_key(enc_key, Alg.AES_CCM_16_64_128, private=True), nonce=NONCE)
    assert cbor2.loads(outer).tag == 16
    ring = KeyRing([sig_key.public(), enc_key])
    assert verify_token(outer, ring, audience=AUDIENCE, clock=lambda: NOW) == CLAIMS
    # the inner signature is really checked: without the signing key the token fails
    with pytest.raises(UnknownKeyError):
        verify_token(outer, KeyRing([enc_key]), audience=AUDIENCE, clock=lambda: NOW)


def test_our_nested_sign1_in_encrypt0_decodes_with_python_cwt(keys: dict[str, CoseKey]) -> None:
    sig_key, enc_key = keys["EdDSA"], symmetric_key(bytes(range(0x40, 0x60)), kid=b"enc-key")
    inner = _issue_ours("EdDSA", sig_key, cwt_tag=False)
    outer = cose.build(Kind.AEAD, inner, enc_key, alg=Alg.AES_CCM_16_128_256, kid=enc_key.kid, tagged=True,
                       rng=_fixed_rng)
    assert verify_token(outer, KeyRing([sig_key.public(), enc_key]), audience=AUDIENCE, clock=lambda: NOW) == CLAIMS
    peer_keys = [_peer_key(sig_key, Alg.EDDSA, private=False), _peer_key(enc_key, Alg.AES_CCM_16_128_256,
                                                                          private=True)]
    assert cwt.decode(outer, peer_keys) == _claims_map(CLAIMS)
