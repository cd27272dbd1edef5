"""Interop with RISE ace-java, the reference ACE implementation (issue 11), OSCORE and DTLS profiles.

Each test is one direction: a fresh network namespace (``acejava ns``), a fresh DIR for their
AS/RS (``acejava start DIR [as] [rs]``, ``acejava stop DIR`` on the way out, DIR/db removed), and
our roles as ``ace as|rs|client`` processes with configs written by ``acejava_peer.our_side``.
What is asserted is what a user sees: the resource values, 4.03/4.05 out of scope, refusals.

Without ``../shared/peers/ace-java`` (a user's clone) the module is skipped with that reason;
with it, a peer that cannot run (no java, MariaDB, jars, or network namespaces) is a failure:
``.ci/run`` installs what it needs (``acejava deps``).

Our side is configured as a user would: ``ace init --peer ace-java`` (``acejava_peer.our_side``).

DTLS profile (their ``Test*dtlsProfile`` classes, ``ACEJAVA_PROFILE=dtls``; ours from the same
init's ``as-dtls.toml``, ``rs-dtls.toml``, ``client-dtls.toml``): no direction that needs a DTLS
handshake between our stack and theirs can complete, so none is tested end to end. tinydtls (as
built by DTLSSocket, under aiocoap) insists on RFC 5746 renegotiation_info and Scandium 3.1 never
sends it: as a server tinydtls answers their ClientHello (extended_master_secret only) with a
handshake_failure alert, as a client it aborts on their ServerHello. That rules out our client
with their AS, their client with our AS, and every client with the other side's RS over DTLS.
What is tested is what works up to that handshake: their client's token at our RS's /authz-info
(2.01: the token itself as application/ace+cbor), and our AS's token (over DTLS on coaps 5689,
``dtls_port``) at their RS's /authz-info (2.01).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import acejava_peer as peer
import pytest
from acejava_peer import Direction

if not peer.PEER_DIR.is_dir():
    pytest.skip(f"ace-java interop: {peer.PEER_DIR} absent (only CI has the prebuilt reference)",
                allow_module_level=True)

TEMP = re.compile(r"-?\d+(\.\d+)? C")  # their /temp: "0 C"
# Their client's flow, as their RS answers it: authz-info, GET /helloWorld (not in r_temp rw_config),
# GET /temp, POST /temp (r_temp: GET only), GET /temp, GET /config, POST /config Custom, GET /config.
THEIR_FLOW = ["2.01", "4.03", "2.05", "4.05", "2.05", "2.05", "2.04", "2.05"]


@pytest.fixture(scope="module")
def usable() -> None:
    problem = peer.peer_problem()
    if problem is not None:
        pytest.fail(f"ace-java peer present but unusable: {problem}", pytrace=False)


@pytest.fixture
def d(usable: None, tmp_path: Path) -> Iterator[Direction]:
    with peer.direction(tmp_path) as direction:
        yield direction


@pytest.fixture
def dd(usable: None, tmp_path: Path) -> Iterator[Direction]:
    """A direction with their DTLS-profile roles."""
    with peer.direction(tmp_path, "dtls") as direction:
        yield direction


def ok(r: peer.Result, expected: str) -> None:
    assert r.rc == 0 and r.out.strip() == expected, f"expected {expected!r}:\n{r}"


def refused(r: peer.Result, code: str) -> None:
    """Our client's line for an RS answer outside the token's scope (its payload: their creation hints)."""
    assert r.rc == 1 and r.out.startswith(code + " "), f"expected {code}:\n{r}"


def assert_their_flow(r: peer.Result) -> None:
    answers = peer.their_answers(r.out)
    codes = [c for c, _ in answers]
    assert r.rc == 0 and codes == THEIR_FLOW, f"their client saw {answers}:\n{r}"
    contents = [v for _, v in answers]
    assert TEMP.fullmatch(contents[2] or "") and TEMP.fullmatch(contents[4] or ""), answers
    assert contents[5:] == ["Default", None, "Custom"], answers
    assert (contents[1] or "").startswith("{") and (contents[3] or "").startswith("{"), answers  # CBOR hints


def test_reference_alone(d: Direction) -> None:
    """Control: their client → their AS + RS (if this fails, the peer is broken, not us)."""
    d.start_theirs()
    assert_their_flow(d.their_client())


def test_our_client_their_as_and_rs(d: Direction) -> None:
    """Direction 1: our client gets a token at their AS and uses it at their RS."""
    d.start_theirs()
    ok(d.client("get", "/temp"), "2.05 0 C")
    ok(d.client("get", "/config"), "2.05 Default")
    ok(d.client("post", "/config", "Custom"), "2.04")
    ok(d.client("get", "/config"), "2.05 Custom")
    refused(d.client("get", "/helloWorld"), "4.03")
    refused(d.client("post", "/temp", "5"), "4.05")
    r = d.client("get", "/temp", scope="foobar")  # not grantable: their AS answers invalid_scope
    assert r.rc == 1 and "refused" in r.err, r


def test_their_token_our_rs_self_contained(d: Direction) -> None:
    """Direction 2: their AS's self-contained token (exi in ms, cti "rs1"+n) at our RS, our client."""
    d.start_theirs("as")
    d.serve_ours("rs")
    r = d.client("get", "/temp")
    assert r.rc == 0 and r.out.startswith("2.05 "), r
    refused(d.client("post", "/temp", "5"), "4.05")
    refused(d.client("get", "/temp", scope="rw_config"), "4.03")  # each `ace client` run gets its own token
    # A token our RS cannot decrypt (an RS that does not hold aud1's key) is refused at /authz-info.
    d.ns.stop_servers()
    d.variant("rs.toml", "rs-otherkey.toml", ('"aud1-token.key"', '"other-token.key"'))
    peer.write_key(d.ours / "other-token.key", bytes(range(16)))
    d.serve_ours("rs", "rs-otherkey.toml")
    r = d.client("get", "/temp")
    assert r.rc == 1 and "authz-info" in r.err and "refused" in r.err, r


def test_their_token_our_rs_resources(d: Direction) -> None:
    """Direction 2, the values: our RS standing in for theirs answers as theirs does."""
    d.start_theirs("as")
    d.serve_ours("rs")
    ok(d.client("get", "/temp"), "2.05 0 C")
    ok(d.client("get", "/config"), "2.05 Default")
    ok(d.client("post", "/config", "Custom"), "2.04")
    ok(d.client("get", "/config"), "2.05 Custom")


def test_their_token_our_rs_introspect(d: Direction) -> None:
    """Direction 2 with ``introspect = true``: our RS asks their AS about each token."""
    d.start_theirs("as")
    d.variant("rs.toml", "rs-introspect.toml", ("introspect = false", "introspect = true"))
    d.serve_ours("rs", "rs-introspect.toml")
    r = d.client("get", "/temp")
    assert r.rc == 0 and r.out.startswith("2.05 "), r
    refused(d.client("post", "/temp", "5"), "4.05")
    # Junk shaped like an authz-info request (16 random bytes as a "reference token"): refused by us.
    junk = d.post_raw("/authz-info", "a3" + "0150" + "0123456789abcdef" * 2 + "182848" + "00" * 8 + "182b4142")
    assert junk.startswith("4.00"), junk


def test_their_client_their_as_our_rs(d: Direction) -> None:
    """Direction 3: their client, token from their AS, at our RS."""
    d.start_theirs("as")
    d.serve_ours("rs")
    assert_their_flow(d.their_client())


def test_our_as_their_rs(d: Direction) -> None:
    """Direction 4: our client gets a token at our AS and uses it at their RS."""
    d.start_theirs("rs")
    d.serve_ours("as")
    ok(d.client("get", "/temp"), "2.05 0 C")
    ok(d.client("get", "/config"), "2.05 Default")
    ok(d.client("post", "/config", "Custom"), "2.04")
    ok(d.client("get", "/config"), "2.05 Custom")
    refused(d.client("get", "/helloWorld"), "4.03")


def test_their_client_our_as_and_rs(d: Direction) -> None:
    """Direction 5: their client against our AS and our RS."""
    d.serve_ours("as")
    d.serve_ours("rs")
    assert_their_flow(d.their_client())


# -- DTLS profile (see the module docstring for what cannot work) ----------------------------------


def test_dtls_reference_alone(dd: Direction) -> None:
    """Control: their DTLS client → their DTLS AS + RS."""
    dd.start_theirs()
    assert_their_flow(dd.their_client())


def test_dtls_their_client_their_as_our_rs_takes_the_token(dd: Direction) -> None:
    """Their DTLS client's token (POSTed as application/ace+cbor, the token itself) at our RS: 2.01.
    Their DTLS handshake with our RS after it is refused by tinydtls (module docstring)."""
    dd.start_theirs("as")
    dd.serve_ours("rs", "rs-dtls.toml")
    r = dd.their_client()
    assert peer.their_answers(r.out)[:1] == [("2.01", None)], r  # our RS answers 2.01 only to a token it took


def test_dtls_our_as_their_rs_takes_the_token(dd: Direction) -> None:
    """Our client gets a coap_dtls token from our AS over DTLS (coaps 5689: ``dtls_port``) and their
    RS takes it at /authz-info: 2.01. Our DTLS handshake with their RS cannot complete (module docstring)."""
    dd.start_theirs("rs")
    dd.serve_ours("as", "as-dtls.toml")
    r = dd.flow_steps("client-dtls.toml", "/temp")
    steps = r.out.splitlines()
    assert r.rc == 0 and "token 2.01" in steps and "authz-info 2.01" in steps, r
    assert "Successfully processed token" in (dd.dir / "logs" / "rs.log").read_text()
