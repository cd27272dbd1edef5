"""Finding OSCORE contexts fast, and building them from ACE key material.

aiocoap asks every item of a server's credentials map ``get_oscore_context_for`` in turn;
``ContextIndex`` is one such item holding any number of contexts in a dict keyed by
(kid, kid context), so lookup stays O(1) however many tokens an RS holds, and contexts
added or removed at run time (by /authz-info, by expiry) take effect at once. A request may
leave the kid context out (RFC 8613 §6.1: it is optional in the OSCORE option): then the one
context that has that kid is found, and none when several have it (ambiguous: 4.01).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiocoap

from ace.coap.oscore_context import (
    COSE_KID,
    COSE_KID_CONTEXT,
    MemoryOscoreContext,
    PersistentOscoreContext,
)
from ace.tokens.oscore_params import OscoreContextParams

if TYPE_CHECKING:
    from ace.store.base import SequenceNumberStore

Loader = Callable[[bytes, "bytes | None"], "MemoryOscoreContext | None"]


class ContextIndex:
    """A credentials-map item answering ``get_oscore_context_for`` from a dict.

    ``loader`` (optional) is asked on a miss, so contexts registered after start (a client
    added with ``ace policy add-client``) work without a restart; what it returns is kept.
    """

    def __init__(self, loader: Loader | None = None) -> None:
        self._by_key: dict[tuple[bytes, bytes | None], MemoryOscoreContext] = {}
        self._id_contexts: dict[bytes, set[bytes | None]] = {}  # kid -> the ID Contexts held with it
        self._loader = loader

    def add(self, ctx: MemoryOscoreContext) -> None:
        key = (ctx.recipient_id, ctx.id_context)
        old = self._by_key.get(key)
        if old is not None and old is not ctx:
            old.invalidate()
        self._put(ctx)

    def _put(self, ctx: MemoryOscoreContext) -> None:
        self._by_key[(ctx.recipient_id, ctx.id_context)] = ctx
        self._id_contexts.setdefault(ctx.recipient_id, set()).add(ctx.id_context)

    def remove(self, recipient_id: bytes, id_context: bytes | None = None) -> MemoryOscoreContext | None:
        ctx = self._by_key.pop((recipient_id, id_context), None)
        if ctx is not None:
            ctx.invalidate()
            held = self._id_contexts.get(recipient_id)
            if held is not None:
                held.discard(id_context)
                if not held:
                    del self._id_contexts[recipient_id]
        return ctx

    def exact(self, recipient_id: bytes, id_context: bytes | None) -> MemoryOscoreContext | None:
        """The live context held under exactly (``recipient_id``, ``id_context``), no fallback."""
        ctx = self._by_key.get((recipient_id, id_context))
        return None if ctx is None or ctx.expired else ctx

    def get_oscore_context_for(self, unprotected: Mapping[int, Any]) -> MemoryOscoreContext | None:
        kid = unprotected.get(COSE_KID)
        if kid is None:
            return None
        kid_context = unprotected.get(COSE_KID_CONTEXT)
        ctx = self._by_key.get((kid, kid_context))
        if ctx is None and kid_context is None:
            ctx = self._only_one(kid)
        if ctx is None and self._loader is not None:
            ctx = self._loader(kid, kid_context)
            if ctx is not None:
                self._put(ctx)
        return None if ctx is None or ctx.expired else ctx

    def _only_one(self, kid: bytes) -> MemoryOscoreContext | None:
        """RFC 8613 §6.1: kid context is optional, so a request without it names the one context
        with this kid (Recipient ID); several such contexts: none (the request is refused, 4.01)."""
        held = self._id_contexts.get(kid)
        if held is None or len(held) != 1:
            return None
        (id_context,) = held
        return self._by_key.get((kid, id_context))

    def find_all_used_contextless_oscore_kid(self) -> set[bytes]:
        return {rid for rid, ctxid in self._by_key if ctxid is None}

    def __iter__(self) -> Iterator[MemoryOscoreContext]:
        return iter(list(self._by_key.values()))

    def __len__(self) -> int:
        return len(self._by_key)


def from_params(params: OscoreContextParams, *, claims: list[Any], expires_at: float | None = None,
                clock: Callable[[], float] = time.time) -> MemoryOscoreContext:
    """An in-memory context from RFC 9203 §4.3 parameters (RS and client side)."""
    return MemoryOscoreContext(
        master_secret=params.master_secret, master_salt=params.master_salt, sender_id=params.sender_id,
        recipient_id=params.recipient_id, id_context=params.id_context, alg=params.alg, hkdf=params.hkdf,
        authenticated_claims=claims, expires_at=expires_at, clock=clock,
    )


def secret_fingerprint(secret: OscoreContextParams) -> str:
    """Names a context by its keys: the Sender Key depends on exactly these inputs (RFC 8613
    §3.2.1), so a renamed peer or a respelled URI can never restart its sequence numbers."""
    parts = (secret.master_secret, secret.master_salt, secret.sender_id, secret.id_context or b"",
             str(secret.alg).encode(), secret.hkdf.encode())
    return hashlib.sha256(b"".join(len(p).to_bytes(2, "big") + p for p in parts)).hexdigest()[:32]


def from_secret(secret: OscoreContextParams, *, store: SequenceNumberStore,
                claims: list[Any]) -> PersistentOscoreContext:
    """A long-lived, persisted context from a pre-established secret (client <-> AS); its
    sequence numbers are persisted under the secret's fingerprint."""
    fingerprint = secret_fingerprint(secret)
    ctx = PersistentOscoreContext(
        seqno_store=store, name=f"oscore/{fingerprint}", master_secret=secret.master_secret,
        master_salt=secret.master_salt, sender_id=secret.sender_id, recipient_id=secret.recipient_id,
        id_context=secret.id_context, alg=secret.alg, hkdf=secret.hkdf, authenticated_claims=claims,
    )
    ctx.secret_fingerprint = fingerprint
    return ctx


def origin_key(uri: str) -> str:
    """The ``scheme://host:port/*`` key of aiocoap's client credentials for ``uri``."""
    full = aiocoap.Message(code=aiocoap.POST, uri=uri).get_request_uri()  # aiocoap's spelling
    parts = urlsplit(full)
    return f"{parts.scheme}://{parts.netloc}/*"
