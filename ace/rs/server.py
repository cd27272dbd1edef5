"""The RS core: POST /authz-info and access decisions for every profile, sans I/O.

``authz_info`` (RFC 9200 §5.10.1) verifies the token and binds it to a secure channel; how a token
binds is its profile's (``ace.profiles``: the RFC 9203 §4.1 request map with N1 and the client's
Recipient ID for OSCORE, the token itself for DTLS, RFC 9202 §3.3, and EDHOC); the profiles this RS
offers are ``RsConfig.profiles``. A token for the same client or PoP key replaces the older binding;
a retransmitted POST gets the same answer and changes nothing; a token POSTed over an existing
channel updates that channel's rights when it is bound to the same key (RFC 9203 §4.1, RFC 9202
§3.4). ``authorize`` decides a request from the label of the channel that protected it: none,
unknown or expired → 4.01 with AS Request Creation Hints (RFC 9200 §5.3); resource not in scope →
4.03; method not in scope → 4.05 (§5.10.2). Every call returns what it dropped (``dropped`` of its
outcome, of ``AccessDenied``, or the list ``revoke`` and ``sweep`` return): the I/O layer installs
``binding.context`` and removes those bindings' channels. Reference tokens (and every token with
``RsConfig.introspect``) are introspected at the AS: ``authz_info`` returns ``NeedsIntrospection``,
the I/O layer asks the AS and hands the answer to ``resume`` (``ace.rs.introspection``). The token
checks are ``ace.rs.verify``'s, the bindings kept and let go ``ace.rs.storing``'s.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ace.cbor.labels import AceProfile, ContentFormat
from ace.cbor.scope import method_bit
from ace.errors import (
    FORBIDDEN,
    UNAUTHORIZED,
    DecodeError,
    TokenRefused,
    UnsupportedContentFormat,
    UnsupportedPopKey,
)
from ace.hints import CreationHints  # a 4.01's hints: at start (the rest of ace.messages: on the first token)
from ace.profiles import PROFILES
from ace.profiles.edhoc_presets import preset
from ace.profiles.ids import RecipientIdPool
from ace.redact import channel as redact_channel
from ace.redact import token as redact_token
from ace.rs import storing, verify  # light at start: the token-checking code loads inside them
from ace.rs.config import RsConfig
from ace.rs.denied import AccessDenied
from ace.rs.freshness import Freshness
from ace.rs.retired import MAX_REVOKED, Retired
from ace.rs.scopes import Scopes
from ace.rs.store import Binding, BindingStore
from ace.tokens.hashing import token_hash as trl_hash

if TYPE_CHECKING:  # the token-checking code is imported on the first token (issue 14: cold start)
    from ace.messages import AuthzInfoRequest
    from ace.profiles import Channel
    from ace.profiles.base import RsProfile
    from ace.profiles.edhoc_presets import EdhocCodePoints
    from ace.rs import edhoc
    from ace.rs.introspection import IntrospectionCache, NeedsIntrospection
    from ace.rs.outcomes import Access, AuthzInfoOutcome
    from ace.store.base import SequenceNumberStore
    from ace.tokens.claims import AccessTokenClaims
    from ace.tokens.cnf import Cnf
    from ace.tokens.cwt import KeyLookup

log = logging.getLogger(__name__)
METHOD_NOT_ALLOWED = (4, 5)
__all__ = ["MAX_REVOKED", "ResourceServer", "RsConfig"]  # outcomes: ace.rs.outcomes, ace.rs.introspection


class ResourceServer:
    def __init__(self, config: RsConfig, keys: KeyLookup, *, clock: Callable[[], float],
                 rng: Callable[[int], bytes] = secrets.token_bytes, state: SequenceNumberStore | None = None) -> None:
        self.config, self.keys, self.clock, self.rng = config, keys, clock, rng
        self.bindings = BindingStore(config.max_tokens, config.max_bytes)
        self.ids = RecipientIdPool(rng)  # labels the RS picks (OSCORE's ID2), one space with EDHOC's C_R
        self.retired = Retired()  # revoked and replaced tokens, never taken again
        self.scopes = Scopes(config.scope_meaning)
        self.fresh = Freshness(config.rs_id or config.audience, clock=clock, rng=rng, state=state,
                               cnonce_lifetime=config.cnonce_lifetime if config.cnonce else None)
        self._offered = frozenset(config.profiles)

    @functools.cached_property
    def introspection(self) -> IntrospectionCache:
        """The AS's answers (ace.rs.introspection), made on first use."""
        from ace.rs.introspection import IntrospectionCache
        return IntrospectionCache()

    @functools.cached_property
    def _request_form(self) -> RsProfile:
        """The RFC 9203 §4.1 map's profile (the EDHOC profile's token travels in EDHOC, not in such a
        map); loaded on the first token, not at start."""
        return PROFILES[int(AceProfile.COAP_OSCORE)]

    @functools.cached_property
    def _offers_bare(self) -> bool:
        return any(PROFILES[n].bare_token for n in self._offered if n in PROFILES)

    @functools.cached_property
    def _bare(self) -> list[RsProfile]:
        """The profiles that take a bare token, by its cnf (loaded on the first bare token)."""
        return [p for p in PROFILES.values() if p.bare_token]

    # -- E: POST /authz-info ------------------------------------------------------------

    def authz_info(self, payload: bytes, content_format: int | None = None, *,
                   channel_label: bytes | None = None) -> AuthzInfoOutcome | NeedsIntrospection:
        """POST /authz-info. ``channel_label``: the binding whose secure channel (OSCORE context,
        DTLS session, EDHOC-made context) protected the POST, None when it came unprotected.
        NeedsIntrospection: the AS must be asked about the token first (then ``resume``)."""
        from ace.rs import tokens as tok
        from ace.rs.introspection import Unanswered

        if tok.carries_updated_rights(payload, content_format, self.config.updated_rights_key):
            raise DecodeError("updated_rights only in a POST protected by the AS")  # WF §3.7.1: else 4.00
        try:
            if channel_label is not None:
                return self._update(payload, content_format, channel_label)
            return self._authz_info(payload, content_format)
        except Unanswered as ask:
            from ace.messages import IntrospectionRequest
            from ace.rs.introspection import NeedsIntrospection
            return NeedsIntrospection(ask.token, IntrospectionRequest(token=ask.sent).encode(),
                                      payload, content_format, channel_label)

    def resume(self, need: NeedsIntrospection, code: tuple[int, int] | None, payload: bytes) -> AuthzInfoOutcome:
        """``authz_info`` again, with the AS's answer to ``need.payload`` (``code`` None: no answer
        came): a success with an introspection response is cached and stands in for the token's
        claims; anything else is not cached, and is 5.03 for the client (the RS cannot decide now).
        RFC 9200 §5.9.2 answers 2.01 (Created); 2.05 (Content), as some ASs send, is taken too."""
        return verify.resume(self, need, code, payload)

    def _authz_info(self, payload: bytes, content_format: int | None) -> AuthzInfoOutcome:
        from ace.rs import tokens as tok
        if content_format not in (None, ContentFormat.ACE_CBOR, ContentFormat.CWT):  # RFC 9203 §4.1, RFC 9202
            raise UnsupportedContentFormat("content format must be application/ace+cbor or application/cwt")
        posted = tok.posted_token(payload, content_format, raw_profiles=self._offers_bare)
        if isinstance(posted, bytes):
            return self._bind(posted, None)  # RFC 9202 §3.3 / RFC 9200 §5.10.1: the token itself
        self._offer(self._request_form).rs_check_request(posted)
        return self._bind(posted.access_token, posted)

    def _offer(self, profile: RsProfile) -> RsProfile:
        if profile.number not in self._offered:
            raise profile.rs_refusal()
        return profile

    def _bare_profile(self, cnf: Cnf | None) -> RsProfile:
        """The profile a bare token is for: the one that takes its cnf (a COSE_Key: symmetric for
        DTLS, RFC 9202 §3.3; the client's public key for EDHOC)."""
        profile = next((p for p in self._bare if p.rs_takes(cnf)), None)
        if profile is None:
            raise UnsupportedPopKey("token cnf holds no COSE_Key")
        return self._offer(profile)

    def _bind(self, received: bytes, request: AuthzInfoRequest | None) -> AuthzInfoOutcome:
        """A new token over no channel yet: its profile turns its PoP key into one."""
        from ace.rs import tokens as tok
        from ace.rs.outcomes import AuthzInfoOutcome
        token = self._canonical(received)
        token_hash = trl_hash(token)
        nonce1 = b"" if request is None else request.nonce1
        now = self.clock()
        live = [b for b in self.bindings.by_token_hash(token_hash) if not b.expired(now)]
        if request is None and live:  # the same bare token again (however bound): nothing changes
            return AuthzInfoOutcome(b"", live[-1], False, [])
        for known in live:
            if known.nonce1 == nonce1:
                return AuthzInfoOutcome(known.response, known, False, [])  # POST retransmitted: same answer
        claims = self._verify(token, token_hash, received=received)
        profile = self._request_form if request is not None else self._bare_profile(claims.cnf)
        pop = profile.rs_pop(claims.cnf, request, self._live_channel)
        scope = self.scopes.usable(claims.scope)
        client_key = tok.client_key(claims.sub, pop.client)
        if pop.label is not None and (same := self._rebind(pop.label, client_key, claims)) is not None:
            return AuthzInfoOutcome(b"", same, False, [])  # the same token (cti), however encoded: no change
        # RFC 9203 §2, §5, §6: a token for the same PoP key or the same client (sub) replaces the old one
        dropped, later = self._supersede(client_key, claims, len(token), also=pop.label)
        opened = pop.open(self.ids, self.rng)
        binding = Binding(label=opened.label, token_hash=token_hash, claims=claims, scope=scope,
                          expires_at=self._expiry(claims), nonce1=nonce1, response=opened.response,
                          context=opened.channel, client_key=client_key, pop_id=pop.pop_id, supersedes=later)
        return self._store(binding, dropped, token)

    def _live_channel(self, label: bytes) -> Channel | None:
        current = self.bindings.get(label)
        return current.context if current is not None and not current.expired(self.clock()) else None

    def _rebind(self, label: bytes, client_key: bytes, claims: AccessTokenClaims) -> Binding | None:
        """A key that names its label (DTLS, EDHOC) and is bound already: the live binding if this is
        its token again, None if this token may replace it, else 4.01."""
        from ace.rs import tokens as tok
        current = self.bindings.get(label)  # the same PoP key
        if current is None or current.expired(self.clock()):
            return None
        if current.client_key != client_key:  # a key in use is another client's to replace, never ours
            raise TokenRefused("this key is bound to another client")
        if tok.same_token(claims, current.claims):
            return current
        if not tok.newer(claims, current.claims):  # issue 17: a key in use moves only to a newer token
            raise TokenRefused("not newer than the token of this key")
        return None

    def _update(self, payload: bytes, content_format: int | None, label: bytes) -> AuthzInfoOutcome:
        """A new token over the channel of an existing one: same PoP key, new rights
        (RFC 9203 §4.1: protected POST, kid = the OSCORE material id; RFC 9202 §3.4)."""
        from ace.rs import tokens as tok
        from ace.rs.outcomes import AuthzInfoOutcome
        current = self.bindings.get(label)
        if current is None or current.expired(self.clock()):
            raise TokenRefused("no live token for this channel")
        if getattr(current.context, "session_id", None) is not None:  # an EDHOC session's channel
            from ace.rs import edhoc  # the EDHOC profile's: loaded for its first token only

            return edhoc.update_edhoc_token(self, payload, content_format, label)  # EP §4.6
        received = tok.token_of(payload, content_format)
        token = self._canonical(received)
        token_hash = trl_hash(token)
        if token_hash == current.token_hash:  # the same token again: its window (exi) does not move
            return AuthzInfoOutcome(b"", current, False, [])
        claims = self._verify(token, token_hash, received=received, over_channel=True)
        if not tok.same_pop_key(claims.cnf, current):  # RFC 9203 §4.1: the kid MUST match; else 4.01
            raise TokenRefused("the new token is not bound to this channel's key")
        if tok.same_token(claims, current.claims):
            return AuthzInfoOutcome(b"", current, False, [])
        outcome = self._renew(current, token_hash, claims, token)
        log.info("updated the rights of channel %s: %s, scope %r", redact_channel(label), redact_token(token),
                 claims.scope)
        return outcome

    # -- EDHOC profile: the token in EDHOC (ace.rs.edhoc; ``points`` None: RsConfig.edhoc_preset) ------

    def accept_edhoc_token(self, token: bytes, id_cred_i: bytes | Mapping[Any, Any],
                           points: EdhocCodePoints | None = None) -> edhoc.EdhocAccept:
        """EP §4.2: the EAD token checked for ID_CRED_I; stored by ``commit_edhoc`` after message_3 verifies."""
        from ace.rs.introspection import no_introspection

        with no_introspection():
            from ace.rs import edhoc

            return edhoc.accept_edhoc_token(self, token, id_cred_i, points or preset(self.config.edhoc_preset))

    def commit_edhoc(self, accept: edhoc.EdhocAccept) -> AuthzInfoOutcome:
        from ace.rs import edhoc

        return edhoc.commit_edhoc(self, accept)

    def accept_session_id(self, session_id: bytes, id_cred_i: bytes | Mapping[Any, Any]) -> edhoc.EdhocAccept:
        from ace.rs import edhoc

        return edhoc.accept_session_id(self, session_id, id_cred_i)

    def upload_edhoc_token(self, payload: bytes, content_format: int | None,
                           points: EdhocCodePoints | None = None) -> AuthzInfoOutcome:
        """WF §3.7: POST /authz-info protected by the AS."""
        from ace.rs.introspection import no_introspection

        with no_introspection():
            from ace.rs import edhoc

            return edhoc.upload_edhoc_token(self, payload, content_format, points or preset(self.config.edhoc_preset),
                                            updated_rights_key=self.config.updated_rights_key)

    def update_edhoc_token(self, payload: bytes, content_format: int | None, channel_label: bytes,
                           ) -> AuthzInfoOutcome:
        """EP §4.6: protected POST /authz-info over an EDHOC-derived context."""
        from ace.rs.introspection import no_introspection

        with no_introspection():
            from ace.rs import edhoc

            return edhoc.update_edhoc_token(self, payload, content_format, channel_label)

    # -- the token checks (ace.rs.verify) and bindings kept (ace.rs.storing), ace.rs.edhoc's too --------

    def _canonical(self, token: bytes) -> bytes:
        return verify.canonical(self, token)

    def _verify(self, token: bytes, h: bytes, *, received: bytes, over_channel: bool = False) -> AccessTokenClaims:
        return verify.verify(self, token, h, received=received, over_channel=over_channel)

    def _expiry(self, claims: AccessTokenClaims) -> float | None:
        return verify.expiry(self, claims)

    def _supersede(self, client_key: bytes, claims: AccessTokenClaims, size: int, *,
                   also: bytes | None = None) -> tuple[list[Binding], tuple[bytes, ...]]:
        return storing.supersede(self, client_key, claims, size, also=also)

    def _store(self, binding: Binding, dropped: list[Binding], token: bytes) -> AuthzInfoOutcome:
        return storing.store(self, binding, dropped, token)

    def _renew(self, current: Binding, token_hash: bytes, claims: AccessTokenClaims, token: bytes) -> AuthzInfoOutcome:
        return storing.renew(self, current, token_hash, claims, token)

    def _drop(self, binding: Binding, *, retire: bool = False) -> None:
        storing.drop(self, binding, retire=retire)

    # -- F: access to resources ---------------------------------------------------------

    def hints(self) -> CreationHints:
        c = self.config
        return CreationHints(as_uri=c.as_uri, audience=c.audience, scope=c.hint_scope, cnonce=self.fresh.new_cnonce())

    def authorize(self, label: bytes | None, path: str, method: str | int) -> Access:
        """The binding that allows ``method`` on ``path``, or AccessDenied (with the binding dropped
        if it expired)."""
        binding = self.bindings.get(label) if label is not None else None
        if binding is None:  # RFC 9200 §5.10.2: no valid token → 4.01 with creation hints
            raise AccessDenied("no valid access token", coap_code=UNAUTHORIZED, hints=self.hints())
        if binding.expired(self.clock()):
            self.fresh.note_expired(binding)
            self._drop(binding)
            raise AccessDenied("access token expired", coap_code=UNAUTHORIZED, hints=self.hints(), dropped=(binding,))
        aif = self.scopes.aif(binding.scope)
        path = path if path.startswith("/") else "/" + path
        try:
            method_bit(method)
        except ValueError:  # not a request method AIF can name: never in any scope
            raise self._out_of_scope("method", METHOD_NOT_ALLOWED) from None
        if not any(p == path for p, _ in aif.entries):  # RFC 9200 §5.10.2: resource not covered
            raise self._out_of_scope("resource", FORBIDDEN)
        if not aif.allows(path, method):  # RFC 9200 §5.10.2: action not covered
            raise self._out_of_scope("method", METHOD_NOT_ALLOWED)
        from ace.rs.outcomes import Access
        if not self.bindings.mark_used(binding.label):
            return Access(binding)
        from ace.rs import tokens as tok
        dropped = []  # first use: the channels it replaces go now
        for old in binding.supersedes:
            gone = self.bindings.get(old)
            if gone is not None:
                self._drop(gone, retire=tok.newer(binding.claims, gone.claims))
                dropped.append(gone)
        return Access(binding, tuple(dropped))

    def _out_of_scope(self, what: str, code: tuple[int, int]) -> AccessDenied:
        """4.03 / 4.05 (RFC 9200 §5.10.2, which fixes no payload): the AS Request Creation Hints
        (§5.3) as payload, where to get a token with more rights; RFC 9202 §4 expects hints in such
        error responses, and clients that read them as CBOR (ace-java) fail on a text payload.
        The answer is protected by the client's channel (RFC 9203 §7: detail is fine there)."""
        return AccessDenied(f"{what} not in the token's scope", coap_code=code, hints=self.hints())

    def revoke(self, hashes: Iterable[bytes]) -> list[Binding]:
        """RFC 9770 §11.1: the AS listed these token hashes (its TRL): the bindings of those tokens go
        (returned: their channels go too) and the tokens are refused from now on, while unexpired."""
        gone: list[Binding] = []
        for h in hashes:
            bindings = self.bindings.by_token_hash(h)  # the token POSTed twice: every binding goes
            for binding in bindings:
                self._drop(binding, retire=True)  # by cti too: no other encoding of it gets in
            gone += bindings
            self.introspection.forget(h)  # a cached "active" must not let it in again
            # no binding, unknown expiry (None): kept until the bound pushes it out
            self.retired.revoked_hash(h, bindings[-1].expires_at if bindings else None)
        if gone:
            log.info("dropped %d revoked token(s)", len(gone))
        return gone

    def live_labels(self) -> set[bytes]:
        return {b.label for b in self.bindings}

    def sweep(self) -> list[Binding]:
        """Drop expired bindings; their contexts must go too."""
        gone = self.bindings.purge_expired(self.clock())
        for b in gone:
            self.ids.release(b.label)
            self.fresh.note_expired(b)
        now = self.clock()
        self.retired.purge(now)  # expired: refused as such anyway
        if "introspection" in self.__dict__:  # made: an answer was cached
            self.introspection.purge(now)
        return gone
