"""What the AS may put in a token's cnf, and how it tells PoP keys apart.

A cnf that carries key material a holder could use (an OSCORE_Input_Material, whose master
secret derives the OSCORE context, RFC 9203 §3.2.1; a symmetric COSE_Key, or any COSE_Key with a
private part) may only travel encrypted to the RS: in a token encrypted to it, or, in a token
anyone may read (signed, MACed), encrypted by itself (RFC 8747 §3.3: Encrypted_COSE_Key, with a key
shared with the RS or to the RS's public key, ``RsRecord.pop_key_encryption``; RFC 9203 §3.2: the
OSCORE profile has no such cnf, the token is then signed and encrypted to the RS). A public key
(the EDHOC profile's client credential) or a bare kid (an update of access rights, RFC 9203 §3.1)
may travel in a signed or MACed token. ``SECRET_PROFILES`` are the profiles whose first token
always carries a secret (each profile says so: ``secret_pop_key``).
"""

from __future__ import annotations

from ace.profiles import PROFILES
from ace.store.base import RsRecord
from ace.tokens.cnf import Cnf, CoseKeyCnf, OscoreCnf

SECRET_PROFILES = frozenset(n for n, p in PROFILES.items() if p.secret_pop_key)
CONFIDENTIAL_KIND = "encrypt0"  # the only token kind (RsRecord.token_kind) that hides its claims


def carries_secret(cnf: Cnf | None) -> bool:
    """Whether ``cnf`` holds key material that must not be readable in the token."""
    match cnf:
        case OscoreCnf():  # RFC 9203 §3.2.1: ms, from which anyone derives the context
            return True
        case CoseKeyCnf(key):
            return key.has_private
    return False  # a kid, an already encrypted COSE_Key, or no cnf


def secret_reaches(rs: RsRecord) -> bool:
    """Whether a secret PoP key can travel to ``rs`` encrypted: its tokens are, or the key is."""
    return rs.token_kind == CONFIDENTIAL_KIND or rs.pop_key_encryption != "none"
