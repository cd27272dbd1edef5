"""COSE_Key dataclass, key files (mode 0600) and generation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ace.cbor import codec
from ace.cbor.labels import Curve, KeyType
from ace.cli.keyfiles import load_key, save_key
from ace.errors import ConfigError, DecodeError, ErrorCode
from ace.tokens.crypto import generate, public_matches_private
from ace.tokens.keys import CoseKey, generate_symmetric, symmetric_key


@pytest.mark.parametrize("curve", [Curve.P_256, Curve.ED25519, Curve.X25519])
def test_generated_curve_keys_are_consistent(curve: Curve) -> None:
    key = generate(curve, kid=b"1")
    assert public_matches_private(key)
    assert key.public().d is None and key.public().x == key.x
    assert CoseKey.decode(key.encode()) == key


def test_symmetric_generation_uses_injected_rng() -> None:
    key = generate_symmetric(16, kid=b"a", rng=lambda n: b"\x07" * n)
    assert key.k == b"\x07" * 16 and key.kty is KeyType.SYMMETRIC
    with pytest.raises(ValueError):
        generate_symmetric(8)


def test_repr_hides_secrets() -> None:
    key = symmetric_key(b"secret-secret-16", kid=b"x")
    assert "secret" not in repr(key)
    ec = generate(Curve.P_256)
    assert (ec.d or b"").hex() not in repr(ec) and " d=" not in repr(ec)


@pytest.mark.parametrize("curve", [None, Curve.P_256, Curve.ED25519, Curve.X25519])
def test_files_round_trip_with_mode_0600(tmp_path: Path, curve: Curve | None) -> None:
    key = symmetric_key(os.urandom(16), kid=b"k") if curve is None else generate(curve, kid=b"k")
    path = tmp_path / "key.cbor"
    save_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path) == key
    with pytest.raises(ConfigError):
        save_key(path, key)  # no silent overwrite
    save_key(path, key, overwrite=True)


def test_world_readable_secret_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.cbor"
    save_key(path, symmetric_key(bytes(16)))
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_key(path)
    pub = tmp_path / "pub.cbor"
    save_key(pub, generate(Curve.P_256).public())
    pub.chmod(0o644)
    assert load_key(pub).d is None  # public keys may be readable


def test_missing_and_garbage_key_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_key(tmp_path / "nope")
    bad = tmp_path / "bad"
    bad.write_bytes(b"\xa1\x01")
    bad.chmod(0o600)
    with pytest.raises(ConfigError):
        load_key(bad)


BAD_KEYS = [
    ("not a map", [1], ErrorCode.INVALID_REQUEST),
    ("no kty", {-1: b"x" * 16}, ErrorCode.INVALID_REQUEST),
    ("unknown kty (RSA)", {1: 3}, ErrorCode.UNSUPPORTED_POP_KEY),
    ("symmetric without k", {1: 4}, ErrorCode.INVALID_REQUEST),
    ("symmetric empty k", {1: 4, -1: b""}, ErrorCode.INVALID_REQUEST),
    ("EC2 unknown curve", {1: 2, -1: 2, -2: bytes(48), -3: bytes(48)}, ErrorCode.UNSUPPORTED_POP_KEY),
    ("EC2 short x", {1: 2, -1: 1, -2: bytes(31), -3: bytes(32)}, ErrorCode.INVALID_REQUEST),
    ("EC2 compressed y", {1: 2, -1: 1, -2: bytes(32), -3: True}, ErrorCode.UNSUPPORTED_POP_KEY),
    ("EC2 with Ed25519 curve", {1: 2, -1: 6, -2: bytes(32), -3: bytes(32)}, ErrorCode.INVALID_REQUEST),
    ("OKP with y", {1: 1, -1: 6, -2: bytes(32), -3: bytes(32)}, ErrorCode.INVALID_REQUEST),
    ("kid as text", {1: 4, 2: "k", -1: bytes(16)}, ErrorCode.INVALID_REQUEST),
    ("alg as text", {1: 4, 3: "A128", -1: bytes(16)}, ErrorCode.UNSUPPORTED_POP_KEY),
    ("key_ops not array", {1: 4, 4: 1, -1: bytes(16)}, ErrorCode.INVALID_REQUEST),
]


@pytest.mark.parametrize(("name", "value", "code"), BAD_KEYS, ids=[b[0] for b in BAD_KEYS])
def test_bad_cose_keys(name: str, value: object, code: ErrorCode) -> None:
    with pytest.raises(DecodeError) as info:
        CoseKey.decode(codec.dumps(value))
    assert info.value.error_code is code
    assert info.value.coap_code == (4, 0)


def test_unknown_key_parameters_are_kept() -> None:
    raw = {1: 4, 2: b"k", -1: bytes(16), "note": "kept", 5: b"\x00" * 13}
    key = CoseKey.from_map(raw)
    assert key.to_map() == raw
