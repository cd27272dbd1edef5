"""OSCORE security contexts (RFC 8613) for aiocoap: in-memory and sequence-number-persistent.

``MemoryOscoreContext`` is derived from static input (§3.1/§3.2) and lives as long as the
object, e.g. a context bound to an ACE access token (RFC 9203); ``invalidate()`` ends it when
the token expires or is superseded. ``PersistentOscoreContext`` is for long-lived,
pre-established contexts (client <-> AS): it reserves sender sequence numbers in growing
chunks in a ``SequenceNumberStore`` before using them (§B.1.1) and, after a restart, recovers
its replay window with the Echo option (§B.1.2).

Both plug into aiocoap: as an item of a server's ``CredentialsMap`` (looked up through
``get_oscore_context_for``) and under ``"coap://host:port/*"`` in ``client_credentials``.
The master secret is not kept; keys never appear in ``repr``.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import cbor2
from aiocoap import error as coap_error
from aiocoap import oscore

from ace.tokens.oscore_params import DEFAULT_ALG, DEFAULT_HKDF

if TYPE_CHECKING:
    from ace.store.base import SequenceNumberStore, SequenceReservations

__all__ = [
    "MemoryOscoreContext",
    "OscoreContextExpired",
    "PersistentOscoreContext",
    "aead_algorithm",
    "hkdf",
]

DEFAULT_REPLAY_WINDOW = 32

COSE_KID: int = oscore.COSE_KID  # 4
COSE_KID_CONTEXT: int = oscore.COSE_KID_CONTEXT  # 10


def aead_algorithm(alg: int) -> Any:
    """aiocoap's AEAD algorithm object for a COSE algorithm number (e.g. 10)."""
    for candidate in oscore.algorithms.values():
        if isinstance(candidate, oscore.AeadAlgorithm) and candidate.value == alg:
            return candidate
    raise ValueError(f"unsupported OSCORE AEAD algorithm {alg!r}")


def hkdf(hash_name: str, salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """HKDF (RFC 5869 §2.2-2.3) on the stdlib's HMAC: the bytes aiocoap's HKDF gives, without touching
    the cryptography wheel's KDF code (about 0.9 MiB of pages a token's context would first map)."""
    prk = hmac.new(salt, ikm, hash_name).digest()  # an empty salt is HashLen zeros to HMAC (§2.2)
    if length > 255 * len(prk):  # RFC 5869 §2.3: L <= 255*HashLen
        raise ValueError(f"HKDF output of {length} bytes is too long for {hash_name}")
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hash_name).digest()
        okm, counter = okm + block, counter + 1
    return okm[:length]


def _hex(value: bytes | None) -> str:
    return "None" if value is None else f"h'{value.hex()}'"


class OscoreContextExpired(oscore.ContextUnavailable, coap_error.Unauthorized):  # type: ignore[misc]
    """The context was invalidated or has expired.

    It is an ``aiocoap.oscore.ContextUnavailable`` and, being also a renderable 4.01
    Unauthorized, makes ``OscoreSiteWrapper`` answer an unprotected 4.01 when raised while
    unprotecting a request.
    """

    message = "Security context expired"


class MemoryOscoreContext(oscore.CanProtect, oscore.CanUnprotect, oscore.SecurityContextUtils):  # type: ignore[misc]
    """An OSCORE context held in memory only: sequence numbers start at 0, nothing persists.

    ``authenticated_claims`` are opaque labels that aiocoap hands to resources as
    ``request.remote.authenticated_claims``. ``expires_at`` (a ``clock()`` time, default
    wall-clock seconds) ends the context by itself; ``invalidate()`` ends it at once. An
    ended context refuses to protect or unprotect (``OscoreContextExpired``) and is no longer
    found by ``get_oscore_context_for``, so a server answers its requests with 4.01.
    """

    def __init__(
        self,
        *,
        master_secret: bytes,
        master_salt: bytes = b"",
        sender_id: bytes,
        recipient_id: bytes,
        id_context: bytes | None = None,
        alg: int = DEFAULT_ALG,
        hkdf: str = DEFAULT_HKDF,
        authenticated_claims: Sequence[Any] = (),
        replay_window_size: int = DEFAULT_REPLAY_WINDOW,
        expires_at: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.alg_aead = aead_algorithm(alg)
        try:
            self.hashfun = oscore.hashfunctions[hkdf]
        except KeyError:
            raise ValueError(f"unsupported OSCORE HKDF hash {hkdf!r}") from None
        max_id = int(self.alg_aead.iv_bytes) - 6
        if len(sender_id) > max_id or len(recipient_id) > max_id:
            raise ValueError(f"Sender/Recipient ID longer than {max_id} bytes for algorithm {alg}")
        if sender_id == recipient_id:
            raise ValueError("Sender ID and Recipient ID must differ (RFC 8613 §3.3)")
        self.sender_id: bytes = bytes(sender_id)
        self.recipient_id: bytes = bytes(recipient_id)
        self.id_context: bytes | None = None if id_context is None else bytes(id_context)
        self.alg: int = alg
        self.authenticated_claims: list[Any] = list(authenticated_claims)
        self.derive_keys(bytes(master_salt), bytes(master_secret))
        self.sender_sequence_number: int = 0
        self.replay_window_size = replay_window_size
        self.recipient_replay_window: Any = oscore.ReplayWindow(replay_window_size, _no_op)
        self.recipient_replay_window.initialize_empty()
        self.echo_recovery: bytes | None = None
        self.expires_at = expires_at
        self._clock = clock
        self._invalidated = False

    # -- lifetime -------------------------------------------------------------------------

    @property
    def expired(self) -> bool:
        """True once ``invalidate()`` was called or ``expires_at`` has passed."""
        if self._invalidated:
            return True
        return self.expires_at is not None and self._clock() >= self.expires_at

    def invalidate(self) -> None:
        """End the context for good (token expired, revoked or superseded)."""
        self._invalidated = True

    def _check_usable(self) -> None:
        if self.expired:
            raise OscoreContextExpired()

    # -- aiocoap hooks ----------------------------------------------------------------------

    def protect(self, message: Any, request_id: Any = None, *, kid_context: bool | bytes = True) -> tuple[Any, Any]:
        self._check_usable()
        result: tuple[Any, Any] = super().protect(message, request_id, kid_context=kid_context)
        return result

    def unprotect(self, protected_message: Any, request_id: Any = None) -> tuple[Any, Any]:
        self._check_usable()
        result: tuple[Any, Any] = super().unprotect(protected_message, request_id)
        return result

    def _kdf_lowlevel(self, salt: bytes, ikm: bytes, info: list[Any], l: int) -> bytes:  # noqa: E741 (aiocoap's name)
        """aiocoap's key derivation (RFC 8613 §3.2.1), through ``hkdf``."""
        return hkdf(str(self.hashfun.name), salt, ikm, cbor2.dumps(info), l)

    def post_seqnoincrease(self) -> None:
        """Nothing to persist: a memory context never outlives its keys."""

    def get_oscore_context_for(self, unprotected: Mapping[int, Any]) -> MemoryOscoreContext | None:
        """``self`` if the request's kid and kid context (absent = None) are ours and we are live.

        Same strict rule as aiocoap: a context with an ID Context is found only by requests
        that carry that kid context.
        """
        if self.expired:
            return None
        if unprotected.get(COSE_KID) != self.recipient_id:
            return None
        if unprotected.get(COSE_KID_CONTEXT) != self.id_context:
            return None
        return self

    def find_all_used_contextless_oscore_kid(self) -> set[bytes]:
        """Recipient IDs reachable without a kid context (aiocoap's EDHOC avoids them)."""
        return set() if self.id_context is not None else {self.recipient_id}

    def __repr__(self) -> str:
        state = " expired" if self.expired else ""
        return (
            f"<{type(self).__name__} sender_id={_hex(self.sender_id)} recipient_id={_hex(self.recipient_id)}"
            f" id_context={_hex(self.id_context)} alg={self.alg} claims={len(self.authenticated_claims)}"
            f" next_seqno={self.sender_sequence_number}{state}>"
        )


def _no_op() -> None:
    return None


class PersistentOscoreContext(MemoryOscoreContext):
    """A long-lived context whose sender sequence number survives crashes (RFC 8613 §B.1).

    §B.1.1: before a number is used, a value above it is persisted (``seqno_store`` under
    ``name``); the reserve starts at ``chunk_start`` numbers and doubles up to
    ``chunk_limit``, so only a few writes are needed. After a restart, numbering resumes at
    the persisted value, which is above every number used before (at most one chunk is lost).

    §B.1.2: the replay window is persisted as its floor (under ``name + "/replay"``): every
    request sequence number below it may have been accepted. It is raised before a request with
    a higher number is handed on (``unprotect``), so after a restart the window starts at the
    floor: numbers above it are accepted at once, none below (no replay, and no Echo round trip
    that a client without Echo support could not answer). A context found in the store without a
    floor (persisted before floors were) starts with an uninitialized window and
    ``echo_recovery`` set: the first request is answered with a protected 4.01 carrying an Echo
    option, which aiocoap's client repeats transparently. A context not yet in the store starts
    with an empty window and is recorded at once, so a later restart knows that requests may
    have been accepted.
    """

    def __init__(
        self,
        *,
        seqno_store: SequenceNumberStore,
        name: str,
        master_secret: bytes,
        master_salt: bytes = b"",
        sender_id: bytes,
        recipient_id: bytes,
        id_context: bytes | None = None,
        alg: int = DEFAULT_ALG,
        hkdf: str = DEFAULT_HKDF,
        authenticated_claims: Sequence[Any] = (),
        replay_window_size: int = DEFAULT_REPLAY_WINDOW,
        expires_at: float | None = None,
        clock: Callable[[], float] = time.time,
        chunk_start: int = 16,
        chunk_limit: int = 4096,
    ) -> None:
        if not 1 <= chunk_start <= chunk_limit:
            raise ValueError("need 1 <= chunk_start <= chunk_limit")
        super().__init__(
            master_secret=master_secret,
            master_salt=master_salt,
            sender_id=sender_id,
            recipient_id=recipient_id,
            id_context=id_context,
            alg=alg,
            hkdf=hkdf,
            authenticated_claims=authenticated_claims,
            replay_window_size=replay_window_size,
            expires_at=expires_at,
            clock=clock,
        )
        self.seqno_store = seqno_store
        self.name = name
        self.secret_fingerprint: str | None = None  # set by whoever knows the secret (contexts.from_secret)
        self.chunk_start = chunk_start
        self.chunk_limit = chunk_limit
        self._chunk = chunk_start
        self.replay_name = name + "/replay"
        self._floor: int | None  # request sequence numbers below it may have been accepted (persisted)
        loaded = seqno_store.load_sequence_number(name)
        floor = seqno_store.load_sequence_number(self.replay_name)
        if loaded is None:
            # Never used with this store: the empty window is right; record the context (and its
            # window's floor) so a restart knows that requests may have been accepted.
            seqno_store.persist_sequence_number(name, 0)
            seqno_store.persist_sequence_number(self.replay_name, 0)
            self._persisted, self._floor = 0, 0
        else:
            if loaded < 0 or (floor is not None and floor < 0):
                raise ValueError(f"persisted sequence number for {name!r} is negative")
            self.sender_sequence_number = loaded
            self._persisted = loaded
            self.recipient_replay_window = oscore.ReplayWindow(replay_window_size, _no_op)
            self._floor = floor
            if floor is not None:  # RFC 8613 §B.1.2: the persisted window, no Echo needed
                self.recipient_replay_window.initialize_from_persisted({"index": floor, "bitfield": 0})
        # Only consulted by aiocoap while the replay window is uninitialized.
        self.echo_recovery = secrets.token_bytes(8)

    def unprotect(self, protected_message: Any, request_id: Any = None) -> tuple[Any, Any]:
        """aiocoap's unprotect, then the window's new floor is persisted before the request is
        handed on (RFC 8613 §B.1.2); a failing store raises here and the request is not served."""
        result = super().unprotect(protected_message, request_id)
        self._persist_floor()
        return result

    def _persist_floor(self) -> None:
        window = self.recipient_replay_window
        if not window.is_initialized():
            return
        state = window.persist()
        floor = int(state["index"]) + int(state["bitfield"]).bit_length()  # above the highest number seen
        if self._floor is None or floor > self._floor:
            self.seqno_store.persist_replay_floor(self.replay_name, floor)
            self._floor = floor

    @property
    def persisted_sequence_number(self) -> int:
        """Numbers below this may have been used (the value last written to the store)."""
        return self._persisted

    def new_sequence_number(self) -> int:
        """From a store shared with other senders of this context (``SequenceReservations``: the AS's
        with ``ace token upload --as-context``), numbers come from ranges reserved there atomically,
        and a range another sender reserved since ours is skipped at once (the peer's replay window
        moves on with it), so no number is ever taken twice (RFC 8613 §5.2: one nonce per key)."""
        store = self.seqno_store
        shared = hasattr(store, "reserve_sequence_numbers")  # (the AS's stores; the Protocol is type-only here)
        reserve = cast("SequenceReservations", store) if shared else None
        if reserve is not None:
            stored = store.load_sequence_number(self.name)
            if self.sender_sequence_number >= self._persisted or (stored is not None and stored > self._persisted):
                start = reserve.reserve_sequence_numbers(self.name, self.sender_sequence_number, self._chunk)
                self.sender_sequence_number, self._persisted = start, start + self._chunk
                self._chunk = min(self._chunk * 2, self.chunk_limit)
        number: int = super().new_sequence_number()
        return number

    def post_seqnoincrease(self) -> None:
        """Called by aiocoap after taking number ``sender_sequence_number - 1``, before use.

        If that number is not covered by the reservation, persist a new one first; a failing
        store raises here and the number is never used.
        """
        if self.sender_sequence_number <= self._persisted:
            return
        reserve = self.sender_sequence_number - 1 + self._chunk  # covers the number just taken
        self.seqno_store.persist_sequence_number(self.name, reserve)
        self._persisted = reserve
        self._chunk = min(self._chunk * 2, self.chunk_limit)
