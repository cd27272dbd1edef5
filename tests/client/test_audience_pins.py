"""Audience pins per RS origin (RFC 9200 §6.4, §6.9): configuration, trust on first use, refusal
of hints naming another audience; the pin file; ``[client.audiences]`` in client.toml."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from support import NOW

from ace.cbor.labels import ContentFormat
from ace.cli.config import load_client
from ace.client.flow import ClientConfig, ClientFlow, Done, Failed, ResourceRequest, Response, SendTokenRequest
from ace.client.pins import MAX_PINS, MemoryPins, normalize_origin
from ace.errors import ConfigError
from ace.messages import AccessTokenRequest, AccessTokenResponse, AuthzInfoResponse, CreationHints
from ace.store.pins import FilePins, pins_path
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial

AS_URI = "coap://as.example/token"
RS = "coap://rs.example"
REQ = ResourceRequest(method="GET", uri=RS + "/temp")
CF = ContentFormat.ACE_CBOR


def make_flow(pins: MemoryPins | None = None, **config: object) -> ClientFlow:
    return ClientFlow(ClientConfig(as_uri=AS_URI, **config), clock=lambda: NOW,  # type: ignore[arg-type]
                      rng=random.Random(5).randbytes, pins=pins)


def hints_401(audience: str | None, scope: str | None = "r_temp") -> Response:
    return Response((4, 1), CreationHints(as_uri=AS_URI, audience=audience, scope=scope).encode(), CF)


def token_ok() -> Response:
    material = OscoreInputMaterial(id=b"\x01", ms=bytes(range(16)))
    return Response((2, 1), AccessTokenResponse(access_token=b"tok", expires_in=3600, ace_profile=2,
                                                cnf=OscoreCnf(material)).encode(), CF)


def authz_ok() -> Response:
    return Response((2, 1), AuthzInfoResponse(nonce2=bytes(8), ace_server_recipientid=b"\x42\x42").encode(), CF)


def asked(action: object) -> AccessTokenRequest:
    assert isinstance(action, SendTokenRequest), action
    return AccessTokenRequest.decode(action.payload)


def session_then(flow: ClientFlow, audience: str, final: Response) -> object:
    """probe -> hints(audience) -> token -> authz-info -> protected request answered ``final``."""
    flow.start(REQ)
    assert asked(flow.on_response(hints_401(audience))).audience == audience
    flow.on_response(token_ok())
    flow.on_response(authz_ok())
    return flow.on_response(final)


# -- origins and the pin file ------------------------------------------------------------------

@pytest.mark.parametrize(("uri", "origin"), [
    ("coap://[::1]:5690/temp", "coap://[::1]:5690"),
    ("COAP://RS.Example:5683", "coap://rs.example"),
    ("coaps://rs.example:5684/", "coaps://rs.example"),
    ("coaps://rs.example:5683", "coaps://rs.example:5683"),
    ("coap://user@[::1]:5690", "coap://[::1]:5690"),
])
def test_normalize_origin(uri: str, origin: str) -> None:
    assert normalize_origin(uri) == origin


@pytest.mark.parametrize("uri", ["rs1", "/temp", "coap://", "coap://h:notaport"])
def test_normalize_origin_refuses_non_uris(uri: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(uri)


def test_file_pins_round_trip_private(tmp_path: Path) -> None:
    path = pins_path(tmp_path / "client-state.json")
    assert path == tmp_path / "client-state.audiences.json"
    pins = FilePins(path)
    assert pins.get("coap://rs.example") is None and not path.exists()
    pins.pin("coap://rs.example", "rs1")
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text()) == {"coap://rs.example": "rs1"}
    assert FilePins(path).get("coap://rs.example") == "rs1"


@pytest.mark.parametrize("text", ["[", "[]", '{"coap://rs": 1}', '{"coap://rs": ""}', '{"rs1": "rs1"}'])
def test_file_pins_refuse_malformed_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ConfigError):
        FilePins(path)


def test_pins_are_bounded() -> None:
    pins = MemoryPins({f"coap://rs{i}": "a" for i in range(MAX_PINS)})
    pins.pin("coap://rs0", "b")  # an existing origin may be re-pinned
    with pytest.raises(ConfigError):
        pins.pin("coap://one-more", "a")


# -- the flow ---------------------------------------------------------------------------------------

def test_first_hints_are_pinned_only_after_a_protected_success() -> None:
    pins = MemoryPins()
    flow = make_flow(pins)
    done = session_then(flow, "rs1", Response((2, 5), b"22.5 C"))
    assert isinstance(done, Done) and done.session is not None and done.session.audience == "rs1"
    assert pins.items() == [("coap://rs.example", "rs1")]


def test_first_hints_are_not_pinned_when_the_as_refuses() -> None:
    pins = MemoryPins()
    flow = make_flow(pins)
    flow.start(REQ)
    flow.on_response(hints_401("evil"))
    assert isinstance(flow.on_response(Response((4, 0))), Failed)  # e.g. not granted: nothing pinned
    assert pins.items() == []
    flow.start(REQ)  # the real RS's hints are still taken
    assert asked(flow.on_response(hints_401("rs1"))).audience == "rs1"


def test_hints_naming_another_audience_than_the_pin_are_refused() -> None:
    flow = make_flow(MemoryPins({"coap://rs.example": "rs1"}))
    flow.start(REQ)
    failed = flow.on_response(hints_401("evil"))
    assert isinstance(failed, Failed) and failed.step == "hints"
    assert "'evil'" in failed.error and "'rs1'" in failed.error and "pinned" in failed.error
    flow.start(REQ)  # hints without an audience: the pin is used
    assert asked(flow.on_response(hints_401(None))).audience == "rs1"


def test_unconfirmed_first_hints_still_guard_the_retry() -> None:
    # a session from first hints, not yet confirmed; a forged 4.01 on the protected request
    flow = make_flow()
    failed = session_then(flow, "rs1", hints_401("evil"))
    assert isinstance(failed, Failed) and failed.step == "hints"


def test_forged_hints_on_a_protected_request_are_refused_after_the_pin() -> None:
    pins = MemoryPins()
    flow = make_flow(pins)
    session_then(flow, "rs1", Response((2, 5)))
    flow.start(REQ)
    failed = flow.on_response(hints_401("evil"))  # "context lost", with forged hints
    assert isinstance(failed, Failed) and failed.step == "hints" and flow.sessions == {}


def test_configured_origin_audience_refuses_other_hints() -> None:
    flow = make_flow(audiences={"coap://RS.example:5683/": "rs1"})
    flow.start(REQ)
    failed = flow.on_response(hints_401("evil"))
    assert isinstance(failed, Failed) and "configured for this origin" in failed.error
    flow.start(REQ)
    assert asked(flow.on_response(hints_401("rs1"))).audience == "rs1"
    other = ResourceRequest(method="GET", uri="coap://rs2.example/x")  # another origin: its own hints
    flow.start(other)
    assert asked(flow.on_response(hints_401("rs2"))).audience == "rs2"


def test_configured_audience_is_asked_whatever_the_hints_say() -> None:
    flow = make_flow(audience="rs1")
    flow.start(REQ)
    assert asked(flow.on_response(hints_401("evil"))).audience == "rs1"  # ignored, never asked for


def test_without_trust_on_first_use_only_configured_origins_work() -> None:
    flow = make_flow(trust_first_hints=False, audiences={RS: "rs1"})
    flow.start(REQ)
    assert asked(flow.on_response(hints_401("rs1"))).audience == "rs1"
    flow.start(ResourceRequest(method="GET", uri="coap://rs2.example/x"))
    failed = flow.on_response(hints_401("rs2"))
    assert isinstance(failed, Failed) and failed.step == "hints" and "trust_first_hints" in failed.error


def test_configured_scope_is_never_widened_by_hints() -> None:
    flow = make_flow(scope="r_temp")
    flow.start(REQ)
    assert asked(flow.on_response(hints_401("rs1", scope="r_temp rw_led admin"))).scope == "r_temp"


def test_refused_hints_are_not_kept() -> None:
    flow = make_flow(MemoryPins({"coap://rs.example": "rs1"}))
    flow.start(REQ)
    flow.on_response(Response((4, 1), CreationHints(audience="evil", cnonce=b"\x01" * 8).encode(), CF))
    flow.start(REQ)
    assert asked(flow.on_response(Response((4, 1)))).cnonce is None  # the forged cnonce is not reused


# -- client.toml ---------------------------------------------------------------------------------

BASE = '[client]\nas_uri = "coap://[::1]:5689/token"\nas_context = "c.toml"\n'


def test_client_toml_audiences(tmp_path: Path) -> None:
    path = tmp_path / "client.toml"
    path.write_text(BASE + 'trust_first_hints = false\n[client.audiences]\n"coap://[::1]:5690/" = "rs1"\n'
                           '"coaps://RS.example" = "rs2"\n')
    cfg = load_client(path)
    assert cfg.audiences == {"coap://[::1]:5690": "rs1", "coaps://rs.example": "rs2"}
    assert cfg.trust_first_hints is False
    path.write_text(BASE)
    assert load_client(path).audiences == {} and load_client(path).trust_first_hints is True


@pytest.mark.parametrize("table", ['"coap://rs/temp" = "rs1"', '"rs1" = "rs1"', '"coap://rs" = ""',
                                   '"coap://rs" = 1'])
def test_client_toml_bad_audiences(tmp_path: Path, table: str) -> None:
    path = tmp_path / "client.toml"
    path.write_text(BASE + "[client.audiences]\n" + table + "\n")
    with pytest.raises(ConfigError, match="audiences"):
        load_client(path)
