"""The token endpoint (RFC 9200 §5.8) as a sans-I/O function of (payload, client).

``TokenEndpoint.handle`` takes the request payload and the client identity the secure
channel established (None when the request was not protected), applies the Resource
Owner's grants, and returns the encoded token response or raises ``RemoteError`` with
the RFC 9200 §5.8.3 error and CoAP code. Tokens are CWTs for the RS's key (COSE_Encrypt0
by default) with aud, exp, cti (never repeated: a persisted counter), scope, and the PoP
key in cnf; for the OSCORE profile that is an OSCORE_Input_Material (RFC 9203 §3.2) whose
copy the client gets in the response's cnf. Every issued token is logged (its RFC 9770 token hash only).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace

from ace.authz_server import trl
from ace.authz_server.policy import granted_scope
from ace.cbor.labels import AceProfile, GrantType
from ace.cbor.messages import AccessTokenRequest, AccessTokenResponse, require_ace_cbor
from ace.errors import UNAUTHORIZED, DecodeError, ErrorCode, RemoteError
from ace.profiles import dtls, edhoc
from ace.redact import token as redact_token
from ace.store.base import AsStore, ClientRecord, IssuedToken, ReferenceToken, RsRecord
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import Cnf, CoseKeyCnf, KidCnf, OscoreCnf, OscoreInputMaterial
from ace.tokens.cwt import KIND_BY_NAME, issue_token
from ace.tokens.keys import symmetric_key

log = logging.getLogger(__name__)
Clock = Callable[[], float]
Rng = Callable[[int], bytes]
MASTER_SECRET_LEN = 16
REFERENCE_LEN = 16  # bytes of an opaque reference token (RFC 9200 §5.9)
REFERENCE_PURGE = 64  # expired references forgotten per issued one at most (bounded work)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenPolicy:
    """How this AS shapes tokens (defaults keep /authz-info within one 802.15.4 frame)."""

    issuer: str | None = None  # iss claim; omitted when None
    include_sub: bool = True  # sub = client id: lets the RS keep one token per client (RFC 9203 §6)
    include_iat: bool = False
    salt_len: int = 0  # OSCORE_Input_Material salt bytes (0: no salt)
    # RSs without a clock (RFC 9200 §5.10.3): their tokens carry exi, not exp, and a cti made of the
    # RS's id and a per-RS sequence number the RS uses to refuse expired ones after a restart
    exi_audiences: frozenset[str] = frozenset()
    context_id_len: int = 0  # OSCORE_Input_Material contextId bytes (0: none)
    # RSs that get opaque reference tokens: the claims stay in the store, the RS introspects (§5.9)
    reference_audiences: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class IssueResult:
    """What the AS sends back, and what it logged (for the caller's logs and tests)."""

    response: AccessTokenResponse
    claims: AccessTokenClaims
    client_id: str


class TokenEndpoint:
    def __init__(self, store: AsStore, *, clock: Clock, rng: Rng = secrets.token_bytes,
                 policy: TokenPolicy | None = None) -> None:
        self.store, self.clock, self.rng = store, clock, rng
        self.policy = policy or TokenPolicy()

    def handle(self, payload: bytes, client_id: str | None, content_format: int | None = None) -> IssueResult:
        # RFC 9200 §5.8: the client MUST be authenticated (§5.8.3: invalid_client, 4.01 MAY be used)
        client = self.store.get_client(client_id) if client_id is not None else None
        if client is None:
            raise RemoteError("client not authenticated", error_code=ErrorCode.INVALID_CLIENT,
                              coap_code=UNAUTHORIZED)
        require_ace_cbor(content_format)
        request = AccessTokenRequest.decode(payload)
        result = self._issue(request, client)
        log.info("issued %s to %s for %s (cti %s)", redact_token(result.response.access_token),
                 client.client_id, result.claims.aud, (result.claims.cti or b"").hex())
        return result

    def _issue(self, request: AccessTokenRequest, client: ClientRecord) -> IssueResult:
        if request.client_id is not None and request.client_id != client.client_id:
            raise RemoteError("client_id does not match the authenticated client",
                              error_code=ErrorCode.INVALID_CLIENT, coap_code=UNAUTHORIZED)
        if request.grant_type not in (None, GrantType.CLIENT_CREDENTIALS):  # RFC 9200 §5.8.1 default
            raise DecodeError("only client_credentials is supported", error_code=ErrorCode.UNSUPPORTED_GRANT_TYPE)
        if request.audience is None:
            raise DecodeError("audience(5) is required by this AS")
        rs = self.store.get_rs(request.audience)
        if rs is None:
            raise DecodeError("unknown audience", error_code=ErrorCode.INVALID_REQUEST)
        profile = _choose_profile(request, client, rs)
        scope = granted_scope(request.scope, self.store.grants_for(client.client_id, rs.audience))
        update_kid = self._check_pop_request(request, profile, client, rs)
        now = int(self.clock())
        exi = rs.audience in self.policy.exi_audiences
        cti = exi_cti(rs.rs_id, self.store.next_counter(f"exi:{rs.audience}")) if exi else _cti_bytes(
            self.store.next_cti())
        token_cnf, response_cnf, pop_kid = self._pop_key(profile, cti, update_kid, request)
        p = self.policy
        claims = AccessTokenClaims(
            iss=p.issuer, sub=client.client_id if p.include_sub else None, aud=rs.audience,
            exp=None if exi else now + rs.token_lifetime, exi=rs.token_lifetime if exi else None,
            iat=now if p.include_iat else None, cti=cti, cnf=token_cnf, scope=scope, cnonce=request.cnonce,
        )
        if rs.audience in p.reference_audiences:
            token, token_hash = self._reference(replace(claims, ace_profile=profile), now, now + rs.token_lifetime)
        else:
            token = issue_token(claims, rs.token_key, kind=KIND_BY_NAME[rs.token_kind], alg=rs.token_alg,
                                rng=self.rng)
            token_hash = trl.token_hash(token)
        self.store.log_token(IssuedToken(
            cti=cti, client_id=client.client_id, audience=rs.audience, scope=scope, issued_at=now,
            expires_at=now + rs.token_lifetime, token_hash=token_hash, pop_kid=pop_kid,
        ))
        rs_cnf = None
        if profile == AceProfile.COAP_EDHOC_OSCORE and update_kid is None and rs.auth_key is not None:
            rs_cnf = CoseKeyCnf(rs.auth_key)  # RFC 9201 §3.2: the RS's key, for the client to authenticate it
        response = AccessTokenResponse(
            access_token=token, ace_profile=profile, expires_in=rs.token_lifetime, cnf=response_cnf, rs_cnf=rs_cnf,
            scope=scope if scope != request.scope else None,  # RFC 6749 §5.1: scope when it differs
        )
        return IssueResult(response, claims, client.client_id)

    def _reference(self, claims: AccessTokenClaims, now: int, expires_at: int) -> tuple[bytes, bytes]:
        """An opaque random token (and its RFC 9770 hash) whose claims (with ace_profile) the store
        keeps until it expires.
        Its first byte never starts a CBOR array, map or tag: an RS tells it from a COSE message
        (and from an ace+cbor map) by its first byte alone."""
        token = bytearray(self.rng(REFERENCE_LEN))
        if token[0] >> 5 in (4, 5, 6):  # CBOR major types array, map, tag -> unsigned, negative, bytes
            token[0] ^= 0x80
        reference = bytes(token)
        token_hash = trl.token_hash(reference)
        assert isinstance(claims.aud, str)
        self.store.put_reference(ReferenceToken(token_hash=token_hash, audience=claims.aud,
                                                claims=claims.encode(), expires_at=expires_at))
        self.store.purge_references(now, REFERENCE_PURGE)
        return reference, token_hash

    def _check_pop_request(self, request: AccessTokenRequest, profile: int, client: ClientRecord,
                           rs: RsRecord) -> bytes | None:
        """Refuse what we cannot serve before any state changes (no cti is used up); returns
        the kid of the PoP key to keep when the client asks to update its access rights."""
        if profile not in (AceProfile.COAP_OSCORE, AceProfile.COAP_DTLS, AceProfile.COAP_EDHOC_OSCORE):
            raise DecodeError("profile not available at this AS", error_code=ErrorCode.INCOMPATIBLE_ACE_PROFILES)
        if profile == AceProfile.COAP_EDHOC_OSCORE:
            return self._check_edhoc_request(request, client, rs)
        if profile == AceProfile.COAP_DTLS and rs.token_kind != "encrypt0":  # the PSK travels in cnf
            log.warning("RS %s gets %s tokens: a DTLS PSK cannot travel in them", rs.audience, rs.token_kind)
            raise DecodeError("coap_dtls needs encrypted tokens for this RS",
                              error_code=ErrorCode.INCOMPATIBLE_ACE_PROFILES)
        match request.req_cnf:
            case None:
                return None
            case KidCnf(kid):  # RFC 9203 §3.1, RFC 9202 §3.4: update of access rights, same key
                return self._live_kid(kid, client, rs)
            case _:  # asymmetric PoP keys: the EDHOC profile
                raise DecodeError("req_cnf: only a kid is supported here", error_code=ErrorCode.UNSUPPORTED_POP_KEY)

    def _live_kid(self, kid: bytes, client: ClientRecord, rs: RsRecord) -> bytes:
        previous = self.store.find_token_by_pop_kid(client.client_id, rs.audience, kid)
        if previous is None or (previous.expires_at is not None and previous.expires_at <= self.clock()):
            raise DecodeError("req_cnf kid names no live key of this client")  # invalid_request
        return kid

    def _check_edhoc_request(self, request: AccessTokenRequest, client: ClientRecord, rs: RsRecord) -> bytes | None:
        """draft-ietf-ace-edhoc-oscore-profile §3.1: the client's credential in req_cnf (or, to
        update its rights, the kid of one it holds a live token for)."""
        if rs.auth_key is None:  # rs_cnf is required in the first token response of a series
            log.warning("RS %s offers coap_edhoc_oscore but has no auth_key registered", rs.audience)
            raise DecodeError("this RS has no EDHOC credential", error_code=ErrorCode.INCOMPATIBLE_ACE_PROFILES)
        match request.req_cnf:
            case CoseKeyCnf(key):
                edhoc.check_credential(key, "client's credential")
                return None
            case KidCnf(kid):
                return self._live_kid(kid, client, rs)
        raise DecodeError("coap_edhoc_oscore needs the client's public key in req_cnf",
                          error_code=ErrorCode.UNSUPPORTED_POP_KEY)

    def _pop_key(self, profile: int, cti: bytes, update_kid: bytes | None,
                 request: AccessTokenRequest) -> tuple[Cnf, Cnf | None, bytes]:
        """(cnf of the token, cnf of the response, the key's id)."""
        if update_kid is not None:  # RFC 9203 §3.2: kid in the token, no cnf in the response
            return KidCnf(update_kid), None, update_kid
        if profile == AceProfile.COAP_EDHOC_OSCORE:  # the client's own key, bound as it sent it
            assert isinstance(request.req_cnf, CoseKeyCnf)
            return request.req_cnf, None, request.req_cnf.key.kid or b""
        if profile == AceProfile.COAP_DTLS:  # RFC 9202 §3.2: a symmetric key, its kid the psk_identity
            key = symmetric_key(self.rng(dtls.PSK_LEN), kid=dtls.mint_kid(self.rng))
            return CoseKeyCnf(key), CoseKeyCnf(key), key.kid or b""
        p = self.policy
        material = OscoreInputMaterial(
            id=cti, ms=self.rng(MASTER_SECRET_LEN),  # RFC 9203 §2: id unique among this AS's materials
            salt=self.rng(p.salt_len) if p.salt_len else None,
            context_id=self.rng(p.context_id_len) if p.context_id_len else None,
        )
        return OscoreCnf(material), OscoreCnf(material), cti


def _choose_profile(request: AccessTokenRequest, client: ClientRecord, rs: RsRecord) -> int:
    """The RS's first profile the client supports; a named one must be supported by both."""
    common = [p for p in rs.profiles if p in client.profiles]
    if request.ace_profile is not None:
        common = [p for p in common if p == request.ace_profile]
    if not common:  # RFC 9200 §5.8.3
        raise DecodeError("client and RS share no profile", error_code=ErrorCode.INCOMPATIBLE_ACE_PROFILES)
    return common[0]


EXI_SEQ_LEN = 4  # bytes of the sequence number after the RS's id in an exi token's cti


def exi_cti(rs_id: str, sequence: int) -> bytes:
    """RFC 9200 §5.10.3: cti = the RS's identifier followed by a per-RS sequence number."""
    return rs_id.encode() + sequence.to_bytes(EXI_SEQ_LEN, "big")


def _cti_bytes(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")

