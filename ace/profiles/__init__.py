"""ACE profiles: how a token's PoP key becomes a secure channel (RFC 9202, 9203, EDHOC).

One class per profile (``ace.profiles.base.Profile``), registered here by profile number. A
profile's module is imported on first look-up (issue 14: an OSCORE-only RS loads no DTLS or EDHOC
code); iterating ``PROFILES`` or ``BY_NAME`` loads them all."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, TypeVar

from ace.errors import IncompatibleProfiles

if TYPE_CHECKING:
    from ace.profiles.base import Channel, Profile

K = TypeVar("K", int, str)
# number (RFC 9200 §8.8 registry), name, module: in the order the registry has always listed them
_TABLE = ((1, "dtls", "ace.profiles.dtls"), (2, "oscore", "ace.profiles.oscore"), (4, "edhoc", "ace.profiles.edhoc"))


def _load(module: str) -> Profile:
    profile: Profile = importlib.import_module(module).PROFILE
    return profile


class _Lazy(Mapping[K, "Profile"]):
    """A read-only registry whose values are imported on first access."""

    def __init__(self, modules: dict[K, str]) -> None:
        self._modules: dict[K, str] = modules

    def __getitem__(self, key: K) -> Profile:
        return _load(self._modules[key])

    def __iter__(self) -> Iterator[K]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def __repr__(self) -> str:
        return f"{dict(self)!r}"


NUMBERS: Mapping[str, int] = {name: number for number, name, _ in _TABLE}  # by name, loading none
# ports an RS listens on beyond its CoAP port (each profile's ``port_offsets``), loading none: DTLS on + 1
PORT_OFFSETS: Mapping[int, tuple[int, ...]] = {1: (1,), 2: (), 4: ()}
PROFILES: Mapping[int, Profile] = _Lazy({number: module for number, _, module in _TABLE})
BY_NAME: Mapping[str, Profile] = _Lazy({name: module for _, name, module in _TABLE})


def by_number(number: int) -> Profile:
    """The profile registered under ``number``, or DecodeError incompatible_ace_profiles (RFC 9200 §5.8.3)."""
    profile = PROFILES.get(number)
    if profile is None:
        raise IncompatibleProfiles(f"ace_profile {number} is not supported")
    return profile


def of_channel(channel: Channel) -> Profile:
    """The profile whose channel this is (a binding's or a session's context)."""
    return PROFILES[channel.profile]


def __getattr__(name: str) -> object:  # PEP 562: Channel and Profile, as before, without loading base eagerly
    if name in ("Channel", "Profile"):
        from ace.profiles import base

        return getattr(base, name)
    raise AttributeError(name)


__all__ = ["BY_NAME", "NUMBERS", "PORT_OFFSETS", "PROFILES", "Channel", "Profile", "by_number", "of_channel"]
