"""The RS core's token checks, sans I/O: a POSTed token's canonical form, its claims verified or
stated by the AS (RFC 9200 §5.9, ``resume`` with the AS's answer), and when its binding ends.

Functions over the ``ace.rs.server.ResourceServer`` (``Core``: what they use of it), as
``ace.rs.edhoc``; loaded at start with the RS core, the token-checking code they call (COSE, CWT,
claims, the messages) only with the first token (issue 14: cold start).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from ace.errors import DecodeError, ServiceUnavailable, TokenRefused
from ace.tokens.hashing import token_hash as trl_hash
from ace.tokens.reference import is_reference as reference_form

if TYPE_CHECKING:
    from ace.hints import CreationHints
    from ace.rs.config import RsConfig
    from ace.rs.freshness import Freshness
    from ace.rs.introspection import IntrospectionCache, NeedsIntrospection
    from ace.rs.outcomes import AuthzInfoOutcome
    from ace.rs.retired import Retired
    from ace.tokens.claims import AccessTokenClaims
    from ace.tokens.cwt import KeyLookup

log = logging.getLogger(__name__)
INTROSPECTION_SUCCESS = ((2, 1), (2, 5))  # RFC 9200 §5.9.2: 2.01; 2.05 from ASs that answer Content


class Core(Protocol):
    """What this module uses of ``ace.rs.server.ResourceServer``."""

    config: RsConfig
    keys: KeyLookup
    retired: Retired
    fresh: Freshness
    clock: Callable[[], float]

    @property
    def introspection(self) -> IntrospectionCache: ...
    def hints(self) -> CreationHints: ...
    def authz_info(self, payload: bytes, content_format: int | None = None, *,
                   channel_label: bytes | None = None) -> AuthzInfoOutcome | NeedsIntrospection: ...


def is_reference(rs: Core, token: bytes) -> bool:
    return rs.config.reference_tokens and reference_form(token, rs.config.reference_len)


def canonical(rs: Core, token: bytes) -> bytes:
    """The encoding that names the token (cwt.canonical_token): a re-encoded token is the same
    token for replay and revocation; a reference token is its bytes. Anything else: 4.00."""
    from ace.tokens.cwt import canonical_token
    return token if is_reference(rs, token) else canonical_token(token, rs.config.token_tags)


def verify(rs: Core, token: bytes, h: bytes, *, received: bytes, over_channel: bool = False) -> AccessTokenClaims:
    """The token's claims (``token``: its canonical form, ``h``: its RFC 9770 hash, ``received``:
    the bytes the client sent, what the AS is asked about), checked, or RemoteError."""
    from ace.rs import tokens as tok
    from ace.tokens.cwt import verify_token
    if rs.retired.hash_is_retired(h):  # RFC 9770 §11.1: a revoked token is never accepted again
        raise TokenRefused("access token revoked")
    if rs.config.introspect or is_reference(rs, token):  # (the AS's answer came over our channel with it)
        claims = introspected(rs, h, token, received)
        claims = replace(claims, cnf=tok.open_cnf(claims.cnf, rs.keys, confidential=True))
    else:
        claims = verify_token(token, rs.keys, audience=rs.config.audience, clock=rs.clock,
                              skew=rs.config.skew, accept=rs.config.token_kinds)
        claims = replace(claims, cnf=tok.open_cnf(claims.cnf, rs.keys, confidential=tok.confidential(token)))
    if rs.retired.is_retired(claims.iss, claims.cti):  # revoked, or replaced by a newer token of its client
        raise TokenRefused("access token revoked or replaced")
    if not over_channel:  # an update over the client's channel needs no proof of freshness
        rs.fresh.check_cnonce(claims.cnonce, rs.hints)
    rs.fresh.check_exi(claims)
    if rs.config.require_exi and claims.exi is None:  # RFC 9200 §5.10.3: without a clock, exi bounds it
        raise DecodeError("this node has no real-time clock: the token must carry exi")
    return claims


def introspected(rs: Core, h: bytes, token: bytes, received: bytes) -> AccessTokenClaims:
    """The claims the AS stated for the token (cached), or NeedsIntrospection out of authz_info. The AS is asked
    about the token as the client received it from the AS (RFC 9200 §5.9.1: the token is opaque
    to the RS's transport; an AS may refuse another encoding of it, e.g. without its COSE tag);
    the answer is cached under the canonical token's hash."""
    from ace.tokens.cwt import check_claims
    answer = rs.introspection.get(h, rs.clock())
    if answer is None:
        from ace.rs.introspection import Unanswered

        raise Unanswered(token, received)
    if answer.claims is None:
        raise TokenRefused("access token not active")
    check_claims(answer.claims, audience=rs.config.audience, now=rs.clock(), skew=rs.config.skew)
    return answer.claims


def resume(rs: Core, need: NeedsIntrospection, code: tuple[int, int] | None, payload: bytes) -> AuthzInfoOutcome:
    """``ResourceServer.resume``: the AS's answer cached and ``authz_info`` again, or 5.03."""
    if code in INTROSPECTION_SUCCESS:
        from ace.messages import IntrospectionResponse
        from ace.rs.introspection import NeedsIntrospection
        try:
            response = IntrospectionResponse.decode(payload)
        except DecodeError as exc:
            log.warning("the AS's introspection answer does not decode: %s", exc.description)
        else:
            rs.introspection.put(trl_hash(need.token), response, rs.clock())
            outcome = rs.authz_info(need.posted, need.content_format, channel_label=need.channel_label)
            if isinstance(outcome, NeedsIntrospection):  # cached, but already out of date (its exp)
                raise ServiceUnavailable("introspection raced")
            return outcome
    else:
        log.warning("introspection at the AS failed: %s", "no answer" if code is None else code)
    raise ServiceUnavailable("the AS could not be asked about this token")


def expiry(rs: Core, claims: AccessTokenClaims) -> float | None:
    """When the binding ends: exp (plus the skew that let the token in, else it could arrive
    expired), and at most exi seconds after we first saw it (RFC 9200 §5.10.3)."""
    ends = [float(claims.exp) + rs.config.skew] if claims.exp is not None else []
    if claims.exi is not None:
        ends.append(rs.clock() + claims.exi * rs.config.exi_unit)
    return min(ends) if ends else None
