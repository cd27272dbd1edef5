"""Tokens the RS must never take again, sans I/O: revoked ones (RFC 9770 §11.1, by the token
hash the AS lists and by the cti of the tokens the RS held) and ones a newer token of the same
client replaced (so a sniffed older token cannot be replayed to displace the newer one).

A token is named by its identity, never only by its bytes: the RS hashes the canonical encoding
(``ace.tokens.cwt.canonical_token``), and a token it has seen is also remembered by its cti, so
re-encoding it (another tag, another unprotected header) does not make it new. Both tables are
bounded, kept until the token would have expired anyway (an unknown expiry: until pushed out).
"""

from __future__ import annotations

from collections import OrderedDict

MAX_REVOKED = 1024  # revoked token hashes remembered (RFC 9770 §11.1), the oldest forgotten first
MAX_RETIRED = 1024  # ctis of revoked or replaced tokens remembered


class Retired:
    def __init__(self, max_hashes: int = MAX_REVOKED, max_ctis: int = MAX_RETIRED) -> None:
        self.max_hashes, self.max_ctis = max_hashes, max_ctis
        self.hashes: OrderedDict[bytes, float | None] = OrderedDict()  # TRL hash -> until when kept
        self.ctis: OrderedDict[tuple[str | None, bytes], float | None] = OrderedDict()  # (iss, cti) -> until

    def revoked_hash(self, token_hash: bytes, until: float | None) -> None:
        until = until if until is not None else self.hashes.get(token_hash)
        self.hashes.pop(token_hash, None)
        self.hashes[token_hash] = until
        while len(self.hashes) > self.max_hashes:
            self.hashes.popitem(last=False)

    def retire(self, iss: str | None, cti: bytes | None, until: float | None) -> None:
        """The token (iss, cti) is never taken again (a cti is unique per issuer, RFC 8392 §3.1.7)."""
        if cti is None:
            return
        self.ctis.pop((iss, cti), None)
        self.ctis[(iss, cti)] = until
        while len(self.ctis) > self.max_ctis:
            self.ctis.popitem(last=False)

    def hash_is_retired(self, token_hash: bytes) -> bool:
        return token_hash in self.hashes

    def is_retired(self, iss: str | None, cti: bytes | None) -> bool:
        return cti is not None and (iss, cti) in self.ctis

    def purge(self, now: float) -> None:
        """Forget what expired: such a token is refused as expired anyway."""
        for h in [h for h, until in self.hashes.items() if until is not None and until <= now]:
            del self.hashes[h]
        for key in [k for k, until in self.ctis.items() if until is not None and until <= now]:
            del self.ctis[key]
