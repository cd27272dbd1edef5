"""The COSE algorithms of RFC 9053 that ace uses, on ``cryptography`` directly.

ES256 (ECDSA P-256/SHA-256, raw r||s signatures), EdDSA (Ed25519), HMAC 256/64, 256/256,
384/384, 512/512, AES-CCM (all eight COSE variants) and AES-GCM. Which algorithms a key
may be used with is decided here (``check_alg``): a key's own ``alg`` pins it, otherwise the
key type and length do; a public key is never an HMAC secret (no alg confusion).
Key objects of ``cryptography`` are cached per key material, so verifying many tokens with
one key does not rebuild the point each time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256, sha384, sha512
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM

from ace.cbor.labels import Alg, Curve, KeyType
from ace.errors import VerificationError
from ace.tokens.defaults import Kind as Kind  # re-exported: callers import it from here
from ace.tokens.keys import COORD_LEN, CoseKey


@dataclass(frozen=True, slots=True)
class AlgInfo:
    kind: Kind
    key_len: int | None = None  # required symmetric key length (AEAD)
    tag_len: int = 0  # MAC/AEAD tag length in bytes
    nonce_len: int = 0  # AEAD nonce length


_HMAC = {Alg.HMAC_256_64: (sha256, 8), Alg.HMAC_256_256: (sha256, 32),
         Alg.HMAC_384_384: (sha384, 48), Alg.HMAC_512_512: (sha512, 64)}

ALGS: dict[int, AlgInfo] = {
    Alg.ES256: AlgInfo(Kind.SIGN),
    Alg.EDDSA: AlgInfo(Kind.SIGN),
    **{a: AlgInfo(Kind.MAC, tag_len=t) for a, (_, t) in _HMAC.items()},
    Alg.AES_CCM_16_64_128: AlgInfo(Kind.AEAD, 16, 8, 13),
    Alg.AES_CCM_16_64_256: AlgInfo(Kind.AEAD, 32, 8, 13),
    Alg.AES_CCM_64_64_128: AlgInfo(Kind.AEAD, 16, 8, 7),
    Alg.AES_CCM_64_64_256: AlgInfo(Kind.AEAD, 32, 8, 7),
    Alg.AES_CCM_16_128_128: AlgInfo(Kind.AEAD, 16, 16, 13),
    Alg.AES_CCM_16_128_256: AlgInfo(Kind.AEAD, 32, 16, 13),
    Alg.AES_CCM_64_128_128: AlgInfo(Kind.AEAD, 16, 16, 7),
    Alg.AES_CCM_64_128_256: AlgInfo(Kind.AEAD, 32, 16, 7),
    Alg.A128GCM: AlgInfo(Kind.AEAD, 16, 16, 12),
    Alg.A192GCM: AlgInfo(Kind.AEAD, 24, 16, 12),
    Alg.A256GCM: AlgInfo(Kind.AEAD, 32, 16, 12),
}
_GCM = frozenset({Alg.A128GCM, Alg.A192GCM, Alg.A256GCM})
MIN_HMAC_KEY = 16


def alg_name(alg: int) -> str:
    try:
        return Alg(alg).name
    except ValueError:
        return str(alg)


def check_alg(key: CoseKey, alg: object, kind: Kind) -> AlgInfo:
    """The algorithm info if ``key`` may be used with ``alg`` for ``kind``; else raise."""
    if not isinstance(alg, int) or isinstance(alg, bool) or alg not in ALGS:
        raise VerificationError(f"unsupported or missing alg {alg!r}")
    info = ALGS[alg]
    if info.kind is not kind:
        raise VerificationError(f"alg {alg_name(alg)} is not a {kind.value} algorithm")
    if key.alg is not None and key.alg != alg:
        raise VerificationError(f"key is for alg {alg_name(key.alg)}, message uses {alg_name(alg)}")
    if kind is Kind.SIGN:
        fits = (alg == Alg.ES256 and key.crv is Curve.P_256) or (
            alg == Alg.EDDSA and key.crv is Curve.ED25519
        )
    elif kind is Kind.MAC:
        fits = key.is_symmetric and len(key.k or b"") >= MIN_HMAC_KEY
    else:
        fits = key.is_symmetric and len(key.k or b"") == info.key_len
    if not fits:
        raise VerificationError(f"key does not fit alg {alg_name(alg)}")
    return info


def default_alg(key: CoseKey, kind: Kind) -> int:
    """The algorithm used with ``key`` when the caller names none."""
    if key.alg is not None:
        return key.alg
    if kind is Kind.SIGN:
        return int(Alg.ES256 if key.crv is Curve.P_256 else Alg.EDDSA)
    if kind is Kind.MAC:
        return int(Alg.HMAC_256_64)
    return int(Alg.AES_CCM_16_64_128 if len(key.k or b"") == 16 else Alg.AES_CCM_16_128_256)


# --- signatures -----------------------------------------------------------------------


@lru_cache(maxsize=256)
def _ec_public(x: bytes, y: bytes) -> ec.EllipticCurvePublicKey:
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
    )
    return numbers.public_key()


@lru_cache(maxsize=64)
def _ec_private(d: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())


@lru_cache(maxsize=256)
def _ed_public(x: bytes) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(x)


@lru_cache(maxsize=64)
def _ed_private(d: bytes) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(d)


_ECDSA = ec.ECDSA(hashes.SHA256())
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def low_s(signature: bytes) -> bytes:
    """The low-s twin of a raw ES256 signature (itself when s is already low)."""
    if not high_s(signature):
        return signature
    s = P256_ORDER - int.from_bytes(signature[COORD_LEN:], "big")
    return signature[:COORD_LEN] + s.to_bytes(COORD_LEN, "big")


def high_s(signature: bytes) -> bool:
    """Whether a raw ES256 signature r||s has s above n/2: (r, n - s) verifies as well, so a
    signature has two encodings; we sign and accept only the low one (one token, one encoding)."""
    return len(signature) == 2 * COORD_LEN and int.from_bytes(signature[COORD_LEN:], "big") > P256_ORDER // 2


def sign(key: CoseKey, alg: int, data: bytes) -> bytes:
    check_alg(key, alg, Kind.SIGN)
    if key.d is None:
        raise ValueError("signing needs a private key (d)")
    if alg == Alg.ES256:
        r, s = decode_dss_signature(_ec_private(key.d).sign(data, _ECDSA))
        s = min(s, P256_ORDER - s)  # low s: see high_s
        return r.to_bytes(COORD_LEN, "big") + s.to_bytes(COORD_LEN, "big")
    return _ed_private(key.d).sign(data)


def verify_signature(key: CoseKey, alg: int, data: bytes, signature: bytes) -> None:
    check_alg(key, alg, Kind.SIGN)
    assert key.x is not None
    try:
        if alg == Alg.ES256:
            if len(signature) != 2 * COORD_LEN:
                raise VerificationError("ES256 signature must be 64 bytes")
            der = encode_dss_signature(
                int.from_bytes(signature[:COORD_LEN], "big"), int.from_bytes(signature[COORD_LEN:], "big")
            )
            assert key.y is not None
            _ec_public(key.x, key.y).verify(der, data, _ECDSA)
        else:
            _ed_public(key.x).verify(signature, data)
    except (InvalidSignature, ValueError) as exc:
        if isinstance(exc, VerificationError):
            raise
        raise VerificationError("signature does not verify") from None


# --- MAC -----------------------------------------------------------------------------


def mac(key: CoseKey, alg: int, data: bytes) -> bytes:
    info = check_alg(key, alg, Kind.MAC)
    digest = _HMAC[Alg(alg)][0]
    return hmac.new(key.k or b"", data, digest).digest()[: info.tag_len]


def verify_mac(key: CoseKey, alg: int, data: bytes, tag: bytes) -> None:
    if not hmac.compare_digest(mac(key, alg, data), tag):  # constant time
        raise VerificationError("MAC does not verify")


# --- AEAD ----------------------------------------------------------------------------


def _aead(key: CoseKey, alg: int) -> tuple[AESCCM | AESGCM, AlgInfo]:
    info = check_alg(key, alg, Kind.AEAD)
    k = key.k or b""
    if alg in _GCM:
        return AESGCM(k), info
    return AESCCM(k, tag_length=info.tag_len), info


def encrypt(key: CoseKey, alg: int, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    cipher, info = _aead(key, alg)
    if len(nonce) != info.nonce_len:
        raise ValueError(f"{alg_name(alg)} needs a {info.nonce_len}-byte nonce")
    return cipher.encrypt(nonce, plaintext, aad)


def decrypt(key: CoseKey, alg: int, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    cipher, info = _aead(key, alg)
    if len(nonce) != info.nonce_len:
        raise VerificationError(f"{alg_name(alg)} needs a {info.nonce_len}-byte IV")
    if len(ciphertext) < info.tag_len:
        raise VerificationError("ciphertext shorter than its tag")
    try:
        return cipher.decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise VerificationError("decryption failed (wrong key or tampered ciphertext)") from None


def nonce_len(alg: int) -> int:
    return ALGS[alg].nonce_len


# --- generation ----------------------------------------------------------------------


def _raw(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def generate(curve: Curve, *, kid: bytes | None = None, alg: int | None = None) -> CoseKey:
    if curve is Curve.P_256:
        priv = ec.generate_private_key(ec.SECP256R1())
        nums = priv.private_numbers()
        return CoseKey(
            kty=KeyType.EC2, crv=curve, kid=kid, alg=alg,
            x=nums.public_numbers.x.to_bytes(COORD_LEN, "big"),
            y=nums.public_numbers.y.to_bytes(COORD_LEN, "big"),
            d=nums.private_value.to_bytes(COORD_LEN, "big"),
        )
    okp: ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey = (
        ed25519.Ed25519PrivateKey.generate() if curve is Curve.ED25519 else x25519.X25519PrivateKey.generate()
    )
    x = okp.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return CoseKey(kty=KeyType.OKP, crv=curve, kid=kid, alg=alg, x=x, d=_raw(okp))


def public_matches_private(key: CoseKey) -> bool:
    """Whether a key's x (and y) belong to its d (a key file sanity check)."""
    if key.d is None or key.is_symmetric:
        return True
    if key.crv is Curve.P_256:
        pub = _ec_private(key.d).public_key().public_numbers()
        return pub.x.to_bytes(COORD_LEN, "big") == key.x and pub.y.to_bytes(COORD_LEN, "big") == key.y
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    if key.crv is Curve.ED25519:
        return _ed_private(key.d).public_key().public_bytes(*raw) == key.x
    return x25519.X25519PrivateKey.from_private_bytes(key.d).public_key().public_bytes(*raw) == key.x
