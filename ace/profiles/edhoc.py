"""The EDHOC + OSCORE profile (draft-ietf-ace-edhoc-oscore-profile-11), sans I/O.

Credentials are kccs (a CWT Claims Set holding the COSE_Key, ``KccsCnf``), EC2 P-256 keys with a
kid (EDHOC method 3, cipher suite 2): the client's in req_cnf (a bare COSE_Key is refused, §3.1),
copied byte for byte into the token's cnf (§3.3.1: the bytes are CRED_I), and the RS's as rs_cnf
(§3.3). The token travels in EDHOC (EAD_3, or EAD_4 in the reverse flow), never bare to /authz-info
(``bare_token`` False); ``ace.rs.edhoc`` checks it there and binds the derived OSCORE context to
(session_id, CRED_I). Code points and peer limits are a preset's (``ace.profiles.edhoc_presets``):
the ``ariel-os`` preset keeps a COSE_Key cnf in the token, and both ends use the CCS
``{8: {1: COSE_Key}}`` around its bytes as CRED_I (``cred_of_cnf``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ace.cbor import codec
from ace.cbor.labels import AceProfile, Claim, CnfMethod, Curve, KeyType
from ace.errors import DecodeError, IncompatibleProfiles, UnsupportedPopKey
from ace.messages import AccessTokenResponse
from ace.profiles.base import AuthzInfo, Channel, KeyedPop, PopKey, Rng, RsKeys
from ace.profiles.edhoc_presets import DEFAULT_PRESET, EdhocCodePoints, preset
from ace.profiles.ids import EDHOC_LABEL_PREFIX, RecipientIdPool
from ace.tokens.cnf import Cnf, CoseKeyCnf, KccsCnf, KidCnf, ccs_of_cose_key
from ace.tokens.keys import CoseKey

if TYPE_CHECKING:
    from ace.messages import AuthzInfoRequest
    from ace.tokens.encrypt import Recipient

log = logging.getLogger(__name__)

MAX_KID = 16  # bytes; ID_CRED_x by reference names a credential by kid
LABEL_PREFIX = EDHOC_LABEL_PREFIX  # binding labels (ace.profiles.ids): never an OSCORE recipient ID (> 7 bytes)
SESSION_LABEL_PREFIX = b"edhoc-s:"  # a binding keyed by (session_id, CRED_C)


def session_label(session_id: bytes, cred: bytes) -> bytes:
    """The binding label of (SESSION_ID, AUTH_CRED_C) (EP §4.2, §4.6.2): one binding per pair."""
    digest = hashlib.sha256(codec.bstr(session_id) + codec.bstr(cred)).digest()
    return SESSION_LABEL_PREFIX + digest[:16]


@dataclass(frozen=True, slots=True)
class EdhocChannel:
    """What the EDHOC side needs from a token: the peer's credential (the client's at the RS, the
    RS's at the client) as its key and its exact CCS bytes (CRED_x), and the session_id the OSCORE
    context is bound to (None: not bound to a series, the old kid-named form)."""

    profile: ClassVar[int] = int(AceProfile.COAP_EDHOC_OSCORE)

    peer_key: CoseKey = field(repr=False)
    cred: bytes = field(default=b"", repr=False)
    session_id: bytes | None = None
    preset: str = DEFAULT_PRESET

    @property
    def kid(self) -> bytes:
        return self.peer_key.kid or b""

    @property
    def label(self) -> bytes:
        if self.session_id is not None:
            return session_label(self.session_id, self.cred)
        return LABEL_PREFIX + self.kid


def check_credential(key: CoseKey, what: str = "PoP key") -> CoseKey:
    """An EDHOC authentication credential: a public P-256 key with a kid, else unsupported_pop_key."""
    if key.kty is not KeyType.EC2 or key.crv is not Curve.P_256:
        raise UnsupportedPopKey(f"EDHOC profile: the {what} must be an EC2 P-256 key (suite 2)")
    if key.d is not None:
        raise UnsupportedPopKey(f"EDHOC profile: the {what} must be a public key")
    if not key.kid or len(key.kid) > MAX_KID:
        raise UnsupportedPopKey(f"EDHOC profile: the {what} needs a kid of 1 to {MAX_KID} bytes (ID_CRED by reference)")
    return key


def credential(key: CoseKey, subject: str | None = None) -> KccsCnf:
    """A party's kccs credential from its public key (checked), as both ends build it."""
    public = key.public() if key.has_private and not key.is_symmetric else key
    return KccsCnf.of_key(check_credential(public, "credential"), subject)


def token_cnf(req_cnf: KccsCnf, points: EdhocCodePoints) -> Cnf:
    """The first token's cnf from the client's req_cnf (EP §3.3.1: the same credential, verbatim);
    the ariel-os preset's RS reads a COSE_Key cnf: the COSE_Key's bytes as in the CCS."""
    if points.cnf_method is CnfMethod.COSE_KEY:
        raw = codec.raw_at(req_cnf.cred, (int(Claim.CNF), int(CnfMethod.COSE_KEY)))
        return CoseKeyCnf(req_cnf.key, raw)
    return req_cnf


def cred_of_cnf(cnf: Cnf | None, points: EdhocCodePoints) -> tuple[CoseKey, bytes]:
    """(key, CRED_x bytes) of a token's cnf for this preset (a kccs: its CCS as received; a COSE_Key
    for ariel-os: ``{8: {1: COSE_Key}}`` around its bytes); else UnsupportedPopKey."""
    if points.cnf_method is CnfMethod.COSE_KEY and isinstance(cnf, CoseKeyCnf):
        return check_credential(cnf.key, "token's credential"), ccs_of_cose_key(cnf.key_bytes())
    if points.cnf_method is CnfMethod.KCCS and isinstance(cnf, KccsCnf):
        return check_credential(cnf.key, "token's credential"), cnf.cred
    raise UnsupportedPopKey(f"EDHOC profile ({points.name}): the token's cnf must be "
                            f"{'a COSE_Key' if points.cnf_method is CnfMethod.COSE_KEY else 'kccs'}")


def client_cred(own: KccsCnf, points: EdhocCodePoints) -> bytes:
    """The client's CRED_I for this preset: its CCS, or for ariel-os the CCS the RS rebuilds from
    the token's COSE_Key (identical when the client's CCS has no sub)."""
    if points.cnf_method is CnfMethod.COSE_KEY:
        raw = codec.raw_at(own.cred, (int(Claim.CNF), int(CnfMethod.COSE_KEY)))
        assert raw is not None  # a KccsCnf always has it
        return ccs_of_cose_key(raw)
    return own.cred


class EdhocProfile:
    """The EDHOC + OSCORE profile for the AS, the RS and the client (``ace.profiles.base.Profile``)."""

    number = int(AceProfile.COAP_EDHOC_OSCORE)
    name = "edhoc"
    port_offsets: tuple[int, ...] = ()

    # -- AS: what the token request must carry and which PoP key (ace.authz_server.token) -------
    secret_pop_key = False  # the client's public key

    def check_req_cnf(self, req_cnf: Cnf | None, rs: RsKeys) -> Cnf | None:
        """§3.1: the client's credential as kccs in req_cnf, never a bare COSE_Key (or, to update
        its rights, the kid of one it holds a live token for)."""
        if rs.auth_key is None:  # rs_cnf is required in the first token response of a series
            log.warning("RS %s offers coap_edhoc_oscore but has no auth_key registered", rs.audience)
            raise IncompatibleProfiles("this RS has no EDHOC credential")
        match req_cnf:
            case KccsCnf(key=key):
                check_credential(key, "client's credential")
                return req_cnf
            case KidCnf():
                return req_cnf
            case CoseKeyCnf():  # EP §3.1: req_cnf MUST NOT be a bare COSE_Key
                raise UnsupportedPopKey("coap_edhoc_oscore: req_cnf must be kccs, not a bare COSE_Key")
        raise UnsupportedPopKey("coap_edhoc_oscore needs the client's credential (kccs) in req_cnf")

    def pop_key(self, req_cnf: Cnf | None, *, cti: bytes, rng: Rng, salt_len: int, context_id_len: int,
                points: EdhocCodePoints | None = None) -> PopKey:
        """The client's credential, bound as it sent it (EP §3.3.1: the same bytes); no cnf in the
        response (EP §3.3)."""
        assert isinstance(req_cnf, KccsCnf)  # check_req_cnf (a kid keeps the previous token's key)
        return PopKey(token_cnf(req_cnf, points or preset(DEFAULT_PRESET)), None, req_cnf.kid or b"")

    def rs_cnf(self, rs: RsKeys) -> Cnf | None:
        # EP §3.3: AUTH_CRED_RS, by value
        return credential(rs.auth_key) if rs.auth_key is not None else None

    def seal_cnf(self, cnf: Cnf, to: Recipient, rng: Rng) -> Cnf | None:
        return None  # never asked: the client's public key is no secret

    def implied_by_cnf(self, cnf: Cnf | None) -> bool:
        return isinstance(cnf, KccsCnf)  # only this profile uses kccs

    # -- RS: how a token binds to a channel (ace.rs.server, ace.rs.edhoc) -----------------------

    bare_token = False  # EP §4.2: the token travels in EDHOC, /authz-info takes protected updates only

    def rs_refusal(self) -> DecodeError:
        return UnsupportedPopKey("this RS does not offer the EDHOC profile")

    def rs_takes(self, cnf: Cnf | None) -> bool:
        return isinstance(cnf, KccsCnf)

    def rs_check_request(self, request: AuthzInfoRequest) -> None:
        raise DecodeError("EDHOC profile: the token travels in EDHOC, not in an authz-info request")

    def rs_pop(self, cnf: Cnf | None, request: AuthzInfoRequest | None,
               live: Callable[[bytes], Channel | None]) -> KeyedPop:
        raise DecodeError("EDHOC profile: the token travels in EDHOC (ace.rs.edhoc)")

    def rs_same_key(self, cnf: Cnf, channel: Channel) -> bool:
        if not isinstance(channel, EdhocChannel):
            return False
        try:
            _, cred = cred_of_cnf(cnf, preset(channel.preset))
        except UnsupportedPopKey:
            return False
        return cred == channel.cred

    # -- client: what follows the token (ace.client.flow) ---------------------------------------

    def req_cnf(self, own_key: CoseKey | None) -> Cnf | None:
        return credential(own_key) if own_key is not None else None  # §3.1: kccs

    def implied_by(self, response: AccessTokenResponse) -> bool:
        return response.cnf is None and (response.edhoc_info is not None or isinstance(response.rs_cnf, KccsCnf))

    def fits(self, response: AccessTokenResponse) -> bool:
        return isinstance(response.rs_cnf, KccsCnf) and response.edhoc_info is not None

    def authz_info(self, response: AccessTokenResponse, *, ids: RecipientIdPool, rng: Rng) -> AuthzInfo:
        """No POST /authz-info before EDHOC (the token goes in EAD_3): the client's I/O layer runs
        EDHOC with ``rs_channel(response)`` instead."""
        raise DecodeError("EDHOC profile: the token travels in EDHOC (ace.profiles.edhoc.rs_channel)")

    def release(self, channel: Channel, ids: RecipientIdPool) -> None:
        pass


def rs_channel(response: AccessTokenResponse, points: EdhocCodePoints | None = None) -> EdhocChannel:
    """Client: the channel to the RS from a first token response (``fits``): the RS's credential
    (rs_cnf, EP §3.3.2, checked) and the session_id of edhoc_info; else DecodeError."""
    if not isinstance(response.rs_cnf, KccsCnf) or response.edhoc_info is None:
        raise DecodeError("EDHOC profile: the token response needs rs_cnf (kccs) and edhoc_info")
    key = check_credential(response.rs_cnf.key, "RS credential (rs_cnf)")
    return EdhocChannel(key, response.rs_cnf.cred, response.edhoc_info.session_id,
                        (points or preset(DEFAULT_PRESET)).name)


PROFILE = EdhocProfile()
