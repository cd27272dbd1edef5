"""The RS's settings (``RsConfig``): its audience, where clients get tokens, its limits, the
profiles it offers, how it checks freshness and whether it asks the AS about tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

from ace.cbor.labels import UPDATED_RIGHTS_KEY, AceProfile
from ace.cbor.scope import ScopeMeaning
from ace.rs.store import DEFAULT_MAX_BYTES, DEFAULT_MAX_TOKENS
from ace.tokens.defaults import DEFAULT_SKEW, Kind
from ace.tokens.reference import REFERENCE_LEN


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
    # RFC 9200 §5.10.3: an RS without a real-time clock cannot judge exp: it takes only tokens with exi
    require_exi: bool = False
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
    edhoc_preset: str = "draft-11"  # EDHOC profile code points and limits (ace.profiles.edhoc_presets)
    updated_rights_key: int = UPDATED_RIGHTS_KEY  # WF §3.7.1: no code point assigned yet
    token_tags: str = "none"  # the tags the AS's tokens come with (cwt.TOKEN_TAGS): their hash is of that form
