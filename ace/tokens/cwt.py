"""Access tokens as CWTs (RFC 8392): issue, verify, peek.

``issue_token`` wraps encoded claims in COSE_Encrypt0 (default), COSE_Sign1 or COSE_Mac0,
optionally nested in an encryption to the RS (``encrypt_to``: COSE_Encrypt0 with a shared key
or COSE_Encrypt to its public key); the CWT tag 61 only on request (RFC 8392 §6: optional).
``verify_token`` accepts tagged and untagged input and one level of nesting (RFC 8392 §7.2:
e.g. a Sign1 inside an Encrypt0, or inside a COSE_Encrypt, which must nest one), finds keys
by kid through a ``KeyLookup``, lets the key decide which algorithms are acceptable, and
checks aud, exp and nbf against an injected clock with a configurable skew. exi and cnonce
need RS state: the RS bounds a token's use by exi from when it first sees it; cnonce
checking comes with RS-issued nonces.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import cbor2

from ace.cbor import codec
from ace.cbor.labels import Alg, CoseTag, HeaderParam
from ace.errors import (
    ClaimsError,
    DecodeError,
    VerificationError,
    WrongAudience,
)
from ace.tokens import cose, crypto, encrypt
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cose import CoseMessage
from ace.tokens.crypto import Kind
from ace.tokens.defaults import DEFAULT_SKEW as DEFAULT_SKEW  # re-exported, as before
from ace.tokens.defaults import TOKEN_TAGS as TOKEN_TAGS
from ace.tokens.encrypt import Recipient
from ace.tokens.keyring import KeyLookup as KeyLookup  # re-exported: callers import them from here
from ace.tokens.keyring import KeyRing as KeyRing
from ace.tokens.keys import CoseKey

Clock = Callable[[], float]
Rng = Callable[[int], bytes]
MAX_TOKEN_SIZE = 4096  # bytes; larger input is refused before parsing

KIND_BY_NAME = {"encrypt0": Kind.AEAD, "sign1": Kind.SIGN, "mac0": Kind.MAC}
# what a token may carry unauthenticated: the key's id and the nonce's parts, nothing else
TOKEN_UNPROTECTED = frozenset({int(HeaderParam.KID), int(HeaderParam.IV), int(HeaderParam.PARTIAL_IV)})


def issue_token(
    claims: AccessTokenClaims,
    key: CoseKey,
    *,
    kind: Kind = Kind.AEAD,
    alg: int | None = None,
    kid: bytes | None = None,
    tagged: bool = False,
    cwt_tag: bool = False,
    external_aad: bytes = b"",
    rng: Rng = secrets.token_bytes,
    encrypt_to: Recipient | None = None,
) -> bytes:
    """The CWT for ``claims``, protected with ``key``; kid defaults to the key's kid.

    With ``encrypt_to`` the signed or MACed CWT is then encrypted to that recipient (RFC 8392
    §7.1 nesting: the inner message tagged, COSE_Encrypt0 or COSE_Encrypt around it)."""
    if encrypt_to is not None and kind is Kind.AEAD:
        raise ValueError("encrypt_to nests a signed or MACed token: kind must be SIGN or MAC")
    body = cose.build(
        kind, claims.encode(), key, alg=alg, kid=key.kid if kid is None else kid,
        tagged=tagged or cwt_tag or encrypt_to is not None, external_aad=external_aad, rng=rng,
    )
    if encrypt_to is not None:
        body = encrypt.encrypt_to(body, encrypt_to, external_aad=external_aad, tagged=tagged or cwt_tag, rng=rng,
                                  even_y=True)  # the name canonical_token gives it
    if not cwt_tag:
        return body
    return codec.head(6, CoseTag.CWT) + body  # the CWT tag (RFC 8392 §6) around the tagged COSE message


@dataclass(frozen=True, slots=True)
class TokenEnvelope:
    """What can be read from a token without any key: for logs, lookup and inspection."""

    message: CoseMessage
    cwt_tagged: bool


def open_envelope(token: bytes) -> TokenEnvelope:
    """Parse the outer COSE structure of a token (no verification)."""
    if not isinstance(token, (bytes, bytearray)):
        raise DecodeError("access token must be a byte string")
    if len(token) > MAX_TOKEN_SIZE:
        raise DecodeError(f"access token larger than {MAX_TOKEN_SIZE} bytes")
    item = codec.loads(bytes(token), what="access token")
    cwt_tagged = isinstance(item, cbor2.CBORTag) and item.tag == CoseTag.CWT
    if cwt_tagged:
        item = item.value
    return TokenEnvelope(cose.parse(item, what="access token"), cwt_tagged)


def canonical_token(token: bytes, tags: str = "none") -> bytes:
    """The one encoding of ``token`` that names it (its RFC 9770 hash, replay and revocation checks):
    the COSE message as the issuer sent it, with the issuer's ``tags`` (one of TOKEN_TAGS).

    Tags are optional (RFC 8392 §6), so any are accepted and replaced by the issuer's; anything
    else that could change the bytes without breaking the COSE protection is refused (DecodeError):
    unprotected header labels other than kid/IV/Partial IV, an unprotected map not in
    deterministic order (RFC 8949 §4.2.1), and any encoding that is not preferred serialization.
    Two encodings that both verify are named by one: an empty protected bucket sent as h'a0' by
    h'', an ES256 signature (r, s) by its low-s twin (our AS signs low-s; other issuers may not), a
    COSE_Encrypt's sender key by its bare kty/crv/x/y, a P-256 one with even y (ours are; ``ecdh.even_point``).
    A re-encoded token is then the same token."""
    env = open_envelope(token)
    msg = env.message
    unprotected = list(msg.unprotected)
    if any(k not in TOKEN_UNPROTECTED for k in unprotected):  # unauthenticated: nothing to add there
        raise DecodeError(f"access token: unprotected header labels {sorted(map(str, unprotected))} "
                          "(only kid, IV, Partial IV are accepted)")
    if unprotected != sorted(unprotected) or not all(isinstance(v, bytes) for v in msg.unprotected.values()):
        raise DecodeError("access token: unprotected header not in deterministic encoding")
    # RFC 9052 §3: h'' and h'a0' are the same empty bucket, accepted both; the token is named with h''
    protected = msg.bound_protected
    parts = [codec.bstr(msg.protected_bytes), codec.dumps(dict(msg.unprotected)), codec.bstr(msg.body)]
    if msg.kind is not Kind.AEAD:
        parts.append(codec.bstr(msg.tag))
    if msg.recipients:  # a COSE_Encrypt: its one recipient as sent (the KDF binds its protected bucket)
        parts.append(codec.dumps([[msg.recipients[0].protected_bytes, dict(msg.recipients[0].unprotected), b""]]))
    core = cose.array(parts)
    prefix = (codec.head(6, CoseTag.CWT) if env.cwt_tagged else b"") + (
        codec.head(6, msg.cbor_tag) if msg.cbor_tag is not None else b"")
    if bytes(token) != prefix + core:
        raise DecodeError("access token: not in preferred CBOR serialization")
    if msg.kind is Kind.SIGN and msg.alg == Alg.ES256 and crypto.high_s(msg.tag):
        parts[3] = codec.bstr(crypto.low_s(msg.tag))  # (r, n - s) verifies too: the token is named by (r, s <= n/2)
    if msg.recipients:  # its unprotected sender key is bound only through the ECDH: named as our AS sends it
        parts[-1] = codec.dumps([[msg.recipients[0].protected_bytes, cose.named_recipient(msg.recipients[0]), b""]])
    if protected != msg.protected_bytes or msg.kind is Kind.SIGN or msg.recipients:
        core = cose.array([codec.bstr(protected), *parts[1:]])
    if tags == "none":
        return core
    cose_tag = codec.head(6, CoseTag.ENCRYPT if msg.recipients else cose.KIND_TAG[msg.kind]) + core
    return codec.head(6, CoseTag.CWT) + cose_tag if tags == "cwt" else cose_tag


def peek_kid(token: bytes) -> bytes | None:
    """The kid naming the token's outer key (a COSE_Encrypt's: its recipient's), or None;
    raises DecodeError if malformed."""
    return open_envelope(token).message.key_id


def verify_token(
    token: bytes,
    keys: KeyLookup,
    *,
    audience: str | None,
    clock: Clock,
    skew: float = DEFAULT_SKEW,
    external_aad: bytes = b"",
    accept: frozenset[Kind] = frozenset(Kind),
) -> AccessTokenClaims:
    """Verify/decrypt ``token`` and check its claims; return them.

    ``audience=None`` skips the aud check (for an AS or a tool, never for an RS).
    """
    msg = open_envelope(token).message
    payload = _open(msg, keys, external_aad, accept)
    inner = _nested(payload)
    # anyone can encrypt to the RS's public key: ECDH-ES authenticates no sender, the inner message must
    if msg.recipients and (inner is None or inner.recipients):
        raise VerificationError("a token encrypted to a public key must carry a signed or MACed token inside")
    if inner is not None:  # RFC 8392 §7.2 step 7: the payload is itself a COSE message
        payload = _open(inner, keys, external_aad, accept)
    claims = AccessTokenClaims.decode(payload)
    check_claims(claims, audience=audience, now=clock(), skew=skew)
    return claims


def _open(msg: CoseMessage, keys: KeyLookup, external_aad: bytes, accept: frozenset[Kind]) -> bytes:
    if msg.kind not in accept:
        raise VerificationError(f"tokens protected by {msg.kind.value} are not accepted here")
    return encrypt.open_with(msg, keys, external_aad=external_aad, what="token")


def _nested(payload: bytes) -> CoseMessage | None:
    if not payload or payload[0] not in (0xD0, 0xD1, 0xD2, 0xD8):
        return None  # claims are a map; tagged COSE starts with a tag head (16/17/18 or 61)
    item = codec.loads(payload, what="nested token")
    if not isinstance(item, cbor2.CBORTag):
        return None
    if item.tag == CoseTag.CWT:
        item = item.value
    return cose.parse(item, what="nested token")


def check_claims(claims: AccessTokenClaims, *, audience: str | None, now: float, skew: float) -> None:
    """RFC 9200 §5.10.1.1 order: exp/nbf (4.01), then aud (4.03)."""
    if claims.exp is not None and now > claims.exp + skew:
        raise ClaimsError("token expired")
    if claims.nbf is not None and now + skew < claims.nbf:
        raise ClaimsError("token not yet valid (nbf)")
    if audience is not None and audience not in claims.audiences:
        raise WrongAudience("token audience does not match")

