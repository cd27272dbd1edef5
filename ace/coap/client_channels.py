"""How the client runner protects a request with a session: one class per ACE profile, by number.

A session's channel comes from its token's profile (``ace.profiles``); what aiocoap needs to
protect a request with it is this module's: an OSCORE context built from the parameters
(RFC 9203 §4.3), DTLS credentials for the PSK on the RS's coaps port (RFC 9202 §3.3), or the
client's EDHOC credentials for the RS carrying the token in EAD_3, whose derived context is pinned
once a response shows it (draft-ietf-ace-edhoc-oscore-profile-11, ``ace.coap.edhoc_client``). Each
class keeps what it built per RS origin with the session it was built for (``live``): a new session
with the RS builds anew.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from ace.coap import contexts, dtls, edhoc
from ace.coap.edhoc_client import WELL_KNOWN_EDHOC, ClientHandshake, ReverseTokenEdhoc, TokenEdhoc, TokenOffer
from ace.coap.oscore_context import MemoryOscoreContext
from ace.errors import ConfigError
from ace.profiles.dtls import DtlsChannel
from ace.profiles.edhoc import EdhocChannel, client_cred
from ace.profiles.edhoc_presets import preset
from ace.tokens.cnf import KccsCnf
from ace.tokens.oscore_params import OscoreContextParams

if TYPE_CHECKING:
    import aiocoap

    from ace.client.flow import ClientFlow, Session


class ClientHost(Protocol):
    """What the channels use of the client's CoAP side (``ace.coap.client.ClientRunner``)."""

    flow: ClientFlow
    context: Any  # the aiocoap client context

    def secure_uri(self, uri: str) -> str:
        """``uri`` at the RS's DTLS port (coaps)."""
        ...


class Handshake(Protocol):
    """Credentials that run a handshake per request until its context is pinned (EDHOC)."""

    @property
    def pinned(self) -> bool: ...

    def pin(self, response: aiocoap.Message) -> bool: ...

    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Route:
    """How one request goes with a session."""

    step: str  # the exchange as reported ("resource (DTLS)")
    uri: str
    security: Any  # set for the origin in aiocoap's client_credentials (None: ``handshake`` set its own)
    handshake: Handshake | None = None


class ClientChannel(Protocol):
    def route(self, session: Session, uri: str) -> Route:
        """How a request for ``uri`` goes protected by ``session``'s channel."""
        ...

    def forget(self, origin: str) -> None:
        """The session with ``origin`` is gone (its token revoked): never use what it built again."""
        ...

    def close(self) -> None:
        """The runner's CoAP context shuts down."""
        ...


class OscoreClient:
    """RFC 9203: the context from the session's parameters, one per RS origin and session."""

    def __init__(self, runner: ClientHost) -> None:
        self.live: dict[str, tuple[int, MemoryOscoreContext]] = {}

    def route(self, session: Session, uri: str) -> Route:
        return Route("resource (protected)", uri, self._context(session))

    def _context(self, session: Session) -> MemoryOscoreContext:
        known = self.live.get(session.origin)
        if known is not None and known[0] == session.id:
            return known[1]
        if known is not None:  # a new session with this RS: the old context is never used again
            known[1].invalidate()
        assert isinstance(session.context, OscoreContextParams)  # registered for its profile
        ctx = contexts.from_params(session.context, claims=[session.origin])
        self.live[session.origin] = (session.id, ctx)
        return ctx

    def forget(self, origin: str) -> None:
        known = self.live.pop(origin, None)
        if known is not None:
            known[1].invalidate()

    def close(self) -> None:
        pass  # the contexts live in memory, not in the CoAP context


class DtlsClient:
    """RFC 9202: the same request over DTLS with the PSK, to the RS's coaps port."""

    def __init__(self, runner: ClientHost) -> None:
        self.runner = runner

    def route(self, session: Session, uri: str) -> Route:
        assert isinstance(session.context, DtlsChannel)  # registered for its profile
        secure = self.runner.secure_uri(uri)
        try:  # checks the limits: identity ≤ 32 bytes without 0x00, key ≤ 16 bytes
            credentials = dtls.dtls_client_credentials(session.context.key, session.context.identity)
        except ValueError as exc:
            raise ConfigError(f"this DTLS client cannot use that PoP key: {exc}") from None
        return Route("resource (DTLS)", secure, credentials)

    def forget(self, origin: str) -> None:
        pass  # the PSK is the session's; aiocoap's DTLS session pool holds nothing more of it

    def close(self) -> None:
        pass


class EdhocClient:
    """EDHOC (then OSCORE) with the RS, the token in EAD_3 (draft-ietf-ace-edhoc-oscore-profile-11
    §4.3): the client's credentials per RS origin and session, the derived context pinned."""

    def __init__(self, runner: ClientHost) -> None:
        self.runner = runner
        self.live: dict[str, tuple[int, ClientHandshake]] = {}

    def route(self, session: Session, uri: str) -> Route:
        return Route("resource (EDHOC)", uri, None, self._session(session))

    def _session(self, session: Session) -> ClientHandshake:
        known = self.live.get(session.origin)
        if known is not None and known[0] == session.id:
            return known[1]
        parts = urlsplit(session.origin)
        map_key = edhoc.edhoc_origin(parts.hostname or "", parts.port) + "/*"
        flavour = ReverseTokenEdhoc if self.runner.flow.config.edhoc_reverse else TokenEdhoc  # EP §4.4 / §4.3
        client = ClientHandshake(self.runner.context, map_key, flavour(self._offer(session)))
        client.reset()
        self.live[session.origin] = (session.id, client)
        return client

    def _offer(self, session: Session) -> TokenOffer:
        config = self.runner.flow.config
        own, state = config.edhoc_key, session.edhoc
        if own is None or own.d is None or own.kid is None:
            raise ConfigError("the EDHOC profile needs the client's own key with its kid (edhoc_key)")
        if state is None:
            raise ConfigError("this EDHOC session has no edhoc_info or no kccs credentials (a pre-draft-11 AS?)")
        points = preset(config.edhoc_preset)
        cred_i = client_cred(KccsCnf(state.own_credential), points)  # ariel-os: {8: {1: COSE_Key}}
        info = state.info
        if state.uploaded and points.ead_session_id is None:
            raise ConfigError(f"the AS uploaded the token, but EDHOC preset {points.name!r} has no EAD Session ID "
                              f"item to name it (WF §9); ask without token_upload")
        return TokenOffer(
            token=session.token, cred_i=cred_i, cred_r=state.rs_credential, private_key=own.d, kid=own.kid,
            ead_token=points.ead_token,
            ead_cred_by_value=points.ead_cred_by_value if config.edhoc_rs_cred_by_value else None,
            combined=info.comb_req is not False or points.combined_request_only,  # EP §4.5
            uri_path=tuple(info.uri_path.strip("/").split("/")) if info.uri_path else WELL_KNOWN_EDHOC,
            session_id=info.session_id if state.uploaded else None, ead_session_id=points.ead_session_id)

    def forget(self, origin: str) -> None:
        self.live.pop(origin, None)

    def close(self) -> None:
        self.live.clear()


CLIENT_CHANNELS: dict[int, Callable[[ClientHost], ClientChannel]] = {
    OscoreContextParams.profile: OscoreClient, DtlsChannel.profile: DtlsClient, EdhocChannel.profile: EdhocClient,
}
