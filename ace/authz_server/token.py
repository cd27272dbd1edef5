"""The token endpoint (RFC 9200 §5.8) as a sans-I/O function of (payload, client).

``TokenEndpoint.issue`` takes the request payload and the record of the client the secure
channel established (found by the caller; None when the request was not protected), applies
the Resource Owner's grants, and returns the encoded token response or raises ``RemoteError`` with
the RFC 9200 §5.8.3 error and CoAP code. Tokens are CWTs for the RS's key (COSE_Encrypt0
by default) with aud, exp, cti (never repeated: a persisted counter), scope, and the PoP
key in cnf; for the OSCORE profile that is an OSCORE_Input_Material (RFC 9203 §3.2) whose
copy the client gets in the response's cnf. Every issued token is logged (its RFC 9770 token hash only).
How one RS's tokens are shaped is its ``RsRecord.format`` (``TokenFormat``; defaults: the RFCs as
written): a COSE (and CWT) tag, no sub, exp/exi in ms, exi tokens (RFC 9200 §5.10.3) whose cti is the
rs id + a 4-byte or a decimal sequence number, its own OSCORE_Input_Material salt length.

Enforced at issue time: a cnf carrying a secret (OSCORE master secret, symmetric key) only encrypted
to the RS: the token encrypted to it, or, for an RS with signed or MACed tokens and a
``pop_key_encryption``, the key as Encrypted_COSE_Key (DTLS) or the signed token nested in an
encryption to the RS (OSCORE) (RFC 9203 §3.2, RFC 8747 §3.3; else 4.00 incompatible_ace_profiles); a
client's own PoP key (EDHOC) belongs for good to the client the operator registered it for (kid and
key), else the key (its RFC 9679 thumbprint) to the client that first presented it at any audience
and the kid to the one that first presented it at that audience (another client presenting either:
4.00 invalid_request; checked before anything is written, recorded with the token's log entry, so a
refused request claims nothing); a kid names the key of a live, unrevoked token
of the client (an update of access rights; else 4.00 invalid_request); at most
``TokenPolicy.max_live_tokens`` live tokens per client and audience (beyond: 4.00 invalid_request,
RFC 9200 §5.8.3 prescribes 4.00 for every error of the token endpoint but invalid_client); and
the token log is purged of expired rows, a bounded batch per issued token (``purge_tokens``).
The EDHOC profile's series (session_id, edhoc_info, the kccs cnf, rs_cnf, update requests, the
RS's preset) is ``edhoc_as``'s; a token the client asks the AS to upload is planned by ``upload``
(the POST itself is the CoAP layer's: ``ace.coap.as_server``).
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from ace.authz_server import edhoc_as, trl, upload
from ace.authz_server.policy import granted_scope
from ace.authz_server.pop import CONFIDENTIAL_KIND, carries_secret, secret_reaches
from ace.cbor.labels import AceProfile, GrantType
from ace.errors import DecodeError, IncompatibleProfiles, InvalidClient, UnsupportedGrantType
from ace.messages import AccessTokenRequest, AccessTokenResponse, require_ace_cbor
from ace.profiles import PROFILES
from ace.profiles.base import AsProfile
from ace.redact import token as redact_token
from ace.store.base import AsStore, ClientRecord, EdhocClaim, IssuedToken, ReferenceToken, RsRecord
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import Cnf, CoseKeyCnf, KccsCnf, KidCnf
from ace.tokens.cwt import KIND_BY_NAME, issue_token
from ace.tokens.encrypt import Recipient
from ace.tokens.keys import CoseKey, thumbprint
from ace.tokens.reference import mint_reference

log = logging.getLogger(__name__)
Clock = Callable[[], float]
Rng = Callable[[int], bytes]
REFERENCE_PURGE = 64  # expired references forgotten per issued one at most (bounded work)
TOKEN_PURGE = 64  # expired token-log rows forgotten per issued token at most (bounded work)
LIVE_BOUNDS = 4096  # (client, audience) pairs whose live-token bound is kept
EDHOC_CREDENTIALS = 64  # EDHOC credentials one client keeps per audience as their first presenter (LRU)
MAX_LIVE_TOKENS = 256  # default: live tokens one client may hold per audience (a CLI client run every 15 s)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenPolicy:
    """How this AS shapes tokens (defaults keep /authz-info within one 802.15.4 frame)."""

    issuer: str | None = None  # iss claim; omitted when None
    include_sub: bool = True  # sub = client id: lets the RS keep one token per client (RFC 9203 §6)
    include_iat: bool = True  # iat orders a client's tokens at the RS (a replayed older one never wins)
    salt_len: int = 0  # OSCORE_Input_Material salt bytes (0: no salt)
    # RSs without a clock (RFC 9200 §5.10.3): their tokens carry exi, not exp, and a cti made of the
    # RS's id and a per-RS sequence number the RS uses to refuse expired ones after a restart
    exi_audiences: frozenset[str] = frozenset()
    context_id_len: int = 0  # OSCORE_Input_Material contextId bytes (0: none)
    # RSs that get opaque reference tokens: the claims stay in the store, the RS introspects (§5.9)
    reference_audiences: frozenset[str] = frozenset()
    # live (unexpired, unrevoked) tokens a client may hold per audience; a request beyond is refused
    max_live_tokens: int = MAX_LIVE_TOKENS

    def __post_init__(self) -> None:
        if self.max_live_tokens < 1:
            raise ValueError("max_live_tokens must be at least 1")


@dataclass(frozen=True, slots=True)
class IssueResult:
    """What the AS sends back, and what it logged (for the caller's logs and tests)."""

    response: AccessTokenResponse
    claims: AccessTokenClaims
    client_id: str
    upload: upload.UploadPlan | None = None  # the POST to the RS's /authz-info the client asked for (WF §3.1)


class TokenEndpoint:
    def __init__(self, store: AsStore, *, clock: Clock, rng: Rng = secrets.token_bytes,
                 policy: TokenPolicy | None = None) -> None:
        self.store, self.clock, self.rng = store, clock, rng
        self.policy = policy or TokenPolicy()
        # (client, audience) -> an upper bound of its live tokens, kept so that most requests need
        # no count in the store (bounded, least recently used first out)
        self._live_bound: OrderedDict[tuple[str, str], int] = OrderedDict()

    def issue(self, payload: bytes, client: ClientRecord | None, content_format: int | None = None) -> IssueResult:
        # RFC 9200 §5.8: the client MUST be authenticated (§5.8.3: invalid_client, 4.01 MAY be used)
        if client is None:
            raise InvalidClient("client not authenticated")
        require_ace_cbor(content_format)
        request = AccessTokenRequest.decode(payload)
        upload.check_request(request)
        result = self._token_for(request, client)
        log.info("issued %s to %s for %s (cti %s)", redact_token(result.response.access_token),
                 client.client_id, result.claims.aud, (result.claims.cti or b"").hex())
        return result

    def _token_for(self, request: AccessTokenRequest, client: ClientRecord) -> IssueResult:
        if request.client_id is not None and request.client_id != client.client_id:
            raise InvalidClient("client_id does not match the authenticated client")
        if request.grant_type not in (None, GrantType.CLIENT_CREDENTIALS):  # RFC 9200 §5.8.1 default
            raise UnsupportedGrantType("only client_credentials is supported")
        if request.audience is None:
            raise DecodeError("audience(5) is required by this AS")
        rs = self.store.get_rs(request.audience)
        if rs is None:
            raise DecodeError("unknown audience")
        profile = _choose_profile(request, client, rs)
        scope = granted_scope(request.scope, self.store.grants_for(client.client_id, rs.audience))
        now = int(self.clock())
        plugin = PROFILES.get(profile)
        if plugin is None:  # RFC 9200 §5.8.3: a profile both registered that this AS does not implement
            raise IncompatibleProfiles("profile not available at this AS")
        series = edhoc_as.SeriesKind.of(profile, request)  # (EDHOC: session_id, DTLS RPK: token_series_id)
        previous, claim = self._check_pop_request(request, plugin, client, rs, now, series)
        self._check_live_tokens(client, rs, now)
        f, p = rs.format, self.policy
        exi = f.exi or rs.audience in p.exi_audiences
        cti = exi_cti(rs.rs_id, self.store.next_counter(f"exi:{rs.audience}"), f.exi_cti) if exi else _cti_bytes(
            self.store.next_cti())
        token_cnf, response_cnf, pop_kid = self._pop_key(plugin, cti, previous, request, rs)
        series_id = series.series_id(request, previous, cti)
        lifetime = rs.token_lifetime * f.per_second  # exp and exi in the RS's unit (iat stays in seconds)
        claims = AccessTokenClaims(
            iss=p.issuer, sub=client.client_id if p.include_sub and f.sub else None, aud=rs.audience,
            exp=None if exi else now * f.per_second + lifetime, exi=lifetime if exi else None,
            iat=now if p.include_iat else None, cti=cti, cnf=token_cnf, scope=scope, cnonce=request.cnonce,
        )
        claims, cp = series.shape(claims, rs, series_id, previous is None, now)
        encrypt_to: Recipient | None = None
        if rs.audience not in p.reference_audiences:  # (a reference's claims never leave the AS)
            claims, encrypt_to = _protect_secret(claims, rs, plugin, self.rng)
        tagged = cp is not None and cp.token_tagged  # (the ariel-os preset's RS reads tagged COSE only)
        token, token_hash = self._encode(claims, rs, profile, now, encrypt_to, tagged=tagged)
        if cp is not None:
            edhoc_as.check_size(cp, token)  # refused before anything is logged
        to_upload = upload.plan(request, rs, token, profile, update=previous is not None)  # (its refusals too)
        other = self.store.log_token(IssuedToken(
            cti=cti, client_id=client.client_id, audience=rs.audience, scope=scope, issued_at=now,
            expires_at=now + rs.token_lifetime, token_hash=token_hash, pop_kid=pop_kid,
            # the thumbprint of the client's own public key (EDHOC), kept by its update tokens
            pop_thumbprint=previous.pop_thumbprint if previous is not None else claim.thumbprint if claim else None,
            session_id=series_id,
        ), purge_before=now, purge_limit=TOKEN_PURGE,  # expired rows go, a bounded batch per token issued
            edhoc_claim=claim)  # the credential is claimed with the token, not before: no claim if refused
        if other is not None:  # taken since the check (another request in between): nothing was logged
            raise _taken(client, rs, claim)
        rs_cnf = series.rs_cnf(plugin, rs, request) if previous is None else None  # a first token's (RFC 9201 §3.2)
        response = AccessTokenResponse(
            access_token=token, ace_profile=profile, expires_in=rs.token_lifetime, cnf=response_cnf, rs_cnf=rs_cnf,
            scope=scope if scope != request.scope else None,  # RFC 6749 §5.1: scope when it differs
            **series.response_fields(rs, series_id, previous is None),
        )
        return IssueResult(response, claims, client.client_id, to_upload)

    def _encode(self, claims: AccessTokenClaims, rs: RsRecord, profile: int, now: int,
                encrypt_to: Recipient | None, *, tagged: bool = False) -> tuple[bytes, bytes]:
        """The token and its RFC 9770 hash: self-contained (signed or MACed and then encrypted to
        ``encrypt_to``, if given), or a reference whose claims stay here (the RS gets them by
        introspection, over its protected channel with us)."""
        if rs.audience in self.policy.reference_audiences:
            return self._reference(replace(claims, ace_profile=profile), now, now + rs.token_lifetime)
        token = issue_token(claims, rs.token_key, kind=KIND_BY_NAME[rs.token_kind], alg=rs.token_alg,
                            tagged=rs.format.cose_tag or tagged, cwt_tag=rs.format.cwt_tag, rng=self.rng,
                            encrypt_to=encrypt_to)
        return token, trl.token_hash(token)

    def _reference(self, claims: AccessTokenClaims, now: int, expires_at: int) -> tuple[bytes, bytes]:
        """An opaque random token (and its RFC 9770 hash) whose claims (with ace_profile) the store
        keeps until it expires (``ace.tokens.reference``: an RS tells it by its first byte)."""
        reference = mint_reference(self.rng)
        token_hash = trl.token_hash(reference)
        assert isinstance(claims.aud, str)
        self.store.put_reference(ReferenceToken(token_hash=token_hash, audience=claims.aud,
                                                claims=claims.encode(), expires_at=expires_at))
        self.store.purge_references(now, REFERENCE_PURGE)
        return reference, token_hash

    def _check_pop_request(self, request: AccessTokenRequest, profile: AsProfile, client: ClientRecord,
                           rs: RsRecord, now: int,
                           series: edhoc_as.SeriesKind) -> tuple[IssuedToken | None, EdhocClaim | None]:
        """Refuse what we cannot serve before any state changes (the profile says what req_cnf may
        be); returns the client's live token whose PoP key to keep when it asks to update its access
        rights, or the claim on the client's own key (EDHOC) to write with the token's log entry."""
        update = series.update_of(request, self.store, client, rs, now)
        if update is not None:  # EDHOC §3.1 (session_id), WF §3.6 (token_series_id): the series named
            return update, None
        match profile.check_req_cnf(request.req_cnf, rs):
            case KidCnf(kid):  # RFC 9203 §3.1, RFC 9202 §3.4: update of access rights, same key
                return self._live_kid(kid, client, rs, now), None
            case CoseKeyCnf(key) | KccsCnf(key=key):  # the client's own key: one owner (below)
                return None, self._check_key_owner(key, client, rs, now)
        return None, None

    def _live_kid(self, kid: bytes, client: ClientRecord, rs: RsRecord, now: int) -> IssuedToken:
        previous = self.store.find_token_by_pop_kid(client.client_id, rs.audience, kid)
        if previous is None or (previous.expires_at is not None and previous.expires_at <= now):
            raise DecodeError("req_cnf kid names no live key of this client")  # invalid_request
        if self.store.is_revoked(previous.token_hash):  # a revoked token's key is not renewed (e.g. it leaked)
            log.warning("client %s asked to update the rights of a revoked token at %s: refused", client.client_id,
                        rs.audience)
            raise DecodeError("req_cnf kid names the key of a revoked token")  # invalid_request
        return previous

    def _check_key_owner(self, key: CoseKey, client: ClientRecord, rs: RsRecord, now: int) -> EdhocClaim:
        """A PoP key (its RFC 9679 thumbprint) belongs for good to one client: the one the operator
        registered it for, else the first to present it at any audience (the key is public: it travels
        in EDHOC message_3); its kid (the RS's label for the binding) likewise, but per audience (short
        kids may repeat across RSs) (``edhoc_owner``); and, unless registered, never to a client while
        another holds live tokens with them here. The RS must never rebind another client's credential,
        and a client must not keep one from its owner by renewing tokens with it. Read only: the claim
        returned is written with the token (``log_token``), so a request refused later claims nothing.
        invalid_request (RFC 9200 §5.8.3: an unsupported parameter value), not unsupported_pop_key:
        the RS can process such a key, just not from this client."""
        assert key.kid is not None  # the profile's check_req_cnf
        claim = EdhocClaim(kid=key.kid, thumbprint=thumbprint(key), limit=EDHOC_CREDENTIALS)
        owner = self.store.edhoc_owner(client.client_id, rs.audience, kid=key.kid, thumbprint=claim.thumbprint)
        if owner is None and self.store.registered_edhoc_owner(kid=key.kid, thumbprint=claim.thumbprint) is None:
            holders = self.store.pop_holders(rs.audience, now, pop_kid=key.kid, pop_thumbprint=claim.thumbprint)
            owner = next((h for h in holders if h != client.client_id), None)  # (a first presenter's row evicted)
        if owner is not None:
            raise _taken(client, rs, claim)
        return claim

    def _check_live_tokens(self, client: ClientRecord, rs: RsRecord, now: int) -> None:
        """At most ``max_live_tokens`` live tokens per client and audience: the token log (and the
        TRL work per requester) stays bounded. A request beyond is refused (4.00 invalid_request, no
        state changed), not answered by revoking the oldest: that would grow the TRL every RS
        fetches with each extra token a client asks for."""
        limit, key = self.policy.max_live_tokens, (client.client_id, rs.audience)
        bound = self._live_bound.pop(key, None)  # the count only shrinks but by our own issuing:
        if bound is None or bound >= limit:  # a bound under the limit spares the store the count
            bound = self.store.count_live_tokens(client.client_id, rs.audience, now, limit)
        if bound >= limit:
            log.warning("client %s holds %d live tokens for %s: refused another", client.client_id, limit,
                        rs.audience)
            raise DecodeError(f"this client holds {limit} live tokens for this audience already")
        self._live_bound[key] = bound + 1  # this request's token (a refusal later only overcounts)
        while len(self._live_bound) > LIVE_BOUNDS:
            self._live_bound.popitem(last=False)

    def _pop_key(self, profile: AsProfile, cti: bytes, previous: IssuedToken | None, request: AccessTokenRequest,
                 rs: RsRecord) -> tuple[Cnf, Cnf | None, bytes]:
        """(cnf of the token, cnf of the response, the key's id)."""
        if previous is not None:  # RFC 9203 §3.2: kid in the token, no cnf in the response
            assert previous.pop_kid is not None
            return KidCnf(previous.pop_kid), None, previous.pop_kid
        p = self.policy
        salt_len = p.salt_len if rs.format.salt_len is None else rs.format.salt_len  # the RS's, else ours
        key = profile.pop_key(request.req_cnf, cti=cti, rng=self.rng, salt_len=salt_len,
                              context_id_len=p.context_id_len)
        return key.token_cnf, key.response_cnf, key.kid


def _taken(client: ClientRecord, rs: RsRecord, claim: EdhocClaim | None) -> DecodeError:
    log.warning("client %s presented a PoP key (kid %s) that another client holds at %s: refused",
                client.client_id, claim.kid.hex() if claim else "", rs.audience)
    return DecodeError("req_cnf: this key or kid is bound to another client")


def _protect_secret(claims: AccessTokenClaims, rs: RsRecord, profile: AsProfile,
                    rng: Rng) -> tuple[AccessTokenClaims, Recipient | None]:
    """RFC 8747 §3.3, RFC 9203 §3.2: key material in cnf only encrypted to the RS: in a token encrypted
    to it (encrypt0), else encrypted by itself (Encrypted_COSE_Key), or, for a profile without such a
    cnf (OSCORE), in a token signed and then encrypted to the RS (returned: whom to encrypt it to).
    An RS with neither: the client and this RS share no profile it can serve, incompatible_ace_profiles
    (RFC 9200 §5.8.3); nothing is logged or sent (the cti drawn is skipped: ctis are unique, not
    consecutive). Checked on the cnf about to be sent, whatever the profile."""
    if claims.cnf is None or not carries_secret(claims.cnf) or rs.token_kind == CONFIDENTIAL_KIND:
        return claims, None
    if not secret_reaches(rs) or rs.encryption_key is None:
        log.warning("RS %s gets %s tokens: refused a token whose cnf holds a secret (register it with "
                    "encrypt0 or --pop-key-encryption)", rs.audience, rs.token_kind)
        raise IncompatibleProfiles(f"the PoP key is secret and tokens for this RS are {rs.token_kind}, not encrypted")
    to = Recipient(rs.encryption_key)
    sealed = profile.seal_cnf(claims.cnf, to, rng)
    return (claims, to) if sealed is None else (replace(claims, cnf=sealed), None)


def _choose_profile(request: AccessTokenRequest, client: ClientRecord, rs: RsRecord) -> int:
    """The RS's first profile the client supports; a named one must be supported by both."""
    common = [p for p in rs.profiles if p in client.profiles]
    named = request.ace_profile
    if named is None and request.edhoc_info is not None:  # EP §3.1: an update names its session_id only
        named = int(AceProfile.COAP_EDHOC_OSCORE)
    if named is not None:
        common = [p for p in common if p == named]
    if not common:  # RFC 9200 §5.8.3
        raise IncompatibleProfiles("client and RS share no profile")
    return common[0]


EXI_SEQ_LEN = 4  # bytes of the sequence number after the RS's id in an exi token's cti


def exi_cti(rs_id: str, sequence: int, layout: str = "bytes") -> bytes:
    """RFC 9200 §5.10.3: cti = the RS's identifier followed by a per-RS sequence number, as
    ``EXI_SEQ_LEN`` bytes big-endian ("bytes") or in decimal digits ("text": ace-java's layout)."""
    if layout == "text":
        return f"{rs_id}{sequence}".encode()
    return rs_id.encode() + sequence.to_bytes(EXI_SEQ_LEN, "big")


def _cti_bytes(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")

