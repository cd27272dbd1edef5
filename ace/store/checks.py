"""The argument checks both AS stores share, so ``memory`` and ``sqlite`` accept and refuse the same calls.

Records as written (client ids, audiences, profiles, scopes as ``str`` or ``bytes``: text scope vs
AIF, RFC 9237, DTLS PSKs within tinydtls' limits, an RS ``auth_key`` that is a public key, an
``encryption_key`` that fits its ``pop_key_encryption`` and can serve: not the token key, and a
trial encryption to it succeeds, so an unfit key is refused here, not a 5.00 at /token), counter
names, TRL token hashes of 1 to 64 bytes, non-negative cursors, limits and times, client and
audience filters, EDHOC credentials, and the errors both raise for a taken OSCORE kid, PSK identity
or EDHOC credential. Messages name the argument and the limit, never a key or a hash.
"""

from __future__ import annotations

from collections.abc import Collection

from ace.store.base import (
    EDHOC_PRESETS,
    MAX_AUTH_CRED,
    POP_KEY_ENCRYPTIONS,
    TOKEN_KINDS,
    ClientRecord,
    DtlsPsk,
    EdhocClaim,
    Grant,
    IssuedToken,
    ReferenceToken,
    RsRecord,
    TokenFormat,
)
from ace.tokens.encrypt import Recipient, encrypt_to
from ace.tokens.keys import CoseKey, thumbprint
from ace.tokens.oscore_params import OscoreContextParams

MAX_SEQUENCE_NUMBER = 2**63 - 1  # SQLite INTEGER; OSCORE needs at most 2**40 - 1 (RFC 8613 §7.2.1)
# tinydtls (DTLSSocket): DTLS_PSK_MAX_CLIENT_IDENTITY_LEN and DTLS_PSK_MAX_KEY_LEN; a longer key
# would overflow the fixed-size buffer the C library copies it into.
MAX_PSK_IDENTITY = 32
MAX_PSK_KEY = 16
MAX_TOKEN_HASH = 64  # bytes of a TRL entry (RFC 9770 hashes: SHA-256 is 32, SHA-512 64)
MAX_REFERENCE_CLAIMS = 4096  # bytes of the claims behind a reference token (a token's size bound)
MAX_POP_HOLDERS = 8  # clients ``pop_holders`` reports at most (the AS needs only "another one")
MAX_INTEGER = 2**63 - 1  # SQLite INTEGER: the bound of counters, positions, cursors, limits and times


def _check_profiles(profiles: object) -> None:
    if not isinstance(profiles, tuple) or not all(type(p) is int and p >= 0 for p in profiles):
        raise TypeError("profiles must be a tuple of non-negative ints")


def check_scope(scope: object) -> None:
    if type(scope) is not str and type(scope) is not bytes:
        raise TypeError(f"scope must be str (text scope) or bytes (AIF), not {type(scope).__name__}")


def check_psk(psk: object) -> None:
    """A ``DtlsPsk`` within tinydtls' limits; the messages name the limit, never the key."""
    if not isinstance(psk, DtlsPsk):
        raise TypeError(f"psk must be a DtlsPsk, not {type(psk).__name__}")
    check_bytes(psk.identity, "psk identity")
    check_bytes(psk.key, "psk key")
    if not 1 <= len(psk.identity) <= MAX_PSK_IDENTITY:
        raise ValueError(f"psk identity must be 1 to {MAX_PSK_IDENTITY} bytes long (tinydtls limit)")
    if not 1 <= len(psk.key) <= MAX_PSK_KEY:
        raise ValueError(f"psk key must be 1 to {MAX_PSK_KEY} bytes long (tinydtls limit)")


def check_client(client: ClientRecord) -> None:
    if not client.client_id:
        raise ValueError("client_id must not be empty")
    _check_profiles(client.profiles)
    if client.psk is not None:
        check_psk(client.psk)


def check_rs(rs: RsRecord) -> None:
    if not rs.audience:
        raise ValueError("audience must not be empty")
    if rs.token_kind not in TOKEN_KINDS:
        raise ValueError(f"token_kind must be one of {sorted(TOKEN_KINDS)}, not {rs.token_kind!r}")
    if rs.token_lifetime <= 0:
        raise ValueError("token_lifetime must be positive")
    _check_profiles(rs.profiles)
    if rs.auth_key is not None:
        check_public_key(rs.auth_key, "auth_key")
    if not isinstance(rs.format, TokenFormat):  # (its own fields are checked when it is made)
        raise TypeError(f"format must be a TokenFormat, not {type(rs.format).__name__}")
    check_encryption_key(rs.pop_key_encryption, rs.encryption_key)
    check_encryption_fits(rs)
    check_edhoc_fields(rs)


def check_edhoc_fields(rs: RsRecord) -> None:
    """Schema 11: a known preset, a bounded CCS, the EDHOC_Information a CBOR map, an upload URI."""
    if rs.edhoc_preset not in EDHOC_PRESETS:
        raise ValueError(f"edhoc_preset must be one of {list(EDHOC_PRESETS)}, not {rs.edhoc_preset!r}")
    if rs.auth_cred is not None and (type(rs.auth_cred) is not bytes or not 0 < len(rs.auth_cred) <= MAX_AUTH_CRED):
        raise ValueError(f"auth_cred must be 1 to {MAX_AUTH_CRED} bytes")
    if rs.edhoc_params is not None and (type(rs.edhoc_params) is not bytes or rs.edhoc_params[:1] < b"\xa0"
                                        or rs.edhoc_params[:1] > b"\xbf"):
        raise ValueError("edhoc_params must be an encoded CBOR map")
    if rs.upload_uri is not None and not rs.upload_uri.startswith(("coap://", "coaps://", "coap+tcp://")):
        raise ValueError(f"upload_uri must be a coap URI, not {rs.upload_uri!r}")


def check_encryption_key(how: object, key: object) -> None:
    """``RsRecord.pop_key_encryption`` and its key: none without a key, shared with a symmetric key,
    rs_public with a public key (no private part); either with a kid (the RS finds its key by it)."""
    if how not in POP_KEY_ENCRYPTIONS:
        raise ValueError(f"pop_key_encryption must be one of {list(POP_KEY_ENCRYPTIONS)}, not {how!r}")
    if how == "none":
        if key is not None:
            raise ValueError("pop_key_encryption none takes no encryption_key")
        return
    if not isinstance(key, CoseKey):
        raise TypeError(f"pop_key_encryption {how} needs an encryption_key (a CoseKey)")
    if not key.kid:
        raise ValueError("encryption_key needs a kid (the RS finds its key by it)")
    if how == "shared" and not key.is_symmetric:
        raise ValueError("pop_key_encryption shared needs a symmetric encryption_key")
    if how == "rs_public":
        check_public_key(key, "encryption_key")


def check_encryption_fits(rs: RsRecord) -> None:
    """ValueError if ``rs.encryption_key`` is its token key (one key, one use: RFC 9052 §7.1), shares
    its kid (the RS finds each key by kid), or cannot encrypt a PoP key to it (curve, alg, size)."""
    key = rs.encryption_key
    if key is None:
        return
    if thumbprint(key) == thumbprint(rs.token_key):
        raise ValueError("the encryption key is the token key: use a key of its own")
    if key.kid == rs.token_key.kid:
        raise ValueError(f"the encryption key has the token key's kid {key.kid!r}: the RS finds each by kid")
    encrypt_to(b"", Recipient(key))  # ValueError if the key does not fit


def check_public_key(key: object, name: str) -> None:
    """A ``CoseKey`` without private parameters (the messages never show the key)."""
    if not isinstance(key, CoseKey):
        raise TypeError(f"{name} must be a CoseKey, not {type(key).__name__}")
    if key.is_symmetric:
        raise ValueError(f"{name} must be a public key, not a symmetric key")
    if key.has_private:
        raise ValueError(f"{name} must be a public key, but this one has a private part (d)")


def check_grant(grant: Grant) -> None:
    if not grant.client_id or not grant.audience:
        raise ValueError("a grant needs a client_id and an audience")
    check_scope(grant.scope)


def check_token(token: IssuedToken) -> None:
    if token.scope is not None:
        check_scope(token.scope)
    if token.pop_kid is not None:
        check_bytes(token.pop_kid, "pop_kid")
    if token.pop_thumbprint is not None:
        check_bytes(token.pop_thumbprint, "pop_thumbprint")
    if token.session_id is not None:
        check_bytes(token.session_id, "session_id")


def check_log_token(token: IssuedToken, purge_before: int | None, purge_limit: int,
                    edhoc_claim: EdhocClaim | None) -> None:
    """The arguments of ``AsStore.log_token``, checked alike in every store."""
    check_token(token)
    if purge_before is not None:
        check_count(purge_before, "purge_before")
        check_count(purge_limit, "purge_limit")
    if edhoc_claim is not None:
        check_edhoc_credential(edhoc_claim.kid, edhoc_claim.thumbprint)
        check_count(edhoc_claim.limit, "limit")


def check_bytes(value: object, name: str) -> None:
    """``bytes`` exactly (a ``bytearray`` would match in one store and not round-trip in the other)."""
    if type(value) is not bytes:
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


def check_counter_name(name: object) -> None:
    if type(name) is not str:
        raise TypeError(f"counter name must be str, not {type(name).__name__}")
    if not name:
        raise ValueError("counter name must not be empty")


def check_token_hash(value: object) -> None:
    """TRL entries: 1 to ``MAX_TOKEN_HASH`` bytes (the message gives the length, never the hash)."""
    if type(value) is not bytes:
        raise TypeError(f"token_hash must be bytes, not {type(value).__name__}")
    if not 1 <= len(value) <= MAX_TOKEN_HASH:
        raise ValueError(f"token_hash must be 1 to {MAX_TOKEN_HASH} bytes long, not {len(value)}")


def check_count(value: object, name: str) -> None:
    """A non-negative int a SQLite INTEGER holds: cursors, limits, times."""
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_INTEGER:
        raise ValueError(f"{name} must be in [0, {MAX_INTEGER}]")


def check_revocation(token_hash: object, revoked_at: object, expires_at: object) -> None:
    check_token_hash(token_hash)
    check_count(revoked_at, "revoked_at")
    if expires_at is not None:
        check_count(expires_at, "expires_at")


def check_reference(reference: ReferenceToken) -> None:
    check_token_hash(reference.token_hash)
    if type(reference.audience) is not str or not reference.audience:
        raise ValueError("a reference token needs an audience")
    check_bytes(reference.claims, "claims")
    if not 1 <= len(reference.claims) <= MAX_REFERENCE_CLAIMS:
        raise ValueError(f"claims must be 1 to {MAX_REFERENCE_CLAIMS} bytes long")
    if reference.expires_at is not None:
        check_count(reference.expires_at, "expires_at")


def check_token_hashes(values: object) -> None:
    """A collection of token hashes to look up (``find_tokens_by_hash``): each ``bytes``."""
    if isinstance(values, (bytes, bytearray, str)) or not isinstance(values, Collection) or not all(
            type(v) is bytes for v in values):
        raise TypeError("token_hashes must be a collection of bytes")


def check_token_filter(value: object, name: str) -> None:
    if value is not None and type(value) is not str:
        raise TypeError(f"{name} must be str or None, not {type(value).__name__}")


def check_sequence_number(context_name: str, value: int) -> None:
    if not context_name:
        raise ValueError("context_name must not be empty")
    if type(value) is not int or not 0 <= value <= MAX_SEQUENCE_NUMBER:
        raise ValueError(f"sequence number must be an int in [0, {MAX_SEQUENCE_NUMBER}]")


def same_oscore_kid(oscore: OscoreContextParams | None, recipient_id: bytes, id_context: bytes | None) -> bool:
    return oscore is not None and oscore.recipient_id == recipient_id and oscore.id_context == id_context


def duplicate_edhoc_error(client_id: str, other: str) -> ValueError:
    return ValueError(f"client {client_id!r}: that EDHOC credential (kid or key) is registered for {other!r}")


EDHOC_KID_MAX = 64  # bytes (the column's CHECK)
THUMBPRINT_LEN = 32  # RFC 9679 with SHA-256


def check_edhoc_credential(kid: object, thumbprint: object) -> None:
    check_bytes(kid, "kid")
    check_bytes(thumbprint, "thumbprint")
    assert isinstance(kid, bytes) and isinstance(thumbprint, bytes)
    if not 1 <= len(kid) <= EDHOC_KID_MAX or len(thumbprint) != THUMBPRINT_LEN:
        raise ValueError(f"an EDHOC credential needs a kid of 1 to {EDHOC_KID_MAX} bytes and a "
                         f"{THUMBPRINT_LEN}-byte thumbprint")


def duplicate_kid_error(client_id: str, other: str) -> ValueError:
    return ValueError(f"client {client_id!r}: its OSCORE recipient id and id context are already used by {other!r}")


def same_psk_identity(psk: DtlsPsk | None, identity: bytes) -> bool:
    return psk is not None and psk.identity == identity


def duplicate_psk_error(client_id: str, other: str) -> ValueError:
    return ValueError(f"client {client_id!r}: its PSK identity is already used by {other!r}")
