"""ACE profiles: how a token's PoP key becomes a secure channel (RFC 9202, 9203, EDHOC)."""
