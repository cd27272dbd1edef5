"""The DTLS profile's key material (RFC 9202 §3), sans I/O.

With a symmetric PoP key the client's DTLS psk_identity is the kid of the key in the token's
cnf (RFC 9202 §3.3.1), and the key itself is the PSK. Limits of the stack we run on are
enforced here, before anything reaches tinydtls: identities of at most 32 bytes, keys of at
most 16 bytes (DTLSSocket copies the key without a length check), and, for kids this AS
mints, no 0x00 byte (aiocoap's DTLS client cuts an identity at the first zero byte). The
variant that sends the whole token as psk_identity cannot fit 32 bytes and is not offered.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ace.cbor.labels import AceProfile, ContentFormat
from ace.errors import DecodeError, UnsupportedPopKey
from ace.messages import AccessTokenResponse
from ace.profiles.base import AuthzInfo, Channel, KeyedPop, PopKey, Ready, Rng, RsKeys, bare_key, kid_or_none
from ace.profiles.ids import DTLS_LABEL_PREFIX, RecipientIdPool
from ace.tokens.cnf import Cnf, CoseKeyCnf, encrypted_cnf
from ace.tokens.keys import CoseKey, symmetric_key

if TYPE_CHECKING:
    from ace.messages import AuthzInfoRequest
    from ace.tokens.encrypt import Recipient

PSK_LEN = 16  # AES-128-CCM-8 suites: a 16-byte key (and the most DTLSSocket takes)
MAX_IDENTITY = 32  # tinydtls
KID_LEN = 8  # kids minted by this AS
LABEL_PREFIX = DTLS_LABEL_PREFIX  # binding labels (ace.profiles.ids)


@dataclass(frozen=True, slots=True)
class DtlsChannel:
    """What a DTLS session needs from a token: the PSK and its identity."""

    profile: ClassVar[int] = int(AceProfile.COAP_DTLS)

    identity: bytes
    key: bytes = field(repr=False)

    @property
    def label(self) -> bytes:
        return label_for(self.identity)


def label_for(identity: bytes) -> bytes:
    return LABEL_PREFIX + identity


def channel_from_key(key: CoseKey) -> DtlsChannel:
    """The PSK and identity of a cnf COSE_Key, or DecodeError (4.00) if it cannot be one."""
    if not key.is_symmetric or key.k is None:
        raise UnsupportedPopKey("DTLS profile: only symmetric PoP keys (no raw public keys here)")
    if not key.kid:  # RFC 9202 §3.3.1: the psk_identity is the key's kid
        raise DecodeError("DTLS profile: the PoP key has no kid to use as psk_identity")
    if len(key.kid) > MAX_IDENTITY:
        raise UnsupportedPopKey(f"DTLS profile: kid longer than {MAX_IDENTITY} bytes")
    if len(key.k) > PSK_LEN:
        raise UnsupportedPopKey(f"DTLS profile: keys longer than {PSK_LEN} bytes are not supported")
    return DtlsChannel(key.kid, key.k)


def mint_kid(rng: Callable[[int], bytes]) -> bytes:
    """A random kid without 0x00 bytes (usable as identity by aiocoap's client)."""
    return bytes((b % 255) + 1 for b in rng(KID_LEN))


class DtlsProfile:
    """The RFC 9202 profile for the AS, the RS and the client (``ace.profiles.base.Profile``)."""

    number = int(AceProfile.COAP_DTLS)
    name = "dtls"
    port_offsets: tuple[int, ...] = (1,)  # coaps: aiocoap's tinydtls server, on the CoAP port + 1

    # -- AS: what the token request must carry and which PoP key (ace.authz_server.token) -------
    secret_pop_key = True  # RFC 8747 §3.3: a symmetric key

    def check_req_cnf(self, req_cnf: Cnf | None, rs: RsKeys) -> Cnf | None:
        return kid_or_none(req_cnf)  # no raw public keys here

    def pop_key(self, req_cnf: Cnf | None, *, cti: bytes, rng: Rng, salt_len: int, context_id_len: int) -> PopKey:
        """RFC 9202 §3.2: a symmetric key, its kid the psk_identity."""
        key = symmetric_key(rng(PSK_LEN), kid=mint_kid(rng))
        cnf = CoseKeyCnf(key)
        return PopKey(cnf, cnf, key.kid or b"")

    def rs_cnf(self, rs: RsKeys) -> Cnf | None:
        return None

    def seal_cnf(self, cnf: Cnf, to: Recipient, rng: Rng) -> Cnf | None:
        """RFC 8747 §3.3: the symmetric key (with its kid, the psk_identity) as Encrypted_COSE_Key."""
        assert isinstance(cnf, CoseKeyCnf)  # pop_key's
        return encrypted_cnf(cnf.key, to, rng=rng)

    def implied_by_cnf(self, cnf: Cnf | None) -> bool:
        return isinstance(cnf, CoseKeyCnf) and cnf.key.is_symmetric  # a public key could be EDHOC's

    # -- RS: how a token binds to a channel (ace.rs.server) -------------------------------------

    bare_token = True  # RFC 9202 §3.3: the token itself

    def rs_refusal(self) -> DecodeError:
        return DecodeError("this RS does not offer the DTLS profile")

    def rs_takes(self, cnf: Cnf | None) -> bool:
        return isinstance(cnf, CoseKeyCnf) and cnf.key.is_symmetric

    def rs_check_request(self, request: AuthzInfoRequest) -> None:
        pass  # no request map: the token itself

    def rs_pop(self, cnf: Cnf | None, request: AuthzInfoRequest | None,
               live: Callable[[bytes], Channel | None]) -> KeyedPop:
        key = bare_key(cnf)
        channel = channel_from_key(key)
        return KeyedPop(channel, channel.label, channel.identity)

    def rs_same_key(self, cnf: Cnf, channel: Channel) -> bool:
        return (isinstance(cnf, CoseKeyCnf) and isinstance(channel, DtlsChannel) and cnf.key.kid == channel.identity
                and hmac.compare_digest(cnf.key.k or b"", channel.key))

    # -- client: what follows the token (ace.client.flow) ---------------------------------------

    def req_cnf(self, own_key: CoseKey | None) -> Cnf | None:
        return None

    def implied_by(self, response: AccessTokenResponse) -> bool:
        return isinstance(response.cnf, CoseKeyCnf)

    def fits(self, response: AccessTokenResponse) -> bool:
        return isinstance(response.cnf, CoseKeyCnf)

    def authz_info(self, response: AccessTokenResponse, *, ids: RecipientIdPool, rng: Rng) -> AuthzInfo:
        """RFC 9202 §3.3: the token itself, application/cwt; the PSK and identity from cnf."""
        assert isinstance(response.cnf, CoseKeyCnf)  # fits
        return AuthzInfo(response.access_token, ContentFormat.CWT, Ready(channel_from_key(response.cnf.key)))

    def release(self, channel: Channel, ids: RecipientIdPool) -> None:
        pass


PROFILE = DtlsProfile()
