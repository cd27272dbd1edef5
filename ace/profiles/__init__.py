"""ACE profiles: how a token's PoP key becomes a secure channel (RFC 9202, 9203, EDHOC).

One class per profile (``ace.profiles.base.Profile``), registered here by profile number."""

from __future__ import annotations

from ace.errors import IncompatibleProfiles
from ace.profiles import dtls, edhoc, oscore
from ace.profiles.base import Channel, Profile

PROFILES: dict[int, Profile] = {p.number: p for p in (dtls.PROFILE, oscore.PROFILE, edhoc.PROFILE)}
BY_NAME: dict[str, Profile] = {p.name: p for p in PROFILES.values()}


def by_number(number: int) -> Profile:
    """The profile registered under ``number``, or DecodeError incompatible_ace_profiles (RFC 9200 §5.8.3)."""
    profile = PROFILES.get(number)
    if profile is None:
        raise IncompatibleProfiles(f"ace_profile {number} is not supported")
    return profile


def of_channel(channel: Channel) -> Profile:
    """The profile whose channel this is (a binding's or a session's context)."""
    return PROFILES[channel.profile]


__all__ = ["BY_NAME", "PROFILES", "Channel", "Profile", "by_number", "of_channel"]
