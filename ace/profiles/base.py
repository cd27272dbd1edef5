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

from ace.errors import DecodeError

if TYPE_CHECKING:
    from ace.cbor.messages import AuthzInfoRequest
    from ace.profiles.oscore import RecipientIdPool
    from ace.tokens.cnf import Cnf


class Channel(Protocol):
    """What a binding (RS) or a session (client) holds to protect traffic with the peer: the
    OSCORE context parameters, the DTLS PSK and identity, or the peer's EDHOC credential."""

    profile: ClassVar[int]  # the ACE profile number (RFC 9200 §8.8) whose class handles it


class Profile(Protocol):
    """One ACE profile, for every role. The role sections are filled by the modules that call them."""

    number: int  # ace_profile (RFC 9200 §5.8.4.3, IANA "ACE Profiles")
    name: str  # as the CLI spells it (``--profile``, config files)

    # -- AS: what the token request must carry and which PoP key (ace.authz_server.token) -------

    # -- RS: how a token binds to a channel (ace.rs.server) -------------------------------------

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

    # -- client: what follows the token (ace.client.flow) ---------------------------------------


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
