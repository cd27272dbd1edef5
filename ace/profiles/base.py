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

from typing import ClassVar, Protocol


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

    # -- client: what follows the token (ace.client.flow) ---------------------------------------
