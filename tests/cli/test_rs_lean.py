"""``ace rs`` loads only what its configuration uses (issue 14, small boards): an RS offering OSCORE only, built and
started the way ``ace rs`` does in a fresh interpreter, has imported no DTLS or EDHOC glue, no AS, client or
other command's code (no ``ace.authz_server`` module at all, even with its introspection client and TRL link
built); one offering all three profiles has (the check can fail), but not their token handling, which loads with
its first DTLS token or EDHOC flow. Nor has it the token-checking code (the messages besides a 4.01's hints, PoP
keys, COSE, CWT, claims, the profiles): that loads with the first token, which then works as ever."""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ace.cli.init_cmd import init_deployment
from ace.cli.main import _rs_args, build_parser

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import asyncio, sys
from ace.cli.main import _rs_args, build_parser
from ace.cli import roles
from ace.cli.config import load_rs
argv = sys.argv[1:]
args = _rs_args(argv) or build_parser(argv).parse_args(argv)  # as ace.cli.main.main
async def run():
    server = roles.build_rs(load_rs(args.config))
    await server.start()
    await server.stop()
asyncio.run(run())
print(" ".join(sorted(sys.modules)))
"""
GLUE = {"ace.coap.dtls", "ace.coap.dtls_flights", "ace.coap.rs_channels_dtls", "aiocoap.transports.tinydtls",
        "aiocoap.transports.tinydtls_server", "DTLSSocket", "ace.coap.edhoc", "ace.coap.edhoc_responders",
        "ace.coap.rs_channels_edhoc"}
OTHER_PROFILES = {"ace.profiles.dtls", "ace.profiles.edhoc"}
TOKEN_CHECKING = {"ace.messages", "ace.tokens.cnf", "ace.tokens.cose", "ace.tokens.cwt", "ace.tokens.claims",
                  "ace.tokens.encrypt", "ace.tokens.crypto", "ace.profiles.base", "ace.profiles.oscore",
                  "ace.rs.tokens", "ace.rs.outcomes", "ace.rs.introspection"}
OTHER_ROLES = {"ace.authz_server.token", "ace.coap.as_server", "ace.store.sqlite", "sqlite3", "ace.client.flow",
               "ace.coap.client", "ace.cli.demo_cmd", "ace.cli.policy_cmd", "ace.cli.init_cmd", "ace.cli.token_cmd",
               "ace.cli.fleet_cmd", "ace.cli.keys_cmd", "ace.cli.revoke_cmd", "ace.cli.trace"}


def free_port() -> int:
    """A free UDP port on ::1 whose successor (DTLS: port + 1) is free too."""
    for _ in range(100):
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET6,
                                                                                    socket.SOCK_DGRAM) as b:
            a.bind(("::1", 0))
            port = int(a.getsockname()[1])
            try:
                b.bind(("::1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port pair on ::1")


def loaded(tmp_path: Path, profiles: str, *, observe_trl: bool = False) -> set[str]:
    rs_port, as_port = free_port(), free_port()
    d = init_deployment(tmp_path / "d", as_port=as_port, rs_port=rs_port)  # as_context and state set
    text = re.sub(r"^profiles = .*$", f"profiles = [{profiles}]", d.rs_config.read_text(), flags=re.M)
    if observe_trl:
        text = re.sub(r"^observe_trl = false", "observe_trl = true", text, flags=re.M)
    d.rs_config.write_text(text)
    done = subprocess.run([sys.executable, "-c", CHILD, "rs", "--config", str(d.rs_config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())  # the last line: what the child had imported


def test_an_oscore_only_rs_imports_no_dtls_edhoc_as_or_client_code(tmp_path: Path) -> None:
    modules = loaded(tmp_path, '"coap_oscore"')
    assert "ace.coap.rs_server" in modules and "ace.cli.serve_cmd" in modules
    assert not modules & GLUE
    assert not modules & OTHER_ROLES
    assert not {m for m in modules if m.startswith("ace.authz_server")}
    assert not modules & OTHER_PROFILES  # the registry imports a profile's module on first look-up
    assert not {m for m in modules if m.startswith("ace.client")}  # ace.cli.config: the client's code, lazily
    assert "ace.store.base" not in modules  # the stores' Protocols: type-only at the RS
    assert "ace.coap.introspect_client" in modules  # init sets as_context and state: the client is built
    assert not {"ace.coap.trl_client", "ace.trl_wire"} & modules  # no TRL observed: none of its code
    assert not {"argparse", "ace.cli.parser", "ace.cli.version"} & modules  # `rs --config PATH` needs no parser
    assert not {"ace.cli.config_as", "ace.cli.config_client"} & modules  # the AS's and client's file configs
    assert not modules & TOKEN_CHECKING  # loaded with the first token (cold start)
    assert "ace.hints" in modules  # what an unauthorized request's 4.01 carries (RFC 9200 §5.3) is loaded


FIRST_TOKEN = """
import asyncio, sys
from pathlib import Path
import aiocoap
from ace.cli import roles
from ace.cli.config import load_rs
config, payload = Path(sys.argv[1]), Path(sys.argv[2]).read_bytes()
async def run():
    server = roles.build_rs(load_rs(config))
    await server.start()
    before = set(sys.modules)
    client = await aiocoap.Context.create_client_context(transports=["udp6"])
    try:
        uri = f"coap://[{server.bind[0]}]:{server.bind[1]}"
        denied = await client.request(aiocoap.Message(code=aiocoap.GET, uri=uri + "/temp")).response
        post = aiocoap.Message(code=aiocoap.POST, uri=uri + "/authz-info", payload=payload, content_format=19)
        answer = await client.request(post).response
    finally:
        await client.shutdown()
    (binding,) = server.core.bindings
    server.authorize(binding.label, "/temp", "GET")  # the token's scope allows it
    await server.stop()
    print(denied.code, answer.code, " ".join(sorted(before)), " ".join(sorted(sys.modules)), sep="|")
asyncio.run(run())
"""


def test_the_first_token_loads_the_token_checking_code_and_works(tmp_path: Path) -> None:
    from ace.authz_server.token import TokenEndpoint
    from ace.cbor.labels import AceProfile, ContentFormat
    from ace.messages import AccessTokenRequest, AuthzInfoRequest
    from ace.store.base import ClientRecord, Grant
    from ace.store.sqlite import SqliteAsStore

    rs_port, as_port = free_port(), free_port()
    d = init_deployment(tmp_path / "d", as_port=as_port, rs_port=rs_port)
    d.rs_config.write_text(re.sub(r"^profiles = .*$", 'profiles = ["coap_oscore"]', d.rs_config.read_text(),
                                  flags=re.M))
    with SqliteAsStore(d.directory / "as.db") as store:  # the AS core issues the token, as the bench does
        client = ClientRecord(client_id="board-1", profiles=(int(AceProfile.COAP_OSCORE),))
        store.put_client(client)
        store.add_grant(Grant(client_id="board-1", audience="rs1", scope="r_temp", default=True))
        request = AccessTokenRequest(audience="rs1", scope="r_temp").encode()
        token = TokenEndpoint(store, clock=time.time).issue(request, client, int(ContentFormat.ACE_CBOR))
    payload = tmp_path / "authz-info.cbor"
    payload.write_bytes(AuthzInfoRequest(access_token=token.response.access_token, nonce1=secrets.token_bytes(8),
                                         ace_client_recipientid=b"\x40\x01").encode())
    done = subprocess.run([sys.executable, "-c", FIRST_TOKEN, str(d.rs_config), str(payload)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    denied, created, before, after = done.stdout.splitlines()[-1].split("|")
    assert denied.startswith("4.01") and created.startswith("2.01")  # hints first, then the token bound
    assert not set(before.split()) & TOKEN_CHECKING
    assert set(after.split()) >= TOKEN_CHECKING


@pytest.mark.parametrize("argv", [["rs", "--config", "rs.toml"], ["-v", "rs", "--config", "a b.toml"],
                                  ["-vv", "--verbose", "rs", "--config=rs.toml"], ["rs", "--config", ""]])
def test_the_rs_command_line_parsed_without_argparse_is_what_argparse_makes_of_it(argv: list[str]) -> None:
    fast = _rs_args(argv)
    assert fast is not None
    assert vars(fast) == vars(build_parser(argv).parse_args(argv))


@pytest.mark.parametrize("argv", [["rs"], ["rs", "--help"], ["rs", "--config", "a", "-v"], ["rs", "--conf", "a"],
                                  ["rs", "--config", "-a"], ["--version"], ["as", "--config", "a"], ["-x", "rs"]])
def test_any_other_command_line_goes_to_argparse(argv: list[str]) -> None:
    assert _rs_args(argv) is None


def test_an_oscore_only_rs_observing_the_trl_imports_no_as_code(tmp_path: Path) -> None:
    modules = loaded(tmp_path, '"coap_oscore"', observe_trl=True)
    assert {"ace.coap.trl_client", "ace.coap.introspect_client", "ace.trl_wire"} <= modules
    assert not {m for m in modules if m.startswith("ace.authz_server")}
    assert not {"ace.coap.trl", "ace.coap.introspect"} & modules  # the AS's resources


def test_an_rs_offering_every_profile_imports_their_glue(tmp_path: Path) -> None:
    modules = loaded(tmp_path, '"coap_oscore", "coap_dtls", "coap_edhoc_oscore"')
    assert {"ace.coap.rs_channels_dtls", "ace.coap.rs_channels_edhoc", "ace.coap.dtls", "ace.coap.edhoc"} <= modules
    assert {"ace.coap.edhoc_server", "aiocoap.transports.tinydtls_server"} <= modules  # EDHOC site, DTLS socket
    assert not modules & OTHER_ROLES


ALL_PROFILES_RS = """
import asyncio, sys
from pathlib import Path
from ace.cli import roles
from ace.cli.config import load_rs
async def run():
    server = roles.build_rs(load_rs(Path(sys.argv[1])))
    await server.start()
    loop = asyncio.get_running_loop()
    while (line := (await loop.run_in_executor(None, sys.stdin.readline)).strip()):
        print(line, " ".join(sorted(sys.modules)), sep="|", flush=True)
    await server.stop()
asyncio.run(run())
"""
TOKEN_HANDLING = TOKEN_CHECKING - {"ace.profiles.oscore", "ace.rs.introspection"} | OTHER_PROFILES | {"ace.rs.edhoc"}


async def test_an_all_profiles_rs_loads_token_handling_with_its_first_dtls_token_and_edhoc_flow(
        tmp_path: Path) -> None:
    import asyncio

    from ace.cbor.labels import AceProfile
    from ace.cli import roles
    from ace.cli.config import load_as, load_client
    from ace.client.flow import Done, ResourceRequest

    rs_port, as_port = free_port(), free_port()
    d = init_deployment(tmp_path / "d", as_port=as_port, rs_port=rs_port)  # rs.toml: all three profiles
    rs = subprocess.Popen([sys.executable, "-c", ALL_PROFILES_RS, str(d.rs_config)], cwd=ROOT, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    as_server = roles.build_as(load_as(d.as_config))

    async def modules(step: str) -> set[str]:
        assert rs.stdin is not None and rs.stdout is not None
        rs.stdin.write(step + "\n")
        rs.stdin.flush()
        line = await asyncio.wait_for(asyncio.to_thread(rs.stdout.readline), 30)
        name, _, names = line.strip().partition("|")
        assert name == step, (line, rs.stderr.read() if rs.stderr and rs.poll() is not None else "")
        return set(names.split())

    async def get_temp(profile: int) -> None:
        runner = roles.build_client(load_client(d.client_config), profile=profile)
        await runner.start()
        try:
            got = await asyncio.wait_for(runner.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp")), 30)
        finally:
            await runner.stop()
        assert isinstance(got, Done) and got.response.code == (2, 5), got

    await as_server.start()
    try:
        at_start = await modules("start")
        await get_temp(int(AceProfile.COAP_DTLS))  # token to /authz-info, then DTLS on port + 1 (RFC 9202)
        after_dtls = await modules("dtls")
        await get_temp(int(AceProfile.COAP_EDHOC_OSCORE))  # the token in EAD_3 (EP §4.2), then OSCORE
        after_edhoc = await modules("edhoc")
    finally:
        await as_server.stop()
        if rs.stdin is not None:
            rs.stdin.close()
        try:
            rs.wait(timeout=30)
        finally:
            rs.kill()
    assert {"ace.coap.edhoc", "ace.coap.edhoc_server", "ace.coap.dtls"} <= at_start  # what aiocoap calls
    assert not at_start & TOKEN_HANDLING
    assert not at_start & OTHER_ROLES
    assert after_dtls >= {"ace.profiles.dtls", "ace.messages", "ace.tokens.cnf", "ace.tokens.cwt", "ace.rs.tokens"}
    assert after_edhoc >= TOKEN_HANDLING


def test_the_port_offsets_known_without_a_profile_are_each_profiles_own() -> None:
    from ace.profiles import PORT_OFFSETS, PROFILES

    assert set(PORT_OFFSETS) == set(PROFILES)
    assert all(PORT_OFFSETS[n] == PROFILES[n].port_offsets for n in PROFILES)
