"""The profile registry (``ace.profiles``) loads a profile's module on first look-up, and its
table of numbers and names agrees with the profile classes themselves."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ace import profiles
from ace.cbor.labels import AceProfile
from ace.errors import IncompatibleProfiles
from ace.profiles import dtls, edhoc, oscore


def test_the_registry_lists_every_profile_by_number_and_name() -> None:
    every = (dtls.PROFILE, oscore.PROFILE, edhoc.PROFILE)
    assert dict(profiles.PROFILES) == {p.number: p for p in every}
    assert dict(profiles.BY_NAME) == {p.name: p for p in every}
    assert dict(profiles.NUMBERS) == {p.name: p.number for p in every}
    assert profiles.by_number(int(AceProfile.COAP_OSCORE)) is oscore.PROFILE
    assert profiles.of_channel(dtls.DtlsChannel(identity=b"x", key=bytes(16))) is dtls.PROFILE
    assert dtls.label_for(b"x").startswith(dtls.LABEL_PREFIX)
    with pytest.raises(IncompatibleProfiles):
        profiles.by_number(99)
    assert 99 not in profiles.PROFILES and profiles.PROFILES.get(99) is None


def test_looking_one_profile_up_loads_only_its_module() -> None:
    code = ("import sys; from ace.profiles import PROFILES, by_number; by_number(2); "
            "print(sorted(m for m in sys.modules if m.startswith('ace.profiles.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "ace.profiles.oscore" in out and "ace.profiles.dtls" not in out and "ace.profiles.edhoc" not in out
