"""The whole A–F flow with the three sans-I/O cores wired in memory (no sockets).

The client's actions are carried out by calling ``TokenEndpoint.issue``,
``ResourceServer.authz_info`` and ``ResourceServer.authorize`` directly; a ``RemoteError``
becomes the ``Response`` ``ace.replies.reply_of`` says (as the CoAP layer answers it), and
OSCORE is emulated by looking up the RS's installed context by the client's Sender ID and
checking that it is the mirror image of the client's.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from support import NOW

from ace.authz_server.token import IssueResult, TokenEndpoint
from ace.cbor.labels import ContentFormat
from ace.cbor.scope import METHODS, AifScope, ScopeMeaning
from ace.client.flow import (
    Action,
    ClientConfig,
    ClientFlow,
    Done,
    Failed,
    ResourceRequest,
    Response,
    SendAuthzInfo,
    SendResource,
    SendTokenRequest,
)
from ace.errors import ErrorCode, RemoteError
from ace.messages import CreationHints, ErrorResponse
from ace.replies import reply_of
from ace.rs.denied import AccessDenied
from ace.rs.server import ResourceServer, RsConfig
from ace.rs.store import Binding
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.memory import MemoryAsStore
from ace.tokens.cwt import KeyRing, verify_token
from ace.tokens.keys import symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

AS_URI = "coap://as.example/token"
RS = "coap://rs.example"
RS_KEY = symmetric_key(bytes(range(16)), kid=b"rs1")
CF = int(ContentFormat.ACE_CBOR)
LIFETIME = 600
GET, POST, PUT, DELETE = (1 << (METHODS[m] - 1) for m in ("GET", "POST", "PUT", "DELETE"))
MEANING: dict[str, list[tuple[str, int]]] = {
    "r_temp": [("/temp", GET)],
    "w_temp": [("/temp", PUT)],
    "rw_config": [("/config", GET | PUT)],
    "r_hum": [("/hum", GET)],
    "x_led": [("/led", POST | DELETE)],
}
TOKENS = [*MEANING, "foobar"]  # foobar: grantable at the AS, means nothing at the RS
PATHS = ["/temp", "/config", "/hum", "/led", "/other"]
METHOD_NAMES = ["GET", "POST", "PUT", "DELETE"]


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def render(exc: RemoteError) -> Response:
    """The reply the CoAP layer sends (``ace.coap.boundary``), without aiocoap."""
    return Response(*reply_of(exc))


def mirrored(client: OscoreContextParams, rs: OscoreContextParams) -> bool:
    return (client.sender_id == rs.recipient_id and client.recipient_id == rs.sender_id
            and client.master_secret == rs.master_secret and client.master_salt == rs.master_salt
            and client.id_context == rs.id_context and (client.alg, client.hkdf) == (rs.alg, rs.hkdf))


@dataclass
class World:
    grants: Iterable[Grant]
    client_scope: str | bytes | None = None
    meaning: ScopeMeaning = field(default_factory=lambda: MEANING)
    client_config: Mapping[str, object] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        self.clock = Clock()
        self.store = MemoryAsStore()
        self.store.put_client(ClientRecord(client_id="c1"))
        self.store.put_rs(RsRecord(audience="rs1", rs_id="rs1", token_key=RS_KEY, token_lifetime=LIFETIME))
        for g in self.grants:
            self.store.add_grant(g)
        rnd = random.Random(self.seed)
        self.as_ = TokenEndpoint(self.store, clock=self.clock, rng=rnd.randbytes)
        self.rs = self.new_rs(rnd.randbytes)
        self.flow = ClientFlow(ClientConfig(client_id="c1", scope=self.client_scope, **self.client_config),  # type: ignore[arg-type]
                               clock=self.clock, rng=rnd.randbytes)
        self.client_id = "c1"  # who the AS sees at the other end of its OSCORE context
        self.issued: list[IssueResult] = []
        self.trace: list[tuple[str, tuple[int, int]]] = []

    def new_rs(self, rng: Callable[[int], bytes] | None = None) -> ResourceServer:
        """A fresh RS (and OSCORE layer): nothing installed, no bindings."""
        config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=self.meaning)
        self.installed: dict[bytes, OscoreContextParams] = {}  # the RS's OSCORE layer: recipient ID -> context
        return ResourceServer(config, KeyRing([RS_KEY]), clock=self.clock,
                              rng=rng or random.Random(self.seed + 99).randbytes)

    # -- the "network" -------------------------------------------------------------------

    def perform(self, action: SendResource | SendTokenRequest | SendAuthzInfo) -> Response:
        if isinstance(action, SendTokenRequest):
            assert action.as_uri == AS_URI
            step, response = "token", self._token(action.payload)
        elif isinstance(action, SendAuthzInfo):
            assert action.uri == RS + "/authz-info"
            step, response = "authz-info", self._authz_info(action.payload)
        else:
            step = "resource (protected)" if action.session else "resource"
            response = self._resource(action)
        self.trace.append((step, response.code))
        return response

    def _token(self, payload: bytes) -> Response:
        try:
            client = self.store.get_client(self.client_id)  # the client's OSCORE context with the AS names it
            result = self.as_.issue(payload, client, CF)
        except RemoteError as exc:
            return render(exc)
        self.issued.append(result)
        return Response((2, 1), result.response.encode(), CF)

    def _authz_info(self, payload: bytes) -> Response:
        try:
            outcome = self.rs.authz_info(payload, CF)
        except RemoteError as exc:
            return render(exc)
        self.uninstall(outcome.dropped)
        self.installed[outcome.binding.label] = outcome.binding.context
        return Response((2, 1), outcome.payload, CF)

    def _resource(self, action: SendResource) -> Response:
        self.uninstall(self.rs.sweep())  # the RS's sweeper
        label = None
        if action.session is not None:  # OSCORE: the RS finds its context by the client's Sender ID (kid)
            ctx = self.installed.get(action.session.context.sender_id)
            if ctx is None or not mirrored(action.session.context, ctx):
                return Response((4, 1), b"Security context not found")  # as aiocoap answers, unprotected
            label = ctx.recipient_id
        path = "/" + action.request.uri.split("/", 3)[3]
        try:
            access = self.rs.authorize(label, path, action.request.method)
        except AccessDenied as exc:
            self.uninstall(exc.dropped)  # expired: its context goes, as the CoAP layer removes it
            return render(exc)
        self.uninstall(access.dropped)  # replaced by this first use: their contexts go
        return Response((2, 5), f"{action.request.method} {path}".encode())

    def uninstall(self, dropped: Iterable[Binding]) -> None:
        for gone in dropped:
            self.installed.pop(gone.label, None)

    def run(self, method: str, path: str) -> Done | Failed:
        action: Action = self.flow.start(ResourceRequest(method=method, uri=RS + path))
        for _ in range(10):
            if isinstance(action, Done | Failed):
                return action
            action = self.flow.on_response(self.perform(action))
        raise AssertionError("flow did not finish")


def grant(scope: str | bytes, default: bool = False) -> Grant:
    return Grant(client_id="c1", audience="rs1", scope=scope, default=default)


# -- A–F -----------------------------------------------------------------------------------


def test_complete_flow() -> None:
    world = World([grant("r_temp rw_config")], client_scope="r_temp rw_config foobar")
    result = world.run("GET", "/temp")
    assert isinstance(result, Done), result
    assert result.response == Response((2, 5), b"GET /temp")
    assert world.trace == [("resource", (4, 1)), ("token", (2, 1)), ("authz-info", (2, 1)),
                           ("resource (protected)", (2, 5))]
    # C: the AS narrowed the scope and told the client so
    [issued] = world.issued
    assert issued.claims.scope == "r_temp rw_config" and issued.response.scope == "r_temp rw_config"
    # E: the client's context is the mirror image of the RS's
    session = result.session
    assert session is not None and session.scope == "r_temp rw_config"
    [binding] = world.rs.bindings
    assert mirrored(session.context, binding.context)
    assert session.context.sender_id == binding.label
    assert session.token == issued.response.access_token
    claims = verify_token(session.token, KeyRing([RS_KEY]), audience="rs1", clock=world.clock)
    assert dataclasses.replace(claims, cnf=None) == binding.claims  # the key lives in the context only
    # F: the session is reused; decisions follow the scope
    assert world.run("PUT", "/config") == Done(Response((2, 5), b"PUT /config"), session)
    assert world.run("GET", "/hum").response.code == (4, 3)  # type: ignore[union-attr]
    assert world.run("DELETE", "/temp").response.code == (4, 5)  # type: ignore[union-attr]
    assert len(world.issued) == 1 and len(world.rs.bindings) == 1


def test_creation_hints_drive_the_token_request() -> None:
    world = World([grant("r_hum")])
    world.rs = ResourceServer(RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, hint_scope="r_hum"),
                              KeyRing([RS_KEY]), clock=world.clock, rng=random.Random(5).randbytes)
    result = world.run("GET", "/hum")
    assert isinstance(result, Done) and result.response.code == (2, 5)
    assert world.issued[0].claims.scope == "r_hum" and world.issued[0].response.scope is None


def test_as_refusal_reaches_the_client() -> None:
    world = World([grant("r_temp")], client_scope="rw_config")
    result = world.run("GET", "/config")
    assert isinstance(result, Failed) and result.step == "token"
    assert result.error_response is not None and result.error_response.error == ErrorCode.INVALID_SCOPE
    assert world.store.issued_tokens() == [] and len(world.rs.bindings) == 0


def test_rs_refusal_at_authz_info_reaches_the_client() -> None:
    world = World([grant("foobar")], client_scope="foobar")
    result = world.run("GET", "/temp")
    assert isinstance(result, Failed) and result.step == "authz-info"
    assert result.response is not None and result.response.code == (4, 0)
    assert ErrorResponse.decode(result.response.payload).error == ErrorCode.INVALID_SCOPE
    assert world.flow.sessions == {} and len(world.rs.bindings) == 0


def test_expiry_leads_to_a_new_token() -> None:
    world = World([grant("r_temp")], client_scope="r_temp")
    first = world.run("GET", "/temp")
    assert isinstance(first, Done) and first.session is not None
    world.clock.t = NOW + LIFETIME
    second = world.run("GET", "/temp")
    assert isinstance(second, Done) and second.response.code == (2, 5)
    assert second.session is not None and second.session.id != first.session.id
    assert len(world.issued) == 2 and len(world.rs.bindings) == 1
    assert [s for s, _ in world.trace[-4:]] == ["resource", "token", "authz-info", "resource (protected)"]


def test_rs_reboot_leads_to_a_new_token_once() -> None:
    world = World([grant("r_temp")], client_scope="r_temp", client_config={"as_uri": AS_URI, "audience": "rs1"})
    first = world.run("GET", "/temp")
    assert isinstance(first, Done) and first.response.code == (2, 5)
    world.rs = world.new_rs()  # all contexts and bindings lost
    second = world.run("GET", "/temp")
    assert isinstance(second, Done) and second.response.code == (2, 5)
    assert [s for s, _ in world.trace[-4:]] == ["resource (protected)", "token", "authz-info", "resource (protected)"]
    assert len(world.issued) == 2


def test_aif_scopes_end_to_end() -> None:
    granted = AifScope.of([("/temp", GET | PUT), ("/led", POST)]).encode()
    asked = AifScope.of([("/temp", GET), ("/led", POST | DELETE)]).encode()
    world = World([grant(granted)], client_scope=asked)
    result = world.run("POST", "/led")
    assert isinstance(result, Done) and result.response.code == (2, 5)
    assert world.issued[0].claims.scope == AifScope.of([("/temp", GET), ("/led", POST)]).encode()
    assert world.run("GET", "/temp").response.code == (2, 5)  # type: ignore[union-attr]
    assert world.run("PUT", "/temp").response.code == (4, 5)  # type: ignore[union-attr]
    assert world.run("DELETE", "/led").response.code == (4, 5)  # type: ignore[union-attr]


def test_two_clients_share_the_rs() -> None:
    world = World([grant("r_temp")], client_scope="r_temp", seed=1)
    world.store.put_client(ClientRecord(client_id="c2"))
    world.store.add_grant(Grant(client_id="c2", audience="rs1", scope="r_hum"))
    assert isinstance(world.run("GET", "/temp"), Done)
    first_flow = world.flow
    world.flow = ClientFlow(ClientConfig(client_id="c2", scope="r_hum"), clock=world.clock,
                            rng=random.Random(77).randbytes)
    world.client_id = "c2"
    result = world.run("GET", "/hum")
    assert isinstance(result, Done) and result.response.code == (2, 5)
    assert len(world.rs.bindings) == 2
    assert {b.claims.sub for b in world.rs.bindings} == {"c1", "c2"}
    world.flow, world.client_id = first_flow, "c1"
    assert world.run("GET", "/temp").response.code == (2, 5)  # type: ignore[union-attr]
    assert world.run("GET", "/hum").response.code == (4, 3)  # type: ignore[union-attr]


def test_a_new_token_for_the_same_client_replaces_its_context() -> None:
    # RFC 9203 §6: the RS keeps one token per client (sub); the old context goes
    world = World([grant("r_temp")], client_scope="r_temp")
    first = world.run("GET", "/temp")
    assert isinstance(first, Done) and first.session is not None
    old_flow = world.flow
    world.flow = ClientFlow(ClientConfig(client_id="c1", scope="r_temp"), clock=world.clock,
                            rng=random.Random(78).randbytes)  # the same client, restarted
    assert isinstance(world.run("GET", "/temp"), Done)
    assert len(world.rs.bindings) == 1
    # the old binding was in use: it went on the new one's first use (authorize), its context too
    assert list(world.installed) == [b.label for b in world.rs.bindings]
    world.flow = old_flow  # the old session's context is gone at the RS
    seen = len(world.trace)
    stale = world.run("GET", "/temp")
    assert world.trace[seen] == ("resource (protected)", (4, 1))  # OSCORE: security context not found
    # that 4.01 carries no creation hints: the client uses the hints it got from this RS before
    assert isinstance(stale, Done) and stale.response.code == (2, 5)
    assert len(world.issued) == 3 and len(world.rs.bindings) == 1


def test_hints_rendered_like_the_coap_layer() -> None:
    world = World([grant("r_temp")])
    response = world.perform(SendResource(ResourceRequest(method="GET", uri=RS + "/temp"), None))
    assert response.code == (4, 1) and response.content_format == CF
    assert CreationHints.decode(response.payload) == CreationHints(as_uri=AS_URI, audience="rs1")


# -- property: scope = intersection, decisions = its meaning -----------------------------


def allowed_pairs(tokens: Iterable[str]) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for t in tokens:
        for path, perms in MEANING.get(t, []):
            pairs |= {(path, m) for m in METHOD_NAMES if perms & (1 << (METHODS[m] - 1))}
    return pairs


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    granted=st.lists(st.sampled_from(TOKENS), unique=True),
    requested=st.lists(st.sampled_from(TOKENS), unique=True, min_size=1),
    split_grants=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_scope_is_the_intersection_and_rs_allows_exactly_it(
        granted: list[str], requested: list[str], split_grants: bool, seed: int) -> None:
    grants = [grant(t) for t in granted] if split_grants else ([grant(" ".join(granted))] if granted else [])
    world = World(grants, client_scope=" ".join(requested), seed=seed)
    expected = [t for t in requested if t in granted]
    result = world.run("GET", "/temp")
    if not expected:
        event("refused by the AS")
        assert isinstance(result, Failed) and result.step == "token"
        assert result.error_response is not None and result.error_response.error == ErrorCode.INVALID_SCOPE
        assert world.issued == []
        return
    [issued] = world.issued
    assert issued.claims.scope == " ".join(expected)
    assert issued.response.scope == (None if expected == requested else " ".join(expected))
    if not any(t in MEANING for t in expected):
        event("refused by the RS")
        assert isinstance(result, Failed) and result.step == "authz-info"
        return
    event("session established")
    assert isinstance(result, Done) and result.session is not None
    allowed = allowed_pairs(expected)
    for path in PATHS:
        for method in METHOD_NAMES:
            outcome = world.run(method, path)
            assert isinstance(outcome, Done)
            code = outcome.response.code
            if (path, method) in allowed:
                assert code == (2, 5), (path, method)
            elif any(p == path for p, _ in allowed):
                assert code == (4, 5), (path, method)
            else:
                assert code == (4, 3), (path, method)
    assert len(world.issued) == 1  # one token served every decision


@pytest.mark.parametrize("default_scope", ["r_temp", "r_temp x_led"])
def test_default_grant_end_to_end(default_scope: str) -> None:
    world = World([grant(default_scope, default=True), grant("rw_config")])
    world.rs = ResourceServer(RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING), KeyRing([RS_KEY]),
                              clock=world.clock, rng=random.Random(9).randbytes)
    result = world.run("GET", "/temp")
    assert isinstance(result, Done) and result.response.code == (2, 5)
    assert world.issued[0].claims.scope == default_scope
    assert world.run("GET", "/config").response.code == (4, 3)  # type: ignore[union-attr]
