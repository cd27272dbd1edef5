"""The client as EDHOC Initiator with the access token in EAD_3 (draft-ietf-ace-edhoc-oscore-profile-11 §4.3).

aiocoap 0.4.17's ``EdhocCredentials.establish_context`` sends EAD_1 [Credential By Value] and builds
an ``EdhocInitiatorContext`` whose message_3 carries no EAD; ``TokenEdhoc`` is that method again
(lakers-python 0.6.2 underneath) with what the profile adds: the token as one critical EAD_3 item
with the preset's label (§4.1), or, for a token the AS uploaded to the RS, the EAD item Session ID
naming it by session_id (draft-ietf-ace-workflow-and-params-08 §9), Credential By Value in EAD_1
only when the client wants ID_CRED_R by value (§4.14), Request Creation Hints read from EAD_2
(§4.13), CRED_I the CCS bytes exactly as sent in req_cnf (§3.3.1) and CRED_R the RS's from rs_cnf
(§4.3.2). message_3 rides in the combined EDHOC+OSCORE request (RFC 9668) unless edhoc_info's
comb_req is false (§4.5). An EDHOC error from the RS (RFC 9528 §6, App. A.2: 4.00 with
Content-Format application/edhoc+cbor-seq) reaches the caller as ``NotAProtectedMessage`` with the
RS's answer as ``plain_message``, as aiocoap reports it for the combined request; a local failure
(lakers refusing message_2, MAC_2 not verifying) as ``EdhocFailed``. ``ReverseTokenEdhoc`` runs the
reverse message flow (§4.4) instead: the client as Responder, the token in EAD_4.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import cbor2
import lakers  # type: ignore[import-untyped]
from aiocoap import error, oscore
from aiocoap.edhoc import EdhocCredentials, EdhocInitiatorContext

from ace.client.reasons import EDHOC_CBOR_SEQ as EDHOC_CBOR_SEQ
from ace.client.reasons import edhoc_error as parse_edhoc_error  # noqa: F401  (re-exported)
from ace.coap.edhoc import METHOD, SUITE, ClientEdhoc
from ace.coap.oscore_context import MemoryOscoreContext

log = logging.getLogger(__name__)

MAX_PLAINTEXT_3 = 247  # lakers-python 0.6.2: ID_CRED_I + MAC_3 + EAD_3 beyond this fails (measured)
MAC_3 = 9  # suite 2, method 3: an 8-byte MAC as a bstr
WELL_KNOWN_EDHOC = (".well-known", "edhoc")
CID_EDHOC_CBOR_SEQ = 65  # application/cid-edhoc+cbor-seq (RFC 9528 §9.9)


class EdhocFailed(error.Error):  # type: ignore[misc]
    """EDHOC with the RS did not complete on our side (its message_2 refused, lakers failing)."""


class _Unprotected:
    """A client credentials entry that is no security context: the request goes unprotected."""


_UNPROTECTED = _Unprotected()


class TokenTooLarge(ValueError):
    """The token does not fit into message_3 as lakers builds it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenOffer:
    """What the client puts into one EDHOC run with an RS (forward flow)."""

    token: bytes = field(repr=False)
    cred_i: bytes = field(repr=False)  # AUTH_CRED_C: the CCS bytes as req_cnf carried them
    cred_r: bytes = field(repr=False)  # AUTH_CRED_RS: the CCS bytes from rs_cnf
    private_key: bytes = field(repr=False)  # our P-256 d, 32 bytes
    kid: bytes  # ID_CRED_I by reference
    ead_token: int  # the preset's label of the ACE-OAuth Access Token item
    ead_cred_by_value: int | None = None  # set: EAD_1 asks the RS for ID_CRED_R by value
    ead_rch: int | None = None  # set: EAD_1 asks for Request Creation Hints
    send_cred_by_value: bool = False  # ID_CRED_I by value instead of by kid
    combined: bool = True  # message_3 in the combined request (RFC 9668); False: stand-alone
    uri_path: tuple[str, ...] = WELL_KNOWN_EDHOC
    session_id: bytes | None = None  # set: the AS uploaded the token; EAD Session ID names it (WF §9)
    ead_session_id: int | None = None  # the preset's label of the Session ID item

    @property
    def ead_item(self) -> tuple[int, bytes]:
        """(label, value) of the one critical item naming the token: the token, or its session_id (WF §9)."""
        if self.session_id is not None and self.ead_session_id is not None:
            return self.ead_session_id, self.session_id
        return self.ead_token, self.token

    def ead(self) -> list[Any]:
        label, value = self.ead_item
        return [lakers.EADItem(label, True, value)]  # EP §4.3.3, §4.4.5: exactly one such item


def id_cred_i_size(offer: TokenOffer) -> int:
    """The encoded ID_CRED_I in PLAINTEXT_3: the compact kid (RFC 9528 §3.5.3.2) or ``{14: CCS}``."""
    if offer.send_cred_by_value:
        return 1 + len(cbor2.dumps(14)) + len(offer.cred_i)
    kid = offer.kid
    if len(kid) == 1 and (kid[0] < 0x18 or 0x20 <= kid[0] < 0x38):
        return 1  # a one-byte kid that is a CBOR int travels as that int
    return len(cbor2.dumps(kid))


def check_token_size(offer: TokenOffer) -> None:
    """TokenTooLarge unless the token fits into message_3 as lakers builds it."""
    label, value = offer.ead_item
    ead = len(cbor2.dumps(-label)) + len(cbor2.dumps(value))
    used = id_cred_i_size(offer) + MAC_3 + ead
    if used > MAX_PLAINTEXT_3:
        room = len(offer.token) - (used - MAX_PLAINTEXT_3)
        how = "by value" if offer.send_cred_by_value else f"by a {len(offer.kid)}-byte kid"
        raise TokenTooLarge(f"access token of {len(offer.token)} bytes does not fit in EDHOC message_3 "
                            f"(lakers takes at most about {max(room, 0)} with ID_CRED_I {how})")


def check_token_size_ead_4(offer: TokenOffer) -> None:
    """TokenTooLarge unless the token fits into message_4, whose plaintext is EAD_4 alone (reverse flow)."""
    label, value = offer.ead_item
    used = len(cbor2.dumps(-label)) + len(cbor2.dumps(value))
    if used > MAX_PLAINTEXT_3:
        raise TokenTooLarge(f"access token of {len(offer.token)} bytes does not fit in EDHOC message_4 (lakers "
                            f"takes at most about {len(offer.token) - (used - MAX_PLAINTEXT_3)})")


def ead_items(items: Sequence[Any]) -> list[tuple[int, bool, bytes | None]]:
    """lakers' EAD items as (label, critical, value)."""
    out = []
    for item in items:
        value = item.value()
        out.append((int(item.label()), bool(item.is_critical()), None if value is None else bytes(value)))
    return out


class TokenInitiatorContext(EdhocInitiatorContext):  # type: ignore[misc]
    """aiocoap's initiator context, with our EAD_3 in message_3."""

    def __init__(self, initiator: Any, c_ours: bytes, c_theirs: bytes, offer: TokenOffer, logger: Any) -> None:
        # skips aiocoap's own __init__, which prepares message_3 with no EAD; sets up its base's (the logger)
        super(EdhocInitiatorContext, self).__init__(logger)
        mode = lakers.CredentialTransfer.ByValue if offer.send_cred_by_value else lakers.CredentialTransfer.ByReference
        self._message_3, _prk_out = _lakers(initiator.prepare_message_3, mode, offer.ead())  # §4.3.3
        self._incomplete = True
        self._init_details = (initiator, c_ours, c_theirs)


def _lakers(call: Any, *args: Any) -> Any:
    """A lakers call whose failure (a ValueError or pyo3's PanicException, a BaseException) is ``EdhocFailed``."""
    try:
        return call(*args)
    except BaseException as exc:  # pyo3's PanicException derives from BaseException only
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            raise
        raise EdhocFailed(f"EDHOC: {type(exc).__name__}: {exc}"[:200]) from None


class TokenEdhoc(EdhocCredentials):  # type: ignore[misc]
    """The client's EDHOC credentials for one RS that carry ``offer``'s token in EAD_3."""

    def __init__(self, offer: TokenOffer) -> None:
        check_token_size(offer)
        super().__init__(suite=SUITE, method=METHOD)
        self.offer = offer
        self.hints: bytes | None = None  # the RS's Request Creation Hints from EAD_2 (bstr-wrapped map)

    async def establish_context(self, wire: Any, underlying_address: Any, underlying_proxy_scheme: Any,
                                underlying_uri_host: Any, logger: Any) -> TokenInitiatorContext:
        offer = self.offer
        c_i = bytes([secrets.randbelow(24)])
        initiator = lakers.EdhocInitiator()
        ead_1 = [lakers.EADItem(label, False) for label in (offer.ead_cred_by_value, offer.ead_rch)
                 if label is not None]
        message_1 = _lakers(initiator.prepare_message_1, c_i, ead_1)
        answer = await self._post(wire, underlying_address, underlying_proxy_scheme, underlying_uri_host,
                                  cbor2.dumps(True) + message_1)
        c_r, _id_cred_r, ead_2 = _lakers(initiator.parse_message_2, answer.payload)
        self._read_ead_2(ead_items(ead_2))
        _lakers(initiator.verify_message_2, offer.private_key, offer.cred_i, offer.cred_r)  # CRED_R from rs_cnf
        secctx = TokenInitiatorContext(initiator, c_i, c_r, offer, logger)
        if offer.combined:  # message_3 goes with the first OSCORE request (RFC 9668 §3)
            secctx.complete_without_message_4()
            return secctx
        message_3, secctx._message_3 = secctx._message_3, None
        answer = await self._post(wire, underlying_address, underlying_proxy_scheme, underlying_uri_host,
                                  _c_r_prefix(c_r) + message_3)
        if answer.payload:  # message_4 (edhoc_info message_4), else an empty 2.04
            _lakers(secctx.complete_with_message_4, answer.payload)
        else:
            secctx.complete_without_message_4()
        return secctx

    async def _post(self, wire: Any, address: Any, proxy_scheme: Any, uri_host: Any, payload: bytes,
                    content_format: int | None = None) -> Any:
        """POST to the RS's EDHOC resource; an error answer becomes ``NotAProtectedMessage``."""
        msg = aiocoap.Message(code=aiocoap.POST, proxy_scheme=proxy_scheme, uri_host=uri_host,
                              uri_path=list(self.offer.uri_path), payload=payload)
        if content_format is not None:
            msg.opt.content_format = content_format
        msg.remote = address
        if self.offer.uri_path != WELL_KNOWN_EDHOC:  # aiocoap sends only that path around OSCORE by itself
            wire.client_credentials[msg.get_request_uri()] = _UNPROTECTED
        answer = await wire.request(msg).response
        if not answer.code.is_successful():
            raise oscore.NotAProtectedMessage(f"EDHOC refused by the RS: {answer.code}", answer)
        return answer

    def _read_ead_2(self, ead_2: list[tuple[int, bool, bytes | None]]) -> None:
        for label, critical, value in ead_2:
            if self.offer.ead_rch is not None and label == self.offer.ead_rch and value is not None:
                self.hints = value  # §4.13: informational; the AS stays the configured one
            elif critical:  # RFC 9528 §3.8: an unknown critical item ends the handshake
                raise EdhocFailed(f"EDHOC: message_2 carries a critical EAD item {label} this client does not know")


def _c_r_prefix(c_r: bytes) -> bytes:
    """C_R as the stand-alone message_3 starts with it (RFC 9528 App. A.2)."""
    if len(c_r) == 1 and (c_r[0] < 0x18 or 0x20 <= c_r[0] < 0x38):
        return bytes(c_r)
    encoded: bytes = cbor2.dumps(bytes(c_r))
    return encoded


class ReverseTokenEdhoc(TokenEdhoc):
    """The reverse message flow (EP-11 §4.4): the client is the EDHOC Responder, the RS the Initiator,
    the token rides in EAD_4 and the client's credential goes by value in ID_CRED_R (the RS checks
    MAC_2 before it has the token). The derived context (RFC 9528 App. A.1, as Responder: Sender ID
    C_I, Recipient ID C_R) is a ``MemoryOscoreContext`` (``ReverseContext``)."""

    def __init__(self, offer: TokenOffer) -> None:
        check_token_size_ead_4(offer)
        EdhocCredentials.__init__(self, suite=SUITE, method=METHOD)
        self.offer = offer
        self.hints = None

    async def establish_context(self, wire: Any, underlying_address: Any, underlying_proxy_scheme: Any,
                                underlying_uri_host: Any, logger: Any) -> ReverseContext:
        offer = self.offer

        async def post(payload: bytes, content_format: int | None = None) -> bytes:
            answer = await self._post(wire, underlying_address, underlying_proxy_scheme, underlying_uri_host,
                                      payload, content_format)
            return bytes(answer.payload)

        message_1 = await post(b"")  # §4.4: an empty POST asks the RS for message_1
        responder = _lakers(lakers.EdhocResponder, offer.private_key, offer.cred_i)
        c_i, _ead_1 = _lakers(responder.process_message_1, message_1)
        c_i = bytes(c_i)
        c_r = next(bytes([n]) for n in range(24) if bytes([n]) != c_i)
        message_2 = _lakers(responder.prepare_message_2, lakers.CredentialTransfer.ByValue, c_r, [])
        prefix = _c_r_prefix(c_i)  # RFC 9528 App. A.2: C_I || message_2, C_I || message_4
        message_3 = await post(prefix + bytes(message_2), CID_EDHOC_CBOR_SEQ)
        _lakers(responder.parse_message_3, message_3)
        _lakers(responder.verify_message_3, offer.cred_r)  # CRED_I = AUTH_CRED_RS (§4.4.4)
        message_4 = _lakers(responder.prepare_message_4, offer.ead())  # §4.4.5
        await post(prefix + bytes(message_4), CID_EDHOC_CBOR_SEQ)
        return ReverseContext(
            master_secret=bytes(_lakers(responder.edhoc_exporter, 0, b"", 16)),
            master_salt=bytes(_lakers(responder.edhoc_exporter, 1, b"", 8)),
            sender_id=c_i, recipient_id=c_r)


class ReverseContext(MemoryOscoreContext):
    """The OSCORE context of a reverse-flow handshake (pinned like an initiator's)."""


class ClientHandshake(ClientEdhoc):
    """``ClientEdhoc`` that also pins a reverse-flow context."""

    @property
    def pinned(self) -> bool:
        return isinstance(self.context.client_credentials.get(self.map_key), (EdhocInitiatorContext, ReverseContext))

    def pin(self, response: aiocoap.Message) -> bool:
        security_context = getattr(response.remote, "security_context", None)
        if not isinstance(security_context, ReverseContext):
            return super().pin(response)
        self.context.client_credentials[self.map_key] = security_context
        return True
