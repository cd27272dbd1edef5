"""Recipient IDs of the RS and the client (RFC 9203 §4.2, RFC 8613 §3.3): one identifier space per
side, shared by every profile that keys OSCORE contexts (OSCORE's ID1/ID2, EDHOC's C_R), sans I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ace.errors import IdsExhausted

# binding labels of the DTLS and EDHOC profiles: never a valid OSCORE recipient ID (> 7 bytes)
DTLS_LABEL_PREFIX = b"dtls-psk-identity:"
EDHOC_LABEL_PREFIX = b"edhoc-kid:"

MAX_ID_LEN = 7  # RFC 8613 §3.3: nonce length - 6 for the 13-byte nonces of the default AEAD


class RecipientIdPool:
    """Short, unique recipient IDs for live contexts: 1 byte while possible, then longer.

    ``allocate(avoid)`` never returns an ID in use nor ``avoid`` (RFC 9203 §4.2: the RS
    MUST pick ID2 different from ID1); ``release`` makes an ID reusable once its context
    is gone (a context with a new key may reuse an ID: the keys differ). The RS has one
    identifier space for every profile: IDs chosen elsewhere (EDHOC's C_R, RFC 9528 §3.3.3)
    are ``reserve``d while live and never handed out, and ``keep_clear`` sets aside the IDs
    another allocator picks from (never handed out here, so it cannot run short of them).
    """

    def __init__(self, rng: Callable[[int], bytes], *, max_len: int = MAX_ID_LEN) -> None:
        self._rng = rng
        self._in_use: set[bytes] = set()
        self._reserved: set[bytes] = set()  # live IDs chosen by another allocator
        self._kept_clear: frozenset[bytes] = frozenset()
        self._max_len = max_len

    def allocate(self, avoid: bytes | None = None, *, max_len: int | None = None) -> bytes:
        limit = self._max_len if max_len is None else min(max_len, self._max_len)
        for length in range(1, limit + 1):
            space = 256**length
            taken = {i for i in self._in_use | self._reserved | self._kept_clear if len(i) == length}
            if len(taken) + 1 >= space:
                continue
            for _ in range(64):  # bounded: random probes, then a linear sweep
                rid = self._rng(length)
                if rid not in taken and rid != avoid:
                    self._in_use.add(rid)
                    return rid
            for n in range(min(space, 1 << 16)):
                rid = n.to_bytes(length, "big")
                if rid not in taken and rid != avoid:
                    self._in_use.add(rid)
                    return rid
        raise IdsExhausted("no recipient ID available")

    def claim(self, rid: bytes) -> bool:
        """Mark ``rid`` used (a client choosing its own ID); False if it already was."""
        if rid in self._in_use or rid in self._reserved:
            return False
        self._in_use.add(rid)
        return True

    def release(self, rid: bytes) -> None:
        self._in_use.discard(rid)

    def reserve(self, rid: bytes) -> bool:
        """``rid`` is live elsewhere (e.g. an EDHOC C_R): never hand it out until ``unreserve``.
        False if this pool had handed it out already (the caller chose a taken ID)."""
        self._reserved.add(bytes(rid))
        return rid not in self._in_use

    def unreserve(self, rid: bytes) -> None:
        self._reserved.discard(rid)

    def keep_clear(self, ids: Iterable[bytes]) -> None:
        """Never hand out ``ids`` (another allocator's whole space, e.g. EDHOC's one-byte C_Rs)."""
        self._kept_clear = frozenset(bytes(i) for i in ids)

    @property
    def reserved(self) -> frozenset[bytes]:
        return frozenset(self._reserved)

    def __contains__(self, rid: bytes) -> bool:
        """Handed out by this pool (reserved IDs are not: they belong to their allocator)."""
        return rid in self._in_use

    def __len__(self) -> int:
        return len(self._in_use)
