"""The EDHOC profile's channel installer (draft-ietf-ace-edhoc-oscore-profile-11): see
``ace.coap.rs_channels``. Imported only by an RS that offers the profile.

It is also the ``edhoc_server.TokenGate`` of the RS's EDHOC responder: the access token in EAD_3
goes to the RS core (``accept_edhoc_token``, with the RS's code-point preset), CRED_I is the raw
credential of the token's cnf, and the OSCORE context EDHOC derives carries the binding label as
its authenticated claim; protected resources authorize by it. A channel that goes (token expired,
replaced, revoked) takes every OSCORE context bound to its label along.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from ace.cbor.labels import AceProfile
from ace.coap import edhoc
from ace.coap.edhoc_responders import forget_responder_contexts
from ace.coap.edhoc_reverse import ReverseFlow
from ace.coap.edhoc_server import Admission
from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.rs_host import RsHost
from ace.hints import CreationHints  # a 4.01's hints: at start (ace.messages: on the first token)
from ace.rs.store import Binding

if TYPE_CHECKING:  # the token-checking code loads with the first EDHOC token (issue 14: cold start)
    from ace.profiles.base import Channel
    from ace.profiles.edhoc_presets import EdhocCodePoints
    from ace.rs.edhoc import EdhocAccept

EDHOC_STALE_SECONDS = 60.0  # an EDHOC responder context still incomplete after this is dropped


class EdhocChannels:
    """The RS's own EDHOC identity, the token gate of its responder, and the contexts by label."""

    profile: ClassVar[int] = int(AceProfile.COAP_EDHOC_OSCORE)

    def __init__(self, server: RsHost) -> None:
        self.server = server

    # -- the responder's token gate (``edhoc_server.TokenGate``) ------------------------------------

    @property
    def preset(self) -> EdhocCodePoints:
        return self.server.edhoc_preset

    @property
    def message_4(self) -> bool:
        return self.server.edhoc_message_4

    @property
    def reverse_flow(self) -> bool:
        return self.server.edhoc_reverse

    def admit(self, token: bytes, id_cred_i: bytes) -> Admission:
        accepted = self.server.core.accept_edhoc_token(token, id_cred_i, self.preset)
        return Admission(accepted.cred_raw, accepted.label, accepted)

    def admit_session(self, session_id: bytes, id_cred_i: bytes) -> Admission:
        accepted = self.server.core.accept_session_id(session_id, id_cred_i)
        return Admission(accepted.cred_raw, accepted.label, accepted)

    def bound(self, admission: Admission) -> None:
        """EDHOC verified: the binding is stored (an uploaded one already is) and what it replaced goes."""
        accepted = cast("EdhocAccept", admission.handle)
        if not accepted.token:  # WF §9: named by session_id, stored at upload
            self.server.install(accepted.binding, [])
            return
        outcome = self.server.core.commit_edhoc(accepted)
        self.server.install(outcome.binding, outcome.dropped)

    def hints(self) -> bytes | None:
        """EP §4.13: the AS only (no audience; no scope)."""
        as_uri = self.server.core.config.as_uri
        return CreationHints(as_uri=as_uri).encode() if as_uri else None

    # -- the channel installer ----------------------------------------------------------------------

    def install(self, binding: Binding) -> None:
        pass  # the OSCORE context comes from EDHOC, bound to the label when message_3 verified

    def uninstall(self, label: bytes, channel: Channel) -> None:
        self.server.credentials.forget_label(label)
        ReverseFlow(self.server.credentials).forget_label(label)

    def reconcile(self, live: set[bytes]) -> int:
        credentials = self.server.credentials

        def dead(claims: Any) -> bool:
            return not any(isinstance(c, bytes) and c in live for c in claims)

        gone = forget_responder_contexts(credentials, lambda e: e.complete and dead(e.claims))
        gone += ReverseFlow(credentials).forget(lambda c: isinstance(c, MemoryOscoreContext)
                                                and dead(c.authenticated_claims))
        credentials.forget_stale(EDHOC_STALE_SECONDS)  # handshakes never completed
        ReverseFlow(credentials).forget_stale()
        return gone

    def start(self, offered: bool) -> None:
        server, credentials = self.server, self.server.credentials
        credentials.gate = self
        if offered and server.edhoc_key is not None:
            edhoc.install_server_identity(credentials, server.edhoc_key, [edhoc.edhoc_origin(*server.bind)])
            # one identifier space: OSCORE recipient ids never collide with a live EDHOC C_R
            core = server.core
            credentials.share_ids(core.ids, live=lambda label: isinstance(label, bytes)
                                  and core.bindings.get(label) is not None)

    async def serve(self, site: Any) -> Any:
        return None  # EDHOC and the OSCORE it derives run on the plain CoAP transport
