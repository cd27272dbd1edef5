"""What a token check defaults to, without its code: a configuration names these before any token
arrives (issue 14: ``ace rs`` loads the token-checking code on the first token)."""

from __future__ import annotations

from enum import Enum

DEFAULT_SKEW = 30.0  # seconds of clock difference tolerated on exp/nbf
# the tags a token comes in, as its issuer sends it (RFC 8392 §6: CWT and COSE tags optional)
TOKEN_TAGS = ("none", "cose", "cwt")


class Kind(Enum):  # what a COSE message's algorithm does (``ace.tokens.crypto``); a config names the ones it takes
    SIGN = "signature"
    MAC = "MAC"
    AEAD = "AEAD"
