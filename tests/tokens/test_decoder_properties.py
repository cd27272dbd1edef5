"""Property tests: arbitrary and mutated input into every token-side decoder raises only
the RemoteError family (never a cbor2, cryptography or Python exception)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import NOW, counter_rng, fixed_clock

from ace.cbor import codec
from ace.cbor.labels import Curve
from ace.errors import RemoteError
from ace.tokens import cose
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import cnf_from_map
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, open_envelope, peek_kid, verify_token
from ace.tokens.keys import CoseKey, symmetric_key

K16 = symmetric_key(bytes(range(16)), kid=b"k")
EC = generate(Curve.P_256, kid=b"e")
RING = KeyRing([K16, EC.public()], try_all_without_kid=True)
CLAIMS = AccessTokenClaims(aud="rs1", exp=NOW + 60, cti=b"\x01", scope="r")


def _verify(data: bytes) -> Any:
    return verify_token(data, RING, audience="rs1", clock=fixed_clock())


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "open_envelope": open_envelope,
    "peek_kid": peek_kid,
    "verify_token": _verify,
    "cose.parse": cose.parse,
    "CoseKey.decode": CoseKey.decode,
    "claims": AccessTokenClaims.decode,
    "cnf": lambda b: cnf_from_map(codec.loads(b)),
}

HEADER_KEYS = st.sampled_from([1, 2, 3, 4, 5, 6, -1, 99, "x"])
LEAVES = (st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=16)
          | st.text(max_size=4) | st.sampled_from([-7, -8, 4, 5, 10, 31, 1]))
COSEISH = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, min_size=0, max_size=4) | st.dictionaries(HEADER_KEYS, inner, max_size=4)
    | st.builds(lambda t, v: cbor2.CBORTag(t, v), st.sampled_from([16, 17, 18, 61]), st.lists(inner, max_size=4)),
    max_leaves=20,
)


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=COSEISH)
def test_arbitrary_cbor(name: str, value: object) -> None:
    with contextlib.suppress(RemoteError):
        DECODERS[name](cbor2.dumps(value))


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=80))
def test_arbitrary_bytes(name: str, data: bytes) -> None:
    with contextlib.suppress(RemoteError):
        DECODERS[name](data)


VALID = [
    cose.build(Kind.AEAD, CLAIMS.encode(), K16, kid=K16.kid, rng=counter_rng()),
    cose.build(Kind.MAC, CLAIMS.encode(), K16, kid=K16.kid, tagged=True),
    cose.build(Kind.SIGN, CLAIMS.encode(), EC, kid=EC.kid),
]


@settings(max_examples=500, deadline=None)
@given(which=st.sampled_from(range(len(VALID))), flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 7)),
                                                                 min_size=1, max_size=3),
       cut=st.integers(0, 5))
def test_mutated_valid_tokens_are_rejected_cleanly(which: int, flips: list[tuple[int, int]], cut: int) -> None:
    token = bytearray(VALID[which])
    for pos, bit in flips:
        token[pos % len(token)] ^= 1 << bit
    mutated = bytes(token[: len(token) - cut])
    try:
        claims = _verify(mutated)
    except RemoteError:
        return
    # a flip in an unauthenticated part (kid, IV of the wrong length is caught) may still verify
    assert claims == CLAIMS
