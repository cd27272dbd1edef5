"""Which token this AS issued a presented token is: by its identity, never by its bytes alone.

The unprotected parts of a COSE message are not authenticated, so one self-contained token has
many encodings (an extra unprotected header label, a COSE or CWT tag around it), each with another
RFC 9770 hash. ``verified_claims`` checks a token with one RS's token key (strictly: no clock
skew), and a signed or MACed token the AS nested in an encryption to the RS with a key they share
(OSCORE, ``pop_key_encryption`` shared): the shared key opens the outer COSE_Encrypt0 only, the token
key checks the inner message only (one key, one use: RFC 9052 §7.1); one encrypted to the RS's public
key only the RS reads (its claims are not available here: not active). ``logged_token`` finds the
logged token those claims name (by cti, for that audience, issued to its sub); ``find_issued`` does
both for every registered RS (what ``ace revoke --token`` needs: it does not know the audience),
after the exact hash. A reference token (RFC 9200 §5.9) is opaque: its bytes are its identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ace.errors import AceError
from ace.store.base import IssuedToken, RsRecord, RsRegistry, TokenLog
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.crypto import Kind
from ace.tokens.cwt import KIND_BY_NAME, MAX_TOKEN_SIZE, KeyRing, open_envelope, verify_token
from ace.tokens.encrypt import open_with
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
    try:
        inner = _nested_token(token, rs)
        return verify_token(token if inner is None else inner, KeyRing([rs.token_key], try_all_without_kid=True),
                            audience=rs.audience, clock=clock if scale == 1 else (lambda: clock() * scale),
                            skew=0.0, accept=frozenset({KIND_BY_NAME[rs.token_kind]}))
    except AceError:  # malformed, not ours, not for this RS, expired
        return None


def _nested_token(token: bytes, rs: RsRecord) -> bytes | None:
    """The signed or MACed token inside ``token`` if it is a COSE_Encrypt0 and ``rs`` shares a key with
    the AS (RFC 9203 §3.2), opened with that key (never tried on the inner message); else None."""
    key = rs.encryption_key
    if rs.pop_key_encryption != "shared" or key is None or KIND_BY_NAME[rs.token_kind] is Kind.AEAD:
        return None
    outer = open_envelope(token).message
    if outer.kind is not Kind.AEAD or outer.recipients:
        return None
    return open_with(outer, KeyRing([key], try_all_without_kid=True))


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
