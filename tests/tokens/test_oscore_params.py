"""One OSCORE parameter type for pre-established and derived contexts (RFC 8613 §3.2)."""

from __future__ import annotations

from ace.cbor.labels import AceProfile
from ace.tokens.oscore_params import OscoreContextParams

FULL = OscoreContextParams(master_secret=b"\x01" * 16, sender_id=b"\x00", recipient_id=b"\x07",
                           master_salt=b"\x9e", id_context=b"\x37", alg=11, hkdf="sha512")


def test_defaults_are_rfc_8613s() -> None:
    p = OscoreContextParams(master_secret=b"\x01" * 16, sender_id=b"", recipient_id=b"\x01")
    assert (p.master_salt, p.id_context, p.alg, p.hkdf) == (b"", None, 10, "sha256")
    assert p.profile == AceProfile.COAP_OSCORE


def test_mirrored_swaps_only_the_ids() -> None:
    other = FULL.mirrored()
    assert (other.sender_id, other.recipient_id) == (FULL.recipient_id, FULL.sender_id)
    assert (other.master_secret, other.master_salt, other.id_context, other.alg, other.hkdf) == (
        FULL.master_secret, FULL.master_salt, FULL.id_context, FULL.alg, FULL.hkdf)
    assert other.mirrored() == FULL


def test_the_secret_is_not_in_repr() -> None:
    assert FULL.master_secret.hex() not in repr(FULL) and "master_secret" not in repr(FULL)
