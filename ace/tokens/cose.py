"""COSE_Sign1, COSE_Mac0 and COSE_Encrypt0 (RFC 9052 §4.2, §5.2, §6.2) over cbor2.

Builds and checks the three single-recipient structures byte for byte: protected headers as
a bstr (empty map encoded as a zero-length bstr, RFC 9052 §3), Sig_structure /
MAC_structure / Enc_structure with external AAD, tagged (16/17/18) or untagged input. An
untagged array is typed by its length and its alg, which the key then has to accept. The
cryptography lives in ``ace.tokens.crypto``; this module is the wire format only. Not
supported: detached payloads, counter signatures, the multi-recipient structures.

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
from ace.cbor.labels import CoseTag, HeaderParam
from ace.errors import DecodeError, VerificationError
from ace.tokens import crypto
from ace.tokens.crypto import Kind
from ace.tokens.keys import CoseKey

Rng = Callable[[int], bytes]
UNDERSTOOD_HEADERS = frozenset(int(h) for h in HeaderParam)
_TAG_KIND = {CoseTag.SIGN1: Kind.SIGN, CoseTag.MAC0: Kind.MAC, CoseTag.ENCRYPT0: Kind.AEAD}
KIND_TAG = {v: k for k, v in _TAG_KIND.items()}  # the COSE tag of each kind (RFC 9052 §2)
_CONTEXT = {Kind.SIGN: "Signature1", Kind.MAC: "MAC0", Kind.AEAD: "Encrypt0"}


@dataclass(frozen=True, slots=True)
class CoseMessage:
    """A parsed single-recipient COSE message; ``body`` is payload or ciphertext."""

    kind: Kind
    protected_bytes: bytes
    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    body: bytes
    tag: bytes  # signature or MAC tag; empty for Encrypt0 (the tag is in the ciphertext)
    cbor_tag: int | None  # 16/17/18 when tagged

    @property
    def alg(self) -> Any:
        return self.header(HeaderParam.ALG)

    @property
    def kid(self) -> bytes | None:
        kid = self.header(HeaderParam.KID)
        return kid if isinstance(kid, bytes) else None

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


def _to_be_processed(msg_kind: Kind, protected_bytes: bytes, external_aad: bytes, body: bytes) -> bytes:
    """Sig_structure / MAC_structure / Enc_structure (RFC 9052 §4.4, §6.3, §5.3), encoded by hand:
    it is on every token's hot path and is only heads and byte strings."""
    parts = _CONTEXT_BYTES[msg_kind] + codec.bstr(protected_bytes) + codec.bstr(external_aad)
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
    """Verify or decrypt ``msg`` with ``key``; return the payload (plaintext)."""
    alg = msg.alg
    crypto.check_alg(key, alg, msg.kind)
    # RFC 9052 §4.4/§5.3/§6.3: with no protected attributes the structure holds h'', even
    # when the sender encoded the empty bucket as h'a0' (which §3 obliges us to accept)
    protected = msg.protected_bytes if msg.protected else b""
    tbs = _to_be_processed(msg.kind, protected, external_aad, msg.body)
    if msg.kind is Kind.SIGN:
        crypto.verify_signature(key, alg, tbs, msg.tag)
        return msg.body
    if msg.kind is Kind.MAC:
        crypto.verify_mac(key, alg, tbs, msg.tag)
        return msg.body
    return crypto.decrypt(key, alg, _nonce(msg, key, alg), msg.body, tbs)


@lru_cache(maxsize=64)
def _alg_only_header(alg: int) -> bytes:
    return codec.dumps({int(HeaderParam.ALG): alg})


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
        codec.dumps({int(HeaderParam.ALG): alg, **extra_protected}) if extra_protected else _alg_only_header(alg)
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
