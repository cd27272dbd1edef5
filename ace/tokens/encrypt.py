"""Encrypting to a recipient: COSE_Encrypt0 with a shared key, or COSE_Encrypt with ECDH-ES.

``encrypt_to`` picks the structure from the recipient's key: a symmetric key shared with the
recipient gives a COSE_Encrypt0 (RFC 9052 §5.2); the recipient's public key (EC2 P-256 or OKP
X25519) gives a COSE_Encrypt with one ECDH-ES + HKDF-256 recipient (RFC 9053 §6.3.1: direct
key agreement, empty recipient ciphertext, ephemeral key in the recipient's unprotected header,
alg protected). ``decrypt`` finds the key by the kid of the Encrypt0 or of the recipient.
Randomness (the ephemeral scalar, then the IV) is injected, so vectors reproduce exactly.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ace.cbor import codec
from ace.cbor.labels import Alg, CoseTag, HeaderParam, KeyType
from ace.errors import DecodeError, RemoteError, UnknownKeyError, VerificationError
from ace.tokens import cose, crypto, ecdh
from ace.tokens.cose import CoseMessage
from ace.tokens.crypto import Kind
from ace.tokens.keyring import KeyLookup
from ace.tokens.keys import CoseKey

Rng = Callable[[int], bytes]
DEFAULT_ECDH_CONTENT_ALG = int(Alg.AES_CCM_16_64_128)
MAX_MESSAGE_SIZE = 16384  # bytes; larger input to ``decrypt`` is refused before parsing
_ES = int(Alg.ECDH_ES_HKDF_256)


@dataclass(frozen=True, slots=True)
class Recipient:
    """To whom a payload is encrypted: a key shared with the recipient (symmetric -> COSE_Encrypt0),
    or the recipient's public key (EC2 P-256 / OKP X25519 -> COSE_Encrypt, one ECDH-ES + HKDF-256 recipient)."""

    key: CoseKey
    alg: int | None = None  # content AEAD alg; None: the shared key's alg, or AES-CCM-16-64-128 for ECDH

    @property
    def uses_ecdh(self) -> bool:
        return not self.key.is_symmetric


def encrypt_to(plaintext: bytes, to: Recipient, *, external_aad: bytes = b"", tagged: bool = True,
               rng: Rng = secrets.token_bytes, even_y: bool = False) -> bytes:
    """``plaintext`` encrypted to ``to`` (see the module docstring); ValueError for an unusable key.
    ``even_y``: a P-256 ephemeral key with even y (a token: its one name, ``cwt.canonical_token``)."""
    if to.key.is_symmetric:
        try:
            return cose.build(Kind.AEAD, plaintext, to.key, alg=to.alg, kid=to.key.kid, tagged=tagged,
                              external_aad=external_aad, rng=rng)
        except VerificationError as exc:
            raise ValueError(f"cannot encrypt with this key: {exc}") from None
    return build_encrypt(plaintext, to.key, alg=to.alg, external_aad=external_aad, tagged=tagged, rng=rng,
                         even_y=even_y)


def build_encrypt(plaintext: bytes, key: CoseKey, *, alg: int | None = None, external_aad: bytes = b"",
                  tagged: bool = True, rng: Rng = secrets.token_bytes, even_y: bool = False) -> bytes:
    """A COSE_Encrypt to ``key`` (the recipient's public key) with one ECDH-ES + HKDF-256 recipient."""
    content_alg = DEFAULT_ECDH_CONTENT_ALG if alg is None else alg
    try:
        ecdh.check_agreement(key, _ES)
        size = ecdh.content_key(content_alg)
        assert key.crv is not None
        ephemeral = ecdh.ephemeral_key(key.crv, rng, even_y=even_y)
        secret = ecdh.shared_secret(ephemeral, key.public())  # off the curve, low order: refused
    except VerificationError as exc:
        raise ValueError(f"cannot encrypt to this key: {exc}") from None
    recipient_protected = cose.alg_header(_ES)
    cek = CoseKey(kty=KeyType.SYMMETRIC, alg=content_alg,
                  k=ecdh.derive_key(secret, content_alg, size, recipient_protected))
    protected = cose.alg_header(content_alg)
    iv = rng(crypto.nonce_len(content_alg))
    tbs = cose.enc_structure(protected, external_aad, context=cose.ENCRYPT_CONTEXT)
    ciphertext = crypto.encrypt(cek, content_alg, iv, plaintext, tbs)
    unprotected: dict[int, object] = {int(HeaderParam.EPHEMERAL_KEY): ephemeral.public().to_map()}
    if key.kid is not None:
        unprotected[int(HeaderParam.KID)] = key.kid
    recipient = cose.array([codec.bstr(recipient_protected), codec.dumps(unprotected), codec.bstr(b"")])
    body = cose.array([codec.bstr(protected), codec.dumps({int(HeaderParam.IV): iv}), codec.bstr(ciphertext),
                       cose.array([recipient])])
    return codec.head(6, CoseTag.ENCRYPT) + body if tagged else body


def decrypt(message: bytes | CoseMessage, keys: KeyLookup, *, external_aad: bytes = b"") -> bytes:
    """The plaintext of a COSE_Encrypt0 or COSE_Encrypt, with a key found by kid in ``keys``."""
    if isinstance(message, (bytes, bytearray)):
        if len(message) > MAX_MESSAGE_SIZE:
            raise DecodeError(f"encrypted message larger than {MAX_MESSAGE_SIZE} bytes")
        message = cose.parse(message, what="encrypted message")
    msg = message
    if msg.kind is not Kind.AEAD:
        raise VerificationError(f"not an encrypted message (a {msg.kind.value} message)")
    return open_with(msg, keys, external_aad=external_aad)


def open_with(msg: CoseMessage, keys: KeyLookup, *, external_aad: bytes = b"", what: str = "message") -> bytes:
    """Open ``msg`` with the keys its kid (or its recipient's kid) names; the last failure if none fits."""
    candidates = keys.keys_for(msg.key_id)
    if not candidates:
        raise UnknownKeyError(f"no key known for this {what}" + (" (kid given)" if msg.key_id else " (no kid)"))
    last: RemoteError | None = None
    for key in candidates:
        try:
            return cose.open_message(msg, key, external_aad=external_aad)
        except VerificationError as exc:
            last = exc
    assert last is not None
    raise last

