"""What the stores keep, as frozen records, and what each of their users needs, as small Protocols.

Records: clients (id, the OSCORE context or DTLS PSK they use to reach the AS, the profiles they
support), RSs (audience, identity, profiles, the key that protects their tokens and how), the
Resource Owner's grants, the issued-token log, EDHOC credential claims and reference tokens.
Protocols, one per role: what the AS needs (``ClientRegistry``, ``RsRegistry``, ``GrantStore``,
``Counters``, ``TokenLog``, ``EdhocOwnership``, ``RevocationList``, ``ReferenceStore``; ``AsStore``
is all of them) and what every long-lived OSCORE context needs, at the AS, the RS and the client
(``SequenceNumberStore``: sender sequence numbers and replay floors, RFC 8613 §B.1.1). A user
declares the roles it calls (``ace.authz_server.trl.TrlStore``: the TRL, the token log, counters);
the client's audience pins are ``ace.client.pins.AudiencePins``. Implementations: ``sqlite`` (the
AS's embedded default, one file), ``memory`` (tests, the in-memory demo) and, for the RS and the
client, ``seqno.FileSequenceStore`` and ``pins.FilePins``. Secrets are never in ``repr``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from ace.tokens.keys import CoseKey
from ace.tokens.oscore_params import OscoreContextParams


@dataclass(frozen=True, slots=True, kw_only=True)
class DtlsPsk:
    """A pre-shared key for DTLS (RFC 4279), as its identity and the key (≤ 16 bytes here)."""

    identity: bytes
    key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientRecord:
    client_id: str
    oscore: OscoreContextParams | None = None  # how the client authenticates to the AS: OSCORE ...
    psk: DtlsPsk | None = None  # ... or DTLS with a pre-shared key (RFC 9202 §3.1)
    profiles: tuple[int, ...] = (2,)  # ACE profiles the client supports (RFC 9200 §5.8.1)


TIME_UNITS = {"s": 1, "ms": 1000}  # exp/exi unit -> units per second
EXI_CTI_LAYOUTS = ("bytes", "text")
TOKEN_KINDS = frozenset({"encrypt0", "sign1", "mac0"})  # the COSE message an RS's tokens are (RsRecord)
MAX_SALT_LEN = 64  # OSCORE_Input_Material salt bytes an RS may be given at most (token size)
# how a secret PoP key reaches an RS whose tokens are readable (sign1, mac0; RsRecord.pop_key_encryption):
# "none": it does not (such tokens are refused), "shared": COSE_Encrypt0 with a key the AS and the RS
# share, "rs_public": COSE_Encrypt to the RS's own public key (ECDH-ES + HKDF-256, RFC 9053 §6.3)
POP_KEY_ENCRYPTIONS = ("none", "shared", "rs_public")
# the EDHOC code-point presets an RS may speak (``ace.profiles.edhoc_presets.PRESETS``; schema 11)
EDHOC_PRESETS = ("draft-11", "ariel-os", "aiocoap")
MAX_AUTH_CRED = 1024  # bytes of an RS's own EDHOC credential (a CCS) at most


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenFormat:
    """How the AS shapes the tokens of one RS. The defaults are the RFCs as written (RFC 8392, RFC
    9200, RFC 9203) and what this AS always did; each other value is one documented deviation some
    peer needs (``ACE_JAVA``: the RISE reference implementation's RS, issue 11)."""

    cose_tag: bool = False  # the COSE message's CBOR tag (RFC 9052 §2: 16 for COSE_Encrypt0, ...)
    cwt_tag: bool = False  # the CWT tag 61 around the (then tagged) COSE message (RFC 8392 §6)
    sub: bool = True  # sub = the client id (only where the AS's policy includes sub at all)
    time_unit: str = "s"  # exp and exi in "s" (RFC 8392 §3.1.4, RFC 9200 §5.10.3) or "ms"
    exi: bool = False  # exi and a sequence-numbered cti instead of exp (RFC 9200 §5.10.3)
    # exi tokens' cti: "bytes": the rs id's UTF-8 bytes + the sequence number as 4 bytes big-endian;
    # "text": the rs id + the sequence number in decimal digits (ace-java), both UTF-8
    exi_cti: str = "bytes"
    salt_len: int | None = None  # OSCORE_Input_Material salt bytes (RFC 9203 §3.2.1); None: the AS's salt_len

    def __post_init__(self) -> None:
        if self.time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {sorted(TIME_UNITS)}, not {self.time_unit!r}")
        if self.exi_cti not in EXI_CTI_LAYOUTS:
            raise ValueError(f"exi_cti must be one of {list(EXI_CTI_LAYOUTS)}, not {self.exi_cti!r}")
        if self.salt_len is not None and (type(self.salt_len) is not int or not 0 <= self.salt_len <= MAX_SALT_LEN):
            raise ValueError(f"salt_len must be None or an int in [0, {MAX_SALT_LEN}]")
        for name in ("cose_tag", "cwt_tag", "sub", "exi"):
            if type(getattr(self, name)) is not bool:
                raise TypeError(f"{name} must be a bool")

    @property
    def per_second(self) -> int:
        """exp/exi units per second."""
        return TIME_UNITS[self.time_unit]


RFC_FORMAT = TokenFormat()
# RISE ace-java's RS (measured, issue 11): it refuses untagged COSE, compares exp with a clock in
# ms and reads exi in ms, matches sub against the requester's OSCORE identity (tokens for it carry
# none), wants exi ctis as the rs id + decimal text, and derives another Master Salt than ours when
# the material has no salt (its AS always sends 1 byte). Its AS issues exi tokens.
ACE_JAVA = TokenFormat(cose_tag=True, sub=False, time_unit="ms", exi=True, exi_cti="text", salt_len=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class RsRecord:
    """An RS as the AS knows it (RFC 9200 §5.8: the AS must know the RS it issues for)."""

    audience: str
    rs_id: str  # the RS's own identity (e.g. for introspection, rs_cnf)
    token_key: CoseKey = field(repr=False)  # protects tokens for this RS
    token_kind: str = "encrypt0"  # one of TOKEN_KINDS
    token_alg: int | None = None  # None: the key's default
    profiles: tuple[int, ...] = (2,)
    token_lifetime: int = 3600  # seconds (exp = iat + lifetime)
    oscore: OscoreContextParams | None = None  # the AS's side of the RS <-> AS context (/introspect, the TRL)
    auth_key: CoseKey | None = None  # the RS's public authentication key (EDHOC: sent to clients as rs_cnf)
    format: TokenFormat = RFC_FORMAT  # how its tokens are shaped (schema 8)
    # how a secret PoP key is encrypted to it when its tokens are readable (one of POP_KEY_ENCRYPTIONS),
    # and the key it is encrypted with: shared (symmetric) or the RS's public key, with a kid (schema 10)
    pop_key_encryption: str = "none"
    encryption_key: CoseKey | None = field(default=None, repr=False)
    # EDHOC profile (schema 11): the code points and token shape it speaks (one of EDHOC_PRESETS);
    # its own credential as the exact CCS bytes it uses as CRED_R (rs_cnf kccs by value; None: made
    # from auth_key); the EDHOC_Information it publishes (an encoded map without session_id); and
    # its /authz-info URI, where the AS uploads tokens (draft-ietf-ace-workflow-and-params §3.1)
    edhoc_preset: str = "draft-11"
    auth_cred: bytes | None = None
    edhoc_params: bytes | None = None
    upload_uri: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """The Resource Owner's decision (A/B): ``client_id`` may get ``scope`` at ``audience``.

    ``scope`` is a text scope (space-separated tokens) or AIF bytes (RFC 9237).
    ``default`` grants are what a request without scope receives.
    """

    client_id: str
    audience: str
    scope: str | bytes
    default: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedToken:
    cti: bytes
    client_id: str
    audience: str
    scope: str | bytes | None
    issued_at: int
    expires_at: int | None
    token_hash: bytes  # RFC 9770 §4 token hash (ace.tokens.hashing.token_hash)
    pop_kid: bytes | None = None  # the PoP key's kid: DTLS key, OSCORE material id, the client's EDHOC kid
    pop_thumbprint: bytes | None = None  # RFC 9679 thumbprint of the client's own (public) PoP key (EDHOC)
    session_id: bytes | None = None  # the token series' id (EDHOC profile edhoc_info session_id; schema 11)


@dataclass(frozen=True, slots=True, kw_only=True)
class EdhocClaim:
    """A client's own EDHOC credential (kid, RFC 9679 thumbprint) that ``log_token`` records as first
    presented by the token's client at its audience (``claim_edhoc_credential``, at most ``limit``
    per client and audience), in the same write as the token, or refuses with the token."""

    kid: bytes
    thumbprint: bytes
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceToken:
    """What stands behind an opaque reference token (RFC 9200 §5.9): found by the token's RFC 9770
    hash (the reference itself is never stored), the claims a self-contained token would have
    carried (an encoded CBOR map; its cnf may hold the PoP key: secret) and when it expires."""

    token_hash: bytes
    audience: str
    claims: bytes = field(repr=False)
    expires_at: int | None


# --- the AS's roles ----------------------------------------------------------------------
# Every write is durable when it returns, except ``log_token`` and ``persist_replay_floor``,
# which a store may commit more lightly (``sqlite``: a crash of the process loses nothing).


class ClientRegistry(Protocol):
    """The clients the AS knows and how they authenticate to it (RFC 9200 §5.8.1)."""

    def put_client(self, client: ClientRecord) -> None:
        """ValueError if another client has its OSCORE recipient id and id context or its PSK identity."""
        ...
    def get_client(self, client_id: str) -> ClientRecord | None: ...
    def find_client_by_oscore_kid(self, recipient_id: bytes, id_context: bytes | None) -> ClientRecord | None: ...
    def find_client_by_psk_identity(self, identity: bytes) -> ClientRecord | None: ...
    def list_clients(self) -> list[ClientRecord]: ...
    def remove_client(self, client_id: str) -> bool:
        """Its EDHOC credentials go with it."""
        ...


class RsRegistry(Protocol):
    """The RSs the AS issues tokens for (RFC 9200 §5.8: the AS must know the RS)."""

    def put_rs(self, rs: RsRecord) -> None: ...
    def get_rs(self, audience: str) -> RsRecord | None: ...
    def list_rs(self) -> list[RsRecord]: ...
    def remove_rs(self, audience: str) -> bool: ...


class GrantStore(Protocol):
    """The Resource Owner's grants (A/B)."""

    def add_grant(self, grant: Grant) -> None: ...  # idempotent for an equal grant
    def revoke_grant(self, client_id: str, audience: str, scope: str | bytes | None = None) -> int: ...
    def grants_for(self, client_id: str, audience: str) -> list[Grant]: ...
    def list_grants(self) -> list[Grant]: ...


class Counters(Protocol):
    """Values never handed out before, not even across crashes and restarts."""

    def next_cti(self) -> int:
        """A counter value never returned before (tokens' cti, RFC 8392 §3.1.7)."""
        ...

    def next_counter(self, name: str) -> int:
        """The next value of a named counter (1, 2, ...), never returned before, durably: e.g. the
        per-RS sequence numbers of exi tokens (RFC 9200 §5.10.3)."""
        ...


class TokenLog(Protocol):
    """The issued-token log, by PoP key, by identity and by liveness (schema 6). "Live": not expired
    at ``now`` (expires_at None or > now). Expired rows go with ``purge_tokens``, except while on the TRL."""

    def log_token(self, token: IssuedToken, *, purge_before: int | None = None, purge_limit: int = 0,
                  edhoc_claim: EdhocClaim | None = None) -> str | None:
        """Log ``token``; in the same write, with ``purge_before``, ``purge_tokens(purge_before,
        purge_limit)``, and with ``edhoc_claim``, ``claim_edhoc_credential`` for the token's client and
        audience at its ``issued_at``: if the credential is another client's, its id is returned and
        nothing at all is written (neither the token nor the claim). Else None."""
        ...

    def find_token_by_pop_kid(self, client_id: str, audience: str, pop_kid: bytes) -> IssuedToken | None:
        """The newest token issued to ``client_id`` for ``audience`` bound to ``pop_kid``."""
        ...
    def find_token_by_session_id(self, client_id: str, audience: str, session_id: bytes) -> IssuedToken | None:
        """The newest token issued to ``client_id`` for ``audience`` in the series ``session_id``."""
        ...
    def issued_tokens(self, limit: int = 100) -> list[IssuedToken]: ...

    def find_tokens(self, client_id: str | None = None, audience: str | None = None) -> list[IssuedToken]:
        """Issued tokens (newest first) of a client and/or audience, for revoking them."""
        ...

    def find_token_by_cti(self, cti: bytes) -> IssuedToken | None:
        """The logged token with this cti (the token's identity, RFC 8392 §3.1.7), if still logged."""
        ...

    def find_tokens_by_hash(self, token_hashes: Collection[bytes]) -> list[IssuedToken]:
        """The logged tokens with these RFC 9770 hashes, oldest first (unknown hashes: none)."""
        ...

    def count_live_tokens(self, client_id: str, audience: str, now: int, limit: int) -> int:
        """How many live tokens of ``client_id`` for ``audience`` are not on the TRL, counted up to
        ``limit`` (the work is bounded by it)."""
        ...

    def pop_holders(self, audience: str, now: int, *, pop_kid: bytes | None,
                    pop_thumbprint: bytes | None) -> list[str]:
        """The clients (a few at most, sorted) holding a live token for ``audience`` whose PoP key is
        a client's own credential (EDHOC: logged with a thumbprint) with this kid or this thumbprint,
        revoked or not. OSCORE material ids and DTLS kids (no thumbprint) are another id space."""
        ...

    def purge_tokens(self, now: int, limit: int) -> int:
        """Forget at most ``limit`` logged tokens expired before ``now`` (those that expired first
        first) that are not on the TRL; returns how many."""
        ...


class EdhocOwnership(Protocol):
    """EDHOC credentials (schemas 7, 9): each (kid, RFC 9679 thumbprint) belongs to one client for good."""

    def edhoc_owner(self, client_id: str, audience: str, *, kid: bytes, thumbprint: bytes) -> str | None:
        """Another client the credential belongs to: registered for it (matching by kid or by
        thumbprint), or first presented by it, the key (thumbprint) at any audience, the kid at
        ``audience``. Else None. Reads only (the AS checks this before anything else is decided)."""
        ...

    def claim_edhoc_credential(self, client_id: str, audience: str, *, kid: bytes, thumbprint: bytes, now: int,
                               limit: int) -> str | None:
        """``edhoc_owner``'s answer, if not None: returned, nothing written. Else None, and the
        credential is ``client_id``'s (registered, or recorded as first presented by it at
        ``audience``; at most ``limit`` such per client and audience, least recently used out)."""
        ...

    def register_edhoc_credential(self, client_id: str, *, kid: bytes, thumbprint: bytes, now: int) -> None:
        """The operator's binding, at every audience; ValueError if its kid or thumbprint is registered
        for another client. Other clients' first-presented rows with that kid or thumbprint go."""
        ...

    def registered_edhoc_owner(self, *, kid: bytes, thumbprint: bytes) -> str | None:
        """The client a credential with this kid or this thumbprint is registered for (the first, if two)."""
        ...

    def edhoc_credentials(self, client_id: str) -> list[tuple[str | None, bytes, bytes]]:
        """(audience, or None if registered; kid; thumbprint) of ``client_id``'s credentials."""
        ...


class RevocationList(Protocol):
    """The Token Revocation List (RFC 9770), as token hashes in revocation order."""

    def revoke_token(self, token_hash: bytes, *, revoked_at: int, expires_at: int | None) -> int | None:
        """Add ``token_hash`` to the TRL; returns its position (a cursor value, 1, 2, ...), or
        None if it is already there. Durable when it returns."""
        ...

    def revoked_since(self, cursor: int, limit: int) -> list[tuple[int, bytes]]:
        """(position, hash) of revocations after ``cursor``, oldest first, at most ``limit``."""
        ...

    def purge_revoked(self, now: int) -> int:
        """Forget revoked hashes of tokens expired before ``now`` (they need no listing); returns how many."""
        ...

    def is_revoked(self, token_hash: bytes) -> bool:
        """Whether ``token_hash`` is on the TRL (token introspection, RFC 9200 §5.9)."""
        ...

    def revoked_hashes(self, *, client_id: str | None = None, audience: str | None = None, now: int,
                       limit: int) -> list[bytes]:
        """TRL hashes (oldest revocation first, at most ``limit``) of logged tokens of ``client_id``
        and/or for ``audience`` (None: any) that are live at ``now``: a requester's full set (RFC 9770 §6.1)."""
        ...


class ReferenceStore(Protocol):
    """The claims behind opaque reference tokens (schema 5), by the tokens' hashes."""

    def put_reference(self, reference: ReferenceToken) -> None:
        """Durable when it returns; ValueError if that token hash is stored already."""
        ...

    def get_reference(self, token_hash: bytes) -> ReferenceToken | None: ...

    def purge_references(self, now: int, limit: int) -> int:
        """Forget at most ``limit`` references expired before ``now``, those that expired first
        first; returns how many."""
        ...


# --- every long-lived OSCORE context's (AS, RS, client) ----------------------------------


class SequenceNumberStore(Protocol):
    """Where the sender sequence numbers and replay floors of long-lived OSCORE contexts persist
    (RFC 8613 §B.1.1); the RS keeps its exi state here too. ``seqno.FileSequenceStore`` and both
    AS stores implement it."""

    def load_sequence_number(self, context_name: str) -> int | None: ...
    def persist_sequence_number(self, context_name: str, value: int) -> None:
        """Durably record that sender sequence numbers below ``value`` may have been used."""
        ...
    def persist_replay_floor(self, context_name: str, value: int) -> None:
        """Record a replay window's floor (written on every accepted request: a store may write it
        more lightly than sender sequence numbers)."""
        ...


class SequenceReservations(Protocol):
    """A store the AS shares with other processes (``ace token upload --as-context``): sender
    sequence numbers of one context are reserved there in disjoint ranges, atomically (RFC 8613
    §B.1.1), so two senders with the same key never take the same number (AEAD nonce, §5.2)."""

    def reserve_sequence_numbers(self, context_name: str, at_least: int, count: int) -> int:
        """The first of ``count`` numbers (from ``at_least`` up) no earlier reservation holds; the
        stored value becomes the range's end."""
        ...


class AsStore(ClientRegistry, RsRegistry, GrantStore, Counters, TokenLog, EdhocOwnership, RevocationList,
              ReferenceStore, SequenceNumberStore, Protocol):
    """Everything the AS keeps across restarts: every role above."""

    def close(self) -> None: ...
