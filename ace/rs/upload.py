"""POST /authz-info protected by the AS (draft-ietf-ace-workflow-and-params-08 §3.7), sans I/O.

The AS uploads a token on the client's behalf over its secure association with the RS. Without
updated_rights the token is the first of a series, processed as if the client had POSTed it (the
EDHOC profile's kind is stored for the EDHOC session that names it, ``ace.rs.edhoc``); with
``{1: token, updated_rights: true}`` (application/ace+cbor) it replaces T_OLD, the live token bound
to the same PoP key (EDHOC: the same session_id and credential), else 5.00 missing_old_token
(§3.7.1). The I/O layer calls this only for POSTs the AS protected; an unprotected one is 4.00.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ace.cbor.labels import AceProfile, ContentFormat
from ace.errors import MissingOldToken
from ace.messages import AuthzInfoUpdate
from ace.profiles.edhoc import PROFILE
from ace.profiles.edhoc_presets import EdhocCodePoints, preset
from ace.rs import edhoc
from ace.rs import tokens as tok
from ace.rs.introspection import no_introspection
from ace.rs.outcomes import AuthzInfoOutcome
from ace.tokens.hashing import token_hash as trl_hash

if TYPE_CHECKING:
    from ace.rs.introspection import NeedsIntrospection
    from ace.rs.server import ResourceServer

EDHOC = int(AceProfile.COAP_EDHOC_OSCORE)


def as_upload(rs: ResourceServer, payload: bytes, content_format: int | None,
              ) -> AuthzInfoOutcome | NeedsIntrospection:
    """WF §3.7: the AS's protected POST /authz-info; see the module docstring."""
    points = preset(rs.config.edhoc_preset)
    key = rs.config.updated_rights_key
    if tok.carries_updated_rights(payload, content_format, key):
        update = AuthzInfoUpdate.decode(payload, key)
        if EDHOC in rs.config.profiles and _is_edhoc(rs, update.access_token, points):
            return rs.upload_edhoc_token(payload, content_format, points)
        return _update(rs, update.access_token)
    if EDHOC in rs.config.profiles and content_format in (None, ContentFormat.CWT) and not tok.is_map(payload):
        return rs.upload_edhoc_token(payload, ContentFormat.CWT, points)
    return rs.authz_info(payload, content_format)


def _is_edhoc(rs: ResourceServer, token: bytes, points: EdhocCodePoints) -> bool:
    with no_introspection():
        _, _, claims = edhoc.verified(rs, token, points, over_channel=True)
    return claims.edhoc_info is not None or PROFILE.rs_takes(claims.cnf)


def _update(rs: ResourceServer, token: bytes) -> AuthzInfoOutcome:
    """An update of another profile: over the channel of the live token with the same PoP key."""
    with no_introspection():
        canonical = rs._canonical(token)
        claims = rs._verify(canonical, trl_hash(canonical), received=token, over_channel=True)
    now = rs.clock()
    current = next((b for b in rs.bindings if not b.expired(now) and tok.same_pop_key(claims.cnf, b)), None)
    if current is None:
        raise MissingOldToken("no token bound to this PoP key")  # WF §3.7.1
    outcome = rs.authz_info(token, ContentFormat.CWT, channel_label=current.label)
    assert isinstance(outcome, AuthzInfoOutcome)  # verified above: no introspection pending
    return outcome
