"""Reference tokens and token introspection at the RS (RFC 9200 §5.9), sans I/O.

A token POSTed to /authz-info that is not a COSE structure (a reference token, ``is_reference``;
when ``RsConfig.reference_tokens``: the RS can reach its AS), or any token when the RS is
configured with ``RsConfig.introspect``, is not verified locally: its claims are what the AS
says in answer to an introspection request. The core never does I/O, so the exchange is split in
two steps:

1. ``ResourceServer.authz_info`` returns ``NeedsIntrospection`` (nothing is answered to the client
   yet) carrying the token, the encoded ``IntrospectionRequest`` ``{11: token}`` and the POST to
   resume, when no answer for that token is cached;
2. the I/O layer POSTs ``payload`` to the AS's /introspect over the RS's own secure association
   with the AS and hands the outcome to ``ResourceServer.resume(need, code, payload)``, which
   caches it (a failed exchange is not cached: 5.03 for the client) and carries on with the POST:
   the cached answer now stands in for the token's claims, and the same checks (aud, exp, cnonce,
   exi) and the same binding logic as for a self-contained token follow (every profile alike).

``IntrospectionCache`` keeps answers by the token's RFC 9770 hash, bounded in count (least
recently used first out): an active answer until the token's exp (a token without exp: at most
``default_ttl``), an inactive one for ``inactive_ttl`` seconds only (so a flood of garbage at the
unauthenticated /authz-info costs the AS one request per token and per interval). A revocation
the RS learns from the TRL (``ResourceServer.revoke``) drops the cached answer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ace.errors import ServiceUnavailable

if TYPE_CHECKING:  # the token-checking code comes with the first token
    from ace.messages import IntrospectionResponse
    from ace.tokens.claims import AccessTokenClaims

DEFAULT_MAX_ENTRIES = 256
INACTIVE_TTL = 10.0  # seconds an inactive answer is remembered
DEFAULT_TTL = 300.0  # seconds an active answer without exp is remembered (at most)


@dataclass(frozen=True, slots=True)
class NeedsIntrospection:
    """``authz_info``'s answer when the AS must be asked about the token first (step 1)."""

    token: bytes  # its canonical form: the answer is cached under its hash
    # application/ace+cbor for the AS: about the token as the client posted it (as the AS issued it)
    payload: bytes
    posted: bytes  # the POST /authz-info to resume: its payload, Content-Format and channel label
    content_format: int | None
    channel_label: bytes | None


def claims_of(response: IntrospectionResponse) -> AccessTokenClaims:
    """The token claims an active introspection answer states."""
    from ace.tokens.claims import AccessTokenClaims

    return AccessTokenClaims(
        iss=response.iss, sub=response.sub, aud=response.aud, exp=response.exp, nbf=response.nbf,
        iat=response.iat, cti=response.cti, cnf=response.cnf, scope=response.scope,
        ace_profile=None if response.ace_profile is None else int(response.ace_profile),
        cnonce=response.cnonce, exi=response.exi,
    )


@dataclass(frozen=True, slots=True)
class Answer:
    claims: AccessTokenClaims | None  # None: the AS said inactive
    until: float  # RS clock


class IntrospectionCache:
    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, *, inactive_ttl: float = INACTIVE_TTL,
                 default_ttl: float = DEFAULT_TTL) -> None:
        if max_entries < 1:
            raise ValueError("the cache must hold at least one answer")
        self.max_entries, self.inactive_ttl, self.default_ttl = max_entries, inactive_ttl, default_ttl
        self._answers: OrderedDict[bytes, Answer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, token_hash: bytes, now: float) -> Answer | None:
        answer = self._answers.get(token_hash)
        if answer is None:
            return None
        if now >= answer.until:
            del self._answers[token_hash]
            return None
        self._answers.move_to_end(token_hash)
        return answer

    def put(self, token_hash: bytes, response: IntrospectionResponse, now: float) -> Answer:
        if response.active:
            claims = claims_of(response)
            until = float(claims.exp) if claims.exp is not None else now + self.default_ttl
            answer = Answer(claims, until)
        else:
            answer = Answer(None, now + self.inactive_ttl)
        self._answers.pop(token_hash, None)
        self._answers[token_hash] = answer
        if len(self._answers) > self.max_entries:
            self.purge(now)
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)
        return answer

    def forget(self, token_hash: bytes) -> None:
        self._answers.pop(token_hash, None)

    def purge(self, now: float) -> int:
        gone = [h for h, a in self._answers.items() if now >= a.until]
        for h in gone:
            del self._answers[h]
        return len(gone)


class Unanswered(Exception):  # control flow inside ResourceServer.authz_info: never raised out of it
    def __init__(self, token: bytes, sent: bytes) -> None:
        super().__init__()
        self.token, self.sent = token, sent


@contextmanager
def no_introspection() -> Iterator[None]:
    """Inside EDHOC there is no waiting for the AS: a token that needs introspection is 5.03."""
    try:
        yield
    except Unanswered:
        raise ServiceUnavailable("the AS must be asked about this token first") from None
