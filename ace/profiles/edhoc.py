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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ace.cbor.labels import AceProfile, Curve, KeyType
from ace.errors import UNAUTHORIZED, DecodeError, ErrorCode, RemoteError
from ace.profiles.base import Channel, KeyedPop
from ace.tokens.cnf import Cnf, CoseKeyCnf
from ace.tokens.keys import CoseKey

if TYPE_CHECKING:
    from ace.cbor.messages import AuthzInfoRequest

MAX_KID = 16  # bytes; the RS indexes credentials by kid
LABEL_PREFIX = b"edhoc-kid:"  # binding labels: never a valid OSCORE recipient ID (> 7 bytes)


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
        raise DecodeError(f"EDHOC profile: the {what} must be an EC2 P-256 key (suite 2)",
                          error_code=ErrorCode.UNSUPPORTED_POP_KEY)
    if key.d is not None:
        raise DecodeError(f"EDHOC profile: the {what} must be a public key", error_code=ErrorCode.UNSUPPORTED_POP_KEY)
    if not key.kid or len(key.kid) > MAX_KID:
        raise DecodeError(f"EDHOC profile: the {what} needs a kid of 1 to {MAX_KID} bytes (ID_CRED by reference)",
                          error_code=ErrorCode.UNSUPPORTED_POP_KEY)
    return key


class EdhocProfile:
    """The EDHOC + OSCORE profile for the AS, the RS and the client (``ace.profiles.base.Profile``)."""

    number = int(AceProfile.COAP_EDHOC_OSCORE)
    name = "edhoc"

    # -- AS: what the token request must carry and which PoP key (ace.authz_server.token) -------

    # -- RS: how a token binds to a channel (ace.rs.server) -------------------------------------

    bare_token = True  # the token before the handshake, as in the DTLS profile (see the module docstring)

    def rs_refusal(self) -> DecodeError:
        return DecodeError("this RS does not offer the EDHOC profile", error_code=ErrorCode.UNSUPPORTED_POP_KEY)

    def rs_takes(self, cnf: Cnf | None) -> bool:
        return isinstance(cnf, CoseKeyCnf) and not cnf.key.is_symmetric

    def rs_check_request(self, request: AuthzInfoRequest) -> None:
        pass  # no request map: the token itself

    def rs_pop(self, cnf: Cnf | None, request: AuthzInfoRequest | None,
               live: Callable[[bytes], Channel | None]) -> KeyedPop:
        if not isinstance(cnf, CoseKeyCnf):
            raise DecodeError("token cnf holds no COSE_Key", error_code=ErrorCode.UNSUPPORTED_POP_KEY)
        channel = EdhocChannel(check_credential(cnf.key))
        current = live(channel.label)  # the kid names the credential: one key per kid
        if isinstance(current, EdhocChannel) and current.peer_key != cnf.key:
            raise RemoteError("this kid is bound to another credential", error_code=None, coap_code=UNAUTHORIZED)
        return KeyedPop(channel, channel.label, channel.kid)

    def rs_same_key(self, cnf: Cnf, channel: Channel) -> bool:
        return isinstance(cnf, CoseKeyCnf) and isinstance(channel, EdhocChannel) and cnf.key == channel.peer_key

    # -- client: what follows the token (ace.client.flow) ---------------------------------------


PROFILE = EdhocProfile()
