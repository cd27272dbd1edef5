"""What the client's flow (``ace.client.flow``) works with: its configuration, requests, sessions,
responses, the actions it asks its runner to perform, and its states. Sans-I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import urlsplit

from ace.cbor.labels import ContentFormat
from ace.messages import ErrorResponse
from ace.profiles import Channel
from ace.tokens.edhoc_info import EdhocInfo
from ace.tokens.keys import CoseKey


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    client_id: str | None = None  # sent as client_id when set (the AS knows us by our channel anyway)
    as_uri: str | None = None  # token endpoint, used when the RS gives no hints
    audience: str | None = None  # for every RS not in ``audiences``; overrides the hints' audience
    audiences: Mapping[str, str] = field(default_factory=dict)  # RS origin -> its audience (hints must agree)
    trust_first_hints: bool = True  # no audience configured for an origin: take (and pin) its first hints'
    scope: str | bytes | None = None  # overrides the hints' scope
    authz_info_path: str = "/authz-info"
    ask_profile: bool = False
    profile: int | None = None  # ask the AS for this ACE profile (None: the AS chooses)
    edhoc_key: CoseKey | None = field(default=None, repr=False)  # our EDHOC credential (with d), for req_cnf
    edhoc_preset: str = "draft-11"  # EDHOC code points (ace.profiles.edhoc_presets): the RSs' dialect
    edhoc_rs_cred_by_value: bool = False  # EDHOC: ask the RS for ID_CRED_R by value (EAD_1 Credential By Value)
    edhoc_reverse: bool = False  # EDHOC: the reverse message flow (EP §4.4), the token in EAD_4
    token_upload: int | None = None  # WF §3.1: ask the AS to upload the token to the RS (0, 1 or 2: what comes back)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceRequest:
    method: str
    uri: str
    payload: bytes = b""
    content_format: int | None = None

    @property
    def origin(self) -> str:
        parts = urlsplit(self.uri)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(slots=True, kw_only=True)
class Session:
    """A token posted to an RS and the channel it produced (OSCORE context parameters, DTLS PSK,
    the RS's EDHOC credential: ``ace.profiles``)."""

    origin: str
    token: bytes = field(repr=False)
    context: Channel = field(repr=False)
    expires_at: float | None
    scope: str | bytes | None
    id: int = 0
    audience: str | None = None  # the audience the token was asked for
    edhoc: EdhocSession | None = None  # the EDHOC profile's: what the handshake carries
    token_hash: bytes | None = None  # WF §3.2: the hash of a token the AS uploaded and did not send us

    @property
    def session_id(self) -> bytes | None:
        """EDHOC profile: the token series (edhoc_info's session_id, EP §3.2)."""
        return self.edhoc.info.session_id if self.edhoc is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class EdhocSession:
    """What EDHOC with the RS needs besides the token (EP-11 §3.3, §4.3): edhoc_info from the token
    response, CRED_I as our req_cnf carried it, CRED_R from rs_cnf."""

    info: EdhocInfo
    own_credential: bytes = field(repr=False)
    rs_credential: bytes = field(repr=False)
    uploaded: bool = False  # the AS uploaded the token (WF §3.1 token_upload 0): EAD Session ID names it (WF §9)


@dataclass(frozen=True, slots=True)
class Response:
    code: tuple[int, int]
    payload: bytes = b""
    content_format: int | None = None
    local: str | None = None  # no CoAP answer came: the runner's own 5.04 and why ("did not answer within 5 s")

    @property
    def success(self) -> bool:
        return self.code[0] == 2


# -- actions ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SendResource:
    request: ResourceRequest
    session: Session | None  # None: unprotected


@dataclass(frozen=True, slots=True)
class SendTokenRequest:
    as_uri: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SendAuthzInfo:
    uri: str
    payload: bytes
    content_format: int = ContentFormat.ACE_CBOR  # application/cwt for the DTLS profile
    session: Session | None = None  # set: protected with its channel (EDHOC profile update, EP §4.6.1)


@dataclass(frozen=True, slots=True)
class Done:
    response: Response
    session: Session | None


@dataclass(frozen=True, slots=True)
class Failed:
    step: str
    error: str
    response: Response | None = None
    error_response: ErrorResponse | None = None


Action = SendResource | SendTokenRequest | SendAuthzInfo | Done | Failed


class State(Enum):
    """Where the flow is: what the next response answers (the values name the step in ``Failed``)."""

    IDLE = "idle"
    PROBE = "probe"
    TOKEN = "token"
    AUTHZ_INFO = "authz-info"
    PROTECTED = "protected"
    UPDATE = "update"  # the token request of an access-rights update (EP §3.1)
    UPDATE_AUTHZ = "update authz-info"  # its protected POST /authz-info (EP §4.6.1)


__all__ = ["Action", "ClientConfig", "Done", "EdhocSession", "Failed", "ResourceRequest", "Response", "SendAuthzInfo",
           "SendResource", "SendTokenRequest", "Session", "State"]
