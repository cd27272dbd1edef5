"""The token hash of RFC 9770 (what a Token Revocation List lists, and how AS, RS and client
name a token without holding it): AS, RS and client all compute it."""

from __future__ import annotations

import base64
import hashlib

SHA256_SUITE = 0x01  # RFC 6920 §9.4 Named Information Hash Algorithm Registry: sha-256
HASH_LEN = 1 + 32


def token_hash(token: bytes) -> bytes:
    """RFC 9770 §4.2.1, §4.4: 0x01 || SHA-256(utf8(base64url_nopad(token)))."""
    if not isinstance(token, bytes):
        raise TypeError("token must be bytes")
    hash_input = base64.urlsafe_b64encode(token).rstrip(b"=")  # ASCII, so already its UTF-8 bytes
    return bytes((SHA256_SUITE,)) + hashlib.sha256(hash_input).digest()
