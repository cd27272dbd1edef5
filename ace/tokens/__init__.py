"""CWT access tokens, COSE protection and PoP keys (RFC 8392, 8747, 9052/9053)."""
