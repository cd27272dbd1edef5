"""Small pure helpers of the RS core (``ace.rs.server``): the token in a POST /authz-info
payload, the client a token speaks for, whether a new token is bound to a channel's key, and a
token's PoP key opened (RFC 8747 §3.3: an Encrypted_COSE_Key decrypted with the RS's keys; a secret
key readable by anyone who saw the token refused)."""

from __future__ import annotations

import hmac
from dataclasses import replace

from ace.cbor import codec
from ace.cbor.codec import MapReader
from ace.cbor.labels import ContentFormat, Param
from ace.errors import TokenRefused, UnsupportedPopKey
from ace.messages import AuthzInfoRequest
from ace.profiles import of_channel
from ace.rs.store import Binding
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import Cnf, CoseKeyCnf, EncryptedCoseKeyCnf, KidCnf, OscoreCnf
from ace.tokens.crypto import Kind
from ace.tokens.cwt import KeyLookup, open_envelope


def is_map(payload: bytes) -> bool:
    return bool(payload) and payload[0] >> 5 == 5  # CBOR major type 5


def carries_updated_rights(payload: bytes, content_format: int | None, key: int) -> bool:
    """Whether an authz-info POST is an ace+cbor map with the updated_rights parameter (WF §3.7.1)."""
    if content_format not in (None, ContentFormat.ACE_CBOR) or not is_map(payload):
        return False
    value = codec.loads(payload, what="authz-info upload")
    return isinstance(value, dict) and key in value


def client_key(sub: str | None, fallback: bytes) -> bytes:
    """"The same client": its sub claim if the token has one, else its PoP key."""
    return b"sub:" + sub.encode() if sub is not None else fallback


def token_of(payload: bytes, content_format: int | None) -> bytes:
    """The token of an update: an ace+cbor map holding only access_token (RFC 9203 §4.1) or the
    token itself (RFC 9202 §3.4)."""
    if content_format == ContentFormat.CWT or not is_map(payload):
        return payload
    return MapReader(codec.loads(payload, what="authz-info request"), "authz-info request", Param).bytes_(
        Param.ACCESS_TOKEN, required=True)


def posted_token(payload: bytes, content_format: int | None, *, raw_profiles: bool) -> bytes | AuthzInfoRequest:
    """What a POST /authz-info over no channel carries: the bare token (DTLS, EDHOC), or the OSCORE
    profile's request map (RFC 9203 §4.1), each decoded once.

    RFC 9200 §5.10.1 / RFC 9202: the token itself, application/cwt (or no Content-Format). An RS that
    offers a profile taking the bare token also takes it as application/ace+cbor (what ace-java's DTLS
    client sends) and an ace+cbor map with access_token and neither nonce1 nor ace_client_recipientid
    (RFC 9594 §3.3); an OSCORE-only RS keeps refusing those as malformed RFC 9203 §4.1 requests."""
    if content_format == ContentFormat.CWT:
        return payload
    if not is_map(payload):
        if raw_profiles or content_format is None:
            return payload
        return AuthzInfoRequest.decode(payload)  # refused: not an RFC 9203 §4.1 map
    if not raw_profiles:
        return AuthzInfoRequest.decode(payload)
    value = codec.loads(payload, what=AuthzInfoRequest._what)
    body = MapReader(value, AuthzInfoRequest._what, Param)
    if body.has(Param.NONCE1) or body.has(Param.ACE_CLIENT_RECIPIENTID):
        return AuthzInfoRequest.from_map(value)  # RFC 9203 §4.1: an OSCORE request
    return body.bytes_(Param.ACCESS_TOKEN, required=True)


def kept(claims: AccessTokenClaims) -> AccessTokenClaims:
    """The claims a binding keeps: not cnf (the key lives in the channel's context; one copy of a
    secret is enough, and the memory is the RS's scarcest)."""
    return replace(claims, cnf=None)


def same_pop_key(cnf: Cnf | None, current: Binding) -> bool:
    """Whether a new token's cnf is the PoP key of ``current``'s channel: its kid, or the key itself
    as the channel's profile compares it."""
    if isinstance(cnf, KidCnf):
        return hmac.compare_digest(cnf.kid, current.pop_id)
    return cnf is not None and of_channel(current.context).rs_same_key(cnf, current.context)


def same_token(a: AccessTokenClaims, b: AccessTokenClaims) -> bool:
    """Whether two tokens are one (the same cti from the same issuer), however they were encoded."""
    return a.cti is not None and a.cti == b.cti and a.iss == b.iss


def newer(new: AccessTokenClaims, current: AccessTokenClaims) -> bool:
    """Whether ``new`` was issued after ``current``: by iat when both have one (our AS sets it by
    default), else by exp (the same lifetime assumed); within the same second by cti, which our
    AS counts up (a counter, or the RS's id and a sequence number); unknown: not newer."""
    for a, b in ((new.iat, current.iat), (new.exp, current.exp)):
        if a is not None and b is not None:
            return a > b if a != b else _cti_order(new.cti) > _cti_order(current.cti)
    return _cti_order(new.cti) > _cti_order(current.cti)  # exi tokens: the RS's id and a sequence number


def _cti_order(cti: bytes | None) -> tuple[int, bytes]:
    return (len(cti), cti) if cti is not None else (-1, b"")


def confidential(token: bytes) -> bool:
    """Whether only its RS reads the token's claims: its outer COSE message is encrypted (COSE_Encrypt0,
    or COSE_Encrypt around a signed token), not a COSE_Sign1 or COSE_Mac0 anyone may read."""
    return open_envelope(token).message.kind is Kind.AEAD


def open_cnf(cnf: Cnf | None, keys: KeyLookup, *, confidential: bool) -> Cnf | None:
    """The token's PoP key as the profiles take it: an Encrypted_COSE_Key decrypted with our keys
    (a shared key, or our private key for ECDH-ES) into its symmetric COSE_Key; a secret in the clear
    of a token others may read refused (4.01: its key is not the client's alone)."""
    match cnf:
        case EncryptedCoseKeyCnf():
            key = cnf.decrypt(keys)  # 4.01 if it is not for us or does not open (VerificationError)
            if not key.is_symmetric or key.k is None:  # RFC 8747 §3.3: what is encrypted is a symmetric key
                raise UnsupportedPopKey("Encrypted_COSE_Key: the plaintext is not a symmetric COSE_Key")
            return CoseKeyCnf(key)
        case OscoreCnf() if not confidential:  # RFC 9203 §3.2: the ms MUST be readable by the RS only
            raise TokenRefused("OSCORE_Input_Material in a token that is not encrypted")
        case CoseKeyCnf(key) if key.has_private and not confidential:  # RFC 8747 §3.3: MUST be encrypted
            raise TokenRefused("a secret PoP key in the clear in a token that is not encrypted")
    return cnf
