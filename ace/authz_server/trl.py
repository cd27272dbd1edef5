"""The Token Revocation List (RFC 9770), sans I/O: token hashes, revocation, full queries.

``token_hash`` is RFC 9770 §4.2.1/§4.4: HASH_INPUT is the UTF-8 text of the base64url
(unpadded) encoding of the token bytes (the value of the access_token byte string), and the
hash is RFC 6920 §6 binary format: the suite id (1: sha-256) followed by the digest. The AS
logs this hash for every token it issues; the RS and the client compute it the same way.

``TrlEndpoint.full_set(requester)`` is a full query (RFC 9770 §6.1): the revoked, unexpired
token hashes pertaining to the requester, oldest revocation first; a client sees the tokens
issued to it, an RS (``RsPeer``) the tokens issued for its audience (§5). Diff queries
(§6.2, optional) are not supported: a valid ``diff`` is answered as a full query, which the
RFC allows an AS without diff support to do; malformed query parameters get 4.00 without
problem details (those are optional too). ``revoke_tokens`` and ``revoke_token`` are what
``ace revoke`` (and ``ace policy revoke``) run against the store.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ace.cbor import codec
from ace.cbor.labels import TrlParam
from ace.errors import BAD_REQUEST, UNAUTHORIZED, ConfigError, DecodeError, RemoteError
from ace.store.base import AsStore, IssuedToken

log = logging.getLogger(__name__)
Clock = Callable[[], float]

SHA256_SUITE = 0x01  # RFC 6920 §9.4 Named Information Hash Algorithm Registry: sha-256
HASH_LEN = 1 + 32
DEFAULT_PATH = "/revoke/trl"
BATCH = 512  # TRL entries read from the store at a time
MAX_ENTRIES = 4096  # revoked hashes one full query lists at most (bounded response, bounded work)
MAX_DIFF = 2**31  # largest "diff" value taken (RFC 9770 §6.2: N is a positive integer)


def token_hash(token: bytes) -> bytes:
    """RFC 9770 §4.2.1, §4.4: 0x01 || SHA-256(utf8(base64url_nopad(token)))."""
    if not isinstance(token, bytes):
        raise TypeError("token must be bytes")
    hash_input = base64.urlsafe_b64encode(token).rstrip(b"=")  # ASCII, so already its UTF-8 bytes
    return bytes((SHA256_SUITE,)) + hashlib.sha256(hash_input).digest()


@dataclass(frozen=True, slots=True)
class RsPeer:
    """The authenticated identity of an RS at the AS (its audience): the authenticated claim of
    the RS's OSCORE context with the AS, distinct from any client id."""

    audience: str


Requester = str | RsPeer  # a client id, or an RS


@dataclass(frozen=True, slots=True)
class TrlQuery:
    diff: int | None = None  # asked for a diff query (answered as a full query here)


def parse_query(options: Iterable[str]) -> TrlQuery:
    """The Uri-Query options of a TRL GET. Unknown or malformed parameters, or a repeated
    one, are a bad request (RFC 9770 §6: 4.00)."""
    diff: int | None = None
    seen: set[str] = set()
    for option in options:
        name, sep, value = option.partition("=")
        if name in seen:
            raise RemoteError(f"query parameter {name!r} repeated", error_code=None, coap_code=BAD_REQUEST)
        seen.add(name)
        if name == "diff" and sep and value.isascii() and value.isdigit() and len(value) <= 10:
            diff = int(value)
            if not 0 < diff <= MAX_DIFF:
                raise RemoteError("diff must be a positive integer", error_code=None, coap_code=BAD_REQUEST)
        elif name == "diff":
            raise RemoteError("diff must be a positive integer", error_code=None, coap_code=BAD_REQUEST)
        else:  # cursor (§9) needs diff support; anything else is unknown
            raise RemoteError(f"unsupported query parameter {name[:16]!r}", error_code=None,
                              coap_code=BAD_REQUEST)
    return TrlQuery(diff)


def encode_full_set(hashes: Iterable[bytes]) -> bytes:
    """The full query response payload (RFC 9770 §6.1): {0 / full_set /: [* bstr]}."""
    return codec.dumps({int(TrlParam.FULL_SET): list(hashes)})


def decode_full_set(payload: bytes) -> list[bytes]:
    """The full_set of a TRL response (what an RS or a client observes), strictly."""
    reader = codec.MapReader(codec.loads(payload, what="TRL response"), "TRL response", TrlParam)
    value = reader.require(TrlParam.FULL_SET)
    if not isinstance(value, list) or len(value) > MAX_ENTRIES or not all(
            isinstance(h, bytes) and 0 < len(h) <= 64 for h in value):
        raise DecodeError("TRL response: full_set(0) must be an array of token hashes")
    return list(value)


class TrlEndpoint:
    """Answers TRL queries from the store: ``AsStore.revoked_since`` is the TRL, in revocation
    order; ``find_tokens`` says which of its hashes pertain to a requester."""

    def __init__(self, store: AsStore, *, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def requester_tokens(self, requester: Requester) -> list[IssuedToken]:
        if isinstance(requester, RsPeer):
            return self.store.find_tokens(audience=requester.audience)
        return self.store.find_tokens(client_id=requester)

    def full_set(self, requester: Requester) -> list[bytes]:
        """The pertaining, unexpired revoked hashes, oldest revocation first (bounded)."""
        now = self.clock()
        mine = {t.token_hash for t in self.requester_tokens(requester)
                if t.expires_at is None or t.expires_at > now}
        if not mine:
            return []
        out: list[bytes] = []
        for _, h in self.revocations():
            if h in mine:
                out.append(h)
                if len(out) >= MAX_ENTRIES:
                    log.warning("TRL of %s truncated at %d entries", requester, MAX_ENTRIES)
                    break
        return out

    def revocations(self, cursor: int = 0) -> list[tuple[int, bytes]]:
        """Every TRL entry after ``cursor`` (position, hash), oldest first."""
        out: list[tuple[int, bytes]] = []
        while True:
            batch = self.store.revoked_since(cursor, BATCH)
            out += batch
            if len(batch) < BATCH:
                return out
            cursor = batch[-1][0]

    def handle(self, requester: Requester | None, query: Iterable[str] = ()) -> bytes:
        """GET /revoke/trl: the payload of the 2.05, or RemoteError (4.01 unauthenticated, 4.00)."""
        if requester is None:  # RFC 9770 §6: only registered devices over a secure association
            raise RemoteError("TRL requests must come over a registered secure association",
                              error_code=None, coap_code=UNAUTHORIZED)
        parse_query(query)
        return encode_full_set(self.full_set(requester))


def revoke_issued(store: AsStore, tokens: Iterable[IssuedToken], *, now: int) -> list[bytes]:
    """Put the live ones of ``tokens`` on the TRL; returns the hashes newly listed."""
    added: list[bytes] = []
    for t in tokens:
        if t.expires_at is not None and t.expires_at <= now:
            continue  # expired: no need to list it (RFC 9770 §5)
        if store.revoke_token(t.token_hash, revoked_at=now, expires_at=t.expires_at) is not None:
            added.append(t.token_hash)
    if added:
        log.info("revoked %d token(s)", len(added))
    return added


def revoke_tokens(store: AsStore, *, client_id: str | None = None, audience: str | None = None,
                  clock: Clock) -> list[bytes]:
    """Revoke every live token of ``client_id`` (and/or for ``audience``)."""
    if client_id is None and audience is None:
        raise ValueError("name a client and/or an audience")
    return revoke_issued(store, store.find_tokens(client_id=client_id, audience=audience), now=int(clock()))


def revoke_token(store: AsStore, token: bytes, *, clock: Clock) -> bytes | None:
    """Revoke one token this AS issued (found by its hash); returns its hash if newly listed."""
    h = token_hash(token)
    issued = next((t for t in store.find_tokens() if t.token_hash == h), None)
    if issued is None:
        raise ConfigError("this AS has not logged that token")
    added = revoke_issued(store, [issued], now=int(clock()))
    return added[0] if added else None
