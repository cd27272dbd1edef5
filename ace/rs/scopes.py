"""What a token's scope allows at this RS (RFC 9200 §5.10.1.1, §5.10.2), sans I/O: text scopes
mean what ``RsConfig.scope_meaning`` says (translated to AIF once, in a bounded cache), AIF scopes
(RFC 9237) mean themselves."""

from __future__ import annotations

from collections import OrderedDict

from ace.cbor.scope import AifScope, Scope, ScopeMeaning, TextScope, parse_scope
from ace.errors import InvalidScope

MAX_TEXT_SCOPES = 64  # text scopes whose AIF translation is kept


class Scopes:
    def __init__(self, meaning: ScopeMeaning) -> None:
        self.meaning = meaning
        self._aif: OrderedDict[TextScope, AifScope] = OrderedDict()  # see aif

    def usable(self, raw: str | bytes | None) -> Scope:
        """A token's scope claim, parsed, or 4.00 invalid_scope if it means nothing here."""
        if raw is None:  # RFC 9200 §5.10.1.1: claims the RS cannot process → 4.00
            raise InvalidScope("token has no scope")
        scope = parse_scope(raw)
        if isinstance(scope, TextScope) and not any(t in self.meaning for t in scope.tokens):
            raise InvalidScope("token scope means nothing here")
        return scope

    def aif(self, scope: Scope) -> AifScope:
        """What a scope allows here; text scopes are translated once (a bounded cache shared by
        the bindings with that scope), not on every request."""
        if not isinstance(scope, TextScope):
            return scope
        aif = self._aif.get(scope)
        if aif is None:
            aif = self._aif[scope] = scope.to_aif(self.meaning)
            while len(self._aif) > MAX_TEXT_SCOPES:
                self._aif.popitem(last=False)
        return aif
