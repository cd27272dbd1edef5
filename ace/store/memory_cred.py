"""The EDHOC credentials of ``MemoryAsStore``, with the semantics of ``sqlite_cred`` (see there):
rows keyed (audience, thumbprint, kid), audience None for the operator's registrations, a key
first presented owned at every audience, a kid per audience, the client's least recently used
first-presented rows evicted beyond ``limit`` (ties: newest row kept)."""

from __future__ import annotations

from dataclasses import dataclass

from ace.store import checks

Key = tuple[str | None, bytes, bytes]  # (audience or None: registered, thumbprint, kid)


@dataclass(slots=True)
class _Row:
    client_id: str
    last_used: int
    id: int


class EdhocCredentialTable:
    """Not thread-safe: the store's lock guards it."""

    def __init__(self) -> None:
        self._rows: dict[Key, _Row] = {}
        self._next_id = 0

    def _matching(self, audience: str | None, kid: bytes, thumbprint: bytes) -> list[tuple[Key, _Row]]:
        return [(k, r) for k, r in self._rows.items() if k[0] == audience and (k[1] == thumbprint or k[2] == kid)]

    def _add(self, key: Key, client_id: str, now: int) -> None:
        self._next_id += 1
        self._rows[key] = _Row(client_id, now, self._next_id)

    def owner(self, client_id: str, audience: str, kid: bytes, thumbprint: bytes) -> tuple[str | None, bool]:
        """(another client the credential belongs to, or None; whether it is registered for ``client_id``)."""
        registered = self._matching(None, kid, thumbprint)
        other = next((r.client_id for _, r in registered if r.client_id != client_id), None)
        if other is not None:
            return other, False
        if (None, thumbprint, kid) in self._rows:
            return None, True
        presented = sorted((r.id, r.client_id) for k, r in self._rows.items() if r.client_id != client_id and (
            (k[0] is not None and k[1] == thumbprint) or (k[0] == audience and k[2] == kid)))
        return (presented[0][1] if presented else None), False

    def claim(self, client_id: str, audience: str, kid: bytes, thumbprint: bytes, now: int, limit: int) -> str | None:
        other, registered = self.owner(client_id, audience, kid, thumbprint)
        if other is not None or registered:
            return other
        row = self._rows.get((audience, thumbprint, kid))
        if row is None:
            self._add((audience, thumbprint, kid), client_id, now)
        else:
            row.last_used = max(row.last_used, now)
        mine = sorted(((r.last_used, r.id, k) for k, r in self._rows.items()
                       if k[0] == audience and r.client_id == client_id), reverse=True)
        for _, _, k in mine[limit:]:
            del self._rows[k]
        return None

    def register(self, client_id: str, kid: bytes, thumbprint: bytes, now: int) -> None:
        registered = self._matching(None, kid, thumbprint)
        other = next((r.client_id for _, r in registered if r.client_id != client_id), None)
        if other is not None:
            raise checks.duplicate_edhoc_error(client_id, other)
        for k, r in list(self._rows.items()):
            if k[0] is not None and r.client_id != client_id and (k[1] == thumbprint or k[2] == kid):
                del self._rows[k]
        if (None, thumbprint, kid) not in self._rows:
            self._add((None, thumbprint, kid), client_id, now)

    def registered_owner(self, kid: bytes, thumbprint: bytes) -> str | None:
        found = sorted((r.id, r.client_id) for _, r in self._matching(None, kid, thumbprint))
        return found[0][1] if found else None

    def of(self, client_id: str) -> list[tuple[str | None, bytes, bytes]]:
        mine = sorted(((k[0] is not None, k[0] or "", r.id, k) for k, r in self._rows.items()
                       if r.client_id == client_id))
        return [(k[0], k[2], k[1]) for *_, k in mine]

    def forget_client(self, client_id: str) -> None:
        for k in [k for k, r in self._rows.items() if r.client_id == client_id]:
            del self._rows[k]
