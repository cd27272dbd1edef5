"""Proof-of-possession keys in ``cnf``/``req_cnf``/``rs_cnf`` (RFC 8747 §3, RFC 9203 §3.2.1).

A cnf value is a map with exactly one confirmation method (RFC 8747 §3.1: it represents a
single PoP key): COSE_Key (1), Encrypted_COSE_Key (2, a COSE_Encrypt0 or COSE_Encrypt
whose plaintext is a COSE_Key; ``encrypted_cnf`` builds one), kid (3), or the OSCORE profile's OSCORE_Input_Material
(osc, 4). Decoding returns one of four frozen dataclasses; ``cnf_to_map`` inverts it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cbor2

from ace.cbor import codec
from ace.cbor.codec import MapReader
from ace.cbor.labels import CnfMethod, CoseTag, OscoreParam
from ace.errors import DecodeError, UnsupportedPopKey
from ace.tokens import cose
from ace.tokens.cose import CoseMessage
from ace.tokens.crypto import Kind
from ace.tokens.encrypt import Recipient, Rng, encrypt_to, open_with
from ace.tokens.keyring import KeyLookup
from ace.tokens.keys import CoseKey


@dataclass(frozen=True, slots=True, kw_only=True)
class OscoreInputMaterial:
    """OSCORE_Input_Material (RFC 9203 §3.2.1); ``ms`` is never shown by repr."""

    id: bytes
    ms: bytes = field(repr=False)
    version: int | None = None
    hkdf: int | str | None = None
    alg: int | str | None = None
    salt: bytes | None = None
    context_id: bytes | None = None
    extra: tuple[tuple[Any, Any], ...] = ()

    def to_map(self) -> dict[int, Any]:
        m: dict[int, Any] = {int(OscoreParam.ID): self.id}
        optional = ((OscoreParam.VERSION, self.version), (OscoreParam.MS, self.ms),
                    (OscoreParam.HKDF, self.hkdf), (OscoreParam.ALG, self.alg),
                    (OscoreParam.SALT, self.salt), (OscoreParam.CONTEXT_ID, self.context_id))
        for label, value in optional:
            if value is not None:
                m[int(label)] = value
        m.update(self.extra)
        return m

    @classmethod
    def from_map(cls, value: object) -> OscoreInputMaterial:
        r = MapReader(value, "OSCORE_Input_Material", OscoreParam)
        for label in (OscoreParam.HKDF, OscoreParam.ALG):
            v = r.raw(label)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, str))):
                raise DecodeError(f"OSCORE_Input_Material: {label.name.lower()}({int(label)}) must be int or tstr")
        # RFC 9203 §3.2: the AS MUST send id and ms
        return cls(
            id=r.bytes_(OscoreParam.ID, required=True) or b"",
            ms=r.bytes_(OscoreParam.MS, required=True) or b"",
            version=r.uint(OscoreParam.VERSION),
            hkdf=r.raw(OscoreParam.HKDF),
            alg=r.raw(OscoreParam.ALG),
            salt=r.bytes_(OscoreParam.SALT),
            context_id=r.bytes_(OscoreParam.CONTEXT_ID),
            extra=codec.freeze_extra(r.extra()),
        )


@dataclass(frozen=True, slots=True)
class CoseKeyCnf:
    key: CoseKey


@dataclass(frozen=True, slots=True)
class EncryptedCoseKeyCnf:
    """The encrypted key, kept as the encoded COSE message (COSE_Encrypt0, or COSE_Encrypt with
    an ECDH-ES recipient); ``decrypt`` opens it with one key or with the keys a lookup names."""

    encrypted: bytes

    @property
    def message(self) -> CoseMessage:
        msg = cose.parse(self.encrypted, what="Encrypted_COSE_Key")
        if msg.kind is not Kind.AEAD:
            raise DecodeError("Encrypted_COSE_Key must be a COSE_Encrypt0 or COSE_Encrypt")
        return msg

    def decrypt(self, keys: CoseKey | KeyLookup, *, external_aad: bytes = b"") -> CoseKey:
        """The PoP key; DecodeError if the plaintext is not a COSE_Key map."""
        msg = self.message
        if isinstance(keys, CoseKey):
            plaintext = cose.open_message(msg, keys, external_aad=external_aad)
        else:
            plaintext = open_with(msg, keys, external_aad=external_aad)
        return CoseKey.decode(plaintext, "decrypted Encrypted_COSE_Key")


def encrypted_cnf(pop_key: CoseKey, to: Recipient, *, external_aad: bytes = b"",
                  rng: Rng = secrets.token_bytes) -> EncryptedCoseKeyCnf:
    """``pop_key`` as an Encrypted_COSE_Key to ``to`` (RFC 8747 §3.3), untagged as in its example."""
    return EncryptedCoseKeyCnf(encrypt_to(pop_key.encode(), to, external_aad=external_aad, tagged=False, rng=rng))


@dataclass(frozen=True, slots=True)
class KidCnf:
    kid: bytes


@dataclass(frozen=True, slots=True)
class OscoreCnf:
    material: OscoreInputMaterial


Cnf = CoseKeyCnf | EncryptedCoseKeyCnf | KidCnf | OscoreCnf


def cnf_from_map(value: object, what: str = "cnf") -> Cnf:
    if not isinstance(value, Mapping):
        raise DecodeError(f"{what} must be a map")
    methods = [k for k in value if isinstance(k, int) and not isinstance(k, bool) and k in CnfMethod._value2member_map_]
    if len(methods) != 1:  # RFC 8747 §3.1: a single proof-of-possession key
        raise (DecodeError if methods else UnsupportedPopKey)(
            f"{what} must hold exactly one known confirmation method, found {len(methods)}"
        )
    method = CnfMethod(methods[0])
    member = value[int(method)]
    match method:
        case CnfMethod.COSE_KEY:
            return CoseKeyCnf(CoseKey.from_map(member, f"{what} COSE_Key"))
        case CnfMethod.ENCRYPTED_COSE_KEY:
            if not isinstance(member, list) and not (
                isinstance(member, cbor2.CBORTag) and member.tag in (CoseTag.ENCRYPT0, CoseTag.ENCRYPT)
            ):
                raise DecodeError(f"{what} Encrypted_COSE_Key must be a COSE_Encrypt0 or COSE_Encrypt array")
            return EncryptedCoseKeyCnf(codec.dumps(member))
        case CnfMethod.KID:
            if not isinstance(member, bytes):
                raise DecodeError(f"{what} kid(3) must be a byte string")
            return KidCnf(member)
        case CnfMethod.OSC:
            return OscoreCnf(OscoreInputMaterial.from_map(member))
    raise AssertionError(method)  # pragma: no cover


def cnf_to_map(cnf: Cnf) -> dict[int, Any]:
    match cnf:
        case CoseKeyCnf(key):
            return {int(CnfMethod.COSE_KEY): key.to_map()}
        case EncryptedCoseKeyCnf(encrypted):
            return {int(CnfMethod.ENCRYPTED_COSE_KEY): codec.loads(encrypted)}
        case KidCnf(kid):
            return {int(CnfMethod.KID): kid}
        case OscoreCnf(material):
            return {int(CnfMethod.OSC): material.to_map()}
    raise TypeError(f"not a cnf: {cnf!r}")
