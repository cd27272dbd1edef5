"""Token introspection (RFC 9200 §5.9) at the AS, sans I/O.

``IntrospectionEndpoint.handle(payload, requester, content_format)`` answers POST /introspect.
Only a registered RS, authenticated by its OSCORE context with the AS (the requester: the
``RsRecord`` the caller found for the secure channel), may ask; anyone else (an unauthenticated
peer, a client) gets 4.01 invalid_client (RFC 9200 §5.9: the AS authenticates the requesting
entity; §5.8.3 error map). The request is application/ace+cbor ``{11 token, ? 33 token_type_hint}``
(the hint is not needed: the token says what it is).

The AS finds the token's claims

- for a reference token (``TokenPolicy.reference_audiences``): in the store, by the token's RFC
  9770 hash (``ReferenceStore.get_reference``);
- for a self-contained token: by decrypting/verifying it with the *requesting RS's* token key,
  so an RS can never learn what another RS's token says.

The answer is ``{10: true, ...}`` with aud, scope, exp, iat, cti, cnf (for OSCORE tokens the
OSCORE_Input_Material the RS needs to derive the context: the answer travels protected only),
ace_profile, exi, cnonce, iss, sub, nbf as the token carries them; or ``{10: false}`` for a token
that is unknown, malformed, expired, not yet valid, revoked or not for the requesting RS.

Revoked or unknown is decided by the token's identity, never by the bytes presented: a verified
self-contained token is looked up in the token log by its cti (``find_token_by_cti``; for this
audience, issued to its sub) and it is the *logged* token's RFC 9770 hash that is checked against
the TRL. The unprotected parts of a COSE message are not authenticated, so a holder can re-encode
its token (an extra unprotected header, a COSE tag around it) into bytes of another hash; that
must not lift a revocation (RFC 9770 §4: the AS identifies revoked tokens). A token the log does
not hold (never issued here, or its row purged after it expired) is inactive. A reference token is
its own identity (opaque bytes: another encoding is another, unknown, reference). Self-contained
exi tokens (RFC 9200 §5.10.3) carry no exp: the AS answers by the lifetime it logged (issue time
plus the RS's token lifetime, as for the TRL), so a logged token past its ``expires_at`` is
inactive whether or not its row was purged yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ace.authz_server.identity import logged_token, verified_claims
from ace.authz_server.trl import token_hash
from ace.errors import AceError, InvalidClient
from ace.messages import IntrospectionRequest, IntrospectionResponse, require_ace_cbor
from ace.profiles import PROFILES
from ace.store.base import ClientRecord, ReferenceStore, ReferenceToken, RevocationList, RsRecord, RsRegistry, TokenLog
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cwt import MAX_TOKEN_SIZE

log = logging.getLogger(__name__)
Clock = Callable[[], float]
DEFAULT_PATH = "/introspect"
INACTIVE = IntrospectionResponse(active=False)


@dataclass(frozen=True, slots=True)
class IntrospectionResult:
    """The answer and, for logs and tests, the RS that asked."""

    response: IntrospectionResponse
    audience: str


class IntrospectionStore(RsRegistry, ReferenceStore, RevocationList, TokenLog, Protocol):
    """What introspection reads: the RSs, the references, the TRL and the token log."""


class IntrospectionEndpoint:
    def __init__(self, store: IntrospectionStore, *, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def handle(self, payload: bytes, requester: ClientRecord | RsRecord | None,
               content_format: int | None = None) -> IntrospectionResult:
        """POST /introspect from ``requester`` (the authenticated peer's current record, None if
        unauthenticated): the 2.05 answer, or RemoteError (4.01 invalid_client, 4.00, 4.15)."""
        if not isinstance(requester, RsRecord):  # unauthenticated, a client, or an RS not registered (None)
            raise InvalidClient("introspection is for registered resource servers only")
        rs = requester
        require_ace_cbor(content_format)
        request = IntrospectionRequest.decode(payload)
        response = self.introspect(request.token, rs)
        log.info("introspection by %s: %s", rs.audience, "active" if response.active else "inactive")
        return IntrospectionResult(response, rs.audience)

    def introspect(self, token: bytes, rs: RsRecord) -> IntrospectionResponse:
        """What ``rs`` may learn about ``token``: its claims if active and for ``rs``, else inactive."""
        if not token or len(token) > MAX_TOKEN_SIZE:
            return INACTIVE
        h = token_hash(token)
        reference = self.store.get_reference(h)
        logged_hash: bytes | None = h  # a reference token: its bytes are its identity
        if reference is not None:
            claims = self._reference_claims(reference, rs)
        else:
            claims = self._verified(token, rs)
            logged_hash = self._logged_hash(claims, rs) if claims is not None else None
        if claims is None or logged_hash is None or rs.audience not in claims.audiences:
            return INACTIVE
        now = self.clock() * rs.format.per_second  # exp and nbf as this RS's tokens carry them (s or ms)
        if (claims.exp is not None and claims.exp <= now) or (claims.nbf is not None and claims.nbf > now):
            return INACTIVE
        if self.store.is_revoked(logged_hash):  # RFC 9770: the token as issued is on the TRL
            return INACTIVE
        return _response(claims, rs.audience)

    def _reference_claims(self, reference: ReferenceToken, rs: RsRecord) -> AccessTokenClaims | None:
        if reference.audience != rs.audience or (
                reference.expires_at is not None and reference.expires_at <= self.clock()):
            return None
        try:
            return AccessTokenClaims.decode(reference.claims)
        except AceError:
            log.error("the claims stored for a reference token of %s do not decode", rs.audience)
            return None

    def _verified(self, token: bytes, rs: RsRecord) -> AccessTokenClaims | None:
        return verified_claims(token, rs, clock=self.clock)  # self-contained: only the requesting RS's key

    def _logged_hash(self, claims: AccessTokenClaims, rs: RsRecord) -> bytes | None:
        """The RFC 9770 hash of the token as this AS issued and logged it (found by its cti, for
        ``rs``, to its sub), or None: a token this AS does not know is not active."""
        logged = logged_token(self.store, claims, rs.audience)
        if logged is None:
            log.debug("introspection by %s: a valid token whose cti is not in the token log", rs.audience)
            return None
        if logged.expires_at is not None and logged.expires_at <= self.clock():
            return None  # expired as the AS logged it (an exi token carries no exp; its row may linger)
        return logged.token_hash


def profile_of(claims: AccessTokenClaims) -> int | None:
    """The token's ace_profile claim, else what its cnf implies (RFC 9203, 9202, EDHOC profile)."""
    if claims.ace_profile is not None:
        return claims.ace_profile
    return next((n for n, p in PROFILES.items() if p.implied_by_cnf(claims.cnf)), None)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _response(claims: AccessTokenClaims, audience: str) -> IntrospectionResponse:
    return IntrospectionResponse(
        active=True, iss=claims.iss, sub=claims.sub, aud=audience, scope=claims.scope, exp=_int(claims.exp),
        nbf=_int(claims.nbf), iat=_int(claims.iat), cti=claims.cti, cnf=claims.cnf, ace_profile=profile_of(claims),
        cnonce=claims.cnonce, exi=claims.exi,
    )

