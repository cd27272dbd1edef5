"""The RS core's bindings kept and let go, sans I/O: a new token's binding stored, the bindings it
replaces dropped now or once it is first used (RFC 9203 §2, §5, §6; RFC 9200 §6), and the ids and
tokens of the bindings that go released or retired.

Functions over the ``ace.rs.server.ResourceServer`` (``Core``: what they use of it), as
``ace.rs.edhoc``; the token-checking code they call loads with the first token (issue 14).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from ace.errors import RemoteError
from ace.redact import channel as redact_channel
from ace.redact import token as redact_token
from ace.rs.store import BINDING_OVERHEAD, Binding, BindingStore

if TYPE_CHECKING:
    from ace.profiles.ids import RecipientIdPool
    from ace.rs.freshness import Freshness
    from ace.rs.outcomes import AuthzInfoOutcome
    from ace.rs.retired import Retired
    from ace.rs.scopes import Scopes
    from ace.tokens.claims import AccessTokenClaims

log = logging.getLogger(__name__)


class Core(Protocol):
    """What this module uses of ``ace.rs.server.ResourceServer``."""

    bindings: BindingStore
    ids: RecipientIdPool
    retired: Retired
    fresh: Freshness
    scopes: Scopes
    clock: Callable[[], float]

    def _expiry(self, claims: AccessTokenClaims) -> float | None: ...


def supersede(rs: Core, client_key: bytes, claims: AccessTokenClaims, size: int, *,
              also: bytes | None = None) -> tuple[list[Binding], tuple[bytes, ...]]:
    """(bindings to drop now, labels to drop once the new binding is first used).

    /authz-info is unprotected, and an attacker may replay any token it saw (RFC 9200 §6): a
    never-used binding of the same client goes at once unless its token is newer than this one
    (a replayed older token displaces nothing); one in use stays until the new channel protects
    an authorized request, so a replay cannot cut off the channel the client is using. A
    binding with the same label (a DTLS or EDHOC kid, checked newer by the caller) cannot wait
    and goes now. A token whose channel was in use, replaced by a newer one, is never taken again.
    Whether the new binding (``size`` bytes of token) fits is decided first: a refusal (4.13,
    5.03) drops nothing."""
    from ace.rs import tokens as tok
    same_client = rs.bindings.for_client(client_key)
    now = [b for b in same_client if not rs.bindings.used(b.label) and not tok.newer(b.claims, claims)]
    later = tuple(b.label for b in same_client if rs.bindings.used(b.label) and b.label != also)
    same_label = rs.bindings.get(also) if also is not None else None
    if same_label is not None and same_label not in now:
        now.append(same_label)
    rs.bindings.room(size + BINDING_OVERHEAD, rs.clock(), leaving=now)
    for b in now:
        drop(rs, b, retire=rs.bindings.used(b.label) and tok.newer(claims, b.claims))
    return now, later


def store(rs: Core, binding: Binding, dropped: list[Binding], token: bytes) -> AuthzInfoOutcome:
    from ace.rs import tokens as tok
    from ace.rs.outcomes import AuthzInfoOutcome
    binding = replace(binding, cost=len(token) + BINDING_OVERHEAD, claims=tok.kept(binding.claims))
    try:
        purged = rs.bindings.add(binding, rs.clock())
    except RemoteError:  # only if the store changed since supersede made room
        rs.ids.release(binding.label)  # a no-op for labels the pool did not give (DTLS, EDHOC)
        raise
    released(rs, purged)  # the superseded ones were released by drop already
    rs.fresh.remember(binding.claims)
    log.info("accepted %s, scope %r, channel %s", redact_token(token), binding.claims.scope,
             redact_channel(binding.label))
    return AuthzInfoOutcome(binding.response, binding, True, dropped + purged)


def renew(rs: Core, current: Binding, token_hash: bytes, claims: AccessTokenClaims, token: bytes,
          ) -> AuthzInfoOutcome:
    """A newer token on ``current``'s channel (same label): the old token is retired for good, the
    binding takes the new rights and expiry and keeps its in-use mark (RFC 9200 §6)."""
    from ace.rs import tokens as tok
    from ace.rs.outcomes import AuthzInfoOutcome
    rs.retired.retire(current.claims.iss, current.claims.cti, current.expires_at)
    rs.fresh.remember(claims)  # an exi token is taken once (RFC 9200 §5.10.3)
    binding = replace(current, token_hash=token_hash, claims=tok.kept(claims), scope=rs.scopes.usable(claims.scope),
                      expires_at=rs._expiry(claims), cost=len(token) + BINDING_OVERHEAD)
    gone = rs.bindings.replace(binding, rs.clock())
    released(rs, gone)
    return AuthzInfoOutcome(b"", binding, True, gone)


def released(rs: Core, purged: list[Binding]) -> None:
    """Bindings the store let go to make room: their ids are free, their channels go."""
    for b in purged:
        rs.ids.release(b.label)
        if b.expired(rs.clock()):
            rs.fresh.note_expired(b)


def drop(rs: Core, binding: Binding, *, retire: bool = False) -> None:
    """Remove a binding (the caller reports it: its channel goes too); ``retire``: its token is
    never taken again."""
    rs.bindings.remove(binding.label)
    rs.ids.release(binding.label)  # a no-op for DTLS and EDHOC labels (never in the pool)
    if retire:
        rs.retired.retire(binding.claims.iss, binding.claims.cti, binding.expires_at)
