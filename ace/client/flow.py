"""The client's flow (RFC 9200 §4, RFC 9203 §4) as a state machine: events in, actions out.

``ClientFlow.start(request)`` returns the first action; each CoAP response goes back in
through ``on_response`` and yields the next action, until ``Done`` or ``Failed``:
resource request → 4.01 with AS Request Creation Hints (RFC 9200 §5.3) → POST /token →
POST /authz-info and a channel from its answer, as the token's profile says (``ace.profiles``:
for OSCORE, N1 and our Recipient ID, RFC 9203 §4.1, then the context, §4.3) → the resource
again, protected. With the EDHOC profile (draft -11) the token rides in EDHOC's EAD_3 instead (no
POST /authz-info; the session carries edhoc_info and the credentials), and ``update`` asks for new
rights on a live session (its session_id, then the token POSTed over its OSCORE context, §4.6).
With ``token_upload`` the AS POSTs the token to the RS itself (WF §3.1); EDHOC then names it by the
EAD item Session ID instead of carrying it (WF §9).
A valid session is reused; a 4.01 on a protected
request drops it and gets a new token once. Optional response parameters (ace_profile,
expires_in) are not required (ace-java omits them).

Hints are unauthenticated (RFC 9200 §6.4, §6.9). The AS is the configured one; the audience
asked for an RS origin is, in this order: configured for that origin (``audiences``), the one
configured ``audience``, the origin's pin (``ace.client.pins``), or, trust on first use when
allowed, the first hints' audience, pinned once the RS answered a protected request. Hints
naming another audience than the one configured for the origin or pinned (or taken, not yet
confirmed) are refused (``Failed`` at step "hints") before any token request; with a single
``audience`` configured the hints' audience is ignored. A configured scope is asked for as it
is (never widened); the hints' scope only when none is configured.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable

from ace.cbor.labels import ContentFormat
from ace.client import reasons
from ace.client.model import (
    Action,
    ClientConfig,
    Done,
    EdhocSession,
    Failed,
    ResourceRequest,
    Response,
    SendAuthzInfo,
    SendResource,
    SendTokenRequest,
    Session,
    State,
)
from ace.client.pins import MAX_PINS, AudiencePins, MemoryPins, normalize_origin
from ace.errors import AceError, DecodeError
from ace.messages import AccessTokenRequest, AccessTokenResponse, CreationHints, ErrorResponse
from ace.profiles import PROFILES, Channel, edhoc, of_channel, oscore
from ace.profiles.base import ClientProfile, PendingChannel
from ace.profiles.ids import RecipientIdPool
from ace.tokens.cnf import KccsCnf
from ace.tokens.edhoc_info import EdhocInfo
from ace.tokens.hashing import token_hash as trl_hash

log = logging.getLogger(__name__)
Clock = Callable[[], float]
Rng = Callable[[int], bytes]


class ClientFlow:
    """One client, any number of RSs; one request in flight at a time."""

    def __init__(self, config: ClientConfig, *, clock: Clock, rng: Rng = secrets.token_bytes,
                 pins: AudiencePins | None = None) -> None:
        self.config, self.clock, self.rng = config, clock, rng
        self.pins: AudiencePins = pins if pins is not None else MemoryPins()
        self._configured = {normalize_origin(o): aud for o, aud in config.audiences.items()}
        self._unconfirmed: dict[str, str] = {}  # origin -> audience from its first hints, not pinned yet
        self._asked: tuple[str, bool] | None = None  # the token request's audience; from first hints?
        self._as_uri = ""  # where the token request went (for messages)
        self.sessions: dict[str, Session] = {}
        self._ids = RecipientIdPool(rng)
        self._next_session = 1
        self._request: ResourceRequest | None = None
        self._state = State.IDLE
        self._retried = False
        self._pending: tuple[AccessTokenResponse, PendingChannel] | None = None  # awaiting /authz-info's answer
        self._handlers = {State.PROBE: self._after_probe, State.TOKEN: self._after_token,
                          State.AUTHZ_INFO: self._after_authz, State.PROTECTED: self._after_protected,
                          State.UPDATE: self._after_update_token, State.UPDATE_AUTHZ: self._after_update_authz}
        self._update: AccessTokenResponse | None = None  # the new token, awaiting the RS's answer
        self._update_scope: str | bytes | None = None  # the scope an update asked for
        self._sent_cnf: bytes | None = None  # the raw credential our last req_cnf carried (EDHOC: CRED_I)
        self._hints: dict[str, CreationHints] = {}  # the last hints each RS gave (a 4.01 from OSCORE has none)

    # -- entry points -----------------------------------------------------------------

    def start(self, request: ResourceRequest) -> Action:
        self._request, self._retried = request, False
        session = self.valid_session(request.origin)
        self._state = State.PROTECTED if session else State.PROBE
        return SendResource(request, session)

    def on_response(self, response: Response) -> Action:
        handler = self._handlers.get(self._state)
        if handler is None:
            raise RuntimeError(f"no request in flight (state {self._state.value})")
        try:
            return handler(response)
        except AceError as exc:
            return self._fail(self._state.value, str(exc), response)

    def update(self, origin: str, scope: str | bytes) -> Action:
        """Ask for ``scope`` on the live EDHOC session with ``origin``: a token request naming its
        session_id and no req_cnf (EP §3.1), then the token POSTed to /authz-info over the session's
        OSCORE context (EP §4.6.1); the session keeps its context and carries the new token."""
        session = self.valid_session(origin)
        if session is None or session.session_id is None:
            return self._fail("update", f"no EDHOC session with {origin} whose access rights could be updated")
        self._request, self._retried = ResourceRequest(method="POST", uri=origin), False
        request = AccessTokenRequest(client_id=self.config.client_id, audience=session.audience, scope=scope,
                                     edhoc_info=EdhocInfo(session_id=session.session_id))
        self._as_uri, self._update_scope = self.config.as_uri or "", scope
        if not self._as_uri:
            return self._fail("update", "no AS configured (as_uri) to ask for the update")
        self._state = State.UPDATE
        return SendTokenRequest(self._as_uri, request.encode())

    def _after_update_token(self, response: Response) -> Action:
        assert self._request is not None
        if not response.success:
            err = _error_map(response)
            return self._fail("update", _as_refused(self._as_uri, response, err), response, err)
        token_response = AccessTokenResponse.decode(response.payload)
        session = self.sessions.get(self._request.origin)
        if session is None:
            return self._fail("update", f"the session with {self._request.origin} ended during the update")
        self._update = token_response
        self._state = State.UPDATE_AUTHZ  # EP §4.6.1: application/cwt, the token bytes, protected
        return SendAuthzInfo(self._request.origin + self.config.authz_info_path, token_response.access_token,
                             ContentFormat.CWT, session)

    def _after_update_authz(self, response: Response) -> Action:
        assert self._request is not None and self._update is not None
        token_response, self._update = self._update, None
        session = self.sessions.get(self._request.origin)
        if response.code != (2, 1) or session is None:  # EP §4.6.2: 4.01 on failure
            return self._fail("update", _rs_refused(self._request.origin, self.config.authz_info_path, response),
                              response)
        # RFC 9200 §5.8.2: no scope in the response is the scope asked for
        session.token, session.scope = token_response.access_token, token_response.scope or self._update_scope
        if token_response.expires_in is not None:
            session.expires_at = self.clock() + token_response.expires_in
        return self._done(response, session)

    def abort(self, step: str, error: str) -> Failed:
        """The runner could not perform the last action (EDHOC failed on our side): the session
        with the RS goes, and the flow fails at ``step``."""
        if self._request is not None:
            self.drop_session(self._request.origin)
        failed = self._fail(step, error)
        assert isinstance(failed, Failed)
        return failed

    def valid_session(self, origin: str) -> Session | None:
        session = self.sessions.get(origin)
        if session is not None and session.expires_at is not None and self.clock() >= session.expires_at:
            self.drop_session(origin)
            return None
        return session

    def drop_revoked(self, hashes: Iterable[bytes]) -> list[str]:
        """RFC 9770 §11.2: drop the sessions whose token the AS lists as revoked; returns their origins."""
        revoked = set(hashes)
        gone = [o for o, s in self.sessions.items() if (trl_hash(s.token) if s.token else s.token_hash) in revoked]
        for origin in gone:
            self.drop_session(origin)
        return gone

    def drop_session(self, origin: str) -> None:
        session = self.sessions.pop(origin, None)
        if session is not None:
            of_channel(session.context).release(session.context, self._ids)

    # -- steps --------------------------------------------------------------------------

    def _after_probe(self, response: Response) -> Action:
        if response.code != (4, 1):
            return self._done(response, None)
        hints = None
        if response.content_format == ContentFormat.ACE_CBOR and response.payload:
            hints = CreationHints.decode(response.payload)  # RFC 9200 §5.3
        return self._token_request(hints)

    def _token_request(self, hints: CreationHints | None) -> Action:
        assert self._request is not None
        origin = normalize_origin(self._request.origin)
        audience, source = self._audience_for(origin)
        if hints is not None:
            if (hints.audience is not None and audience is not None and hints.audience != audience
                    and source != "configured"):  # RFC 9200 §6.9: the hints' audience is not a trusted value
                return self._fail("hints", f"creation hints from {origin} name audience {hints.audience!r}, but "
                                           f"its audience is {audience!r} ({source}); not asking the AS for it")
            self._hints[origin] = hints
        else:
            hints = self._hints.get(origin)
        c = self.config
        # Hints are unauthenticated (RFC 9200 §5.3): a configured AS is never overridden by them, or a
        # forged 4.01 could send our token request (and take our keys) elsewhere
        as_uri = c.as_uri or (hints.as_uri if hints else None)
        if audience is None and hints is not None and hints.audience is not None:
            if not c.trust_first_hints:  # RFC 9200 §6.4: the client determines which audience an RS has
                return self._fail("hints", f"no audience configured for {origin} and trust_first_hints is off: "
                                           f"not taking {hints.audience!r} from unauthenticated creation hints")
            audience, source = hints.audience, "first hints"
        if as_uri is None or audience is None:
            return self._fail("probe", "no AS or audience known (no creation hints, none configured)")
        self._asked, self._as_uri = (audience, source == "first hints"), as_uri
        asked = PROFILES.get(c.profile) if c.profile is not None else None
        req_cnf = asked.req_cnf(c.edhoc_key) if asked is not None else None  # EDHOC: our credential
        self._sent_cnf = req_cnf.cred if isinstance(req_cnf, KccsCnf) else None  # CRED_I (EP §3.3.1)
        request = AccessTokenRequest(
            client_id=c.client_id, audience=audience, scope=c.scope or (hints.scope if hints else None),
            cnonce=hints.cnonce if hints else None, ask_ace_profile=c.ask_profile, ace_profile=c.profile,
            req_cnf=req_cnf, token_upload=c.token_upload,
        )
        self._state = State.TOKEN
        return SendTokenRequest(as_uri, request.encode())

    def _audience_for(self, origin: str) -> tuple[str | None, str]:
        """The audience this origin is known to have, and how it is known."""
        if origin in self._configured:
            return self._configured[origin], "configured for this origin"
        if self.config.audience:
            return self.config.audience, "configured"
        pinned = self.pins.get(origin)
        if pinned is not None:
            return pinned, "pinned on first use"
        unconfirmed = self._unconfirmed.get(origin)
        if unconfirmed is not None:
            return unconfirmed, "taken from its first hints"
        return None, ""

    def _after_token(self, response: Response) -> Action:
        if not response.success:
            err = _error_map(response)
            return self._fail("token", _as_refused(self._as_uri, response, err), response, err)
        token_response = AccessTokenResponse.decode(response.payload)
        assert self._request is not None
        # what follows the token is the profile's: the POST /authz-info, then a channel from the answer
        profile = _profile_of(token_response)
        if profile is edhoc.PROFILE:  # EP-11 §4.3: the token rides in EDHOC's EAD_3, no POST /authz-info
            return self._open(token_response, edhoc.rs_channel(token_response))
        if token_response.token_upload == 0:  # WF §9 names an uploaded token only for the EDHOC profile
            return self._fail("token", f"AS at {self._as_uri} uploaded the token to the RS, but this client can "
                                       f"name an uploaded token only in the EDHOC profile; drop token_upload")
        step = profile.authz_info(token_response, ids=self._ids, rng=self.rng)
        self._pending = (token_response, step.pending)
        self._state = State.AUTHZ_INFO
        return SendAuthzInfo(self._request.origin + self.config.authz_info_path, step.payload, step.content_format)

    def _after_authz(self, response: Response) -> Action:
        assert self._pending is not None and self._request is not None
        token_response, pending = self._pending
        self._pending = None
        if response.code != (2, 1):
            pending.abandon()
            return self._fail("authz-info", _rs_refused(self._request.origin, self.config.authz_info_path, response),
                              response)
        return self._open(token_response, pending.established(response.payload))

    def _open(self, token_response: AccessTokenResponse, context: Channel) -> Action:
        """A session with the RS from the token and its channel; the resource request goes over it."""
        assert self._request is not None
        self.drop_session(self._request.origin)
        expires = self.clock() + token_response.expires_in if token_response.expires_in is not None else None
        audience, first_hints = self._asked or (None, False)
        session = Session(origin=self._request.origin, token=token_response.access_token, context=context,
                          expires_at=expires, scope=token_response.scope or self.config.scope,
                          id=self._next_session, audience=audience, edhoc=self._edhoc(token_response),
                          token_hash=token_response.token_hash)
        self._next_session += 1
        if first_hints and audience is not None:  # trust on first use: pinned once the RS proves it (below)
            self._remember_unconfirmed(normalize_origin(session.origin), audience)
        self.sessions[session.origin] = session
        self._state = State.PROTECTED
        return SendResource(self._request, session)

    def _edhoc(self, response: AccessTokenResponse) -> EdhocSession | None:
        """EP-11 §3.3: edhoc_info (session_id) and rs_cnf (AUTH_CRED_RS) of a first token, with the
        credential our req_cnf carried, and whether the AS uploaded the token (WF §3.1: then EDHOC
        names it by EAD Session ID, WF §9); None for another profile."""
        if response.edhoc_info is None or self._sent_cnf is None or not isinstance(response.rs_cnf, KccsCnf):
            return None
        return EdhocSession(info=response.edhoc_info, own_credential=self._sent_cnf,
                            rs_credential=response.rs_cnf.cred, uploaded=response.token_upload == 0)

    def _after_protected(self, response: Response) -> Action:
        assert self._request is not None
        if response.code == (4, 0) and response.content_format == reasons.EDHOC_CBOR_SEQ:  # RFC 9528 §6
            self.drop_session(self._request.origin)  # EP §4.3.3: the RS refused the token in EAD_3
            return self._fail("edhoc", f"RS at {self._request.origin} refused the EDHOC handshake: "
                                       f"{reasons.edhoc_error_text(response.payload)}", response)
        if response.code == (4, 1) and not self._retried:  # context gone at the RS, or token expired
            self._retried = True
            self.drop_session(self._request.origin)
            hints = None
            if response.content_format == ContentFormat.ACE_CBOR and response.payload:
                hints = CreationHints.decode(response.payload)
            return self._token_request(hints)
        session = self.sessions.get(self._request.origin)
        if response.success and session is not None:
            self._confirm(session)
        return self._done(response, session)

    def _remember_unconfirmed(self, origin: str, audience: str) -> None:
        self._unconfirmed.pop(origin, None)
        if len(self._unconfirmed) >= MAX_PINS:  # bounded: forget the oldest
            self._unconfirmed.pop(next(iter(self._unconfirmed)))
        self._unconfirmed[origin] = audience

    def _confirm(self, session: Session) -> None:
        """A success over the session's protected channel: the RS could use the token, so it holds the
        key of the token's audience; an audience taken from first hints is pinned for the origin."""
        origin = normalize_origin(session.origin)
        audience = self._unconfirmed.get(origin)
        if audience is None or audience != session.audience:
            return
        try:
            self.pins.pin(origin, audience)
        except AceError as exc:  # still held (unconfirmed) for this process; the answer stands
            log.warning("audience %r for %s not pinned: %s", audience, origin, exc)
            return
        del self._unconfirmed[origin]

    def _done(self, response: Response, session: Session | None) -> Action:
        self._state = State.IDLE
        return Done(response, session)

    def _fail(self, step: str, error: str, response: Response | None = None,
              error_response: ErrorResponse | None = None) -> Action:
        self._state, self._pending = State.IDLE, None
        return Failed(step, error, response, error_response)


def _as_refused(as_uri: str, response: Response, err: ErrorResponse | None) -> str:
    """Why there is no token, in words (RFC 9200 §5.8.3 error names, CoAP codes by name)."""
    if response.local is not None:
        return f"AS at {as_uri} {response.local}"
    if err is None:
        return f"AS at {as_uri} refused the token request: {reasons.answer_text(response.code, response.payload, None)}"
    todo = reasons.advice(int(err.error))
    return (f"AS at {as_uri} refused the token request: {reasons.code_text(response.code)}, "
            f"{reasons.error_text(err)}" + (f": {todo}" if todo else ""))


def _rs_refused(origin: str, path: str, response: Response) -> str:
    if response.local is not None:
        return f"RS at {origin} {response.local}"
    answer = reasons.answer_text(response.code, response.payload, response.content_format)
    return f"RS at {origin} refused the token (POST {path}): {answer}"


def _error_map(response: Response) -> ErrorResponse | None:
    return reasons.error_of(response.payload, response.content_format)  # the error map or problem details


def _profile_of(response: AccessTokenResponse) -> ClientProfile:
    """The profile the AS chose; absent (RFC 9200 §5.8.2: the client knows), it follows from cnf
    (RFC 9203's when nothing else does)."""
    number = response.ace_profile
    if number is None:
        profile: ClientProfile | None = next((p for p in PROFILES.values() if p.implied_by(response)), oscore.PROFILE)
    else:
        profile = PROFILES.get(number)
    if profile is not None and profile.fits(response):
        return profile
    shown = number if number is not None or profile is None else profile.number
    raise DecodeError(f"token response: profile {shown} with a cnf this client cannot use")


__all__ = ["Action", "ClientConfig", "ClientFlow", "Done", "Failed", "ResourceRequest", "Response",
           "SendAuthzInfo", "SendResource", "SendTokenRequest", "Session", "State"]
