"""COSE_Key (RFC 9052 §7, RFC 9053 §7) as a frozen dataclass, with CBOR files.

Supports the key types ACE uses: Symmetric, EC2 on P-256, OKP on Ed25519 and X25519.
Key files hold one COSE_Key map in CBOR and are written with mode 0600. ``repr`` never
shows secret parameters. Keys are generated with fresh OS randomness (``secrets`` for
symmetric keys, ``cryptography`` for curve keys); symmetric generation takes an injected rng.
``thumbprint`` is a key's COSE Key Thumbprint (RFC 9679: SHA-256 over the deterministically
encoded required parameters): the identity of a client's own PoP key, whatever kid it comes with.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ace.cbor import codec
from ace.cbor.codec import MapReader
from ace.cbor.labels import Curve, CurveKeyParam, KeyParam, KeyType, SymmetricKeyParam
from ace.errors import DecodeError, UnsupportedPopKey

Rng = Callable[[int], bytes]

_CURVES_FOR_KTY = {
    KeyType.EC2: frozenset({Curve.P_256}),
    KeyType.OKP: frozenset({Curve.ED25519, Curve.X25519}),
}
COORD_LEN = 32  # P-256, Ed25519 and X25519 all have 32-byte coordinates and scalars


@dataclass(frozen=True, slots=True, kw_only=True)
class CoseKey:
    """One COSE_Key. ``k`` for Symmetric; ``crv``/``x``/``y``/``d`` for EC2 and OKP."""

    kty: KeyType
    kid: bytes | None = None
    alg: int | None = None
    crv: Curve | None = None
    k: bytes | None = field(default=None, repr=False)
    x: bytes | None = None
    y: bytes | None = None
    d: bytes | None = field(default=None, repr=False)
    key_ops: tuple[int | str, ...] | None = None
    base_iv: bytes | None = None
    extra: tuple[tuple[Any, Any], ...] = ()

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def is_symmetric(self) -> bool:
        return self.kty is KeyType.SYMMETRIC

    @property
    def has_private(self) -> bool:
        return self.k is not None or self.d is not None

    def public(self) -> CoseKey:
        """The same key without private parameters (symmetric keys have no public half)."""
        if self.is_symmetric:
            raise ValueError("a symmetric key has no public part")
        return replace(self, d=None)

    def with_kid(self, kid: bytes | None) -> CoseKey:
        return replace(self, kid=kid)

    def to_map(self) -> dict[int | str, Any]:
        m: dict[int | str, Any] = {int(KeyParam.KTY): int(self.kty)}
        if self.kid is not None:
            m[int(KeyParam.KID)] = self.kid
        if self.alg is not None:
            m[int(KeyParam.ALG)] = self.alg
        if self.key_ops is not None:
            m[int(KeyParam.KEY_OPS)] = list(self.key_ops)
        if self.base_iv is not None:
            m[int(KeyParam.BASE_IV)] = self.base_iv
        if self.crv is None:
            m[int(SymmetricKeyParam.K)] = self.k
        else:
            m[int(CurveKeyParam.CRV)] = int(self.crv)
            m[int(CurveKeyParam.X)] = self.x
            if self.y is not None:
                m[int(CurveKeyParam.Y)] = self.y
            if self.d is not None:
                m[int(CurveKeyParam.D)] = self.d
        m.update(self.extra)
        return m

    def encode(self) -> bytes:
        return codec.dumps(self.to_map())

    @classmethod
    def from_map(cls, value: object, what: str = "COSE_Key") -> CoseKey:
        r = MapReader(value, what, KeyParam)
        kty = r.int_(KeyParam.KTY, required=True)
        if kty not in KeyType._value2member_map_:
            raise UnsupportedPopKey(f"{what}: kty {kty} is not supported")
        ops = r.raw(KeyParam.KEY_OPS)
        if ops is not None and not (
            isinstance(ops, list) and all(isinstance(o, (int, str)) and not isinstance(o, bool) for o in ops)
        ):
            raise DecodeError(f"{what}: key_ops(4) must be an array of int/tstr")
        alg = r.raw(KeyParam.ALG)
        if alg is not None and (not isinstance(alg, int) or isinstance(alg, bool)):
            raise UnsupportedPopKey(f"{what}: alg(3) must be an integer algorithm")
        params = _type_params(r, KeyType(kty), what)
        try:
            return cls(kty=KeyType(kty), kid=r.bytes_(KeyParam.KID), alg=alg, base_iv=r.bytes_(KeyParam.BASE_IV),
                       key_ops=tuple(ops) if ops is not None else None, **params)
        except ValueError as exc:
            raise DecodeError(f"{what}: {exc}") from exc

    @classmethod
    def decode(cls, data: bytes, what: str = "COSE_Key") -> CoseKey:
        return cls.from_map(codec.loads(data, what=what), what)


def _type_params(r: MapReader, kty: KeyType, what: str) -> dict[str, Any]:
    """The key-type parameters (k, or crv/x/y/d) and the unknown labels as ``extra``."""
    if kty is KeyType.SYMMETRIC:
        extra = {a: b for a, b in r.extra().items() if a != int(SymmetricKeyParam.K)}
        return {"k": r.bytes_(SymmetricKeyParam.K, required=True),
                "extra": codec.freeze_extra(extra)}
    crv = r.int_(CurveKeyParam.CRV, required=True)
    if crv not in Curve._value2member_map_:
        raise UnsupportedPopKey(f"{what}: crv {crv} is not supported")
    if isinstance(r.raw(CurveKeyParam.Y), bool):
        raise UnsupportedPopKey(f"{what}: compressed EC2 points (y as bool) are not supported")
    curve_labels = {int(p) for p in CurveKeyParam}
    return {
        "crv": Curve(crv),
        "x": r.bytes_(CurveKeyParam.X, required=True),
        "y": r.bytes_(CurveKeyParam.Y),
        "d": r.bytes_(CurveKeyParam.D),
        "extra": codec.freeze_extra({a: b for a, b in r.extra().items() if a not in curve_labels}),
    }


def _validate(key: CoseKey) -> None:
    if key.is_symmetric:
        if not key.k:
            raise ValueError("symmetric key needs a non-empty k")
        if key.crv is not None or key.x is not None or key.y is not None or key.d is not None:
            raise ValueError("symmetric key must not carry curve parameters")
        return
    if key.k is not None:
        raise ValueError(f"{key.kty.name} key must not carry k")
    if key.crv not in _CURVES_FOR_KTY[key.kty]:
        raise ValueError(f"curve {key.crv!r} does not fit kty {key.kty.name}")
    if key.x is None or len(key.x) != COORD_LEN:
        raise ValueError(f"x must be {COORD_LEN} bytes")
    if key.kty is KeyType.EC2 and (key.y is None or len(key.y) != COORD_LEN):
        raise ValueError(f"EC2 y must be {COORD_LEN} bytes")
    if key.kty is KeyType.OKP and key.y is not None:
        raise ValueError("OKP keys have no y")
    if key.d is not None and len(key.d) != COORD_LEN:
        raise ValueError(f"d must be {COORD_LEN} bytes")


def thumbprint(key: CoseKey) -> bytes:
    """RFC 9679 §3: SHA-256 of the required parameters, keys in deterministic (RFC 8949 §4.2.1) order."""
    m: dict[int, Any] = {int(KeyParam.KTY): int(key.kty)}
    if key.kty is KeyType.SYMMETRIC:
        m[int(SymmetricKeyParam.K)] = key.k
    else:
        m[int(CurveKeyParam.CRV)] = int(key.crv) if key.crv is not None else None
        m[int(CurveKeyParam.X)] = key.x
        if key.kty is KeyType.EC2 and key.y is not None:
            m[int(CurveKeyParam.Y)] = key.y
    return hashlib.sha256(codec.dumps(m)).digest()


def symmetric_key(k: bytes, *, kid: bytes | None = None, alg: int | None = None) -> CoseKey:
    return CoseKey(kty=KeyType.SYMMETRIC, k=k, kid=kid, alg=alg)


def generate_symmetric(
    size: int = 16, *, kid: bytes | None = None, alg: int | None = None, rng: Rng = secrets.token_bytes
) -> CoseKey:
    if size < 16:
        raise ValueError("symmetric keys shorter than 16 bytes are not generated")
    return symmetric_key(rng(size), kid=kid, alg=alg)
