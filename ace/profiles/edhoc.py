"""The EDHOC + OSCORE profile's key handling (draft-ietf-ace-edhoc-oscore-profile), sans I/O.

The client's authentication credential is an EC2 P-256 public key (EDHOC method 3, cipher
suite 2, as aiocoap 0.4.17 runs it) with a kid: the AS binds it in the token's cnf and sends
the RS's own public key as rs_cnf; the RS finds the client's key by that kid (ID_CRED_I by
reference) when the EDHOC handshake starts, and the OSCORE context EDHOC derives is bound to
the token. Deviations from the draft, forced by the stack or by values still TBD at IANA:
the credential is sent as a COSE_Key (the draft asks for a kccs CWT Claims Set, whose cnf
method number is not assigned yet), and the token is POSTed to /authz-info before EDHOC
(the draft carries it in EAD_3, which aiocoap's EDHOC does not expose).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ace.cbor.labels import AceProfile, ContentFormat, Curve, KeyType
from ace.errors import DecodeError, IncompatibleProfiles, TokenRefused, UnsupportedPopKey
from ace.messages import AccessTokenResponse
from ace.profiles.base import AuthzInfo, Channel, KeyedPop, PopKey, Ready, Rng, RsKeys, bare_key
from ace.profiles.ids import EDHOC_LABEL_PREFIX, RecipientIdPool
from ace.tokens.cnf import Cnf, CoseKeyCnf, KidCnf
from ace.tokens.keys import CoseKey

if TYPE_CHECKING:
    from ace.messages import AuthzInfoRequest
    from ace.tokens.encrypt import Recipient

log = logging.getLogger(__name__)

MAX_KID = 16  # bytes; the RS indexes credentials by kid
LABEL_PREFIX = EDHOC_LABEL_PREFIX  # binding labels (ace.profiles.ids)


@dataclass(frozen=True, slots=True)
class EdhocChannel:
    """What the EDHOC side needs from a token: the peer's public key (the client's at the RS,
    the RS's at the client)."""

    profile: ClassVar[int] = int(AceProfile.COAP_EDHOC_OSCORE)

    peer_key: CoseKey = field(repr=False)

    @property
    def kid(self) -> bytes:
        return self.peer_key.kid or b""

    @property
    def label(self) -> bytes:
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


class EdhocProfile:
    """The EDHOC + OSCORE profile for the AS, the RS and the client (``ace.profiles.base.Profile``)."""

    number = int(AceProfile.COAP_EDHOC_OSCORE)
    name = "edhoc"
    port_offsets: tuple[int, ...] = ()

    # -- AS: what the token request must carry and which PoP key (ace.authz_server.token) -------
    secret_pop_key = False  # the client's public key

    def check_req_cnf(self, req_cnf: Cnf | None, rs: RsKeys) -> Cnf | None:
        """§3.1: the client's credential in req_cnf (or, to update its rights, the kid of one it
        holds a live token for)."""
        if rs.auth_key is None:  # rs_cnf is required in the first token response of a series
            log.warning("RS %s offers coap_edhoc_oscore but has no auth_key registered", rs.audience)
            raise IncompatibleProfiles("this RS has no EDHOC credential")
        match req_cnf:
            case CoseKeyCnf(key):
                check_credential(key, "client's credential")
                return req_cnf
            case KidCnf():
                return req_cnf
        raise UnsupportedPopKey("coap_edhoc_oscore needs the client's public key in req_cnf")

    def pop_key(self, req_cnf: Cnf | None, *, cti: bytes, rng: Rng, salt_len: int, context_id_len: int) -> PopKey:
        """The client's own key, bound as it sent it."""
        assert isinstance(req_cnf, CoseKeyCnf)  # check_req_cnf (a kid keeps the previous token's key)
        return PopKey(req_cnf, None, req_cnf.key.kid or b"")

    def rs_cnf(self, rs: RsKeys) -> Cnf | None:
        # RFC 9201 §3.2: the RS's key, for the client to authenticate it
        return CoseKeyCnf(rs.auth_key) if rs.auth_key is not None else None

    def seal_cnf(self, cnf: Cnf, to: Recipient, rng: Rng) -> Cnf | None:
        return None  # never asked: the client's public key is no secret

    def implied_by_cnf(self, cnf: Cnf | None) -> bool:
        return False  # a public key fits DTLS RPK and EDHOC alike: the RS decides by how it is used

    # -- RS: how a token binds to a channel (ace.rs.server) -------------------------------------

    bare_token = True  # the token before the handshake, as in the DTLS profile (see the module docstring)

    def rs_refusal(self) -> DecodeError:
        return UnsupportedPopKey("this RS does not offer the EDHOC profile")

    def rs_takes(self, cnf: Cnf | None) -> bool:
        return isinstance(cnf, CoseKeyCnf) and not cnf.key.is_symmetric

    def rs_check_request(self, request: AuthzInfoRequest) -> None:
        pass  # no request map: the token itself

    def rs_pop(self, cnf: Cnf | None, request: AuthzInfoRequest | None,
               live: Callable[[bytes], Channel | None]) -> KeyedPop:
        key = bare_key(cnf)
        channel = EdhocChannel(check_credential(key))
        current = live(channel.label)  # the kid names the credential: one key per kid
        if isinstance(current, EdhocChannel) and current.peer_key != key:
            raise TokenRefused("this kid is bound to another credential")
        return KeyedPop(channel, channel.label, channel.kid)

    def rs_same_key(self, cnf: Cnf, channel: Channel) -> bool:
        return isinstance(cnf, CoseKeyCnf) and isinstance(channel, EdhocChannel) and cnf.key == channel.peer_key

    # -- client: what follows the token (ace.client.flow) ---------------------------------------

    def req_cnf(self, own_key: CoseKey | None) -> Cnf | None:
        return CoseKeyCnf(own_key.public()) if own_key is not None else None  # §3.1

    def implied_by(self, response: AccessTokenResponse) -> bool:
        return response.cnf is None and isinstance(response.rs_cnf, CoseKeyCnf)

    def fits(self, response: AccessTokenResponse) -> bool:
        return isinstance(response.rs_cnf, CoseKeyCnf)

    def authz_info(self, response: AccessTokenResponse, *, ids: RecipientIdPool, rng: Rng) -> AuthzInfo:
        """The token (application/cwt), then EDHOC with the RS's credential from rs_cnf."""
        assert isinstance(response.rs_cnf, CoseKeyCnf)  # fits
        rs_key = check_credential(response.rs_cnf.key, "RS credential (rs_cnf)")
        return AuthzInfo(response.access_token, ContentFormat.CWT, Ready(EdhocChannel(rs_key)))

    def release(self, channel: Channel, ids: RecipientIdPool) -> None:
        pass


PROFILE = EdhocProfile()
