"""Where a message's key is found: ``KeyLookup`` (a protocol) and ``KeyRing`` (keys by kid).

Shared by ``ace.tokens.cwt`` (which re-exports both) and ``ace.tokens.encrypt``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Protocol

from ace.cbor.labels import Alg
from ace.tokens.keys import CoseKey


class KeyLookup(Protocol):
    def keys_for(self, kid: bytes | None) -> Sequence[CoseKey]:
        """Keys to try for a message naming ``kid`` (``None``: it names none)."""
        ...


class KeyRing:
    """A KeyLookup over a fixed set of keys, indexed by kid.

    A message naming a kid gets the keys with that kid; a message without kid gets the
    keys without kid (or all keys if ``try_all_without_kid``).
    """

    def __init__(self, keys: Iterable[CoseKey], *, try_all_without_kid: bool = False) -> None:
        self._by_kid: dict[bytes, list[CoseKey]] = {}
        self._no_kid: list[CoseKey] = []
        self._all: list[CoseKey] = []
        for key in keys:
            self._all.append(key)
            if key.kid is None:
                self._no_kid.append(key)
            else:
                self._by_kid.setdefault(key.kid, []).append(key)
        self._try_all = try_all_without_kid

    def keys_for(self, kid: bytes | None) -> Sequence[CoseKey]:
        if kid is None:
            return self._all if self._try_all else self._no_kid
        return self._by_kid.get(kid, ())


def rs_keyring(keys: Iterable[CoseKey]) -> KeyRing:
    """The RS's token keys: a private EC2/OKP key there is the RS's own key for key agreement.

    Without an alg it is pinned to ECDH-ES + HKDF-256, so it never verifies a signature: the RS
    checks Sign1 tokens with the AS's public key only (one key, one use; RFC 9052 §7).
    """
    return KeyRing([replace(k, alg=int(Alg.ECDH_ES_HKDF_256))
                    if k.d is not None and not k.is_symmetric and k.alg is None else k for k in keys])
