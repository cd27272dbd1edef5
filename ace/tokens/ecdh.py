"""ECDH-ES / ECDH-SS + HKDF-256 direct key agreement (RFC 9053 §6.3.1, §5.1, §5.2).

The crypto of a COSE_Encrypt recipient that agrees on the content key directly: ECDH on
P-256 (EC2) or X25519 (OKP), HKDF-SHA-256 without salt over the COSE_KDF_Context (AlgorithmID
the content alg, PartyU/PartyV identities nil, SuppPubInfo keyDataLength in bits and the
recipient's protected bucket). Which keys may take part is decided here (``check_agreement``):
only P-256 and X25519, never a symmetric or a signing key, the peer on the same curve and on
the curve. Ephemeral keys come from an injected rng, so test vectors reproduce exactly.
Not supported: P-384/P-521, X448, the HKDF-512 variants, key wrap (-29..-34), PartyU/V identities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ace.cbor import codec
from ace.cbor.labels import Alg, Curve, KeyType
from ace.errors import DecodeError, VerificationError
from ace.tokens import crypto
from ace.tokens.keys import COORD_LEN, CoseKey

Rng = Callable[[int], bytes]
ECDH_ALGS = frozenset({int(Alg.ECDH_ES_HKDF_256), int(Alg.ECDH_SS_HKDF_256)})
AGREEMENT_CURVES = {Curve.P_256: KeyType.EC2, Curve.X25519: KeyType.OKP}
P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1  # the field prime
X25519_P = 2**255 - 19


def check_agreement(key: CoseKey, alg: object) -> int:
    """The recipient alg if ``key`` may be used for it; else VerificationError (alg confusion)."""
    if not isinstance(alg, int) or isinstance(alg, bool) or alg not in ECDH_ALGS:
        raise VerificationError(f"unsupported recipient alg {alg!r} (ECDH-ES/SS + HKDF-256 only)")
    if key.is_symmetric:
        raise VerificationError(f"a symmetric key cannot be used with {crypto.alg_name(alg)}")
    if key.crv not in AGREEMENT_CURVES:
        raise VerificationError(f"curve {key.crv!r} is not a key agreement curve (P-256, X25519)")
    if key.alg is not None and key.alg != alg:
        raise VerificationError(f"key is for alg {crypto.alg_name(key.alg)}, recipient uses {crypto.alg_name(alg)}")
    return alg


def _p256_private(d: bytes) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())


def shared_secret(private: CoseKey, peer: CoseKey) -> bytes:
    """ECDH of our private key with the peer's public key; VerificationError if they do not fit."""
    if private.d is None:
        raise VerificationError("key agreement needs the private key (d)")
    if peer.kty is not private.kty or peer.crv is not private.crv:
        raise VerificationError("the peer's key is not on the recipient key's curve")
    if peer.d is not None:
        raise VerificationError("the peer's key must be public only")
    try:
        if private.crv is Curve.P_256:
            assert peer.x is not None and peer.y is not None
            point = ec.EllipticCurvePublicNumbers(
                int.from_bytes(peer.x, "big"), int.from_bytes(peer.y, "big"), ec.SECP256R1()).public_key()
            return _p256_private(private.d).exchange(ec.ECDH(), point)
        assert peer.x is not None
        return x25519.X25519PrivateKey.from_private_bytes(private.d).exchange(
            x25519.X25519PublicKey.from_public_bytes(peer.x))
    except ValueError:  # not on the curve, or a low-order X25519 point (all-zero secret)
        raise VerificationError("the peer's key is not a valid point for key agreement") from None


def kdf_context(content_alg: int, key_bytes: int, protected: bytes,
                party_u_nonce: bytes | None = None) -> bytes:
    """COSE_KDF_Context (RFC 9053 §5.2) with nil identities; the encoded CBOR."""
    party_u = [None, party_u_nonce, None]
    return codec.dumps([content_alg, party_u, [None, None, None], [key_bytes * 8, protected]])


def derive_key(secret: bytes, content_alg: int, key_bytes: int, protected: bytes,
               party_u_nonce: bytes | None = None) -> bytes:
    """HKDF-SHA-256 without salt (RFC 9053 §5.1) over the KDF context: the content key."""
    info = kdf_context(content_alg, key_bytes, protected, party_u_nonce)
    return HKDF(hashes.SHA256(), key_bytes, None, info).derive(secret)


def ephemeral_key(crv: Curve, rng: Rng, *, even_y: bool = False) -> CoseKey:
    """A fresh key pair on ``crv`` whose private scalar is read from ``rng`` (a vector's stream);
    ``even_y``: a P-256 point with odd y is negated (scalar n - d), so a token has one name (``even_point``)."""
    if crv is Curve.P_256:
        while True:  # a scalar outside [1, n-1] is drawn again
            d = rng(COORD_LEN)
            if 0 < int.from_bytes(d, "big") < crypto.P256_ORDER:
                break
        nums = _p256_private(d).public_key().public_numbers()
        y = nums.y
        if even_y and y & 1:
            d, y = (crypto.P256_ORDER - int.from_bytes(d, "big")).to_bytes(COORD_LEN, "big"), P256_P - y
        return CoseKey(kty=KeyType.EC2, crv=crv, d=d, x=nums.x.to_bytes(COORD_LEN, "big"),
                       y=y.to_bytes(COORD_LEN, "big"))
    if crv is Curve.X25519:
        d = rng(COORD_LEN)
        x = x25519.X25519PrivateKey.from_private_bytes(d).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return CoseKey(kty=KeyType.OKP, crv=crv, d=d, x=x)
    raise ValueError(f"no key agreement on curve {crv!r}")


def content_key(content_alg: object) -> int:
    """The content key length in bytes of an AEAD alg (the KDF's L)."""
    info = crypto.ALGS.get(content_alg) if isinstance(content_alg, int) and not isinstance(content_alg, bool) else None
    if info is None or info.kind is not crypto.Kind.AEAD or info.key_len is None:
        raise VerificationError(f"content alg {content_alg!r} is not an AEAD algorithm")
    return info.key_len


def even_point(key: CoseKey) -> CoseKey:
    """A sender's public key as a token is named by it: -P agrees on the same secret as P (the shared
    secret is an x coordinate), so a P-256 point is named with even y; DecodeError for an X25519 key
    not in canonical form (top bit set or u >= p, RFC 7748 §5: the same secret as another encoding)."""
    if key.crv is Curve.X25519:
        assert key.x is not None
        if int.from_bytes(key.x, "little") >= X25519_P:
            raise DecodeError("X25519 sender key not in canonical form (RFC 7748 §5)")
        return key
    assert key.y is not None
    y = int.from_bytes(key.y, "big")
    return key if not y & 1 else replace(key, y=(P256_P - y).to_bytes(COORD_LEN, "big"))
