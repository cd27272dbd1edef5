"""The registry of ``MemoryAsStore``: ``MemoryRegistry``, with the semantics of ``sqlite_registry``.

Clients (a second client with one OSCORE recipient id and id context, or one DTLS PSK identity, is
refused), RSs and grants (unique per client, audience and scope, text scopes and AIF bytes apart,
in insertion order as sqlite's row ids), listed in the same order as sqlite lists them.
"""

from __future__ import annotations

import threading

from ace.store import checks
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.memory_cred import EdhocCredentialTable

GrantKey = tuple[str, str, type, str | bytes]


def _grant_key(client_id: str, audience: str, scope: str | bytes) -> GrantKey:
    return (client_id, audience, type(scope), scope)  # "r" and b"r" are different grants


class MemoryRegistry:
    """The clients, RSs and grants of ``MemoryAsStore`` (which holds the state and the lock)."""

    _lock: threading.RLock
    _clients: dict[str, ClientRecord]
    _rs: dict[str, RsRecord]
    _grants: dict[GrantKey, Grant]  # insertion order, as sqlite's row ids
    _edhoc: EdhocCredentialTable

    def _check_open(self) -> None:
        raise NotImplementedError

    # --- clients ------------------------------------------------------------------------

    def put_client(self, client: ClientRecord) -> None:
        checks.check_client(client)
        with self._lock:
            self._check_open()
            if client.oscore is not None:
                other = self._find_by_kid(client.oscore.recipient_id, client.oscore.id_context)
                if other is not None and other.client_id != client.client_id:
                    raise checks.duplicate_kid_error(client.client_id, other.client_id)
            if client.psk is not None:
                other = self._find_by_psk(client.psk.identity)
                if other is not None and other.client_id != client.client_id:
                    raise checks.duplicate_psk_error(client.client_id, other.client_id)
            self._clients[client.client_id] = client

    def get_client(self, client_id: str) -> ClientRecord | None:
        with self._lock:
            self._check_open()
            return self._clients.get(client_id)

    def _find_by_kid(self, recipient_id: bytes, id_context: bytes | None) -> ClientRecord | None:
        for c in self._clients.values():
            if checks.same_oscore_kid(c.oscore, recipient_id, id_context):
                return c
        return None

    def find_client_by_oscore_kid(self, recipient_id: bytes, id_context: bytes | None) -> ClientRecord | None:
        with self._lock:
            self._check_open()
            return self._find_by_kid(recipient_id, id_context)

    def _find_by_psk(self, identity: bytes) -> ClientRecord | None:
        return next((c for c in self._clients.values() if checks.same_psk_identity(c.psk, identity)), None)

    def find_client_by_psk_identity(self, identity: bytes) -> ClientRecord | None:
        checks.check_bytes(identity, "psk identity")
        with self._lock:
            self._check_open()
            return self._find_by_psk(identity)

    def list_clients(self) -> list[ClientRecord]:
        with self._lock:
            self._check_open()
            return [self._clients[k] for k in sorted(self._clients)]

    def remove_client(self, client_id: str) -> bool:
        with self._lock:
            self._check_open()
            self._edhoc.forget_client(client_id)
            return self._clients.pop(client_id, None) is not None

    # --- resource servers ---------------------------------------------------------------

    def put_rs(self, rs: RsRecord) -> None:
        checks.check_rs(rs)
        with self._lock:
            self._check_open()
            self._rs[rs.audience] = rs

    def get_rs(self, audience: str) -> RsRecord | None:
        with self._lock:
            self._check_open()
            return self._rs.get(audience)

    def list_rs(self) -> list[RsRecord]:
        with self._lock:
            self._check_open()
            return [self._rs[k] for k in sorted(self._rs)]

    def remove_rs(self, audience: str) -> bool:
        with self._lock:
            self._check_open()
            return self._rs.pop(audience, None) is not None

    # --- grants -------------------------------------------------------------------------

    def add_grant(self, grant: Grant) -> None:
        checks.check_grant(grant)
        with self._lock:
            self._check_open()
            self._grants[_grant_key(grant.client_id, grant.audience, grant.scope)] = grant  # keeps its position

    def revoke_grant(self, client_id: str, audience: str, scope: str | bytes | None = None) -> int:
        if scope is not None:
            checks.check_scope(scope)
        with self._lock:
            self._check_open()
            doomed = [
                k for k, g in self._grants.items()
                if g.client_id == client_id and g.audience == audience
                and (scope is None or k == _grant_key(client_id, audience, scope))
            ]
            for k in doomed:
                del self._grants[k]
            return len(doomed)

    def grants_for(self, client_id: str, audience: str) -> list[Grant]:
        with self._lock:
            self._check_open()
            return [g for g in self._grants.values() if g.client_id == client_id and g.audience == audience]

    def list_grants(self) -> list[Grant]:
        with self._lock:
            self._check_open()
            return list(self._grants.values())
