"""COSE_Sign1, COSE_Mac0, COSE_Encrypt0 and COSE_Encrypt (RFC 9052 §4.2, §5.1, §5.2, §6.2) over cbor2.

Builds and checks the three single-recipient structures byte for byte: protected headers as
a bstr (empty map encoded as a zero-length bstr, RFC 9052 §3), Sig_structure /
MAC_structure / Enc_structure with external AAD, tagged (16/17/18) or untagged input. An
untagged array is typed by its length and its alg, which the key then has to accept. The
cryptography lives in ``ace.tokens.crypto`` and ``ace.tokens.ecdh``; this module is the wire
format only. A COSE_Encrypt (tag 96) is parsed and opened when it has exactly one recipient
using ECDH-ES/SS + HKDF-256 direct key agreement (RFC 9053 §6.3.1), with fixed header sets
(``ace.tokens.encrypt`` builds them); its kind stays AEAD. Not supported: detached payloads,
counter signatures, COSE_Sign/COSE_Mac, several recipients, key wrap.

pycose is deliberately not imported at run time: it signs ES256 with the pure-Python
``ecdsa`` package (slow, not constant-time) and builds mutable message objects; pycose,
python-cwt and cose-js are used in the tests as independent peers instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cbor2

from ace.cbor import codec
from ace.cbor.labels import Alg, CoseTag, HeaderParam, KeyType
from ace.errors import DecodeError, VerificationError
from ace.tokens import crypto, ecdh
from ace.tokens.crypto import Kind
from ace.tokens.keys import CoseKey

Rng = Callable[[int], bytes]
UNDERSTOOD_HEADERS = frozenset(int(h) for h in HeaderParam if h > 0)
_TAG_KIND = {CoseTag.SIGN1: Kind.SIGN, CoseTag.MAC0: Kind.MAC, CoseTag.ENCRYPT0: Kind.AEAD}
KIND_TAG = {v: k for k, v in _TAG_KIND.items()}  # the COSE tag of each kind (RFC 9052 §2)
_CONTEXT = {Kind.SIGN: "Signature1", Kind.MAC: "MAC0", Kind.AEAD: "Encrypt0"}
_H = HeaderParam
# the only header parameters a COSE_Encrypt may carry, per layer and bucket
ENCRYPT_PROTECTED = frozenset({int(_H.ALG), int(_H.CRIT), int(_H.CONTENT_TYPE)})
ENCRYPT_UNPROTECTED = frozenset({int(_H.IV), int(_H.CONTENT_TYPE)})
RECIPIENT_PROTECTED = frozenset({int(_H.ALG)})
RECIPIENT_UNPROTECTED = {
    int(Alg.ECDH_ES_HKDF_256): frozenset({int(_H.EPHEMERAL_KEY), int(_H.KID)}),
    int(Alg.ECDH_SS_HKDF_256): frozenset({int(_H.STATIC_KEY), int(_H.KID), int(_H.PARTY_U_NONCE)}),
}
MAX_RECIPIENT_KID = 256  # bytes


@dataclass(frozen=True, slots=True)
class CoseRecipient:
    """The one recipient of a COSE_Encrypt (RFC 9052 §5.1); direct agreement: empty ciphertext."""

    protected_bytes: bytes
    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]

    @property
    def alg(self) -> Any:
        return self.protected.get(int(HeaderParam.ALG))

    @property
    def kid(self) -> bytes | None:
        kid = self.unprotected.get(int(HeaderParam.KID))
        return kid if isinstance(kid, bytes) else None


@dataclass(frozen=True, slots=True)
class CoseMessage:
    """A parsed single-recipient COSE message; ``body`` is payload or ciphertext."""

    kind: Kind
    protected_bytes: bytes
    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    body: bytes
    tag: bytes  # signature or MAC tag; empty for Encrypt0 (the tag is in the ciphertext)
    cbor_tag: int | None  # 16/17/18 (96) when tagged
    recipients: tuple[CoseRecipient, ...] = ()  # a COSE_Encrypt's (exactly one); empty otherwise

    @property
    def alg(self) -> Any:
        return self.header(HeaderParam.ALG)

    @property
    def kid(self) -> bytes | None:
        kid = self.header(HeaderParam.KID)
        return kid if isinstance(kid, bytes) else None

    @property
    def key_id(self) -> bytes | None:
        """The kid that names the key opening this message: the recipient's in a COSE_Encrypt."""
        return self.recipients[0].kid if self.recipients else self.kid

    @property
    def bound_protected(self) -> bytes:
        """The protected bucket as the structures bind it (RFC 9052 §4.4/§5.3/§6.3): h'' when
        empty, even when the sender encoded the empty bucket as h'a0' (which §3 obliges us to accept)."""
        return self.protected_bytes if self.protected else b""

    def header(self, label: int) -> Any:
        if label in self.protected:
            return self.protected[label]
        return self.unprotected.get(label)


def _headers(protected_bytes: object, unprotected: object) -> tuple[Mapping[Any, Any], Mapping[Any, Any]]:
    if not isinstance(protected_bytes, bytes):
        raise DecodeError("COSE protected header must be a byte string")
    # RFC 9052 §3: recipients MUST accept both h'' and h'a0' for an empty bucket
    protected = codec.loads(protected_bytes, what="COSE protected header") if protected_bytes else {}
    if not isinstance(protected, Mapping) or not isinstance(unprotected, Mapping):
        raise DecodeError("COSE headers must be maps")
    both = set(protected) & set(unprotected)
    if both:  # RFC 9052 §3: a label MUST NOT occur in both buckets
        raise DecodeError(f"COSE header labels {sorted(map(str, both))} in both buckets")
    crit = protected.get(int(HeaderParam.CRIT))
    if int(HeaderParam.CRIT) in unprotected:
        raise DecodeError("crit must be in the protected bucket (RFC 9052 §3.1)")
    # RFC 9052 §3.1: a message with a critical header we do not understand is rejected
    if crit is not None and (not isinstance(crit, list) or not crit or any(c not in UNDERSTOOD_HEADERS for c in crit)):
        raise VerificationError(f"unsupported critical header parameters {crit!r}")
    return protected, unprotected


def parse(data: bytes | object, *, what: str = "COSE message") -> CoseMessage:
    """Parse a (possibly tagged) COSE_Sign1/Mac0/Encrypt0 from bytes or decoded CBOR."""
    item = codec.loads(bytes(data), what=what) if isinstance(data, (bytes, bytearray)) else data
    cbor_tag: int | None = None
    if isinstance(item, cbor2.CBORTag) and item.tag == CoseTag.ENCRYPT:
        return _parse_encrypt(item.value, int(CoseTag.ENCRYPT), what)
    if isinstance(item, list) and len(item) == 4 and isinstance(item[3], list):
        return _parse_encrypt(item, None, what)
    if isinstance(item, cbor2.CBORTag):
        if item.tag not in _TAG_KIND:
            raise DecodeError(f"{what}: CBOR tag {item.tag} is not COSE_Sign1/Mac0/Encrypt0")
        cbor_tag, item = item.tag, item.value
    if not isinstance(item, list) or len(item) not in (3, 4):
        raise DecodeError(f"{what}: not a COSE_Sign1/Mac0/Encrypt0 array")
    protected, unprotected = _headers(item[0], item[1])
    body = item[2]
    if body is None:
        raise DecodeError(f"{what}: detached content is not supported")
    if not isinstance(body, bytes):
        raise DecodeError(f"{what}: payload/ciphertext must be a byte string")
    kind = _kind_of(len(item), cbor_tag, protected, unprotected, what)
    tag = item[3] if len(item) == 4 else b""
    if not isinstance(tag, bytes):
        raise DecodeError(f"{what}: signature/tag must be a byte string")
    return CoseMessage(kind, item[0], protected, unprotected, body, tag, cbor_tag)


def _only(labels: Mapping[Any, Any], allowed: frozenset[int], what: str) -> None:
    extra = [k for k in labels if k not in allowed]
    if extra:
        raise DecodeError(f"{what}: header parameters {sorted(map(str, extra))} are not accepted here")


def _parse_encrypt(item: object, cbor_tag: int | None, what: str) -> CoseMessage:
    """A COSE_Encrypt with exactly one direct key agreement recipient (RFC 9052 §5.1)."""
    if not isinstance(item, list) or len(item) != 4 or not isinstance(item[3], list):
        raise DecodeError(f"{what}: not a COSE_Encrypt array")
    protected, unprotected = _headers(item[0], item[1])
    _only(protected, ENCRYPT_PROTECTED, what)
    _only(unprotected, ENCRYPT_UNPROTECTED, what)
    if not isinstance(item[2], bytes):
        raise DecodeError(f"{what}: ciphertext must be a byte string (detached content is not supported)")
    if len(item[3]) != 1:
        raise DecodeError(f"{what}: COSE_Encrypt must have exactly one recipient, found {len(item[3])}")
    return CoseMessage(Kind.AEAD, item[0], protected, unprotected, item[2], b"", cbor_tag,
                       (_parse_recipient(item[3][0], what),))


def _parse_recipient(item: object, what: str) -> CoseRecipient:
    if not isinstance(item, list) or len(item) != 3:  # no nested recipients: direct agreement only
        raise DecodeError(f"{what}: a recipient must be a 3-element COSE_recipient array")
    protected, unprotected = _headers(item[0], item[1])
    _only(protected, RECIPIENT_PROTECTED, f"{what} recipient")
    alg = protected.get(int(HeaderParam.ALG))
    if not isinstance(alg, int) or isinstance(alg, bool) or alg not in RECIPIENT_UNPROTECTED:
        raise VerificationError(f"{what}: recipient alg {alg!r} is not ECDH-ES/SS + HKDF-256 (protected)")
    _only(unprotected, RECIPIENT_UNPROTECTED[alg], f"{what} recipient")
    kid = unprotected.get(int(HeaderParam.KID))
    if kid is not None and (not isinstance(kid, bytes) or len(kid) > MAX_RECIPIENT_KID):
        raise DecodeError(f"{what}: recipient kid must be a byte string of at most {MAX_RECIPIENT_KID} bytes")
    if item[2] != b"":  # RFC 9053 §6.3.1: direct key agreement has an empty recipient ciphertext
        raise DecodeError(f"{what}: a direct key agreement recipient has an empty ciphertext")
    return CoseRecipient(item[0], protected, unprotected)


def _kind_of(n: int, cbor_tag: int | None, protected: Mapping[Any, Any],
             unprotected: Mapping[Any, Any], what: str) -> Kind:
    if cbor_tag is not None:
        kind = _TAG_KIND[CoseTag(cbor_tag)]
        if (n == 3) != (kind is Kind.AEAD):
            raise DecodeError(f"{what}: array length {n} does not fit tag {cbor_tag}")
        return kind
    if n == 3:
        return Kind.AEAD
    alg = protected.get(int(HeaderParam.ALG), unprotected.get(int(HeaderParam.ALG)))
    info = crypto.ALGS.get(alg) if isinstance(alg, int) and not isinstance(alg, bool) else None
    if info is None or info.kind is Kind.AEAD:
        raise VerificationError(f"{what}: untagged 4-element message with unusable alg {alg!r}")
    return info.kind


_CONTEXT_BYTES = {k: codec.dumps(v) for k, v in _CONTEXT.items()}


ENCRYPT_CONTEXT = codec.dumps("Encrypt")


def _to_be_processed(msg_kind: Kind, protected_bytes: bytes, external_aad: bytes, body: bytes,
                     context: bytes | None = None) -> bytes:
    """Sig_structure / MAC_structure / Enc_structure (RFC 9052 §4.4, §6.3, §5.3), encoded by hand:
    it is on every token's hot path and is only heads and byte strings."""
    parts = (context or _CONTEXT_BYTES[msg_kind]) + codec.bstr(protected_bytes) + codec.bstr(external_aad)
    if msg_kind is Kind.AEAD:
        return b"\x83" + parts
    return b"\x84" + parts + codec.bstr(body)


def _nonce(msg: CoseMessage, key: CoseKey, alg: int) -> bytes:
    iv = msg.header(HeaderParam.IV)
    partial = msg.header(HeaderParam.PARTIAL_IV)
    if iv is not None and partial is not None:
        raise DecodeError("IV and Partial IV must not both be present (RFC 9052 §3.1)")
    size = crypto.nonce_len(alg)
    if isinstance(iv, bytes):
        return iv
    base = key.base_iv
    if isinstance(partial, bytes) and base is not None and 0 < len(partial) <= size:
        padded = partial.rjust(size, b"\0")  # RFC 9052 §3.1: left-pad, then XOR with Base IV
        return bytes(a ^ b for a, b in zip(padded, base.rjust(size, b"\0"), strict=True))
    raise VerificationError("Encrypt0 without a usable IV")


def open_message(msg: CoseMessage, key: CoseKey, *, external_aad: bytes = b"") -> bytes:
    """Verify or decrypt ``msg`` with ``key``; return the payload (plaintext).

    For a COSE_Encrypt ``key`` is the recipient's private key (EC2 P-256 or OKP X25519)."""
    if msg.recipients:
        return _open_encrypt(msg, key, external_aad)
    alg = msg.alg
    crypto.check_alg(key, alg, msg.kind)
    tbs = _to_be_processed(msg.kind, msg.bound_protected, external_aad, msg.body)
    if msg.kind is Kind.SIGN:
        crypto.verify_signature(key, alg, tbs, msg.tag)
        return msg.body
    if msg.kind is Kind.MAC:
        crypto.verify_mac(key, alg, tbs, msg.tag)
        return msg.body
    return crypto.decrypt(key, alg, _nonce(msg, key, alg), msg.body, tbs)


@lru_cache(maxsize=64)
def alg_header(alg: int) -> bytes:
    """The protected bucket {1: alg}, encoded."""
    return codec.dumps({int(HeaderParam.ALG): alg})


def enc_structure(protected: bytes, external_aad: bytes, *, context: bytes | None = None) -> bytes:
    """The encoded Enc_structure (RFC 9052 §5.3); context "Encrypt0" unless given."""
    return _to_be_processed(Kind.AEAD, protected, external_aad, b"", context)


def build(
    kind: Kind,
    payload: bytes,
    key: CoseKey,
    *,
    alg: int | None = None,
    kid: bytes | None = None,
    tagged: bool = False,
    external_aad: bytes = b"",
    extra_protected: Mapping[int, Any] | None = None,
    rng: Rng | None = None,
) -> bytes:
    """Build a COSE_Sign1/Mac0/Encrypt0: alg protected, kid (if any) and IV unprotected."""
    alg = crypto.default_alg(key, kind) if alg is None else alg
    crypto.check_alg(key, alg, kind)
    protected = (
        codec.dumps({int(HeaderParam.ALG): alg, **extra_protected}) if extra_protected else alg_header(alg)
    )
    unprotected: dict[int, Any] = {}
    if kid is not None:
        unprotected[int(HeaderParam.KID)] = kid
    tbs = _to_be_processed(kind, protected, external_aad, payload)
    if kind is Kind.AEAD:
        if rng is None:
            raise ValueError("Encrypt0 needs an rng for its IV")
        iv = rng(crypto.nonce_len(alg))
        unprotected[int(HeaderParam.IV)] = iv
        parts = [protected, unprotected, crypto.encrypt(key, alg, iv, payload, tbs)]
    else:
        parts = [protected, unprotected, payload,
                 crypto.sign(key, alg, tbs) if kind is Kind.SIGN else crypto.mac(key, alg, tbs)]
    encoded = array([codec.bstr(p) if isinstance(p, bytes) else codec.dumps(p) for p in parts])
    return codec.head(6, KIND_TAG[kind]) + encoded if tagged else encoded


def array(items: list[bytes]) -> bytes:
    """A COSE message's CBOR array from its encoded items (preferred serialization)."""
    return codec.head(4, len(items)) + b"".join(items)


def recipient_peer(r: CoseRecipient) -> tuple[CoseKey, bytes | None]:
    """The sender's public key a recipient names (ephemeral or static) and the PartyU nonce."""
    ephemeral = r.alg == Alg.ECDH_ES_HKDF_256
    label = HeaderParam.EPHEMERAL_KEY if ephemeral else HeaderParam.STATIC_KEY
    value = r.unprotected.get(int(label))
    if value is None:
        raise DecodeError(f"recipient without its {label.name.lower()} header")
    peer = CoseKey.from_map(value, "recipient's sender key")
    nonce = r.unprotected.get(int(HeaderParam.PARTY_U_NONCE))
    if nonce is not None and (not isinstance(nonce, bytes) or len(nonce) > 64):
        raise DecodeError("PartyU nonce must be a byte string of at most 64 bytes")
    return peer, nonce


def _open_encrypt(msg: CoseMessage, key: CoseKey, external_aad: bytes) -> bytes:
    r = msg.recipients[0]
    ecdh.check_agreement(key, r.alg)
    content_alg = msg.alg
    size = ecdh.content_key(content_alg)
    peer, nonce = recipient_peer(r)
    secret = ecdh.shared_secret(key, peer)
    cek = CoseKey(kty=KeyType.SYMMETRIC, alg=content_alg,
                  k=ecdh.derive_key(secret, content_alg, size, r.protected_bytes if r.protected else b"", nonce))
    tbs = _to_be_processed(Kind.AEAD, msg.bound_protected, external_aad, msg.body, ENCRYPT_CONTEXT)
    return crypto.decrypt(cek, content_alg, _nonce(msg, cek, content_alg), msg.body, tbs)


def named_recipient(r: CoseRecipient) -> dict[int, Any]:
    """The recipient's unprotected bucket as a token is named by it (``cwt.canonical_token``): in the
    order our AS writes it, the sender key bare (kty, crv, x, y; ``ecdh.even_point``): anything else in
    it, another order, or -P for P, leaves the ECDH and so the token unchanged."""
    peer, nonce = recipient_peer(r)
    label = HeaderParam.EPHEMERAL_KEY if r.alg == Alg.ECDH_ES_HKDF_256 else HeaderParam.STATIC_KEY
    bare = ecdh.even_point(CoseKey(kty=peer.kty, crv=peer.crv, x=peer.x, y=peer.y))
    named: dict[int, Any] = {int(label): bare.to_map()}
    if r.kid is not None:
        named[int(HeaderParam.KID)] = r.kid
    if nonce is not None:
        named[int(HeaderParam.PARTY_U_NONCE)] = nonce
    return named
