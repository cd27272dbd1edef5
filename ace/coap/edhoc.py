"""EDHOC transport glue (RFC 9528; draft-ietf-ace-edhoc-oscore-profile) on aiocoap 0.4.17.

Turns our EC2 P-256 ``CoseKey`` into what aiocoap/lakers use (a CCS ``{2: sub?, 8: {1:
COSE_Key}}`` with a kid, encoded canonically: that encoding is CRED_x inside the EDHOC MACs,
so both ends must build it alike), lets an RS find clients' credentials from tokens
(``PeerCredentialIndex``) and bounds aiocoap's responder state. aiocoap facts: the RS's own
identity is looked up under ``origin + "/*"`` with origin ``"coap://" + hostinfo`` (Uri-Host
if sent, else the local address, default port left out, e.g. ``coap://[::1]:5700``); lakers
hands ID_CRED_I expanded to ``{4: bstr kid}`` even when the wire carries a one-byte kid
compactly as a CBOR int; ``CredentialsMap.find_edhoc_by_id_cred_peer`` gives claims
``[map key of the item]`` (``EdhocCredentialsMap`` gives the token's label instead), a miss is
an unprotected 4.00 (the client sees ``NotAProtectedMessage``) and the server keeps serving;
every responder context stays in the server map under ``":" + uuid4().hex`` and C_R is one of
48 one-byte ids (then 5.00 "Too many contexts"), so ``EdhocCredentialsMap`` bounds them
(``edhoc_responders``); the client runs EDHOC on every request unless the derived context is
pinned (``ClientEdhoc``).
Only method 3 with suite 2 is supported. The RS's draft -11 responder (the token in EAD_3, EDHOC
error messages, Uri-Path-Abbrev, the reverse flow) is ``edhoc_server`` on top of ``EdhocSafeSite``;
``PeerCredentialIndex`` (credentials by kid) serves the older by-kid form only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiocoap
import cbor2
from aiocoap import oscore
from aiocoap.edhoc import EdhocCredentials, EdhocInitiatorContext
from aiocoap.numbers import COAP_PORT
from aiocoap.oscore_sitewrapper import OscoreSiteWrapper
from aiocoap.util import hostportjoin

from ace.cbor.labels import Curve, KeyType
from ace.coap.edhoc_responders import CONNECTION_IDS as CONNECTION_IDS
from ace.coap.edhoc_responders import DEFAULT_MAX_RESPONDERS as DEFAULT_MAX_RESPONDERS
from ace.coap.edhoc_responders import EDHOC_PATH, BoundedResponderMap
from ace.coap.edhoc_responders import HandshakeRefused as HandshakeRefused
from ace.coap.edhoc_responders import ResponderEntry as ResponderEntry
from ace.coap.edhoc_responders import forget_responder_contexts as forget_responder_contexts
from ace.coap.edhoc_responders import is_message_1 as is_message_1
from ace.coap.edhoc_responders import responder_contexts as responder_contexts
from ace.coap.peers import source_of
from ace.coap.ratelog import RateLimitedLog
from ace.tokens.keys import CoseKey

log = logging.getLogger(__name__)
peer_log = RateLimitedLog(log)  # lines unauthenticated peers drive

SUITE = 2  # AES-CCM-16-64-128, SHA-256, P-256: the only suite aiocoap 0.4.17 sets OSCORE up for
METHOD = 3  # static DH on both sides
MAX_KID = 16  # lakers-python 0.6.2 fails to parse a CCS whose kid is longer
MAX_CCS = 192  # lakers-python 0.6.2: longer credentials fail to parse

Loader = Callable[[bytes], "tuple[bytes, object] | None"]


def _edhoc_key(key: CoseKey, *, private: bool) -> CoseKey:
    if key.kty is not KeyType.EC2 or key.crv is not Curve.P_256:
        raise ValueError("EDHOC suite 2 needs an EC2 P-256 key")
    if key.kid is None or not 1 <= len(key.kid) <= MAX_KID:
        raise ValueError(f"EDHOC credentials are identified by kid: it must be 1..{MAX_KID} bytes")
    if private and key.d is None:
        raise ValueError("the own EDHOC key needs its private part d")
    return key


def ccs_map(key: CoseKey, *, subject: str | None = None) -> dict[int, Any]:
    """The CCS of a public key: ``{2: subject, 8: {1: {1: 2, 2: kid, -1: 1, -2: x, -3: y}}}``;
    alg/key_ops are left out so that both ends derive the same credential."""
    key = _edhoc_key(key, private=False)
    cose_key = {1: int(KeyType.EC2), 2: key.kid, -1: int(Curve.P_256), -2: key.x, -3: key.y}
    ccs: dict[int, Any] = {8: {1: cose_key}}
    if subject is not None:
        ccs[2] = subject
    return ccs


def ccs_bytes(key: CoseKey, *, subject: str | None = None) -> bytes:
    """The credential as lakers takes it (canonical CBOR, as aiocoap encodes own/peer creds)."""
    encoded: bytes = cbor2.dumps(ccs_map(key, subject=subject), canonical=True)
    if len(encoded) > MAX_CCS:
        raise ValueError(f"CCS of {len(encoded)} bytes exceeds lakers' {MAX_CCS}")
    return encoded


def key_from_ccs(ccs: bytes) -> CoseKey:
    """The COSE_Key inside a CCS (checked to be an EDHOC-usable one)."""
    value = cbor2.loads(ccs)
    try:
        cose_key = value[8][1]
    except (TypeError, KeyError, IndexError) as exc:
        raise ValueError("CCS must carry cnf(8) with a COSE_Key(1)") from exc
    return _edhoc_key(CoseKey.from_map(cose_key, "CCS COSE_Key"), private=False)


def private_key_map(key: CoseKey) -> dict[int, Any]:
    """The private key as aiocoap's ``EdhocCredentials(private_key=...)`` wants it."""
    key = _edhoc_key(key, private=True)
    return {1: int(KeyType.EC2), -1: int(Curve.P_256), -4: key.d}


def id_cred_by_kid(kid: bytes) -> bytes:
    """ID_CRED_x for "by-key-id", as lakers returns it (``{4: h'kid'}``, never compacted)."""
    encoded: bytes = cbor2.dumps({4: bytes(kid)})
    return encoded


def kid_of_id_cred(id_cred: bytes) -> bytes | None:
    """The kid an ID_CRED_x names: ``{4: bstr}``, a compact int ``{4: -19}`` / bare ``-19``
    (the one-byte kid h'32', RFC 9528 §3.5.3.2), or the kid inside a by-value ``{14: CCS}``."""
    try:
        item = cbor2.loads(id_cred)
        if isinstance(item, dict):
            item = item[4] if 4 in item else item[14][8][1][2]  # by value: the CCS's own kid
    except Exception:  # untrusted input of any shape: not a kid
        return None
    if isinstance(item, int) and not isinstance(item, bool) and -24 <= item < 24:
        kid: bytes = cbor2.dumps(item)
        return kid
    return item if isinstance(item, bytes) else None


@dataclass(frozen=True, slots=True)
class PeerEntry:
    ccs: bytes
    label: object


class PeerCredentialIndex:
    """A server credentials-map item: kid -> (client CCS, claims label), from tokens' cnf.

    aiocoap asks ``find_edhoc_by_id_cred_peer`` (CCS bytes or None); ``EdhocCredentialsMap``
    asks ``lookup_edhoc_peer`` and gets the label too. ``loader`` (optional, kid -> (CCS,
    label) or None) is asked on a miss; what it returns is checked and kept.
    """

    def __init__(self, loader: Loader | None = None) -> None:
        self._by_kid: dict[bytes, PeerEntry] = {}
        self._loader = loader

    def add(self, key: CoseKey, label: object, *, subject: str | None = None) -> PeerEntry | None:
        """Accept the client key ``key`` (the token's cnf); returns the entry it replaces."""
        ccs = ccs_bytes(key, subject=subject)  # checks the key, kid included
        return self.add_ccs(key.kid or b"", ccs, label)

    def add_ccs(self, kid: bytes, ccs: bytes, label: object) -> PeerEntry | None:
        if key_from_ccs(ccs).kid != kid or len(ccs) > MAX_CCS:
            raise ValueError("CCS must carry the kid it is filed under and fit lakers' limit")
        new = PeerEntry(bytes(ccs), label)
        old = self._by_kid.get(kid)
        self._by_kid[bytes(kid)] = new
        return old if old != new else None

    def remove(self, kid: bytes) -> PeerEntry | None:
        return self._by_kid.pop(bytes(kid), None)

    def labels(self) -> set[object]:
        return {entry.label for entry in self._by_kid.values()}

    def lookup_edhoc_peer(self, id_cred: bytes) -> tuple[bytes, object] | None:
        kid = kid_of_id_cred(id_cred)
        if kid is None:
            return None
        entry = self._by_kid.get(kid) or self._load(kid)
        if entry is None:
            return None
        by_value = cbor2.loads(id_cred)
        if isinstance(by_value, dict) and 14 in by_value and cbor2.dumps(by_value[14], canonical=True) != entry.ccs:
            return None  # a credential sent by value must be the one the token bound
        return entry.ccs, entry.label

    def find_edhoc_by_id_cred_peer(self, id_cred: bytes) -> bytes | None:
        found = self.lookup_edhoc_peer(id_cred)
        return None if found is None else found[0]

    def _load(self, kid: bytes) -> PeerEntry | None:
        if self._loader is None:
            return None
        try:
            loaded = self._loader(kid)
            if loaded is not None:
                self.add_ccs(kid, *loaded)
        except Exception:  # a miss must stay a clean refusal (4.00)
            log.exception("EDHOC credential loader failed for kid h'%s'", kid.hex())
            return None
        return self._by_kid.get(kid)

    def __contains__(self, kid: object) -> bool:
        return kid in self._by_kid

    def __len__(self) -> int:
        return len(self._by_kid)

    def __bool__(self) -> bool:  # an empty index is still an item, not "no credentials"
        return True


class EdhocCredentialsMap(BoundedResponderMap):
    """The RS's server credentials map: bounded responder state (``edhoc_responders``), and a
    ``PeerCredentialIndex`` entry's own label as the authenticated claim. ``gate``: the RS's
    EDHOC token gate (``edhoc_server.TokenGate``), set by its channel installer."""

    gate: Any = None

    def find_edhoc_by_id_cred_peer(self, id_cred_peer: bytes) -> tuple[bytes, list[Any]]:
        """(CRED_I, claims) for aiocoap's responder, KeyError if unknown (it answers 4.00).
        Unlike ``CredentialsMap`` it never accepts unauthenticated (by-value, unknown) peers."""
        for map_key, item in list(self.items()):
            try:
                if hasattr(item, "lookup_edhoc_peer"):
                    found = item.lookup_edhoc_peer(id_cred_peer)
                    if found is not None:
                        return found[0], [found[1]]
                elif hasattr(item, "find_edhoc_by_id_cred_peer"):
                    credential = item.find_edhoc_by_id_cred_peer(id_cred_peer)
                    if credential is not None:
                        return credential, [map_key]
            except Exception:  # anything but KeyError would become a 5.00
                log.exception("EDHOC peer lookup failed for ID_CRED_I h'%s'", id_cred_peer.hex())
        peer_log.log(logging.INFO, "EDHOC: no credential for ID_CRED_I h'%s'", id_cred_peer.hex())
        raise KeyError(id_cred_peer)


def edhoc_origin(host: str, port: int | None) -> str:
    """The origin aiocoap's server computes for a request to host:port (default port left out)."""
    origin: str = "coap://" + hostportjoin(host, None if port in (None, COAP_PORT) else port)
    return origin


def server_identity(key: CoseKey, *, subject: str | None = None) -> EdhocCredentials:
    """The RS's own EDHOC identity (its credential is sent by kid)."""
    return EdhocCredentials(suite=SUITE, method=METHOD, own_cred_style="by-key-id",
                            own_cred={14: ccs_map(key, subject=subject)}, private_key=private_key_map(key))


def install_server_identity(credentials: dict[str, Any], key: CoseKey, origins: Iterable[str], *,
                            subject: str | None = None) -> list[str]:
    """Register the identity under ``origin + "/*"`` for every origin clients may address the RS
    by (one per address and Uri-Host name); returns the map keys."""
    identity = server_identity(key, subject=subject)
    keys = [origin.rstrip("/") + "/*" for origin in origins]
    for map_key in keys:
        credentials[map_key] = identity
    return keys


def client_identity(own: CoseKey, rs_credential: CoseKey | bytes, *, subject: str | None = None
                    ) -> EdhocCredentials:
    """The client's EDHOC credentials: own key (sent by kid) and the RS's credential from rs_cnf
    (a COSE_Key, turned into the CCS the RS uses, or the RS's CCS bytes as given)."""
    rs_ccs = rs_credential if isinstance(rs_credential, bytes) else ccs_bytes(rs_credential)
    key_from_ccs(rs_ccs)
    return EdhocCredentials(suite=SUITE, method=METHOD, own_cred_style="by-key-id",
                            own_cred={14: ccs_map(own, subject=subject)}, private_key=private_key_map(own),
                            peer_cred={14: cbor2.loads(rs_ccs)})


@dataclass(slots=True)
class ClientEdhoc:
    """The client's EDHOC credentials for one RS, with the derived context pinned once known.

    aiocoap 0.4.17 keeps no context from a handshake (every request through ``EdhocCredentials``
    runs EDHOC anew); ``pin`` puts the context of a response in its place, ``reset`` goes back
    to handshaking (e.g. after the RS answered 4.01: it forgot the context).
    """

    context: Any  # aiocoap.Context
    map_key: str
    credentials: EdhocCredentials

    @classmethod
    def install(cls, context: Any, host: str, port: int | None, own: CoseKey, rs_credential: CoseKey | bytes
                ) -> ClientEdhoc:
        session = cls(context, edhoc_origin(host, port) + "/*", client_identity(own, rs_credential))
        session.reset()
        return session

    @property
    def pinned(self) -> bool:
        return isinstance(self.context.client_credentials.get(self.map_key), EdhocInitiatorContext)

    def pin(self, response: aiocoap.Message) -> bool:
        security_context = getattr(response.remote, "security_context", None)
        if not isinstance(security_context, EdhocInitiatorContext):
            return False
        self.context.client_credentials[self.map_key] = security_context
        return True

    def reset(self) -> None:
        self.context.client_credentials[self.map_key] = self.credentials


def _peer_fault(exc: BaseException) -> bool:
    """What aiocoap's and lakers' EDHOC code raise on a malformed message: ValueError/TypeError,
    RuntimeError (lakers: a message_3 for a handshake whose message_1 failed), and pyo3's
    PanicException (lakers on a G_X off the curve; a BaseException aiocoap never catches, so no
    answer went out and the request stayed in aiocoap's table for good)."""
    return isinstance(exc, (ValueError, TypeError, RuntimeError)) or type(exc).__name__ == "PanicException"


class EdhocSafeSite(OscoreSiteWrapper):  # type: ignore[misc]
    """EDHOC messages from unauthenticated peers get 4.00 whatever is wrong with them: aiocoap lets a
    failed message_3 (a key that is not the kid's) or an unparseable message_1 escape as ValueError
    (5.00 with a traceback), and lakers panics on some (no answer); we forget the half-done
    responder context. A message_1 is admitted first: room is made among half-done handshakes
    only (per source and globally), else 5.03 (``EdhocCredentialsMap.admitting``)."""

    async def render_to_pipe(self, pipe: Any) -> None:
        request = pipe.request
        message_1 = is_message_1(request)
        try:
            credentials = self.server_credentials
            if message_1 and isinstance(credentials, EdhocCredentialsMap):
                with credentials.admitting(source_of(request.remote)):
                    await super().render_to_pipe(pipe)
            else:
                await super().render_to_pipe(pipe)
        except BaseException as exc:
            if not _peer_fault(exc) or not (request.opt.uri_path == EDHOC_PATH or request.opt.edhoc):
                raise
            if not message_1:  # message_3: the half-done handshake it names goes
                try:
                    kid = oscore.verify_start(request).get(oscore.COSE_KID)
                except Exception:  # not even an OSCORE option to name one
                    kid = None
                forget_responder_contexts(
                    self.server_credentials, lambda e: not e.complete and e.context.recipient_id == kid)
            peer_log.log(logging.INFO, "EDHOC message refused: %s", exc)
            raise aiocoap.error.BadRequest("EDHOC message refused") from None
