"""An OSCORE Security Context's static input (RFC 8613 §3.2), from one side, sans I/O.

One type for both ways a context comes about: pre-established with the AS (RFC 8613 §3.1: a
client's or an RS's context with the AS, stored by ``ace.store`` and written to ``*.oscore.toml``
files) and derived from a token's OSCORE_Input_Material and the /authz-info nonces
(``ace.profiles.oscore.derive``, RFC 9203 §4.3). Building the context itself (aiocoap) is
``ace.coap``'s. Secrets are never in ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from ace.cbor.labels import AceProfile

DEFAULT_ALG = 10  # AES-CCM-16-64-128 (RFC 8613 §3.2)
DEFAULT_HKDF = "sha256"  # HKDF SHA-256 (RFC 8613 §3.2)


@dataclass(frozen=True, slots=True, kw_only=True)
class OscoreContextParams:
    """Everything needed to build an OSCORE context (RFC 8613 §3.2), from one side: ``sender_id``
    is ours, ``recipient_id`` the peer's (at the AS: the client's or the RS's)."""

    profile: ClassVar[int] = int(AceProfile.COAP_OSCORE)

    master_secret: bytes = field(repr=False)
    sender_id: bytes
    recipient_id: bytes
    master_salt: bytes = b""
    id_context: bytes | None = None
    alg: int = DEFAULT_ALG
    hkdf: str = DEFAULT_HKDF

    def mirrored(self) -> OscoreContextParams:
        """The same context from the other side: sender and recipient IDs swapped."""
        return replace(self, sender_id=self.recipient_id, recipient_id=self.sender_id)
