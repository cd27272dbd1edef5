"""The Resource Owner's policy applied to a token request (RFC 9200 §5.8.1, A/B of the flow).

The granted scope is the intersection of what the client asked for and what the Resource
Owner granted it at that audience; no scope asked for means the grants marked default.
Text scopes intersect by scope-token, AIF scopes path by path and method by method; a
request in one form never matches grants in the other.
"""

from __future__ import annotations

from collections.abc import Sequence

from ace.cbor.scope import AifScope, Scope, TextScope, parse_scope
from ace.errors import InvalidScope
from ace.store.base import Grant


def _union(scopes: Sequence[Scope]) -> Scope | None:
    texts = [s for s in scopes if isinstance(s, TextScope)]
    aifs = [s for s in scopes if isinstance(s, AifScope)]
    if texts and not aifs:
        return TextScope(tuple(dict.fromkeys(t for s in texts for t in s.tokens)))
    if aifs and not texts:
        return AifScope.of(e for s in aifs for e in s.entries)
    return None  # no grants, or mixed forms (resolved per request form below)


def granted_scope(requested: str | bytes | None, grants: Sequence[Grant]) -> str | bytes:
    """The scope to put in the token, or DecodeError invalid_scope (RFC 9200 §5.8.3)."""
    if requested is None:
        defaults = [parse_scope(g.scope) for g in grants if g.default]
        union = _union(defaults)
        if union is None or not union:
            raise InvalidScope("no scope requested and no default grant")
        return union.encode()
    want = parse_scope(requested)
    same_form = [s for s in (parse_scope(g.scope) for g in grants) if type(s) is type(want)]
    have = _union(same_form)
    result = want.intersect(have) if have is not None else None  # type: ignore[arg-type]
    if not result:
        raise InvalidScope("requested scope not granted")
    return result.encode()
