"""The OSCORE profile's key material (RFC 9203 §3.2, §4.1–4.3), sans I/O.

From the OSCORE_Input_Material in a token's cnf and the two nonces exchanged at
/authz-info, both sides derive the same OSCORE Security Context parameters: Master Secret
``ms``, Master Salt ``bstr(salt) | bstr(N1) | bstr(N2)`` (§4.3, each part CBOR-encoded),
ID Context ``contextId``, AEAD and HKDF algorithms; the client's Sender ID is the RS's
``ace_server_recipientid`` and vice versa. An absent ``salt`` contributes nothing: §4.3's
``salt`` is "the CBOR byte string received from the AS", and none was received (RFC 9203 §3.2.1
makes it only "an input to" the Master Salt, so RFC 8613's empty default for the Master Salt
itself does not apply); a present empty salt is ``h'40'``. ace-java derives the same. Recipient IDs are handed
out by a ``RecipientIdPool`` that never gives out an ID a live context still uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ace.cbor import codec
from ace.cbor.labels import AceProfile, ContentFormat
from ace.errors import DecodeError, RemoteError, UnsupportedPopKey
from ace.messages import AccessTokenResponse, AuthzInfoRequest, AuthzInfoResponse
from ace.profiles.base import AuthzInfo, Channel, Opened, PopKey, Rng, RsKeys, kid_or_none
from ace.profiles.ids import MAX_ID_LEN, RecipientIdPool
from ace.tokens.cnf import Cnf, OscoreCnf, OscoreInputMaterial
from ace.tokens.crypto import ALGS, Kind
from ace.tokens.keys import CoseKey
from ace.tokens.oscore_params import DEFAULT_ALG, OscoreContextParams

if TYPE_CHECKING:
    from ace.tokens.encrypt import Recipient

NONCE_LEN = 8  # RFC 9203 §4.1: a 64-bit random nonce is RECOMMENDED
MIN_NONCE_LEN = 8  # what we accept from a peer
MAX_NONCE_LEN = 32
MASTER_SECRET_LEN = 16  # bytes of the ms the AS draws (RFC 9203 §3.2.1)
_HKDF = {None: "sha256", -10: "sha256", 5: "sha256", -11: "sha512", 7: "sha512"}


def master_salt(salt: bytes | None, nonce1: bytes, nonce2: bytes) -> bytes:
    """RFC 9203 §4.3: Master Salt = salt | N1 | N2, each the CBOR byte string as received; an
    absent salt (None) was not received and adds nothing, a present h'' adds h'40'."""
    return (b"" if salt is None else codec.bstr(salt)) + codec.bstr(nonce1) + codec.bstr(nonce2)


def check_nonce(nonce: bytes, name: str) -> None:
    if not MIN_NONCE_LEN <= len(nonce) <= MAX_NONCE_LEN:
        raise DecodeError(f"{name} must be {MIN_NONCE_LEN} to {MAX_NONCE_LEN} bytes")


def check_recipient_id(rid: bytes, name: str, limit: int = MAX_ID_LEN) -> None:
    if len(rid) > limit:
        raise DecodeError(f"{name} longer than {limit} bytes")


def _alg_and_hkdf(material: OscoreInputMaterial) -> tuple[int, str]:
    if material.version not in (None, 1):  # RFC 8613 §5.4: version 1
        raise UnsupportedPopKey("unsupported OSCORE version")
    alg = DEFAULT_ALG if material.alg is None else material.alg
    if not isinstance(alg, int) or alg not in _SUPPORTED_AEAD:
        raise UnsupportedPopKey(f"unsupported OSCORE AEAD {alg!r}")
    if isinstance(material.hkdf, str) or material.hkdf not in _HKDF:
        raise UnsupportedPopKey(f"unsupported OSCORE HKDF {material.hkdf!r}")
    return alg, _HKDF[material.hkdf]


_NONCE_LEN = {alg: info.nonce_len for alg, info in ALGS.items() if info.kind is Kind.AEAD}
_SUPPORTED_AEAD = frozenset(_NONCE_LEN)


def max_id_len(alg: int) -> int:
    """RFC 8613 §3.3: Sender/Recipient IDs are at most (AEAD nonce length - 6) bytes."""
    return _NONCE_LEN[alg] - 6


def derive(material: OscoreInputMaterial, *, nonce1: bytes, nonce2: bytes,
           sender_id: bytes, recipient_id: bytes) -> OscoreContextParams:
    """Context parameters for one side (RFC 9203 §4.3). The client passes
    sender_id=ace_server_recipientid, recipient_id=ace_client_recipientid; the RS the reverse."""
    if not material.ms:
        raise DecodeError("OSCORE_Input_Material without ms")  # RFC 9203 §3.2.1: ms is required
    if sender_id == recipient_id:  # RFC 9203 §4.2: ID1 and ID2 MUST differ
        raise DecodeError("sender and recipient ID are equal")
    alg, hkdf = _alg_and_hkdf(material)
    limit = max_id_len(alg)
    if len(sender_id) > limit or len(recipient_id) > limit:  # RFC 8613 §3.3
        raise DecodeError(f"recipient IDs are limited to {limit} bytes with AEAD {alg}")
    return OscoreContextParams(
        master_secret=material.ms, master_salt=master_salt(material.salt, nonce1, nonce2),
        sender_id=sender_id, recipient_id=recipient_id, id_context=material.context_id, alg=alg, hkdf=hkdf,
    )


def validate_material(material: OscoreInputMaterial) -> int:
    """Reject input material we could not derive a context from, before any state changes;
    returns the longest Sender/Recipient ID its AEAD allows (``max_id_len``)."""
    if not material.ms:
        raise DecodeError("OSCORE_Input_Material without ms")
    return max_id_len(_alg_and_hkdf(material)[0])


@dataclass(frozen=True, slots=True)
class RsOscorePop:
    """The RS's side of RFC 9203 §4.1–4.3 for one POST: the material, the client's N1 and ID1."""

    material: OscoreInputMaterial = field(repr=False)
    request: AuthzInfoRequest = field(repr=False)
    id_limit: int  # the longest Recipient ID the material's AEAD allows

    @property
    def pop_id(self) -> bytes:
        return self.material.id

    @property
    def client(self) -> bytes:
        return b"osc:" + self.material.id

    @property
    def label(self) -> None:
        return None  # our Recipient ID, picked by ``open``

    def open(self, ids: RecipientIdPool, rng: Callable[[int], bytes]) -> Opened:
        """Pick ID2 and N2 and derive the context (RFC 9203 §4.2, §4.3)."""
        client_rid = self.request.ace_client_recipientid
        server_rid = ids.allocate(avoid=client_rid, max_len=self.id_limit)
        nonce2 = rng(NONCE_LEN)
        params = derive(self.material, nonce1=self.request.nonce1, nonce2=nonce2,
                        sender_id=client_rid, recipient_id=server_rid)
        return Opened(params, server_rid, AuthzInfoResponse(nonce2=nonce2, ace_server_recipientid=server_rid).encode())


class OscoreProfile:
    """The RFC 9203 profile for the AS, the RS and the client (``ace.profiles.base.Profile``)."""

    number = int(AceProfile.COAP_OSCORE)
    name = "oscore"
    port_offsets: tuple[int, ...] = ()

    # -- AS: what the token request must carry and which PoP key (ace.authz_server.token) -------
    secret_pop_key = True  # RFC 9203 §3.2: the OSCORE_Input_Material's ms

    def check_req_cnf(self, req_cnf: Cnf | None, rs: RsKeys) -> Cnf | None:
        return kid_or_none(req_cnf)

    def pop_key(self, req_cnf: Cnf | None, *, cti: bytes, rng: Rng, salt_len: int, context_id_len: int) -> PopKey:
        material = OscoreInputMaterial(
            id=cti, ms=rng(MASTER_SECRET_LEN),  # RFC 9203 §2: id unique among this AS's materials
            salt=rng(salt_len) if salt_len else None, context_id=rng(context_id_len) if context_id_len else None,
        )
        cnf = OscoreCnf(material)  # RFC 9203 §3.2: the same material in the token and the response
        return PopKey(cnf, cnf, cti)

    def rs_cnf(self, rs: RsKeys) -> Cnf | None:
        return None

    def seal_cnf(self, cnf: Cnf, to: Recipient, rng: Rng) -> Cnf | None:
        return None  # RFC 9203 §3.2: the ms MUST be encrypted so that only the RS can read it: the whole token is

    def implied_by_cnf(self, cnf: Cnf | None) -> bool:
        return isinstance(cnf, OscoreCnf)

    # -- RS: how a token binds to a channel (ace.rs.server) -------------------------------------

    bare_token = False  # RFC 9203 §4.1: an ace+cbor map with the token, N1 and the client's Recipient ID

    def rs_refusal(self) -> DecodeError:
        return DecodeError("this RS does not offer the OSCORE profile")

    def rs_takes(self, cnf: Cnf | None) -> bool:
        return isinstance(cnf, OscoreCnf)

    def rs_check_request(self, request: AuthzInfoRequest) -> None:
        check_nonce(request.nonce1, "nonce1")
        check_recipient_id(request.ace_client_recipientid, "ace_client_recipientid")

    def rs_pop(self, cnf: Cnf | None, request: AuthzInfoRequest | None,
               live: Callable[[bytes], Channel | None]) -> RsOscorePop:
        if not isinstance(cnf, OscoreCnf) or request is None:  # RFC 9203 §4.1: the token must carry osc
            raise DecodeError("token cnf is not an OSCORE_Input_Material")
        id_limit = validate_material(cnf.material)
        check_recipient_id(request.ace_client_recipientid, "ace_client_recipientid", id_limit)
        return RsOscorePop(cnf.material, request, id_limit)

    def rs_same_key(self, cnf: Cnf, channel: Channel) -> bool:
        return False  # a new token over an OSCORE context names its material by kid (RFC 9203 §4.1)

    # -- client: what follows the token (ace.client.flow) ---------------------------------------

    def req_cnf(self, own_key: CoseKey | None) -> Cnf | None:
        return None

    def implied_by(self, response: AccessTokenResponse) -> bool:
        return isinstance(response.cnf, OscoreCnf)

    def fits(self, response: AccessTokenResponse) -> bool:
        return isinstance(response.cnf, OscoreCnf)

    def authz_info(self, response: AccessTokenResponse, *, ids: RecipientIdPool, rng: Rng) -> AuthzInfo:
        """RFC 9203 §4.1: the token with our nonce N1 and Recipient ID, as application/ace+cbor."""
        assert isinstance(response.cnf, OscoreCnf)  # fits
        material = response.cnf.material
        id_limit = validate_material(material)
        nonce1, my_id = rng(NONCE_LEN), ids.allocate(max_len=id_limit)
        payload = AuthzInfoRequest(access_token=response.access_token, nonce1=nonce1,
                                   ace_client_recipientid=my_id).encode()
        return AuthzInfo(payload, ContentFormat.ACE_CBOR, _Pending(material, nonce1, my_id, ids))

    def release(self, channel: Channel, ids: RecipientIdPool) -> None:
        assert isinstance(channel, OscoreContextParams)
        ids.release(channel.recipient_id)


@dataclass(frozen=True, slots=True)
class _Pending:
    """The client's half of the context while POST /authz-info is answered (RFC 9203 §4.1)."""

    material: OscoreInputMaterial = field(repr=False)
    nonce1: bytes
    my_id: bytes
    ids: RecipientIdPool = field(repr=False)

    def established(self, answer: bytes) -> OscoreContextParams:
        try:  # RFC 9203 §4.2: equal IDs or a missing parameter: MUST NOT derive a context
            got = AuthzInfoResponse.decode(answer)
            params = derive(self.material, nonce1=self.nonce1, nonce2=got.nonce2,
                            sender_id=got.ace_server_recipientid, recipient_id=self.my_id)
            check_nonce(got.nonce2, "nonce2")
        except RemoteError:
            self.ids.release(self.my_id)
            raise
        return params

    def abandon(self) -> None:
        self.ids.release(self.my_id)


PROFILE = OscoreProfile()
