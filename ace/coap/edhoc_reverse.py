"""The reverse EDHOC message flow at the RS (draft-ietf-ace-edhoc-oscore-profile-11 §4.4): C is
the EDHOC Responder, the RS the Initiator, and the access token comes in EAD_4.

aiocoap has no server-side initiator, so this drives lakers itself: an empty POST to the EDHOC
resource gets message_1 (2.04); ``C_I || message_2`` gets message_3 once MAC_2 verifies with the
credential C sent by value in ID_CRED_R; ``C_I || message_4`` hands the token to the RS's
``TokenGate``, which must find that very credential in the token's cnf (§4.4.5), and an OSCORE
context (RFC 9528 App. A.1: the RS, as Initiator, sends with C_R and receives with C_I) bound to
the binding label goes into the server's credentials map. C_I is drawn at random from the one
identifier space of the RS's EDHOC and OSCORE contexts. Half-done handshakes are few and short-lived,
admitted as message_1 is (per source and globally), and go on only from the trigger's transport
remote; completed ones count against ``max_responders`` (``edhoc_responders``).
"""

from __future__ import annotations

import io
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import cbor2
import lakers  # type: ignore[import-untyped]

from ace.coap.edhoc_ead import EdhocError, bind, token_of
from ace.coap.edhoc_responders import REVERSE_PREFIX, free_ids
from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.peers import source_of
from ace.coap.ratelog import RateLimitedLog
from ace.errors import RemoteError

log = logging.getLogger(__name__)
peer_log = RateLimitedLog(log)  # lines unauthenticated peers drive

KEY_PREFIX = REVERSE_PREFIX
MAX_PENDING = 4  # half-done reverse handshakes (the oldest of the most crowded source goes first)
choose_id = secrets.choice  # C_I at random among the free ids
PENDING_SECONDS = 60.0
AES_CCM_16_64_128 = 10  # suite 2's application AEAD (RFC 9528 §3.6)
_BY_VALUE = 14  # ID_CRED_x {14: CCS} (kccs, RFC 9528 §3.5.2)


@dataclass(eq=False)
class Pending:
    """A reverse handshake the RS initiated, in the server map until message_4 (no OSCORE yet)."""

    initiator: Any
    c_i: bytes
    born: float
    remote: Any = None  # the transport remote of the trigger: only it may go on
    source: str | None = None  # what it counts against (``peers.source_of``)
    c_r: bytes | None = None
    id_cred_r: bytes = b""
    cred_r: bytes = field(default=b"", repr=False)  # C's CCS, from ID_CRED_R by value

    def find_all_used_contextless_oscore_kid(self) -> set[bytes]:
        return {self.c_i}

    def get_oscore_context_for(self, unprotected: Any) -> None:
        return None


def split_connection_id(payload: bytes) -> tuple[bytes, bytes]:
    """(C_x, rest) of ``C_x || message`` (C_x a one-byte CBOR int or a bstr, RFC 9528 §3.3.2)."""
    stream = io.BytesIO(payload)
    value = cbor2.load(stream)
    rest = bytes(payload[stream.tell():])
    if isinstance(value, int) and not isinstance(value, bool) and -24 <= value < 24:
        return bytes(payload[:1]), rest
    if isinstance(value, bytes):
        return value, rest
    raise ValueError("no connection identifier")


def credential_by_value(id_cred: bytes) -> bytes:
    """The CCS bytes of ID_CRED_x ``{14: CCS}``, verbatim; ValueError if it is not by value."""
    if id_cred[:2] != b"\xa1\x0e":  # a one-entry map with key 14
        raise ValueError("ID_CRED_R must carry the credential by value on a first token (EP §4.4)")
    cbor2.loads(id_cred[2:])
    return bytes(id_cred[2:])


class ReverseFlow:
    """The RS's half of §4.4, over the server credentials map (``gate`` as in ``edhoc_server``)."""

    def __init__(self, credentials: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.credentials, self.clock = credentials, clock

    def pending(self, c_i: bytes, remote: Any = None) -> Pending | None:
        """The half-done handshake C_I names, if ``remote`` is where its trigger came from."""
        found = self.credentials.get(KEY_PREFIX + c_i.hex())
        return found if isinstance(found, Pending) and found.remote == remote else None

    def trigger(self, remote: Any = None) -> bytes:
        """An empty POST: a fresh C_I and message_1 (no EAD_1), admitted as message_1 is."""
        source = None if remote is None else source_of(remote)
        admitting = getattr(self.credentials, "admitting", None)
        with admitting(source) if admitting is not None and source is not None else nullcontext():
            self._make_room(source)
            free = free_ids(self.credentials)
            if not free:
                raise aiocoap.error.ServiceUnavailable("too many EDHOC sessions")
            c_i = choose_id(free)
            initiator = lakers.EdhocInitiator()
            message_1 = bytes(initiator.prepare_message_1(c_i, []))
            self.credentials[KEY_PREFIX + c_i.hex()] = Pending(initiator, c_i, self.clock(), remote, source)
        return message_1

    def message_2(self, pending: Pending, message_2: bytes, identity: Any) -> bytes:
        """MAC_2 verified with C's credential by value; message_3 (RS credential by kid)."""
        c_r, id_cred_r, _ead_2 = pending.initiator.parse_message_2(message_2)
        pending.c_r, pending.id_cred_r = bytes(c_r), bytes(id_cred_r)
        pending.cred_r = credential_by_value(pending.id_cred_r)
        own_cred = cbor2.dumps(identity.own_cred[14], canonical=True)
        pending.initiator.verify_message_2(identity.own_key.d, own_cred, pending.cred_r)
        message_3, _prk = pending.initiator.prepare_message_3(lakers.CredentialTransfer.ByReference, [])
        return bytes(message_3)

    def message_4(self, pending: Pending, message_4: bytes, gate: Any) -> None:
        """The token in EAD_4 (§4.4.5), then the OSCORE context bound to its binding."""
        self.forget(lambda p: p is pending)
        ead_4 = list(pending.initiator.process_message_4(message_4) or [])
        kind, value = token_of(ead_4, gate.preset)
        try:
            admission = (gate.admit if kind == "token" else gate.admit_session)(value, pending.id_cred_r)
        except RemoteError as exc:
            peer_log.log(logging.INFO, "EDHOC (reverse): access token in EAD_4 refused: %s", exc)
            raise EdhocError("access token refused") from None
        if admission.cred_i != pending.cred_r:  # EP §4.4.5: the token's cnf is C's credential
            raise EdhocError("access token refused")
        assert pending.c_r is not None
        context = MemoryOscoreContext(
            master_secret=bytes(pending.initiator.edhoc_exporter(0, b"", 16)),
            master_salt=bytes(pending.initiator.edhoc_exporter(1, b"", 8)),
            sender_id=pending.c_r, recipient_id=pending.c_i, alg=AES_CCM_16_64_128, hkdf="sha256",
            authenticated_claims=[admission.label])
        bind(gate, admission)  # stored first: a refusal keeps the previous session
        self.forget(lambda c: admission.label in getattr(c, "authenticated_claims", ()))  # EP §4.2
        self.credentials[KEY_PREFIX + pending.c_i.hex()] = context

    def forget(self, predicate: Callable[[Any], bool]) -> int:
        """Drop the reverse-flow entries (half-done or contexts) ``predicate`` selects."""
        doomed = [k for k, v in list(self.credentials.items()) if k.startswith(KEY_PREFIX) and predicate(v)]
        for key in doomed:
            del self.credentials[key]
        return len(doomed)

    def forget_label(self, label: object) -> int:
        return self.forget(lambda c: label in getattr(c, "authenticated_claims", ()))

    def forget_stale(self) -> int:
        """Drop the half-done handshakes older than PENDING_SECONDS."""
        now = self.clock()
        return self.forget(lambda p: isinstance(p, Pending) and now - p.born > PENDING_SECONDS)

    def _make_room(self, source: str | None) -> None:
        self.forget_stale()
        pending = sorted((v for v in self.credentials.values() if isinstance(v, Pending)), key=lambda p: p.born)
        doomed: list[Pending] = []
        while len(pending) >= MAX_PENDING:  # the oldest of the most crowded source (this one counted too)
            counts = Counter(p.source for p in pending)
            counts[source] += 1
            doomed.append(next(p for p in pending if counts[p.source] == max(counts.values())))
            pending.remove(doomed[-1])
        self.forget(lambda p: any(p is d for d in doomed))
