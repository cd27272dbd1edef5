"""Interop with cose-js (Node.js, pinned in tests/interop/cosejs) as an independent COSE peer.

Our tokens (``ace.tokens.cwt.issue_token``) are handed to cose-js: Sign1 ES256, Mac0
HMAC 256/64 and 256/256, Encrypt0 AES-CCM-16-64-128 and AES-CCM-16-128-256 (alg 31),
each tagged and untagged; the payload cose-js returns must equal our encoded claims and
a copy with one byte flipped must be rejected. cose-js has no EdDSA, so EdDSA is not
covered here (see test_pycose_peer.py and test_python_cwt.py).

Without node/npm the module is skipped, except in CI (env ``CI`` set), where that is a
failure: the peer must be present there.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cbor2
import pytest
from interop_tokens import AUDIENCE, CLAIMS, tamper

sys.path.insert(0, str(Path(__file__).resolve().parent))  # cosejs_peer lives next to this file

from cosejs_peer import CoseJsRejected, cosejs_available, cosejs_verify, ensure_installed

from ace.cbor.labels import Alg, Curve
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token, verify_token
from ace.tokens.keys import CoseKey, symmetric_key

KID = b"as-key-1"
NOW = 1_750_000_000
EXTERNAL_AAD = b"\x01external-aad"

TAGS = {Kind.SIGN: 18, Kind.MAC: 17, Kind.AEAD: 16}


def _rng(n: int) -> bytes:
    return bytes(range(1, n + 1))  # deterministic IVs (tests only)


@dataclass(frozen=True)
class Case:
    peer_kind: str  # cosejs_peer kind
    kind: Kind
    alg: Alg
    make_key: Callable[[], CoseKey]


CASES: dict[str, Case] = {
    "sign1-ES256": Case("sign1", Kind.SIGN, Alg.ES256, lambda: generate(Curve.P_256, kid=KID)),
    "mac0-HMAC256/64": Case("mac0", Kind.MAC, Alg.HMAC_256_64, lambda: symmetric_key(bytes(range(32)), kid=KID)),
    "mac0-HMAC256/256": Case("mac0", Kind.MAC, Alg.HMAC_256_256, lambda: symmetric_key(bytes(range(32)), kid=KID)),
    "encrypt0-AES-CCM-16-64-128": Case(
        "encrypt0", Kind.AEAD, Alg.AES_CCM_16_64_128, lambda: symmetric_key(bytes(range(0x40, 0x50)), kid=KID)
    ),
    "encrypt0-AES-CCM-16-128-256": Case(
        "encrypt0", Kind.AEAD, Alg.AES_CCM_16_128_256, lambda: symmetric_key(bytes(range(0x40, 0x60)), kid=KID)
    ),
}


@pytest.fixture(scope="module", autouse=True)
def _cosejs_installed() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        message = f"{' and '.join(missing)} not on PATH: cose-js interop cannot run"
        if os.environ.get("CI"):
            pytest.fail(message + " (required in CI)")
        pytest.skip(message)
    ensure_installed()
    assert cosejs_available()


@pytest.fixture(scope="module")
def keys() -> dict[str, CoseKey]:
    return {name: case.make_key() for name, case in CASES.items()}


def _peer_key(key: CoseKey) -> dict[str, bytes]:
    if key.is_symmetric:
        assert key.k is not None
        return {"k": key.k}
    assert key.x is not None and key.y is not None
    return {"x": key.x, "y": key.y}


def _issue(name: str, key: CoseKey, *, tagged: bool, external_aad: bytes = b"") -> bytes:
    case = CASES[name]
    return issue_token(
        CLAIMS, key, kind=case.kind, alg=case.alg, tagged=tagged, external_aad=external_aad, rng=_rng
    )


def _ours_verify(token: bytes, key: CoseKey, external_aad: bytes = b"") -> AccessTokenClaims:
    ring = KeyRing([key if key.is_symmetric else key.public()])
    return verify_token(token, ring, audience=AUDIENCE, clock=lambda: NOW, external_aad=external_aad)


@pytest.mark.parametrize("tagged", [True, False], ids=["tagged", "untagged"])
@pytest.mark.parametrize("name", list(CASES))
def test_our_token_verifies_with_cosejs(name: str, tagged: bool, keys: dict[str, CoseKey]) -> None:
    key, case = keys[name], CASES[name]
    token = _issue(name, key, tagged=tagged)
    first = cbor2.loads(token)
    if tagged:
        assert isinstance(first, cbor2.CBORTag) and first.tag == TAGS[case.kind]
    else:
        assert isinstance(first, list)
    payload = cosejs_verify(case.peer_kind, token, _peer_key(key))
    assert payload == CLAIMS.encode()
    assert AccessTokenClaims.decode(payload) == CLAIMS
    assert _ours_verify(token, key) == CLAIMS


@pytest.mark.parametrize("where", ["body", "last"])
@pytest.mark.parametrize("tagged", [True, False], ids=["tagged", "untagged"])
@pytest.mark.parametrize("name", list(CASES))
def test_tampered_token_rejected_by_cosejs(name: str, tagged: bool, where: str, keys: dict[str, CoseKey]) -> None:
    key, case = keys[name], CASES[name]
    bad = tamper(_issue(name, key, tagged=tagged), where)
    with pytest.raises(CoseJsRejected):
        cosejs_verify(case.peer_kind, bad, _peer_key(key))


@pytest.mark.parametrize("name", list(CASES))
def test_external_aad_agrees_with_cosejs(name: str, keys: dict[str, CoseKey]) -> None:
    key, case = keys[name], CASES[name]
    token = _issue(name, key, tagged=True, external_aad=EXTERNAL_AAD)
    assert cosejs_verify(case.peer_kind, token, _peer_key(key), external_aad=EXTERNAL_AAD) == CLAIMS.encode()
    assert _ours_verify(token, key, external_aad=EXTERNAL_AAD) == CLAIMS
    with pytest.raises(CoseJsRejected):
        cosejs_verify(case.peer_kind, token, _peer_key(key))


@pytest.mark.parametrize("name", list(CASES))
def test_wrong_key_rejected_by_cosejs(name: str, keys: dict[str, CoseKey]) -> None:
    key, case = keys[name], CASES[name]
    other = case.make_key() if not key.is_symmetric else symmetric_key(bytes(b ^ 0x55 for b in key.k or b""))
    with pytest.raises(CoseJsRejected):
        cosejs_verify(case.peer_kind, _issue(name, key, tagged=True), _peer_key(other))
