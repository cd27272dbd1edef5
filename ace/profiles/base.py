"""The ``Profile`` protocol: one class per ACE profile, registered by its number, sans I/O.

RFC 9200 §5.8.4.3 leaves to each profile how a token's PoP key becomes a secure channel between
client and RS: DTLS (RFC 9202), OSCORE (RFC 9203), EDHOC + OSCORE (draft-ietf-ace-edhoc-oscore-
profile). Everything that differs between them lives in one class per profile, in its module under
``ace.profiles``: what the AS requires of a token request and which PoP key it issues, how the RS
binds a token to a channel, what the client does once it holds the token. The AS, the RS and the
client core look a profile up by number (``ace.profiles.by_number``) or by the channel a binding or
session holds (``ace.profiles.of_channel``) and call into it; they never branch on the profile
themselves. The CoAP counterparts (installing and removing channels in aiocoap) are registered the
same way in ``ace.coap``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from ace.errors import DecodeError, UnsupportedPopKey
from ace.tokens.cnf import CoseKeyCnf, KidCnf

if TYPE_CHECKING:
    from ace.messages import AccessTokenResponse, AuthzInfoRequest
    from ace.profiles.ids import RecipientIdPool
    from ace.tokens.cnf import Cnf
    from ace.tokens.encrypt import Recipient
    from ace.tokens.keys import CoseKey

Rng = Callable[[int], bytes]


class RsKeys(Protocol):
    """What a profile reads of the RS a token is for (the AS's ``RsRecord``): its audience and its
    own authentication credential, if any."""

    @property
    def audience(self) -> str: ...

    @property
    def auth_key(self) -> CoseKey | None: ...


class Channel(Protocol):
    """What a binding (RS) or a session (client) holds to protect traffic with the peer: the
    OSCORE context parameters, the DTLS PSK and identity, or the peer's EDHOC credential."""

    profile: ClassVar[int]  # the ACE profile number (RFC 9200 §8.8) whose class handles it


@dataclass(frozen=True, slots=True)
class PopKey:
    """The PoP key of a first token (AS): the token's cnf, the response's cnf, the key's id."""

    token_cnf: Cnf
    response_cnf: Cnf | None
    kid: bytes


class PendingChannel(Protocol):
    """What the client holds between POST /authz-info and the RS's answer (client)."""

    def established(self, answer: bytes) -> Channel:
        """The channel, from the payload of the RS's 2.01; DecodeError if it cannot be made."""
        ...

    def abandon(self) -> None:
        """The RS refused the token: release what was set aside for the channel."""
        ...


@dataclass(frozen=True, slots=True)
class Ready:
    """A channel the client knows before the RS answers (DTLS, EDHOC): the 2.01 adds nothing to it."""

    channel: Channel

    def established(self, answer: bytes) -> Channel:
        return self.channel

    def abandon(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class AuthzInfo:
    """The POST /authz-info the client sends after the token (client), and what it waits for."""

    payload: bytes
    content_format: int
    pending: PendingChannel


def bare_key(cnf: Cnf | None) -> CoseKey:
    """RS: the COSE_Key of a bare token's cnf (DTLS, EDHOC: the key is the channel), else
    unsupported_pop_key."""
    if not isinstance(cnf, CoseKeyCnf):
        raise UnsupportedPopKey("token cnf holds no COSE_Key")
    return cnf.key


def kid_or_none(req_cnf: Cnf | None) -> Cnf | None:
    """AS: a req_cnf for a profile whose PoP key the AS makes: none, or the kid of one to keep
    (RFC 9203 §3.1, RFC 9202 §3.4: an update of access rights); else unsupported_pop_key."""
    if req_cnf is None or isinstance(req_cnf, KidCnf):
        return req_cnf
    raise UnsupportedPopKey("req_cnf: only a kid is supported here")


@dataclass(frozen=True, slots=True)
class Opened:
    """A binding's channel, the label its requests carry and the 2.01 payload of POST /authz-info."""

    channel: Channel = field(repr=False)
    label: bytes
    response: bytes


class RsPop(Protocol):
    """A token's PoP key at the RS (``Profile.rs_pop``), before the bindings it replaces are gone."""

    @property
    def pop_id(self) -> bytes: ...  # what a kid cnf names: the OSCORE material id, the DTLS or EDHOC kid

    @property
    def client(self) -> bytes: ...  # "the same client" when the token has no sub

    @property
    def label(self) -> bytes | None: ...  # fixed by the key (DTLS, EDHOC); None: ``open`` picks it

    def open(self, ids: RecipientIdPool, rng: Callable[[int], bytes]) -> Opened:
        """The channel, once the bindings this one supersedes are gone (their IDs are free again)."""
        ...


@dataclass(frozen=True, slots=True)
class KeyedPop:
    """A PoP key that is the channel by itself (a DTLS PSK, an EDHOC credential): its label is fixed."""

    channel: Channel = field(repr=False)
    label: bytes
    pop_id: bytes

    @property
    def client(self) -> bytes:
        return b"pop:" + self.label

    def open(self, ids: RecipientIdPool, rng: Callable[[int], bytes]) -> Opened:
        return Opened(self.channel, self.label, b"")


class AsProfile(Protocol):
    """A profile as the AS sees it: what the token request must carry and which PoP key it issues
    (``ace.authz_server.token``)."""

    number: int  # ace_profile (RFC 9200 §5.8.4.3, IANA "ACE Profiles")

    secret_pop_key: bool  # a first token's cnf holds a secret: only in tokens encrypted to the RS

    def check_req_cnf(self, req_cnf: Cnf | None, rs: RsKeys) -> Cnf | None:
        """The token request's req_cnf checked before any state changes: None (the AS makes the
        key), a KidCnf (an update of access rights) or a CoseKeyCnf (the client's own key); else
        DecodeError."""
        ...

    def pop_key(self, req_cnf: Cnf | None, *, cti: bytes, rng: Rng, salt_len: int, context_id_len: int) -> PopKey:
        """The PoP key of a first token (``req_cnf`` as ``check_req_cnf`` passed it); ``salt_len`` and
        ``context_id_len`` shape an OSCORE_Input_Material."""
        ...

    def rs_cnf(self, rs: RsKeys) -> Cnf | None:
        """What a first token response says of the RS's key (RFC 9201 §3.2: rs_cnf), if anything."""
        ...

    def seal_cnf(self, cnf: Cnf, to: Recipient, rng: Rng) -> Cnf | None:
        """A first token's secret cnf (``secret_pop_key``) encrypted to the RS, for a token anyone may
        read (signed, MACed); None: this profile has no such cnf, the whole token is encrypted to it."""
        ...

    def implied_by_cnf(self, cnf: Cnf | None) -> bool:
        """Whether a token's cnf alone names this profile (introspection of a token without ace_profile)."""
        ...


class RsProfile(Protocol):
    """A profile as the RS sees it: how a token binds to a channel (``ace.rs.server``)."""

    number: int  # ace_profile (RFC 9200 §5.8.4.3, IANA "ACE Profiles")

    # POST /authz-info carries the token itself (RFC 9200 §5.10.1), not an RFC 9203 §4.1 request map
    bare_token: bool

    def rs_refusal(self) -> DecodeError:
        """The 4.00 for a token of this profile at an RS that does not offer it."""
        ...

    def rs_takes(self, cnf: Cnf | None) -> bool:
        """Whether a token with this cnf is for this profile (how a bare token finds its profile)."""
        ...

    def rs_check_request(self, request: AuthzInfoRequest) -> None:
        """Refuse a malformed request map (``bare_token`` False) before its token is looked at."""
        ...

    def rs_pop(self, cnf: Cnf | None, request: AuthzInfoRequest | None, live: Callable[[bytes], Channel | None],
               ) -> RsPop:
        """A verified token's PoP key as the RS binds it, or the refusal; ``live``: the channel of the
        live binding with a label, if any (a key that names its label may not take another's)."""
        ...

    def rs_same_key(self, cnf: Cnf, channel: Channel) -> bool:
        """Whether a new token's cnf (not a kid: the core compares those) is the key behind ``channel``."""
        ...


class ClientProfile(Protocol):
    """A profile as the client sees it: what follows the token (``ace.client.flow``)."""

    number: int  # ace_profile (RFC 9200 §5.8.4.3, IANA "ACE Profiles")

    def req_cnf(self, own_key: CoseKey | None) -> Cnf | None:
        """What the client's token request carries in req_cnf when it asks for this profile."""
        ...

    def implied_by(self, response: AccessTokenResponse) -> bool:
        """Whether a token response without ace_profile is one of this profile (RFC 9200 §5.8.2)."""
        ...

    def fits(self, response: AccessTokenResponse) -> bool:
        """Whether a token response of this profile carries what the client needs to go on."""
        ...

    def authz_info(self, response: AccessTokenResponse, *, ids: RecipientIdPool, rng: Rng) -> AuthzInfo:
        """The POST /authz-info that follows the token response (``fits``), and what waits for the answer."""
        ...

    def release(self, channel: Channel, ids: RecipientIdPool) -> None:
        """The session with ``channel`` is dropped: free what it held (a Recipient ID)."""
        ...


class Profile(AsProfile, RsProfile, ClientProfile, Protocol):
    """One ACE profile, for every role (one class per profile, registered by number)."""

    name: str  # as the CLI spells it (``--profile``, config files)
    port_offsets: tuple[int, ...]  # ports an RS listens on beyond its CoAP port, as offsets (DTLS: + 1)
