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

from dataclasses import dataclass, field
from typing import ClassVar

from ace.cbor.labels import AceProfile, Curve, KeyType
from ace.errors import DecodeError, ErrorCode
from ace.tokens.keys import CoseKey

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

    # -- client: what follows the token (ace.client.flow) ---------------------------------------


PROFILE = EdhocProfile()
