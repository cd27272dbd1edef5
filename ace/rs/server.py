"""The RS core for the OSCORE profile: POST /authz-info and access decisions, sans I/O.

``authz_info`` (RFC 9203 §4.1–4.3, RFC 9200 §5.10.1) verifies the token, checks the
nonce and recipient ID, picks N2 and a fresh Recipient ID, derives the OSCORE context
parameters and stores a ``Binding``; a retransmitted POST (same token, same N1) gets the
same answer and changes nothing. ``authorize`` decides a request from the binding label the
secure channel reported: none or unknown or expired → 4.01 with AS Request Creation Hints
(RFC 9200 §5.3); resource not in scope → 4.03; method not in scope → 4.05 (§5.10.2).
The I/O layer installs ``outcome.binding.context`` and removes the contexts of bindings the
core reports gone (``dropped``, ``sweep``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from ace.cbor.labels import ContentFormat
from ace.cbor.messages import AuthzInfoRequest, AuthzInfoResponse, CreationHints
from ace.cbor.scope import AifScope, Scope, ScopeMeaning, TextScope, parse_scope
from ace.errors import (
    FORBIDDEN,
    UNAUTHORIZED,
    UNSUPPORTED_CONTENT_FORMAT,
    DecodeError,
    ErrorCode,
    RemoteError,
)
from ace.profiles import oscore
from ace.redact import token as redact_token
from ace.rs.store import DEFAULT_MAX_TOKENS, Binding, BindingStore
from ace.tokens.cnf import OscoreCnf
from ace.tokens.cwt import DEFAULT_SKEW, KeyLookup, verify_token

log = logging.getLogger(__name__)
METHOD_NOT_ALLOWED = (4, 5)


class AccessDenied(RemoteError):
    """4.01 with AS Request Creation Hints (RFC 9200 §5.3), or 4.03/4.05 without."""

    default_error_code = None

    def __init__(self, description: str, *, coap_code: tuple[int, int], hints: CreationHints | None = None) -> None:
        super().__init__(description, error_code=None, coap_code=coap_code)
        self.hints = hints


@dataclass(frozen=True, slots=True, kw_only=True)
class RsConfig:
    audience: str
    as_uri: str  # "AS" of the creation hints: where to ask for a token
    scope_meaning: ScopeMeaning = field(default_factory=dict)  # text scope-token -> AIF entries
    hint_scope: str | bytes | None = None  # scope suggested in creation hints
    max_tokens: int = DEFAULT_MAX_TOKENS
    skew: float = DEFAULT_SKEW


@dataclass(frozen=True, slots=True)
class AuthzInfoOutcome:
    payload: bytes  # the 2.01 body
    binding: Binding
    new: bool  # False: a retransmission answered from the stored binding
    dropped: list[Binding]  # bindings whose contexts the I/O layer must remove now


class ResourceServer:
    def __init__(self, config: RsConfig, keys: KeyLookup, *, clock: Callable[[], float],
                 rng: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self.config, self.keys, self.clock, self.rng = config, keys, clock, rng
        self.bindings = BindingStore(config.max_tokens)
        self.ids = oscore.RecipientIdPool(rng)

    # -- E: POST /authz-info ------------------------------------------------------------

    def authz_info(self, payload: bytes, content_format: int | None = None) -> AuthzInfoOutcome:
        if content_format not in (None, ContentFormat.ACE_CBOR):  # RFC 9203 §4.1: application/ace+cbor
            raise RemoteError("content format must be application/ace+cbor", error_code=None,
                              coap_code=UNSUPPORTED_CONTENT_FORMAT)
        request = AuthzInfoRequest.decode(payload)
        oscore.check_nonce(request.nonce1, "nonce1")
        oscore.check_recipient_id(request.ace_client_recipientid, "ace_client_recipientid")
        now = self.clock()
        token_hash = hashlib.sha256(request.access_token).digest()
        known = self.bindings.by_token_hash(token_hash)
        if known is not None and known.nonce1 == request.nonce1 and not known.expired(now):
            return AuthzInfoOutcome(known.response, known, False, [])  # POST retransmitted: same answer
        claims = verify_token(request.access_token, self.keys, audience=self.config.audience,
                              clock=self.clock, skew=self.config.skew)
        if not isinstance(claims.cnf, OscoreCnf):  # RFC 9203 §4.1: the token must carry osc
            raise DecodeError("token cnf is not an OSCORE_Input_Material")
        material = claims.cnf.material
        oscore.validate_material(material)
        scope = self._usable_scope(claims.scope)
        # RFC 9203 §2, §5, §6: a context derived from a token for the same PoP key (the same
        # OSCORE_Input_Material, reposted or not) or for the same client (sub) replaces the old one
        client_key = b"sub:" + claims.sub.encode() if claims.sub is not None else b"osc:" + material.id
        dropped = self.bindings.for_client(client_key)
        for b in dropped:
            self._drop(b)
        server_rid = self.ids.allocate(avoid=request.ace_client_recipientid)
        nonce2 = self.rng(oscore.NONCE_LEN)
        params = oscore.derive(material, nonce1=request.nonce1, nonce2=nonce2,
                               sender_id=request.ace_client_recipientid, recipient_id=server_rid)
        response = AuthzInfoResponse(nonce2=nonce2, ace_server_recipientid=server_rid).encode()
        # the skew that let the token in also bounds its use (else it could arrive expired)
        expires = float(claims.exp) + self.config.skew if claims.exp is not None else None
        binding = Binding(label=server_rid, token_hash=token_hash, claims=claims, scope=scope,
                          expires_at=expires, nonce1=request.nonce1, response=response, context=params,
                          client_key=client_key, pop_id=material.id)
        try:
            purged = self.bindings.add(binding, now)
        except RemoteError:
            self.ids.release(server_rid)
            raise
        for b in purged:  # the superseded ones were released by _drop already
            self.ids.release(b.label)
        dropped += purged
        log.info("accepted %s, scope %r, context rid %s", redact_token(request.access_token),
                 claims.scope, server_rid.hex())
        return AuthzInfoOutcome(response, binding, True, dropped)

    def _usable_scope(self, raw: str | bytes | None) -> Scope:
        if raw is None:  # RFC 9200 §5.10.1.1: claims the RS cannot process → 4.00
            raise DecodeError("token has no scope", error_code=ErrorCode.INVALID_SCOPE)
        scope = parse_scope(raw)
        if isinstance(scope, TextScope) and not any(t in self.config.scope_meaning for t in scope.tokens):
            raise DecodeError("token scope means nothing here", error_code=ErrorCode.INVALID_SCOPE)
        return scope

    def _drop(self, binding: Binding) -> None:
        self.bindings.remove(binding.label)
        self.ids.release(binding.label)

    # -- F: access to resources ---------------------------------------------------------

    def hints(self) -> CreationHints:
        c = self.config
        return CreationHints(as_uri=c.as_uri, audience=c.audience, scope=c.hint_scope)

    def authorize(self, label: bytes | None, path: str, method: str | int) -> Binding:
        """The binding that allows ``method`` on ``path``, or AccessDenied."""
        binding = self.bindings.get(label) if label is not None else None
        if binding is None:  # RFC 9200 §5.10.2: no valid token → 4.01 with creation hints
            raise AccessDenied("no valid access token", coap_code=UNAUTHORIZED, hints=self.hints())
        if binding.expired(self.clock()):
            self._drop(binding)
            raise AccessDenied("access token expired", coap_code=UNAUTHORIZED, hints=self.hints())
        aif = self._as_aif(binding.scope)
        path = path if path.startswith("/") else "/" + path
        if not any(p == path for p, _ in aif.entries):  # RFC 9200 §5.10.2: resource not covered
            raise AccessDenied("resource not in the token's scope", coap_code=FORBIDDEN)
        if not aif.allows(path, method):  # RFC 9200 §5.10.2: action not covered
            raise AccessDenied("method not in the token's scope", coap_code=METHOD_NOT_ALLOWED)
        return binding

    def _as_aif(self, scope: Scope) -> AifScope:
        return scope.to_aif(self.config.scope_meaning) if isinstance(scope, TextScope) else scope

    def live_labels(self) -> set[bytes]:
        return {b.label for b in self.bindings}

    def sweep(self) -> list[Binding]:
        """Drop expired bindings; their contexts must go too."""
        gone = self.bindings.purge_expired(self.clock())
        for b in gone:
            self.ids.release(b.label)
        return gone
