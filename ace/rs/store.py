"""The RS's tokens, each bound to the security context its PoP key set up (RFC 9200 §5.10.1).

A ``Binding`` ties one verified token to the label its secure channel carries (for OSCORE:
the RS's Recipient ID of the derived context, which aiocoap hands to resources as
``authenticated_claims``). The store is bounded in count; expired bindings are purged
before anything else is refused. Lookups are by label, by token hash (a retransmitted
POST /authz-info) and by the client the token names.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ace.cbor.scope import Scope
from ace.errors import PayloadTooLarge, RemoteError, ServiceUnavailable

if TYPE_CHECKING:  # annotations only: the token-checking code comes with the first token
    from ace.profiles.base import Channel
    from ace.tokens.claims import AccessTokenClaims

DEFAULT_MAX_TOKENS = 64
DEFAULT_MAX_BYTES = 160 * 1024  # a small board: DEFAULT_MAX_TOKENS tokens with their claims and contexts
BINDING_OVERHEAD = 2048  # bytes charged per binding besides its token: claims, keys, indexes,
# the channel's context (scripts/bench rs measured ~2.0 KiB for OSCORE, ~1.3 KiB for DTLS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """An access token the RS holds, bound to the channel its PoP key protects: a protected
    resource's handler gets the one that authorized the request (``claims``: the token's claims)."""

    label: bytes  # what the secure channel reports for requests protected by this token's key
    token_hash: bytes
    claims: AccessTokenClaims = field(repr=False)
    scope: Scope
    expires_at: float | None  # RS clock
    nonce1: bytes
    response: bytes  # the encoded 2.01 payload (a retransmitted POST gets the same answer)
    context: Channel = field(repr=False)  # what the channel needs (its profile's: ace.profiles.of_channel)
    client_key: bytes  # "the same client": its sub claim if the token has one, else the PoP key id
    pop_id: bytes  # what names the PoP key: the OSCORE_Input_Material id, the DTLS or EDHOC kid
    supersedes: tuple[bytes, ...] = ()  # bindings of this client that go once this one is used
    cost: int = 0  # bytes this binding is charged against the store's byte budget

    def expired(self, now: float) -> bool:
        """Whether the token is past its expiry at ``now`` (RS clock)."""
        return self.expires_at is not None and now >= self.expires_at


class BindingStore:
    """Bounded in count and in bytes. When full, expired bindings go first, then the oldest
    binding that never protected a request (a flood of POSTs to /authz-info, which needs no
    authentication, can only displace such); bindings in use are never evicted (RFC 9200 §6):
    then the answer is 5.03."""

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_tokens, self.max_bytes = max_tokens, max_bytes
        self.bytes = 0
        self._by_label: OrderedDict[bytes, Binding] = OrderedDict()
        # a tuple, not a list (bytes per token count): one token POSTed twice (new nonce1) has two labels
        self._by_hash: dict[bytes, tuple[bytes, ...]] = {}
        self._used: set[bytes] = set()  # labels that protected at least one authorized request

    def used(self, label: bytes) -> bool:
        return label in self._used

    def mark_used(self, label: bytes) -> bool:
        """Record a first use; True if it was the first."""
        if label in self._used or label not in self._by_label:
            return False
        self._used.add(label)
        return True

    def __len__(self) -> int:
        return len(self._by_label)

    def __iter__(self) -> Iterator[Binding]:
        return iter(list(self._by_label.values()))

    def get(self, label: bytes) -> Binding | None:
        return self._by_label.get(label)

    def by_token_hash(self, token_hash: bytes) -> list[Binding]:
        """Every binding of this token, oldest first."""
        return [self._by_label[label] for label in self._by_hash.get(token_hash, ())]

    def for_client(self, client_key: bytes) -> list[Binding]:
        return [b for b in self._by_label.values() if b.client_key == client_key]

    def purge_expired(self, now: float) -> list[Binding]:
        gone = [b for b in self._by_label.values() if b.expired(now)]
        for b in gone:
            self.remove(b.label)
        return gone

    def add(self, binding: Binding, now: float) -> list[Binding]:
        """Store ``binding``; returns what had to go to make room. No room without evicting a
        binding in use: 5.03 (Service Unavailable)."""
        if binding.label in self._by_label:
            raise ValueError("label of a live binding reused")  # the ID pool must prevent this
        gone = self.room(binding.cost, now)  # decided before anything goes: a 5.03 changes nothing
        for victim in gone:
            self.remove(victim.label)
        self._by_label[binding.label] = binding
        self._index(binding)
        return gone

    def replace(self, binding: Binding, now: float) -> list[Binding]:
        """Swap the binding with the same label for ``binding`` (new rights over the same channel):
        its in-use mark stays, its byte charge follows the new token; returns what had to go to
        make room. No room: 5.03 and the old binding is back as it was."""
        old = self._by_label.get(binding.label)
        if old is None:
            raise ValueError("no binding with this label")
        used = binding.label in self._used
        self.remove(binding.label)
        try:
            gone = self.add(binding, now)
        except RemoteError:
            self._by_label[old.label] = old
            self._index(old)
            if used:
                self._used.add(old.label)
            raise
        if used:
            self._used.add(binding.label)
        return gone

    def room(self, cost: int, now: float, leaving: Collection[Binding] = ()) -> list[Binding]:
        """What must go for a binding of ``cost`` bytes to fit once ``leaving`` (stored bindings) is
        gone: every expired binding, then the oldest never used; or 4.13 (too large for the store
        alone), 5.03 (no room without evicting a binding in use). Nothing changes here."""
        if cost > self.max_bytes:
            raise PayloadTooLarge("token too large for this RS")
        left = {b.label for b in leaving} if leaving else set()
        count, size = len(self._by_label) - len(left), self.bytes - (sum(b.cost for b in leaving) if leaving else 0)
        if count < self.max_tokens and size + cost <= self.max_bytes:
            return []
        victims = [b for b in self._by_label.values() if b.expired(now) and b.label not in left]
        unused = (b for b in self._by_label.values()
                  if b.label not in self._used and not b.expired(now) and b.label not in left)
        count, size = count - len(victims), size - sum(b.cost for b in victims)
        while count >= self.max_tokens or size + cost > self.max_bytes:
            victim = next(unused, None)
            if victim is None:
                raise ServiceUnavailable("token store full")
            victims.append(victim)
            count, size = count - 1, size - victim.cost
        return victims

    def _index(self, binding: Binding) -> None:
        self._by_hash[binding.token_hash] = (*self._by_hash.get(binding.token_hash, ()), binding.label)
        self.bytes += binding.cost

    def remove(self, label: bytes) -> Binding | None:
        binding = self._by_label.pop(label, None)
        self._used.discard(label)
        if binding is not None:
            labels = tuple(x for x in self._by_hash.pop(binding.token_hash, ()) if x != label)
            if labels:
                self._by_hash[binding.token_hash] = labels
            self.bytes -= binding.cost
        return binding
