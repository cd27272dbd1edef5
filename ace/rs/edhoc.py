"""The RS core's half of the EDHOC profile (draft-ietf-ace-edhoc-oscore-profile-11), sans I/O.

The token arrives in EDHOC (EAD_3, or EAD_4 in the reverse flow): ``accept_edhoc_token`` verifies
it the way /authz-info does, checks the preset's limits and that ID_CRED_I names the credential in
its cnf (EP §4.2), and changes nothing; the I/O layer then runs ``verify_message_3`` with
``EdhocAccept.cred_raw`` and, only if that succeeds, ``commit_edhoc`` stores the binding under
(session_id, CRED_I) (``session_label``), dropping an earlier one of the same pair (EP §4.2). A
token the AS uploaded (WF §3.7) is stored the same way by ``upload_edhoc_token``, and an EDHOC
session naming it with the EAD Session ID item finds it with ``accept_session_id``. A protected
POST /authz-info over the derived context supersedes the token on the same context when session_id
and credential match (EP §4.6, ``update_edhoc_token``); else 4.01. Refusals are the RS's named
errors (TokenRefused, UnsupportedPopKey, ...), which the I/O layer turns into the EDHOC error.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ace.cbor import codec
from ace.cbor.labels import CnfMethod, ContentFormat, CoseTag
from ace.errors import DecodeError, MissingOldToken, TokenRefused, UnsupportedContentFormat
from ace.messages import UPDATED_RIGHTS_KEY, AuthzInfoUpdate
from ace.profiles.base import RsProfile
from ace.profiles.edhoc import PROFILE, EdhocChannel, cred_of_cnf
from ace.profiles.edhoc_presets import EdhocCodePoints, preset
from ace.rs import tokens as tok
from ace.rs.freshness import Freshness
from ace.rs.outcomes import AuthzInfoOutcome
from ace.rs.scopes import Scopes
from ace.rs.store import BINDING_OVERHEAD, Binding, BindingStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import Cnf, KidCnf
from ace.tokens.cwt import open_envelope
from ace.tokens.hashing import token_hash as trl_hash


class ResourceServer(Protocol):
    """What this module uses of ``ace.rs.server.ResourceServer`` (its /authz-info machinery)."""

    bindings: BindingStore
    scopes: Scopes
    fresh: Freshness
    clock: Callable[[], float]

    def hints(self) -> Any: ...

    def _offer(self, profile: RsProfile) -> RsProfile: ...
    def _canonical(self, token: bytes) -> bytes: ...
    def _verify(self, token: bytes, h: bytes, *, received: bytes, over_channel: bool = False,
                ) -> AccessTokenClaims: ...
    def _expiry(self, claims: AccessTokenClaims) -> float | None: ...
    def _supersede(self, client_key: bytes, claims: AccessTokenClaims, size: int, *,
                   also: bytes | None = None) -> tuple[list[Binding], tuple[bytes, ...]]: ...
    def _store(self, binding: Binding, dropped: list[Binding], token: bytes) -> AuthzInfoOutcome: ...
    def _renew(self, current: Binding, token_hash: bytes, claims: AccessTokenClaims, token: bytes,
               ) -> AuthzInfoOutcome: ...

ID_CRED_KID = 4  # RFC 9528 §3.5.3: ID_CRED_x by reference {4: kid}
ID_CRED_CCS = 14  # RFC 9528 §3.5.3: ID_CRED_x by value {14: CCS}
TOKEN_TAGS = frozenset({int(CoseTag.ENCRYPT0), int(CoseTag.SIGN1)})


@dataclass(frozen=True, slots=True)
class EdhocAccept:
    """A token EDHOC carried, verified and not yet stored: ``cred_raw`` is CRED_I for
    ``verify_message_3``, ``label`` the binding label the OSCORE context must report
    (authenticated_claims), ``binding`` what ``commit_edhoc`` stores."""

    cred_raw: bytes
    label: bytes
    session_id: bytes
    binding: Binding
    token: bytes
    cnonce: bool = False  # its cnonce was checked, not spent: ``commit_edhoc`` spends it


def check_limits_before(token: bytes, points: EdhocCodePoints) -> None:
    """The preset's limits readable without a key: size, COSE tag, alg (TokenRefused)."""
    if points.max_token is not None and len(token) > points.max_token:
        raise TokenRefused(f"token larger than {points.max_token} bytes ({points.name})")
    env = open_envelope(token)
    if points.token_tagged and (env.message.cbor_tag not in TOKEN_TAGS or env.cwt_tagged):
        raise TokenRefused(f"token must be a tagged COSE_Encrypt0 or COSE_Sign1 ({points.name})")
    if points.token_algs is not None and env.message.alg not in points.token_algs:
        raise TokenRefused(f"token alg not taken by this RS ({points.name})")


def check_limits_after(claims: AccessTokenClaims, points: EdhocCodePoints) -> None:
    """The preset's limits on the claims: iat, an AIF scope's length (TokenRefused)."""
    if points.require_iat and claims.iat is None:
        raise TokenRefused(f"token without iat ({points.name})")
    if points.max_aif is not None and (not isinstance(claims.scope, bytes) or len(claims.scope) > points.max_aif):
        raise TokenRefused(f"token scope must be an AIF of at most {points.max_aif} bytes ({points.name})")


def names_credential(id_cred: bytes | Mapping[Any, Any], kid: bytes | None, cred: bytes) -> bool:
    """Whether ID_CRED_I (``{4: kid}`` or ``{14: CCS}``, encoded or decoded) names this credential (EP §4.2)."""
    if isinstance(id_cred, (bytes, bytearray)):
        value = codec.loads(bytes(id_cred), what="ID_CRED_I")
        by_value = codec.raw_at(bytes(id_cred), (ID_CRED_CCS,)) if isinstance(value, Mapping) else None
    else:
        value, by_value = id_cred, None
    if not isinstance(value, Mapping) or len(value) != 1:
        raise DecodeError("ID_CRED_I must be a map with one entry")
    if ID_CRED_KID in value:
        named = value[ID_CRED_KID]
        return isinstance(named, bytes) and kid is not None and hmac.compare_digest(named, kid)
    if ID_CRED_CCS in value:
        if by_value is None:
            by_value = codec.dumps(value[ID_CRED_CCS])
        return hmac.compare_digest(by_value, cred)
    raise DecodeError("ID_CRED_I: neither by kid (4) nor by value (14)")


def session_id_of(claims: AccessTokenClaims, points: EdhocCodePoints) -> bytes:
    """The token's session_id (EP §3.3.1: the edhoc_info claim MUST carry it); a preset with a
    COSE_Key cnf (ariel-os, whose tokens need not carry it) takes b'' without it."""
    if claims.edhoc_info is not None:
        return claims.edhoc_info.session_id
    if points.cnf_method is not CnfMethod.KCCS:
        return b""
    raise DecodeError("EDHOC profile: the token has no edhoc_info session_id")


def verified(rs: ResourceServer, token: bytes, points: EdhocCodePoints, *, over_channel: bool = False,
             spend: bool = True) -> tuple[bytes, bytes, AccessTokenClaims]:
    """(canonical token, its hash, claims) of a token the AS issued for us, checked; nothing stored
    but, with ``spend``, its cnonce (``spend=False``: checked only)."""
    rs._offer(PROFILE)
    check_limits_before(token, points)
    canonical = rs._canonical(token)
    h = trl_hash(canonical)
    claims = rs._verify(canonical, h, received=token, over_channel=over_channel or not spend)  # introspection: 5.03
    if not over_channel and not spend:
        rs.fresh.check_cnonce(claims.cnonce, rs.hints, take=False)
    check_limits_after(claims, points)
    return canonical, h, claims


def accept_edhoc_token(rs: ResourceServer, token: bytes, id_cred_i: bytes | Mapping[Any, Any],
                       points: EdhocCodePoints) -> EdhocAccept:
    """EP §4.2, §4.3.3: the token of EAD_3 (or EAD_4), verified, for the credential ID_CRED_I names;
    refusals raise (TokenRefused, UnsupportedPopKey, DecodeError, ...); nothing changes here."""
    canonical, h, claims = verified(rs, token, points, spend=False)
    key, cred = cred_of_cnf(claims.cnf, points)
    if not names_credential(id_cred_i, key.kid, cred):  # EP §4.2: MUST be the token's credential
        raise TokenRefused("ID_CRED_I does not name the credential in the token")
    return replace(_prepared(rs, canonical, h, claims, key, cred, points), cnonce=True)


def _prepared(rs: ResourceServer, canonical: bytes, h: bytes, claims: AccessTokenClaims, key: Any, cred: bytes,
              points: EdhocCodePoints) -> EdhocAccept:
    session_id = session_id_of(claims, points)
    channel = EdhocChannel(key, cred, session_id, points.name)
    label = channel.label
    current = rs.bindings.get(label)
    if current is not None and not current.expired(rs.clock()) and not tok.same_token(claims, current.claims) \
            and not tok.newer(claims, current.claims):
        raise TokenRefused("not newer than the token of this session")
    binding = Binding(label=label, token_hash=h, claims=claims, scope=rs.scopes.usable(claims.scope),
                      expires_at=rs._expiry(claims), nonce1=b"", response=b"", context=channel,
                      client_key=tok.client_key(claims.sub, b"pop:" + label), pop_id=key.kid or b"",
                      cost=len(canonical) + BINDING_OVERHEAD)
    return EdhocAccept(cred, label, session_id, binding, canonical)


def commit_edhoc(rs: ResourceServer, accept: EdhocAccept) -> AuthzInfoOutcome:
    """EDHOC completed (message_3 verified): store the binding; the earlier one of the same
    (session_id, CRED_I) goes now (EP §4.2), and the I/O layer removes the dropped channels."""
    b = accept.binding
    if accept.cnonce:  # RFC 9200 §5.10.1.1: spent once MAC_3 verified, not before
        rs.fresh.check_cnonce(b.claims.cnonce, rs.hints)
    current = rs.bindings.get(b.label)
    keep_used = current is not None and rs.bindings.used(b.label) and tok.same_token(b.claims, current.claims)
    dropped, later = rs._supersede(b.client_key, b.claims, len(accept.token), also=b.label)
    outcome = rs._store(replace(b, supersedes=later), dropped, accept.token)
    if keep_used:
        rs.bindings.mark_used(b.label)
    return outcome


def accept_session_id(rs: ResourceServer, session_id: bytes, id_cred_i: bytes | Mapping[Any, Any],
                      ) -> EdhocAccept:
    """WF §9: EAD Session ID instead of the token: the token the AS uploaded for (session_id, the
    credential ID_CRED_I names); TokenRefused if there is none."""
    now = rs.clock()
    for b in rs.bindings:
        ch = b.context
        if isinstance(ch, EdhocChannel) and ch.session_id is not None and not b.expired(now) \
                and hmac.compare_digest(ch.session_id, session_id) and names_credential(id_cred_i, ch.kid, ch.cred):
            return EdhocAccept(ch.cred, b.label, session_id, b, b"")
    raise TokenRefused("no token for this session_id and credential")


def same_credential(cnf: Cnf | None, channel: EdhocChannel) -> bool:
    """Whether an update token's cnf names the credential of ``channel``: by value (as the preset
    reads a cnf) or by reference (a kid) (EP §4.6.1)."""
    if isinstance(cnf, KidCnf):
        return hmac.compare_digest(cnf.kid, channel.kid)
    try:
        _, cred = cred_of_cnf(cnf, preset(channel.preset))
    except DecodeError:
        return False
    return hmac.compare_digest(cred, channel.cred)


def _session_of(rs: ResourceServer, claims: AccessTokenClaims, points: EdhocCodePoints) -> Binding | None:
    """T_OLD: the live binding of the token's (session_id, credential), if any (EP §4.6.2)."""
    session_id = session_id_of(claims, points)
    now = rs.clock()
    for b in rs.bindings:
        ch = b.context
        if isinstance(ch, EdhocChannel) and ch.session_id == session_id and not b.expired(now) \
                and same_credential(claims.cnf, ch):
            return b
    return None


def upload_edhoc_token(rs: ResourceServer, payload: bytes, content_format: int | None, points: EdhocCodePoints,
                       *, updated_rights_key: int = UPDATED_RIGHTS_KEY) -> AuthzInfoOutcome:
    """WF §3.7: POST /authz-info protected by the AS: the token (application/cwt), or
    ``{1: token, updated_rights: true}`` (application/ace+cbor) for an update of access rights,
    which supersedes T_OLD of the same (session_id, credential), else 5.00 missing_old_token."""
    if content_format == ContentFormat.CWT:
        update = AuthzInfoUpdate(access_token=payload)
    elif content_format in (None, ContentFormat.ACE_CBOR):
        update = AuthzInfoUpdate.decode(payload, updated_rights_key)
    else:
        raise UnsupportedContentFormat("content format must be application/cwt or application/ace+cbor")
    canonical, h, claims = verified(rs, update.access_token, points, over_channel=bool(update.updated_rights))
    if update.updated_rights:
        current = _session_of(rs, claims, points)
        if current is None:
            raise MissingOldToken("no token of this session_id and credential")  # WF §3.7.1
        if tok.same_token(claims, current.claims):
            return AuthzInfoOutcome(b"", current, False, [])
        return _supersede_on(rs, current, h, claims, canonical)
    key, cred = cred_of_cnf(claims.cnf, points)
    return commit_edhoc(rs, _prepared(rs, canonical, h, claims, key, cred, points))


def update_edhoc_token(rs: ResourceServer, payload: bytes, content_format: int | None, channel_label: bytes,
                       ) -> AuthzInfoOutcome:
    """EP §4.6: a token POSTed to /authz-info over the context ``channel_label`` names (application/cwt,
    the token itself): T_NEW supersedes T_OLD on the same context when its session_id and credential
    (by value or by kid) are T_OLD's; else 4.01 (TokenRefused), nothing changed."""
    current = rs.bindings.get(channel_label)
    if current is None or current.expired(rs.clock()) or not isinstance(current.context, EdhocChannel):
        raise TokenRefused("no live EDHOC token for this context")
    ch = current.context
    points = preset(ch.preset)
    received = tok.token_of(payload, content_format)
    canonical, h, claims = verified(rs, received, points, over_channel=True)
    if h == current.token_hash or tok.same_token(claims, current.claims):
        return AuthzInfoOutcome(b"", current, False, [])
    try:
        session_id = session_id_of(claims, points)
    except DecodeError as exc:
        raise TokenRefused(f"the new token does not fit this context: {exc.description}") from None
    if session_id != ch.session_id or not same_credential(claims.cnf, ch):  # EP §4.6.2: else 4.01
        raise TokenRefused("the new token is not for this session and credential")
    return _supersede_on(rs, current, h, claims, canonical)


def _supersede_on(rs: ResourceServer, current: Binding, h: bytes, claims: AccessTokenClaims, token: bytes,
                  ) -> AuthzInfoOutcome:
    """T_NEW in place of T_OLD on T_OLD's context (same label): its rights and expiry change."""
    if not tok.newer(claims, current.claims):
        raise TokenRefused("not newer than the token of this session")
    return rs._renew(current, h, claims, token)
