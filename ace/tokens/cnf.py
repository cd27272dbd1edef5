"""Proof-of-possession keys in ``cnf``/``req_cnf``/``rs_cnf`` (RFC 8747 §3, RFC 9203 §3.2.1).

A cnf value is a map with exactly one confirmation method (RFC 8747 §3.1: it represents a
single PoP key): COSE_Key (1), Encrypted_COSE_Key (2, a COSE_Encrypt0 or COSE_Encrypt
whose plaintext is a COSE_Key; ``encrypted_cnf`` builds one), kid (3), the OSCORE profile's OSCORE_Input_Material
(osc, 4), or the EDHOC profile's kccs (11, a CWT Claims Set holding the COSE_Key, kept as its exact
bytes: they are CRED_x in EDHOC). Decoding returns one of five frozen dataclasses; ``cnf_to_map``
inverts it (a kccs, and a COSE_Key decoded with ``with_raw``, byte for byte).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cbor2

from ace.cbor import codec
from ace.cbor.codec import MapReader
from ace.cbor.labels import Claim, CnfMethod, CoseTag, CurveKeyParam, KeyParam, OscoreParam
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
    """``raw``: the COSE_Key's bytes as received (``with_raw``), for a peer that builds CRED_x
    from them (the ariel-os preset); never compared."""

    key: CoseKey
    raw: bytes | None = field(default=None, compare=False, repr=False)

    def key_bytes(self) -> bytes:
        """The COSE_Key as received, else as we encode it."""
        return self.raw if self.raw is not None else codec.dumps(self.key.to_map())


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


MAX_CCS = 192  # bytes of a kccs credential (the EDHOC layer's CRED_x limit)


@dataclass(frozen=True, slots=True)
class KccsCnf:
    """A kccs confirmation (draft-ietf-ace-edhoc-oscore-profile-11 §7.10): a CWT Claims Set whose
    cnf claim is exactly ``{1: COSE_Key}``, plus optional other claims (sub, ...). ``raw`` is the
    value as it travels (a map, or a tagged map, §14.7), never re-encoded; ``cred`` is the untagged
    CCS, the bytes EDHOC uses as CRED_x. Malformed: DecodeError; larger than MAX_CCS:
    UnsupportedPopKey."""

    raw: bytes
    key: CoseKey = field(init=False, repr=False, compare=False)
    sub: str | None = field(init=False, compare=False)
    cred: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.raw) > MAX_CCS:
            raise UnsupportedPopKey(f"kccs: a credential of at most {MAX_CCS} bytes")
        key, sub, cred = _parse_ccs(bytes(self.raw))
        object.__setattr__(self, "raw", bytes(self.raw))
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "sub", sub)
        object.__setattr__(self, "cred", cred)

    @property
    def kid(self) -> bytes | None:
        return self.key.kid

    @classmethod
    def of_key(cls, key: CoseKey, sub: str | None = None) -> KccsCnf:
        """The CCS of a public key as both EDHOC ends build it: ``{2: sub, 8: {1: {1: kty, 2: kid,
        -1: crv, -2: x, -3: y}}}`` (sub and kid left out if None; alg and key_ops never), in
        deterministic encoding (RFC 8949 §4.2.1), the bytes ``ace.coap.edhoc.ccs_bytes`` makes."""
        cose_key: dict[int, Any] = {int(KeyParam.KTY): int(key.kty)}
        for label, value in ((KeyParam.KID, key.kid), (CurveKeyParam.CRV, key.crv), (CurveKeyParam.X, key.x),
                             (CurveKeyParam.Y, key.y)):
            if value is not None:
                cose_key[int(label)] = int(value) if isinstance(value, int) else value
        ccs: dict[int, Any] = {} if sub is None else {int(Claim.SUB): sub}
        ccs[int(Claim.CNF)] = {int(CnfMethod.COSE_KEY): cose_key}
        return cls(codec.dumps(ccs))


def ccs_of_cose_key(key_bytes: bytes) -> bytes:
    """The CCS ``{8: {1: COSE_Key}}`` around an encoded COSE_Key, byte for byte (how the ariel-os
    preset's RS builds CRED_I from a token with a COSE_Key cnf)."""
    return bytes((0xA1, int(Claim.CNF), 0xA1, int(CnfMethod.COSE_KEY))) + key_bytes


def _parse_ccs(raw: bytes) -> tuple[CoseKey, str | None, bytes]:
    value = codec.loads(raw, what="kccs", allowed_tags=codec.ANY_TAG)
    cred = raw
    while isinstance(value, cbor2.CBORTag):  # §14.7: map / #6(map)
        value = value.value
        cred = codec.raw_at_tag_content(cred)
    if not isinstance(value, Mapping):
        raise DecodeError("kccs must be a CWT Claims Set (a map)")
    r = MapReader(value, "kccs", Claim)
    cnf = r.map_(Claim.CNF, required=True)
    if cnf is None or set(cnf) != {int(CnfMethod.COSE_KEY)}:
        raise DecodeError("kccs: its cnf must be exactly {1: COSE_Key}")
    key = CoseKey.from_map(cnf[int(CnfMethod.COSE_KEY)], "kccs COSE_Key")
    if key.has_private:
        raise UnsupportedPopKey("kccs: a public key only")
    return key, r.text(Claim.SUB), cred


Cnf = CoseKeyCnf | EncryptedCoseKeyCnf | KidCnf | OscoreCnf | KccsCnf


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
        case CnfMethod.KCCS:
            if not isinstance(member, (Mapping, cbor2.CBORTag)):
                raise DecodeError(f"{what} kccs(11) must be a map or a tagged map")
            return KccsCnf(codec.dumps(member))  # re-encoded: ``with_raw`` puts the received bytes back
    raise AssertionError(method)  # pragma: no cover


def cnf_to_map(cnf: Cnf) -> dict[int, Any]:
    match cnf:
        case EncryptedCoseKeyCnf(encrypted):
            return {int(CnfMethod.ENCRYPTED_COSE_KEY): codec.loads(encrypted)}
        case KidCnf(kid):
            return {int(CnfMethod.KID): kid}
        case OscoreCnf(material):
            return {int(CnfMethod.OSC): material.to_map()}
        case KccsCnf(raw):
            return {int(CnfMethod.KCCS): codec.RawCbor(raw)}  # §3.3.1: verbatim
        case CoseKeyCnf(key, raw):
            return {int(CnfMethod.COSE_KEY): key.to_map() if raw is None else codec.RawCbor(raw)}
    raise TypeError(f"not a cnf: {cnf!r}")


def with_raw(cnf: Cnf | None, data: bytes, path: tuple[int, ...]) -> Cnf | None:
    """``cnf`` decoded from the map ``data`` at ``path`` (the labels down to the cnf map: ``(8,)``
    for a token's claims, ``(4,)`` for req_cnf), with the received bytes of a kccs or a COSE_Key
    put back, so that it re-encodes byte for byte."""
    if isinstance(cnf, KccsCnf):
        raw = codec.raw_at(data, (*path, int(CnfMethod.KCCS)))
        return cnf if raw is None or raw == cnf.raw else KccsCnf(raw)
    if isinstance(cnf, CoseKeyCnf):
        raw = codec.raw_at(data, (*path, int(CnfMethod.COSE_KEY)))
        return cnf if raw is None else CoseKeyCnf(cnf.key, raw)
    return cnf
