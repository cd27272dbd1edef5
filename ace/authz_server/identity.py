"""Which token this AS issued a presented token is: by its identity, never by its bytes alone.

The unprotected parts of a COSE message are not authenticated, so one self-contained token has
many encodings (an extra unprotected header label, a COSE or CWT tag around it), each with another
RFC 9770 hash. ``verified_claims`` checks a token with one RS's token key (strictly: no clock
skew), and a signed token the AS nested in an encryption to the RS with a key they share (OSCORE,
``pop_key_encryption`` shared); one encrypted to the RS's public key only the RS reads (its
claims are not available here: not active). ``logged_token`` finds the logged token those claims
name (by cti, for that audience, issued to its sub); ``find_issued`` does both for every
registered RS (what ``ace revoke --token`` needs: it does not know the audience), after the
exact hash. A reference token (RFC 9200 §5.9) is opaque:
its bytes are its identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ace.errors import AceError
from ace.store.base import IssuedToken, RsRecord, RsRegistry, TokenLog
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.crypto import Kind
from ace.tokens.cwt import KIND_BY_NAME, MAX_TOKEN_SIZE, KeyRing, verify_token
from ace.tokens.hashing import token_hash

Clock = Callable[[], float]


class TokenLookup(TokenLog, RsRegistry, Protocol):
    """What ``find_issued`` reads: the token log, and the RSs whose keys may verify a token."""


def verified_claims(token: bytes, rs: RsRecord, *, clock: Clock) -> AccessTokenClaims | None:
    """The claims of ``token`` if it verifies with ``rs``'s token key, is for ``rs`` and unexpired
    (its exp read in the unit of ``rs``'s token format)."""
    if not token or len(token) > MAX_TOKEN_SIZE:
        return None
    scale = rs.format.per_second  # exp in the RS's unit (its TokenFormat)
    keys, kinds = [rs.token_key], {KIND_BY_NAME[rs.token_kind]}
    if rs.token_kind == "sign1" and rs.pop_key_encryption == "shared" and rs.encryption_key is not None:
        keys.append(rs.encryption_key)  # the outer COSE_Encrypt0 of a nested token (never a MAC key here)
        kinds.add(Kind.AEAD)
    try:
        return verify_token(token, KeyRing(keys, try_all_without_kid=True), audience=rs.audience,
                            clock=clock if scale == 1 else (lambda: clock() * scale), skew=0.0,
                            accept=frozenset(kinds))
    except AceError:  # malformed, not ours, not for this RS, expired
        return None


def logged_token(store: TokenLog, claims: AccessTokenClaims, audience: str) -> IssuedToken | None:
    """The logged token ``claims`` (verified, for ``audience``) name: same cti, audience and client."""
    logged = store.find_token_by_cti(claims.cti) if claims.cti else None
    if logged is None or logged.audience != audience or (claims.sub is not None and claims.sub != logged.client_id):
        return None
    return logged


def find_issued(store: TokenLookup, token: bytes, *, clock: Clock) -> IssuedToken | None:
    """The logged token ``token`` is: the one with its exact RFC 9770 hash, else the one a
    self-contained token verified with some registered RS's key names (another encoding of it)."""
    found = store.find_tokens_by_hash([token_hash(token)])
    if found:
        return found[0]
    for rs in store.list_rs():
        claims = verified_claims(token, rs, clock=clock)
        logged = logged_token(store, claims, rs.audience) if claims is not None else None
        if logged is not None:
            return logged
    return None
