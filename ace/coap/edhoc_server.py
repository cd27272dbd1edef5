"""The RS's EDHOC responder for draft-ietf-ace-edhoc-oscore-profile-11, on aiocoap 0.4.17 + lakers.

aiocoap runs EDHOC over CoAP and keeps the derived OSCORE context, but hands no EAD item to us:
``AceEdhocSite`` replaces its message_1 step (EAD_1 Credential By Value and Request Creation
Hints honoured, EP §4.13-§4.14) and expands Uri-Path-Abbrev 2 (EP §4.2); ``AceEdhocResponderContext``
replaces its message_3 step: the access token in EAD_3 (EP §4.3.3) goes to the RS core through a
``TokenGate`` (the RS's EDHOC channel installer), which names CRED_I (the token's cnf, raw) and
the binding label the OSCORE context then carries as its authenticated claim. A refusal is an
EDHOC error message (RFC 9528 §6; CoAP 4.00, application/edhoc+cbor-seq). The hooks are
aiocoap's private ``_process_edhoc_msg12``/``_process_edhoc_msg34``/``_offer_message_3``/
``_make_ready`` (pinned to aiocoap 0.4.17 by tests/coap/test_edhoc_server.py).
"""

from __future__ import annotations

import io
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import aiocoap
import aiocoap.error
import cbor2
import lakers  # type: ignore[import-untyped]
from aiocoap.edhoc import EdhocResponderContext
from aiocoap.numbers import uri_path_abbrev

from ace.coap import edhoc_reverse
from ace.coap.edhoc import EdhocSafeSite
from ace.coap.edhoc_ead import ABBREV_EDHOC, EDHOC_CBOR_SEQ, EdhocError, bind, token_of
from ace.coap.edhoc_responders import EDHOC_PATH, forget_responder_contexts, free_ids, responder_contexts
from ace.coap.ratelog import RateLimitedLog
from ace.errors import RemoteError
from ace.profiles.edhoc_presets import EdhocCodePoints

log = logging.getLogger(__name__)
peer_log = RateLimitedLog(log)  # lines unauthenticated peers drive
choose_id = secrets.choice  # C_R (and the reverse flow's C_I) at random among the free ids

@dataclass(frozen=True, slots=True)
class Admission:
    """What the RS core made of a token in EAD_3: CRED_I (the token's cnf bytes, verbatim) and the
    binding label the OSCORE context is bound to; ``handle`` is the gate's own (its binding)."""

    cred_i: bytes
    label: bytes
    handle: Any = None


class TokenGate(Protocol):
    """The RS side behind the responder (``rs_channels_edhoc.EdhocChannels``)."""

    @property
    def preset(self) -> EdhocCodePoints: ...

    @property
    def message_4(self) -> bool: ...  # edhoc_info message_4: send it (EP §3.4)

    @property
    def reverse_flow(self) -> bool: ...  # the RS takes the reverse message flow (EP §4.4)

    def admit(self, token: bytes, id_cred_i: bytes) -> Admission:
        """Validate the token and check ID_CRED_I names its cnf (EP §4.2); TokenRefused if not."""
        ...

    def admit_session(self, session_id: bytes, id_cred_i: bytes) -> Admission:
        """The token uploaded earlier by the AS, named by EAD Session ID (WF §9); TokenRefused if none."""
        ...

    def bound(self, admission: Admission) -> None:
        """EDHOC completed with CRED_I: install the binding's channel (drop what it replaces)."""
        ...

    def hints(self) -> bytes | None:
        """The Request Creation Hints map for EAD_2 (no audience, EP §4.13), or None."""
        ...


def _gate_of(credentials: Any) -> TokenGate:
    gate: TokenGate | None = getattr(credentials, "gate", None)
    if gate is None:
        raise aiocoap.error.InternalServerError("EDHOC is not set up on this RS")
    return gate


def _items(ead: Any) -> list[Any]:
    return list(ead or [])


class AceEdhocResponderContext(EdhocResponderContext):  # type: ignore[misc]
    """aiocoap's responder context, taking the access token from EAD_3 (EP §4.3.3)."""

    def __init__(self, responder: Any, c_i: bytes, c_r: bytes, server_credentials: Any, logger: Any,
                 gate: TokenGate) -> None:
        super().__init__(responder, c_i, c_r, server_credentials, logger)
        self._gate = gate
        self.source: Any = None  # the transport remote message_1 came from

    def _offer_message_3(self, message_3: bytes) -> bytes | None:
        if not self._incomplete:
            message_4: bytes | None = self._message_4
            return message_4
        id_cred_i, ead_3 = self._responder.parse_message_3(message_3)
        kind, value = token_of(_items(ead_3), self._gate.preset)
        try:
            if kind == "token":
                admission = self._gate.admit(value, bytes(id_cred_i))
            else:
                admission = self._gate.admit_session(value, bytes(id_cred_i))
        except RemoteError as exc:  # EP §4.3.3: ERR_CODE 1, then abort
            peer_log.log(logging.INFO, "EDHOC: access token in EAD_3 refused: %s", exc)
            raise EdhocError("access token refused") from None
        try:
            self._responder.verify_message_3(admission.cred_i)
        except BaseException as exc:  # lakers: ValueError, or a PanicException
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            peer_log.log(logging.INFO, "EDHOC: message_3 does not verify with the token's credential: %s", exc)
            raise EdhocError("message_3 verification failed") from None
        self._complete(admission)
        return self._message_4

    def _complete(self, admission: Admission) -> None:
        """EP §4.2: a previous session with the same binding, and its OSCORE context, goes, once the
        new binding is stored (a store that refuses it keeps the old session)."""
        bind(self._gate, admission)
        forget_responder_contexts(self._server_credentials,
                                  lambda e: e.context is not self and admission.label in e.claims)
        self.authenticated_claims.append(admission.label)
        if self._gate.message_4:
            self._message_4 = bytes(self._responder.prepare_message_4())
        else:
            self._responder.completed_without_message_4()
        self._make_ready(self._responder, self.recipient_id, self.sender_id)
        self._incomplete = False


def _abbreviated(request: aiocoap.Message) -> None:
    """Uri-Path-Abbrev (draft-ietf-core-uri-path-abbrev): 2 becomes /.well-known/edhoc (EP §4.2);
    with Uri-Path, or a value nobody knows, 4.02."""
    value = request.opt.uri_path_abbrev
    if value is None:
        return
    if request.opt.uri_path or value not in uri_path_abbrev._map:
        raise aiocoap.error.BadOption()
    if value == ABBREV_EDHOC:
        request.opt.uri_path_abbrev = None
        request.opt.uri_path = EDHOC_PATH


class AceEdhocSite(EdhocSafeSite):
    """The RS's OSCORE/EDHOC site for the EDHOC profile (server credentials carry the ``gate``)."""

    async def render_to_pipe(self, pipe: Any) -> None:
        _abbreviated(pipe.request)
        if self._from_elsewhere(pipe.request):  # answered as for an unknown C_R, the handshake untouched
            if pipe.request.opt.edhoc:
                raise aiocoap.error.Unauthorized("Security context not found")
            raise aiocoap.error.BadRequest()
        try:
            await super().render_to_pipe(pipe)
        except EdhocError:
            self._forget_half_done(pipe.request)
            raise

    def _forget_half_done(self, request: aiocoap.Message) -> None:
        from aiocoap import oscore

        try:
            kid = oscore.verify_start(request).get(oscore.COSE_KID) if request.opt.edhoc else _c_r_of(request)
        except Exception:  # no C_R to name one
            return
        forget_responder_contexts(self.server_credentials, lambda e: not e.complete and e.context.recipient_id == kid)

    def _from_elsewhere(self, request: aiocoap.Message) -> bool:
        """A message_3 naming a half-done handshake whose message_1 came from another source."""
        from aiocoap import oscore

        if not request.opt.edhoc and (request.opt.uri_path != EDHOC_PATH or not request.payload
                                      or request.payload[:1] == b"\xf5"):
            return False
        try:
            kid = oscore.verify_start(request).get(oscore.COSE_KID) if request.opt.edhoc else _c_r_of(request)
        except Exception:  # no C_R to name one
            return False
        return any(isinstance(e.context, AceEdhocResponderContext) and not e.complete
                   and e.context.recipient_id == kid and e.context.source != request.remote
                   for e in responder_contexts(self.server_credentials))

    async def _render_edhoc_to_pipe(self, pipe: Any) -> None:
        """The reverse flow (EP §4.4: an empty POST, or ``C_I || message_2/4`` of a handshake the RS
        initiated) here; everything else as aiocoap does it."""
        request = pipe.request
        reverse = self._reverse()
        if request.code != aiocoap.POST or reverse is None:
            await super()._render_edhoc_to_pipe(pipe)
            return
        if not request.payload:
            answer = reverse.trigger(request.remote)
        else:
            try:
                c_i, message = edhoc_reverse.split_connection_id(request.payload)
            except (ValueError, cbor2.CBORDecodeError):
                c_i, message = b"", b""
            pending = reverse.pending(c_i, request.remote)
            if pending is None:
                await super()._render_edhoc_to_pipe(pipe)
                return
            try:
                if pending.c_r is None:
                    answer = reverse.message_2(pending, message, self._identity(request))
                else:
                    reverse.message_4(pending, message, _gate_of(self.server_credentials))
                    answer = b""
            except BaseException:  # a failed handshake is forgotten (the base class renders the error)
                reverse.forget(lambda p: p is pending)
                raise
        response = aiocoap.Message(code=aiocoap.CHANGED, payload=answer)
        if answer:
            response.opt.content_format = EDHOC_CBOR_SEQ
        pipe.add_response(response, is_last=True)

    def _reverse(self) -> edhoc_reverse.ReverseFlow | None:
        gate = getattr(self.server_credentials, "gate", None)
        if gate is None or not gate.reverse_flow:
            return None
        return edhoc_reverse.ReverseFlow(self.server_credentials)

    def _identity(self, request: aiocoap.Message) -> Any:
        identity = self._get_edhoc_identity(request.get_request_uri().removesuffix("/.well-known/edhoc"))
        if identity is None:
            raise aiocoap.error.NotFound()
        return identity

    def _process_edhoc_msg12(self, pipe: Any) -> None:
        """aiocoap 0.4.17's, with EAD_1 (Credential By Value, RCH) and our responder context."""
        request = pipe.request
        identity = self._identity(request)
        gate = _gate_of(self.server_credentials)
        responder = lakers.EdhocResponder(r=identity.own_key.d,
                                          cred_r=cbor2.dumps(identity.own_cred[14], canonical=True))
        c_i, ead_1 = responder.process_message_1(request.payload[1:])
        style, ead_2 = self._answer_ead_1(_items(ead_1), gate, identity.own_cred_style.as_lakers())
        c_r = self._pick_c_r(bytes(c_i))
        message_2 = responder.prepare_message_2(style, c_r, ead_2)
        context = AceEdhocResponderContext(responder, bytes(c_i), c_r, self.server_credentials, self.log, gate)
        context.source = request.remote
        self.server_credentials[":" + uuid.uuid4().hex] = context
        pipe.add_response(aiocoap.Message(code=aiocoap.CHANGED, payload=bytes(message_2)), is_last=True)

    @staticmethod
    def _answer_ead_1(ead_1: list[Any], gate: TokenGate, style: Any) -> tuple[Any, list[Any]]:
        preset, ead_2 = gate.preset, []
        for item in ead_1:
            if item.label() == preset.ead_cred_by_value:  # EP §4.14: ID_CRED_R by value
                style = lakers.CredentialTransfer.ByValue
            elif preset.ead_rch is not None and item.label() == preset.ead_rch:  # EP §4.13
                hints = gate.hints()
                if hints is not None:
                    ead_2.append(lakers.EADItem(preset.ead_rch, False, hints))
            elif item.is_critical():  # RFC 9528 §3.8
                raise EdhocError("unsupported critical EAD_1 item")
        return style, ead_2

    def _pick_c_r(self, c_i: bytes) -> bytes:
        free = free_ids(self.server_credentials, c_i)
        if not free:
            raise aiocoap.error.InternalServerError("Too many contexts")
        return choose_id(free)

    def _process_edhoc_msg34(self, pipe: Any) -> None:
        """aiocoap 0.4.17's stand-alone message_3, answered with message_4 or an empty 2.04."""
        if _gate_of(self.server_credentials).preset.combined_request_only:
            raise aiocoap.error.BadRequest("message_3 only in the EDHOC + OSCORE request")
        request = pipe.request
        try:
            c_r, message_3 = _split_c_r(request)
            context = self.server_credentials.find_oscore({4: c_r})
        except (ValueError, KeyError, cbor2.CBORDecodeError):
            raise aiocoap.error.BadRequest() from None
        if not isinstance(context, AceEdhocResponderContext):
            raise aiocoap.error.BadRequest()
        message_4 = context._offer_message_3(message_3)
        pipe.add_response(aiocoap.Message(code=aiocoap.CHANGED, payload=message_4 or b""), is_last=True)


def _split_c_r(request: aiocoap.Message) -> tuple[bytes, bytes]:
    """(C_R, message_3) of a stand-alone message_3 (C_R a one-byte int or a bstr, RFC 9528 §3.3.2)."""
    stream = io.BytesIO(request.payload)
    value = cbor2.load(stream)
    rest = bytes(request.payload[stream.tell():])
    if isinstance(value, int) and not isinstance(value, bool) and -24 <= value < 24:
        return bytes(request.payload[:1]), rest
    if isinstance(value, bytes):
        return value, rest
    raise ValueError("message_3 without a connection identifier")


def _c_r_of(request: aiocoap.Message) -> bytes:
    return _split_c_r(request)[0]
