"""The RS core: POST /authz-info and access decisions for both profiles, sans I/O.

``authz_info`` (RFC 9200 §5.10.1) verifies the token and binds it to a secure channel:
OSCORE (RFC 9203 §4.1–4.3: an ace+cbor map with N1 and the client's Recipient ID; we pick
N2 and our Recipient ID and derive the context) or DTLS (RFC 9202 §3.3: the token itself;
its symmetric cnf key becomes the PSK, its kid the psk_identity). A token for the same
client or PoP key replaces the older binding; a retransmitted POST gets the same answer and
changes nothing; a token POSTed over an existing channel updates that channel's rights when
it is bound to the same key (RFC 9203 §4.1, RFC 9202 §3.4). ``authorize`` decides a request
from the label of the channel that protected it: none, unknown or expired → 4.01 with AS
Request Creation Hints (RFC 9200 §5.3); resource not in scope → 4.03; method not in scope
→ 4.05 (§5.10.2). The I/O layer installs ``binding.context`` and removes the channels of
the bindings the core reports gone (``dropped``, ``sweep``). Reference tokens (and every token
with ``RsConfig.introspect``) are introspected at the AS: ``authz_info`` raises
``NeedsIntrospection``, the I/O layer asks the AS and hands the answer to ``introspected``, then
calls ``authz_info`` again (``ace.rs.introspection``).
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from ace.cbor.labels import AceProfile, ContentFormat
from ace.cbor.messages import AuthzInfoRequest, AuthzInfoResponse, CreationHints, IntrospectionResponse
from ace.cbor.scope import AifScope, Scope, ScopeMeaning, TextScope, method_bit, parse_scope
from ace.errors import (
    FORBIDDEN,
    UNAUTHORIZED,
    DecodeError,
    ErrorCode,
    RemoteError,
    ServiceUnavailable,
    TokenRefused,
    UnsupportedContentFormat,
)
from ace.profiles import dtls, edhoc, oscore
from ace.redact import channel as redact_channel
from ace.redact import token as redact_token
from ace.rs import tokens as tok
from ace.rs.denied import AccessDenied
from ace.rs.freshness import Freshness
from ace.rs.introspection import REFERENCE_LEN, IntrospectionCache, NeedsIntrospection, is_reference
from ace.rs.retired import MAX_REVOKED, Retired
from ace.rs.store import BINDING_OVERHEAD, DEFAULT_MAX_BYTES, DEFAULT_MAX_TOKENS, Binding, BindingStore
from ace.store.base import SequenceNumberStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, OscoreCnf
from ace.tokens.crypto import Kind
from ace.tokens.cwt import DEFAULT_SKEW, KeyLookup, canonical_token, check_claims, verify_token
from ace.tokens.hashing import token_hash as trl_hash
from ace.tokens.keys import CoseKey

log = logging.getLogger(__name__)
METHOD_NOT_ALLOWED = (4, 5)
INTROSPECTION_SUCCESS = ((2, 1), (2, 5))  # RFC 9200 §5.9.2: 2.01; 2.05 from ASs that answer Content
__all__ = ["MAX_REVOKED", "AuthzInfoOutcome", "ResourceServer", "RsConfig"]
MAX_TEXT_SCOPES = 64  # text scopes whose AIF translation is kept


@dataclass(frozen=True, slots=True, kw_only=True)
class RsConfig:
    audience: str
    as_uri: str  # "AS" of the creation hints: where to ask for a token
    scope_meaning: ScopeMeaning = field(default_factory=dict)  # text scope-token -> AIF entries
    hint_scope: str | bytes | None = None  # scope suggested in creation hints
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_bytes: int = DEFAULT_MAX_BYTES
    skew: float = DEFAULT_SKEW
    profiles: tuple[int, ...] = (AceProfile.COAP_OSCORE,)  # what this RS's transport offers
    cnonce: bool = False  # RFC 9200 §5.3.1: hints carry a fresh cnonce; tokens must echo one, once
    rs_id: str | None = None  # our id in exi tokens' cti (RFC 9200 §5.10.3); None: the audience
    exi_unit: float = 1.0  # seconds per exi unit: RFC 9200 says seconds; 0.001 for peers using ms
    cnonce_lifetime: float = 300.0  # seconds a cnonce stays fresh
    # what the AS issues for us: a symmetric token key must not double as a MAC key (alg confusion)
    token_kinds: frozenset[Kind] = frozenset({Kind.AEAD, Kind.SIGN})
    # RFC 9200 §5.9: tokens that are not COSE are reference tokens, their claims from the AS (the I/O
    # layer must be able to ask it); with ``introspect`` every token's claims are
    reference_tokens: bool = False
    introspect: bool = False
    reference_len: int | None = REFERENCE_LEN  # bytes of the AS's reference tokens (None: any length)
    token_tags: str = "none"  # the tags the AS's tokens come with (cwt.TOKEN_TAGS): their hash is of that form


@dataclass(frozen=True, slots=True)
class AuthzInfoOutcome:
    payload: bytes  # the 2.01 body
    binding: Binding
    new: bool  # False: a retransmission answered from the stored binding
    dropped: list[Binding]  # bindings whose contexts the I/O layer must remove now


class ResourceServer:
    def __init__(self, config: RsConfig, keys: KeyLookup, *, clock: Callable[[], float],
                 rng: Callable[[int], bytes] = secrets.token_bytes, state: SequenceNumberStore | None = None) -> None:
        self.config, self.keys, self.clock, self.rng = config, keys, clock, rng
        self.bindings = BindingStore(config.max_tokens, config.max_bytes)
        self.ids = oscore.RecipientIdPool(rng)
        self._dropped: list[Binding] = []
        self.retired = Retired()  # revoked and replaced tokens, never taken again
        self._aif: OrderedDict[TextScope, AifScope] = OrderedDict()  # see _as_aif
        self.introspection = IntrospectionCache()  # the AS's answers (ace.rs.introspection)
        self.fresh = Freshness(config.rs_id or config.audience, clock=clock, rng=rng, state=state,
                               cnonce_lifetime=config.cnonce_lifetime if config.cnonce else None)

    # -- E: POST /authz-info ------------------------------------------------------------

    def authz_info(self, payload: bytes, content_format: int | None = None, *,
                   channel_label: bytes | None = None) -> AuthzInfoOutcome:
        """POST /authz-info. ``channel_label``: the binding whose secure channel (OSCORE context
        or DTLS session) protected the POST, None when it came unprotected."""
        if channel_label is not None:
            return self._update(payload, content_format, channel_label)
        if content_format not in (None, ContentFormat.ACE_CBOR, ContentFormat.CWT):  # RFC 9203 §4.1, RFC 9202
            raise UnsupportedContentFormat("content format must be application/ace+cbor or application/cwt")
        raw = tok.raw_token(payload, content_format, raw_profiles=self._offers_raw)
        if raw is not None:
            return self._authz_info_raw(raw)  # RFC 9202 §3.3 / RFC 9200 §5.10.1: the token itself
        return self._authz_info_oscore(AuthzInfoRequest.decode(payload))

    @property
    def _offers_raw(self) -> bool:
        """Whether a profile that takes the bare token (DTLS, EDHOC) is on offer."""
        return bool({AceProfile.COAP_DTLS, AceProfile.COAP_EDHOC_OSCORE} & set(self.config.profiles))

    def _authz_info_oscore(self, request: AuthzInfoRequest) -> AuthzInfoOutcome:
        if AceProfile.COAP_OSCORE not in self.config.profiles:
            raise DecodeError("this RS does not offer the OSCORE profile")
        oscore.check_nonce(request.nonce1, "nonce1")
        oscore.check_recipient_id(request.ace_client_recipientid, "ace_client_recipientid")
        token = self._canonical(request.access_token)
        token_hash = trl_hash(token)
        for known in self.bindings.by_token_hash(token_hash):
            if known.nonce1 == request.nonce1 and not known.expired(self.clock()):
                return AuthzInfoOutcome(known.response, known, False, [])  # POST retransmitted: same answer
        claims = self._verify(token, token_hash, received=request.access_token)
        if not isinstance(claims.cnf, OscoreCnf):  # RFC 9203 §4.1: the token must carry osc
            raise DecodeError("token cnf is not an OSCORE_Input_Material")
        material = claims.cnf.material
        id_limit = oscore.validate_material(material)
        oscore.check_recipient_id(request.ace_client_recipientid, "ace_client_recipientid", id_limit)
        scope = self._usable_scope(claims.scope)
        # RFC 9203 §2, §5, §6: a context derived from a token for the same PoP key (the same
        # OSCORE_Input_Material, reposted or not) or for the same client (sub) replaces the old one
        client_key = tok.client_key(claims.sub, b"osc:" + material.id)
        dropped, later = self._supersede(client_key, claims)
        server_rid = self.ids.allocate(avoid=request.ace_client_recipientid, max_len=id_limit)
        nonce2 = self.rng(oscore.NONCE_LEN)
        params = oscore.derive(material, nonce1=request.nonce1, nonce2=nonce2,
                               sender_id=request.ace_client_recipientid, recipient_id=server_rid)
        response = AuthzInfoResponse(nonce2=nonce2, ace_server_recipientid=server_rid).encode()
        binding = Binding(label=server_rid, token_hash=token_hash, claims=claims, scope=scope,
                          expires_at=self._expiry(claims), nonce1=request.nonce1, response=response,
                          context=params, client_key=client_key,
                          pop_id=material.id, supersedes=later)
        return self._store(binding, dropped, token)

    def _authz_info_raw(self, token: bytes) -> AuthzInfoOutcome:
        """A bare token whose cnf is a COSE_Key: symmetric for DTLS (RFC 9202 §3.3), the client's
        public key for EDHOC (draft-ietf-ace-edhoc-oscore-profile, token before the handshake)."""
        received, token = token, self._canonical(token)
        token_hash = trl_hash(token)
        live = [b for b in self.bindings.by_token_hash(token_hash) if not b.expired(self.clock())]
        if live:
            return AuthzInfoOutcome(b"", live[-1], False, [])  # the same token again: nothing changes
        claims = self._verify(token, token_hash, received=received)
        if not isinstance(claims.cnf, CoseKeyCnf):
            raise DecodeError("token cnf holds no COSE_Key", error_code=ErrorCode.UNSUPPORTED_POP_KEY)
        channel, pop_id = self._raw_channel(claims.cnf.key)
        scope = self._usable_scope(claims.scope)
        client_key = tok.client_key(claims.sub, b"pop:" + channel.label)
        current = self.bindings.get(channel.label)  # the same PoP key
        if current is not None and not current.expired(self.clock()):
            if current.client_key != client_key:  # a key in use is another client's to replace, never ours
                raise TokenRefused("this key is bound to another client")
            if tok.same_token(claims, current.claims):  # the same token (cti), however encoded: no change
                return AuthzInfoOutcome(b"", current, False, [])
            if not tok.newer(claims, current.claims):  # issue 17: a key in use moves only to a newer token
                raise TokenRefused("not newer than the token of this key")
        dropped, later = self._supersede(client_key, claims, also=channel.label)  # RFC 9200 §5.10.1
        binding = Binding(label=channel.label, token_hash=token_hash, claims=claims, scope=scope,
                          expires_at=self._expiry(claims), nonce1=b"", response=b"", context=channel,
                          client_key=client_key, pop_id=pop_id, supersedes=later)
        return self._store(binding, dropped, token)

    def _raw_channel(self, key: CoseKey) -> tuple[dtls.DtlsChannel | edhoc.EdhocChannel, bytes]:
        if key.is_symmetric:
            if AceProfile.COAP_DTLS not in self.config.profiles:
                raise DecodeError("this RS does not offer the DTLS profile")
            channel = dtls.channel_from_key(key)
            return channel, channel.identity
        if AceProfile.COAP_EDHOC_OSCORE not in self.config.profiles:
            raise DecodeError("this RS does not offer the EDHOC profile", error_code=ErrorCode.UNSUPPORTED_POP_KEY)
        edhoc_channel = edhoc.EdhocChannel(edhoc.check_credential(key))
        current = self.bindings.get(edhoc_channel.label)  # the kid names the credential: one key per kid
        if current is not None and not current.expired(self.clock()) and isinstance(
                current.context, edhoc.EdhocChannel) and current.context.peer_key != key:
            raise TokenRefused("this kid is bound to another credential")
        return edhoc_channel, edhoc_channel.kid

    def _update(self, payload: bytes, content_format: int | None, label: bytes) -> AuthzInfoOutcome:
        """A new token over the channel of an existing one: same PoP key, new rights
        (RFC 9203 §4.1: protected POST, kid = the OSCORE material id; RFC 9202 §3.4)."""
        current = self.bindings.get(label)
        if current is None or current.expired(self.clock()):
            raise TokenRefused("no live token for this channel")
        received = tok.token_of(payload, content_format)
        token = self._canonical(received)
        token_hash = trl_hash(token)
        if token_hash == current.token_hash:  # the same token again: its window (exi) does not move
            return AuthzInfoOutcome(b"", current, False, [])
        claims = self._verify(token, token_hash, received=received, over_channel=True)
        if not tok.same_pop_key(claims, current):  # RFC 9203 §4.1: the kid MUST match; else 4.01
            raise TokenRefused("the new token is not bound to this channel's key")
        if tok.same_token(claims, current.claims):
            return AuthzInfoOutcome(b"", current, False, [])
        self.retired.retire(current.claims.iss, current.claims.cti, current.expires_at)  # replaced for good
        self.fresh.remember(claims)  # an exi token is taken once (RFC 9200 §5.10.3)
        scope = self._usable_scope(claims.scope)
        binding = replace(current, token_hash=token_hash, claims=tok.kept(claims), scope=scope,
                          expires_at=self._expiry(claims), cost=len(token) + BINDING_OVERHEAD)
        gone = self.bindings.replace(binding, self.clock())  # keeps its in-use mark (RFC 9200 §6)
        self._released(gone)
        log.info("updated the rights of channel %s: %s, scope %r", redact_channel(label), redact_token(token),
                 claims.scope)
        return AuthzInfoOutcome(b"", binding, True, gone)

    def _is_reference(self, token: bytes) -> bool:
        return self.config.reference_tokens and is_reference(token, self.config.reference_len)

    def _canonical(self, token: bytes) -> bytes:
        """The encoding that names the token (cwt.canonical_token): a re-encoded token is the same
        token for replay and revocation; a reference token is its bytes. Anything else: 4.00."""
        return token if self._is_reference(token) else canonical_token(token, self.config.token_tags)

    def _verify(self, token: bytes, h: bytes, *, received: bytes, over_channel: bool = False) -> AccessTokenClaims:
        """The token's claims (``token``: its canonical form, ``h``: its RFC 9770 hash, ``received``:
        the bytes the client sent, what the AS is asked about), checked, or RemoteError."""
        if self.retired.hash_is_retired(h):  # RFC 9770 §11.1: a revoked token is never accepted again
            raise TokenRefused("access token revoked")
        if self.config.introspect or self._is_reference(token):
            claims = self._introspected(h, token, received)
        else:
            claims = verify_token(token, self.keys, audience=self.config.audience, clock=self.clock,
                                  skew=self.config.skew, accept=self.config.token_kinds)
        if self.retired.is_retired(claims.iss, claims.cti):  # revoked, or replaced by a newer token of its client
            raise TokenRefused("access token revoked or replaced")
        if not over_channel:  # an update over the client's channel needs no proof of freshness
            self.fresh.check_cnonce(claims.cnonce, self.hints)
        self.fresh.check_exi(claims)
        return claims

    def _introspected(self, h: bytes, token: bytes, received: bytes) -> AccessTokenClaims:
        """The claims the AS stated for the token (cached), or NeedsIntrospection. The AS is asked
        about the token as the client received it from the AS (RFC 9200 §5.9.1: the token is opaque
        to the RS's transport; an AS may refuse another encoding of it, e.g. without its COSE tag);
        the answer is cached under the canonical token's hash."""
        answer = self.introspection.get(h, self.clock())
        if answer is None:
            raise NeedsIntrospection(token, sent=received)
        if answer.claims is None:
            raise TokenRefused("access token not active")
        check_claims(answer.claims, audience=self.config.audience, now=self.clock(), skew=self.config.skew)
        return answer.claims

    def introspected(self, token: bytes, code: tuple[int, int] | None, payload: bytes) -> None:
        """The AS's answer to ``NeedsIntrospection(token).payload`` (``code`` None: no answer came):
        a success with an introspection response is cached for the next ``authz_info``; anything
        else is not, and is 5.03 for the client (the RS cannot decide now). RFC 9200 §5.9.2 answers
        2.01 (Created); 2.05 (Content), as some ASs send, is taken too."""
        if code in INTROSPECTION_SUCCESS:
            try:
                response = IntrospectionResponse.decode(payload)
            except DecodeError as exc:
                log.warning("the AS's introspection answer does not decode: %s", exc.description)
            else:
                self.introspection.put(trl_hash(token), response, self.clock())
                return
        else:
            log.warning("introspection at the AS failed: %s", "no answer" if code is None else code)
        raise ServiceUnavailable("the AS could not be asked about this token")

    def _expiry(self, claims: AccessTokenClaims) -> float | None:
        """When the binding ends: exp (plus the skew that let the token in, else it could arrive
        expired), and at most exi seconds after we first saw it (RFC 9200 §5.10.3)."""
        ends = [float(claims.exp) + self.config.skew] if claims.exp is not None else []
        if claims.exi is not None:
            ends.append(self.clock() + claims.exi * self.config.exi_unit)
        return min(ends) if ends else None

    def _supersede(self, client_key: bytes, claims: AccessTokenClaims, *,
                   also: bytes | None = None) -> tuple[list[Binding], tuple[bytes, ...]]:
        """(bindings to drop now, labels to drop once the new binding is first used).

        /authz-info is unprotected, and an attacker may replay any token it saw (RFC 9200 §6): a
        never-used binding of the same client goes at once unless its token is newer than this one
        (a replayed older token displaces nothing); one in use stays until the new channel protects
        an authorized request, so a replay cannot cut off the channel the client is using. A
        binding with the same label (a DTLS or EDHOC kid, checked newer by the caller) cannot wait
        and goes now. A token whose channel was in use, replaced by a newer one, is never taken again."""
        same_client = self.bindings.for_client(client_key)
        now = [b for b in same_client if not self.bindings.used(b.label) and not tok.newer(b.claims, claims)]
        later = tuple(b.label for b in same_client if self.bindings.used(b.label) and b.label != also)
        same_label = self.bindings.get(also) if also is not None else None
        if same_label is not None and same_label not in now:
            now.append(same_label)
        for b in now:
            self._drop(b, retire=self.bindings.used(b.label) and tok.newer(claims, b.claims))
        return now, later

    def _store(self, binding: Binding, dropped: list[Binding], token: bytes) -> AuthzInfoOutcome:
        binding = replace(binding, cost=len(token) + BINDING_OVERHEAD, claims=tok.kept(binding.claims))
        try:
            purged = self.bindings.add(binding, self.clock())
        except RemoteError:
            if not isinstance(binding.context, dtls.DtlsChannel):
                self.ids.release(binding.label)
            raise
        self._released(purged)  # the superseded ones were released by _drop already
        self.fresh.remember(binding.claims)
        log.info("accepted %s, scope %r, channel %s", redact_token(token), binding.claims.scope,
                 redact_channel(binding.label))
        return AuthzInfoOutcome(binding.response, binding, True, dropped + purged)

    def _released(self, purged: list[Binding]) -> None:
        """Bindings the store let go to make room: their ids are free, their channels go."""
        for b in purged:
            self.ids.release(b.label)
            if b.expired(self.clock()):
                self.fresh.note_expired(b)
        self._dropped += purged

    def _usable_scope(self, raw: str | bytes | None) -> Scope:
        if raw is None:  # RFC 9200 §5.10.1.1: claims the RS cannot process → 4.00
            raise DecodeError("token has no scope", error_code=ErrorCode.INVALID_SCOPE)
        scope = parse_scope(raw)
        if isinstance(scope, TextScope) and not any(t in self.config.scope_meaning for t in scope.tokens):
            raise DecodeError("token scope means nothing here", error_code=ErrorCode.INVALID_SCOPE)
        return scope

    def _drop(self, binding: Binding, *, retire: bool = False) -> None:
        """Remove a binding (its channel goes too); ``retire``: its token is never taken again."""
        self.bindings.remove(binding.label)
        self.ids.release(binding.label)  # a no-op for DTLS labels (never in the pool)
        self._dropped.append(binding)
        if retire:
            self.retired.retire(binding.claims.iss, binding.claims.cti, binding.expires_at)

    def take_dropped(self) -> list[Binding]:
        """Every binding dropped since the last call (superseded, expired, first use of a
        successor): the I/O layer removes their channels."""
        dropped, self._dropped = self._dropped, []
        return dropped

    # -- F: access to resources ---------------------------------------------------------

    def hints(self) -> CreationHints:
        c = self.config
        return CreationHints(as_uri=c.as_uri, audience=c.audience, scope=c.hint_scope, cnonce=self.fresh.new_cnonce())

    def authorize(self, label: bytes | None, path: str, method: str | int) -> Binding:
        """The binding that allows ``method`` on ``path``, or AccessDenied."""
        binding = self.bindings.get(label) if label is not None else None
        if binding is None:  # RFC 9200 §5.10.2: no valid token → 4.01 with creation hints
            raise AccessDenied("no valid access token", coap_code=UNAUTHORIZED, hints=self.hints())
        if binding.expired(self.clock()):
            self.fresh.note_expired(binding)
            self._drop(binding)
            raise AccessDenied("access token expired", coap_code=UNAUTHORIZED, hints=self.hints())
        aif = self._as_aif(binding.scope)
        path = path if path.startswith("/") else "/" + path
        try:
            method_bit(method)
        except ValueError:  # not a request method AIF can name: never in any scope
            raise self._out_of_scope("method", METHOD_NOT_ALLOWED) from None
        if not any(p == path for p, _ in aif.entries):  # RFC 9200 §5.10.2: resource not covered
            raise self._out_of_scope("resource", FORBIDDEN)
        if not aif.allows(path, method):  # RFC 9200 §5.10.2: action not covered
            raise self._out_of_scope("method", METHOD_NOT_ALLOWED)
        if self.bindings.mark_used(binding.label):  # first use: the channels it replaces go now
            for old in binding.supersedes:
                gone = self.bindings.get(old)
                if gone is not None:
                    self._drop(gone, retire=tok.newer(binding.claims, gone.claims))
        return binding

    def _out_of_scope(self, what: str, code: tuple[int, int]) -> AccessDenied:
        """4.03 / 4.05 (RFC 9200 §5.10.2, which fixes no payload): the AS Request Creation Hints
        (§5.3) as payload, where to get a token with more rights; RFC 9202 §4 expects hints in such
        error responses, and clients that read them as CBOR (ace-java) fail on a text payload.
        The answer is protected by the client's channel (RFC 9203 §7: detail is fine there)."""
        return AccessDenied(f"{what} not in the token's scope", coap_code=code, hints=self.hints())

    def _as_aif(self, scope: Scope) -> AifScope:
        """What a scope allows here; text scopes are translated once (a bounded cache shared by
        the bindings with that scope), not on every request."""
        if not isinstance(scope, TextScope):
            return scope
        aif = self._aif.get(scope)
        if aif is None:
            aif = self._aif[scope] = scope.to_aif(self.config.scope_meaning)
            while len(self._aif) > MAX_TEXT_SCOPES:
                self._aif.popitem(last=False)
        return aif

    def revoke(self, hashes: Iterable[bytes]) -> list[Binding]:
        """RFC 9770 §11.1: the AS listed these token hashes (its TRL): the bindings of those tokens go
        (reported by ``take_dropped`` too) and the tokens are refused from now on, while unexpired."""
        gone: list[Binding] = []
        for h in hashes:
            bindings = self.bindings.by_token_hash(h)  # the token POSTed twice: every binding goes
            for binding in bindings:
                self._drop(binding, retire=True)  # by cti too: no other encoding of it gets in
            gone += bindings
            self.introspection.forget(h)  # a cached "active" must not let it in again
            # unknown expiry: kept until the bound pushes it out
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
        self.introspection.purge(now)
        return gone
