"""The AS's part of the EDHOC profile at draft-ietf-ace-edhoc-oscore-profile-11, sans I/O.

A first token of a series: a new session_id (§3.2: unique per client and audience over every
profile and every series, ended ones too: the cti of the series' first token, which no token of
this AS ever had before, whatever its profile; logged with every token of the series), the token's
cnf exactly the credential the client sent in req_cnf (§3.3.1: the kccs bytes are CRED_I in the
EDHOC MACs, never re-encoded), rs_cnf the RS's own CCS (§3.3; WF §5.2: by value unless the client
asked for a reference or nothing), edhoc_info (47) in the response with the session_id and what the
RS publishes (methods, cipher_suites, message_4, comb_req, uri_path) and the claim edhoc_info (41)
``{0: session_id}`` in the token. An update (§3.1, §3.3.3): ``edhoc_info {0: session_id}`` and no
req_cnf; a session_id naming no live series of this client at this audience is invalid_request;
the update token keeps the series' credential; the response carries neither edhoc_info nor rs_cnf.

The RS's preset (``RsRecord.edhoc_preset``, ``ace.profiles.edhoc_presets``) shapes the token: for
``ariel-os`` a tagged COSE_Encrypt0 (alg 31) or COSE_Sign1 (ES256), exp and iat, an AIF scope of at
most 64 bytes, at most 256 bytes in all, and the client's key as a COSE_Key cnf (the very bytes
inside its CCS: the RS rebuilds CRED_I from them). A request such a token cannot serve is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from ace.cbor import codec
from ace.cbor.labels import Param
from ace.errors import DecodeError, IncompatibleProfiles, InvalidScope
from ace.messages import AccessTokenRequest
from ace.profiles import edhoc as edhoc_profile
from ace.profiles.edhoc_presets import EdhocCodePoints, preset
from ace.store.base import AsStore, ClientRecord, IssuedToken, RsRecord
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import Cnf, CoseKeyCnf, KccsCnf, KidCnf
from ace.tokens.edhoc_info import EdhocInfo

EDHOC_PROFILE = 4  # the profile's number at this AS (AceProfile.COAP_EDHOC_OSCORE)
SESSION_ID_LEN = 8  # bytes at most of a session_id we assign (EdhocInfo.MAX_SESSION_ID: 16)


DTLS_PROFILE = 1
log = logging.getLogger(__name__)
EDHOC, DTLS_RPK = "edhoc", "dtls-rpk"  # the profiles whose series the AS names (SeriesKind.kind)


@dataclass(frozen=True, slots=True)
class SeriesKind:
    """How a request's token series is named: EDHOC (session_id, §3.2), DTLS with the client's raw
    public key (token_series_id, WF §3.6: the one profile here without an id of its own), or not
    at all (OSCORE: the material id; DTLS PSK: the psk identity)."""

    kind: str | None

    @classmethod
    def of(cls, profile: int, request: AccessTokenRequest) -> SeriesKind:
        rpk = isinstance(request.req_cnf, CoseKeyCnf) and not request.req_cnf.key.is_symmetric
        kind = EDHOC if profile == EDHOC_PROFILE else DTLS_RPK if profile == DTLS_PROFILE and (
            rpk or request.token_series_id is not None) else None
        if request.token_series_id is not None and kind != DTLS_RPK:  # WF §3.6: not with an id of the profile's
            raise DecodeError("token_series_id is for the DTLS profile with raw public keys only")
        if request.edhoc_info is not None and kind != EDHOC:
            raise DecodeError("edhoc_info is for the EDHOC profile only")
        if request.edhoc_info is not None and request.req_cnf is not None:
            raise DecodeError("an update request (edhoc_info) carries no req_cnf")  # §3.1
        return cls(kind)

    def update_of(self, request: AccessTokenRequest, store: AsStore, client: ClientRecord, rs: RsRecord,
                  now: int) -> IssuedToken | None:
        """The live token of the series an update names (None: a first token); else invalid_request,
        also when any token of the series is revoked (its key is not renewed: it may have leaked)."""
        named = request.edhoc_info.session_id if request.edhoc_info is not None else request.token_series_id
        if named is None:
            return None
        series = [t for t in store.find_tokens(client.client_id, rs.audience) if t.session_id == named]  # newest first
        previous = series[0] if series else None
        if previous is None or (previous.expires_at is not None and previous.expires_at <= now):  # EP §3.1
            raise DecodeError("the series named (session_id, token_series_id) has no live token of this client")
        if any(store.is_revoked(t.token_hash) for t in series):
            log.warning("client %s asked to update a series with a revoked token at %s: refused", client.client_id,
                        rs.audience)
            raise DecodeError("the series named (session_id, token_series_id) has a revoked token")
        return previous

    def series_id(self, request: AccessTokenRequest, previous: IssuedToken | None, cti: bytes) -> bytes | None:
        if self.kind is None:
            return None
        return previous.session_id if previous is not None else _session_id(cti)

    def shape(self, claims: AccessTokenClaims, rs: RsRecord, series_id: bytes | None, first: bool,
              now: int) -> tuple[AccessTokenClaims, EdhocCodePoints | None]:
        """The token's claims for its series (and, EDHOC, the RS's preset, whose limits apply)."""
        if self.kind == DTLS_RPK:
            return replace(claims, token_series_id=series_id), None  # WF §3.6: in every token of the series
        if self.kind != EDHOC:
            return claims, None
        assert series_id is not None
        cp = preset(rs.edhoc_preset)
        claims = replace(claims, edhoc_info=EdhocInfo(session_id=series_id))  # §3.3.1, §3.3.3: session_id only
        if first:
            claims = replace(claims, cnf=token_cnf(cp, claims.cnf))
        if cp.require_iat:
            claims = replace(claims, iat=now)
        alg = rs.token_alg if rs.token_alg is not None else rs.token_key.alg
        check_shape(cp, rs, alg, claims.scope if claims.scope is not None else "")
        return claims, cp

    def rs_cnf(self, plugin: Any, rs: RsRecord, request: AccessTokenRequest) -> Cnf | None:
        by_value: Cnf | None = plugin.rs_cnf(rs)
        return rs_cnf(rs, request, by_value) if self.kind == EDHOC else by_value

    def response_fields(self, rs: RsRecord, series_id: bytes | None, first: bool) -> dict[str, Any]:
        """§3.3: edhoc_info in a first token's response (§3.3.3: never in an update's); WF §3.6: token_series_id."""
        if not first or series_id is None:
            return {}
        if self.kind == EDHOC:
            return {"edhoc_info": response_info(rs, series_id)}
        return {"token_series_id": series_id}


def _session_id(cti: bytes) -> bytes:
    """A cti is unique among this AS's tokens; a long one (exi: rs id + number) keeps its last bytes."""
    return cti[-SESSION_ID_LEN:]


def token_cnf(code_points: EdhocCodePoints, cnf: Cnf | None) -> Cnf:
    """§3.3.1: the credential exactly as sent; the ariel-os preset: the COSE_Key inside it, byte for byte."""
    if not isinstance(cnf, KccsCnf):
        raise DecodeError("req_cnf must be a kccs credential")  # §3.1: never a bare COSE_Key
    return edhoc_profile.token_cnf(cnf, code_points)


def rs_cnf(rs: RsRecord, request: AccessTokenRequest, by_value: Cnf | None) -> Cnf | None:
    """§3.3: AUTH_CRED_RS in a first token's response; WF §5.2: the request's rs_cnf true (by
    value, the default), false (by reference: its kid), null (none)."""
    wanted = dict(request.extra).get(int(Param.RS_CNF), True)
    if wanted is None:
        return None
    if rs.auth_key is None:
        raise IncompatibleProfiles("this RS has no EDHOC credential")
    if wanted is False:
        if not rs.auth_key.kid:
            raise IncompatibleProfiles("this RS's credential has no kid to refer to it by")
        return KidCnf(rs.auth_key.kid)
    if wanted is not True:
        raise DecodeError("rs_cnf in a token request must be true, false or null")
    return KccsCnf(rs.auth_cred) if rs.auth_cred is not None else by_value  # (the CCS registered, exactly)


def response_info(rs: RsRecord, session_id: bytes) -> EdhocInfo:
    """§3.3: edhoc_info with the session_id and what the RS publishes about its EDHOC."""
    published: dict[Any, Any] = codec.loads(rs.edhoc_params, what="edhoc_params") if rs.edhoc_params else {}
    return EdhocInfo.from_map({**published, 0: session_id})


def check_shape(cp: EdhocCodePoints, rs: RsRecord, alg: int | None, scope: str | bytes) -> None:
    """Before issuing: what the preset's RS takes (the ariel-os one: Encrypt0 alg 31 or Sign1 ES256, an AIF
    scope of at most 64 bytes, exp not exi)."""
    if cp.token_algs is not None and alg not in cp.token_algs:
        raise IncompatibleProfiles(f"the {cp.name} RS takes tokens with alg {sorted(cp.token_algs)} only, "
                                   f"this RS is registered with {rs.token_kind} alg {alg}")
    if cp.max_aif is not None:
        if not isinstance(scope, bytes):
            raise InvalidScope(f"the {cp.name} RS takes AIF scopes only")
        if len(scope) > cp.max_aif:
            raise InvalidScope(f"the {cp.name} RS takes AIF scopes of at most {cp.max_aif} bytes, "
                               f"not {len(scope)}")
    if cp.require_iat and rs.format.exi:
        raise IncompatibleProfiles(f"the {cp.name} RS takes exp tokens, not exi")


def check_size(cp: EdhocCodePoints, token: bytes) -> None:
    if cp.max_token is not None and len(token) > cp.max_token:
        raise DecodeError(f"the token would be {len(token)} bytes, the {cp.name} RS takes at most {cp.max_token}")
