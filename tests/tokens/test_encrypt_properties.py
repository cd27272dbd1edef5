"""Property tests for COSE_Encrypt (ECDH-ES recipient): arbitrary and mutated input into the
parser, ``decrypt``, nested-token verification and Encrypted_COSE_Key raises only the
RemoteError family (DecodeError/VerificationError), never a cbor2, cryptography or Python error."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import NOW, counter_rng, fixed_clock

from ace.cbor.labels import Curve
from ace.errors import RemoteError
from ace.tokens import cose
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import EncryptedCoseKeyCnf, encrypted_cnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token, verify_token
from ace.tokens.encrypt import Recipient, decrypt, encrypt_to
from ace.tokens.keys import symmetric_key

P256 = generate(Curve.P_256, kid=b"p")
X25519 = generate(Curve.X25519, kid=b"x")
AS_KEY = generate(Curve.P_256, kid=b"as")
K16 = symmetric_key(bytes(range(16)), kid=b"k")
RING = KeyRing([P256, X25519, K16, AS_KEY.public()], try_all_without_kid=True)
CLAIMS = AccessTokenClaims(aud="rs1", exp=NOW + 60, cti=b"\x01", scope="r")

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "cose.parse": cose.parse,
    "decrypt": lambda b: decrypt(b, RING),
    "verify_token": lambda b: verify_token(b, RING, audience="rs1", clock=fixed_clock()),
    "Encrypted_COSE_Key": lambda b: EncryptedCoseKeyCnf(b).decrypt(RING),
}

KEYISH = st.dictionaries(st.sampled_from([1, -1, -2, -3, -4, 2, 3]),
                         st.sampled_from([1, 2, 4, 6, -25, True]) | st.binary(min_size=0, max_size=33), max_size=5)
LEAVES = (st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=16)
          | st.sampled_from([-25, -27, -6, 10, 1, b"", b"\xa1\x01\x38\x18"]) | KEYISH)
HEADER_KEYS = st.sampled_from([1, 2, 4, 5, -1, -2, -22, 99])
ENCRYPTISH = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HEADER_KEYS, inner, max_size=3)
    | st.builds(lambda v: cbor2.CBORTag(96, v), st.lists(inner, max_size=4)),
    max_leaves=24,
)


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=ENCRYPTISH)
def test_arbitrary_encrypt_like_cbor(name: str, value: object) -> None:
    with contextlib.suppress(RemoteError):
        DECODERS[name](cbor2.dumps(value))


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=KEYISH, alg=st.sampled_from([-25, -27, -6, 10, 1]))
def test_arbitrary_ephemeral_keys(name: str, key: dict[int, Any], alg: int) -> None:
    """A well-formed COSE_Encrypt whose recipient carries an arbitrary ephemeral key map."""
    recipient = [cbor2.dumps({1: alg}), {-1: key, 4: b"p"}, b""]
    message = cbor2.dumps(cbor2.CBORTag(96, [b"\xa1\x01\x0a", {5: bytes(13)}, bytes(24), [recipient]]))
    with contextlib.suppress(RemoteError):
        DECODERS[name](message)


VALID = [
    encrypt_to(b"payload", Recipient(P256.public()), rng=counter_rng()),
    encrypt_to(b"payload", Recipient(X25519.public()), tagged=False, rng=counter_rng()),
    issue_token(CLAIMS, AS_KEY, kind=Kind.SIGN, encrypt_to=Recipient(P256.public()), rng=counter_rng()),
    encrypted_cnf(K16, Recipient(X25519.public()), rng=counter_rng()).encrypted,
]


@settings(max_examples=500, deadline=None)
@given(which=st.sampled_from(range(len(VALID))),
       flips=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 7)), min_size=1, max_size=3),
       cut=st.integers(0, 5), name=st.sampled_from(sorted(DECODERS)))
def test_mutated_encryptions_are_rejected_cleanly(which: int, flips: list[tuple[int, int]], cut: int,
                                                  name: str) -> None:
    message = bytearray(VALID[which])
    for pos, bit in flips:
        message[pos % len(message)] ^= 1 << bit
    with contextlib.suppress(RemoteError):
        DECODERS[name](bytes(message[: len(message) - cut]))
