"""``ace token mint`` (a token for a device with no AS running) and ``ace token upload`` (POST to an
RS's /authz-info, here over real sockets on ::1): output, the kccs cnf kept byte for byte, the
ariel-os preset's shape and limits, one-line errors and the documented exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import stat
import time
from pathlib import Path

import cbor2
import pytest
from deployment import running_deployment, store_of
from support import TIMEOUT

from ace.cli.keyfiles import load_key
from ace.cli.main import main
from ace.tokens.cwt import KeyRing, verify_token
from ace.tokens.hashing import token_hash


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    for argv in (["--kid-text", "rs1", str(tmp_path / "rs.key")],
                 ["--size", "32", "--alg", "AES-CCM-16-128-256", "--kid-text", "as", str(tmp_path / "ariel.key")],
                 ["--type", "ec2", "--kid", "2b", str(tmp_path / "client.key"), "--public-out",
                  str(tmp_path / "client.pub")],
                 ["--type", "ec2", "--kid", "0a", str(tmp_path / "rsauth.key"), "--public-out",
                  str(tmp_path / "rsauth.pub")]):
        assert run(capsys, "keys", "gen", *argv)[0] == 0
    client = load_key(tmp_path / "client.pub").to_map()
    (tmp_path / "client.ccs").write_bytes(cbor2.dumps({2: "dev", 8: {1: client}}))
    (tmp_path / "client-plain.ccs").write_text(cbor2.dumps({8: {1: client}}).hex())
    return tmp_path


def mint(capsys: pytest.CaptureFixture[str], keys: Path, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "token", "mint", "--rs-key", str(keys / "rs.key"), "--audience", "rs1", "--scope", "r_temp",
               "--client-cred", str(keys / "client.ccs"), "--rs-cred", str(keys / "rsauth.pub"), *extra)


def test_mint_out_is_private(capsys: pytest.CaptureFixture[str], keys: Path) -> None:
    """``--out`` writes the token 0600 like the other secret files, also over a wider existing file."""
    (keys / "old.cwt").write_bytes(b"x")
    (keys / "old.cwt").chmod(0o644)
    for name in ("token.cwt", "old.cwt"):
        old = os.umask(0o022)
        try:
            code, _, err = mint(capsys, keys, "--out", str(keys / name), "--output", "hex")
        finally:
            os.umask(old)
        assert code == 0, err
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600


def test_mint_edhoc_json(capsys: pytest.CaptureFixture[str], keys: Path) -> None:
    code, out, err = mint(capsys, keys, "--out", str(keys / "token.cwt"))
    assert code == 0 and err == ""
    report = json.loads(out)
    token = bytes.fromhex(report["token"])
    assert (keys / "token.cwt").read_bytes() == token and report["token_hash"] == token_hash(token).hex()
    assert set(report) >= {"rs_cnf", "edhoc_info", "response"} and "cnf" not in report
    claims = verify_token(token, KeyRing([load_key(keys / "rs.key")]), audience="rs1", clock=time.time)
    assert claims.cnf is not None and claims.cnf.raw == (keys / "client.ccs").read_bytes()  # type: ignore[union-attr]
    assert claims.edhoc_info is not None
    assert cbor2.loads(bytes.fromhex(report["edhoc_info"]))[0] == claims.edhoc_info.session_id


def test_mint_ariel_os(capsys: pytest.CaptureFixture[str], keys: Path) -> None:
    aif = "8182652f74656d7001"
    code, out, _ = run(capsys, "token", "mint", "--rs-key", str(keys / "ariel.key"), "--audience", "rs1", "--scope",
                       aif, "--aif", "--client-cred", str(keys / "client-plain.ccs"), "--rs-cred",
                       str(keys / "rsauth.pub"), "--preset", "ariel-os", "--output", "hex")
    assert code == 0
    token = bytes.fromhex(out.strip())
    assert token[0] == 0xD0 and len(token) <= 256


def test_mint_refusals_are_one_line(capsys: pytest.CaptureFixture[str], keys: Path) -> None:
    code, out, err = run(capsys, "token", "mint", "--rs-key", str(keys / "rs.key"), "--audience", "rs1", "--scope",
                         "r_temp", "--client-cred", str(keys / "client-plain.ccs"), "--rs-cred",
                         str(keys / "rsauth.pub"), "--preset", "ariel-os")
    assert code == 1 and out == "" and err.count("\n") == 1 and "alg" in err
    code, _, err = mint(capsys, keys, "--lifetime", "0")
    assert code == 2 and err.count("\n") == 1
    code, _, err = run(capsys, "token", "mint", "--rs-key", str(keys / "nope.key"), "--audience", "rs1", "--scope",
                       "r")
    assert code == 2 and err.count("\n") == 1


async def test_upload_to_a_running_rs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    async with running_deployment(tmp_path / "d") as flow:
        token, _ = flow.token()
        (tmp_path / "t.cwt").write_bytes(token)
        to_rs = cbor2.dumps({40: secrets.token_bytes(8), 43: b"\x21"}).hex()
        ok = await asyncio.to_thread(run, capsys, "token", "upload", "--rs", flow.authz_info_uri, "--token",
                                     f"@{tmp_path / 't.cwt'}", "--to-rs", to_rs, "--timeout", str(TIMEOUT))
        assert ok[0] == 0 and json.loads(ok[1])["code"] == "2.01", ok
        assert set(cbor2.loads(bytes.fromhex(json.loads(ok[1])["payload"]))) == {42, 44}  # nonce2, id2
        code, _, err = await asyncio.to_thread(run, capsys, "token", "upload", "--rs", flow.authz_info_uri,
                                               "--token", "a0", "--timeout", str(TIMEOUT))
    assert code == 1 and err.count("\n") == 1 and "refused" in err
    code, _, err = run(capsys, "token", "upload", "--rs", "coap://[::1]/authz-info", "--token", "a0",
                       "--as-context", str(tmp_path / "x.toml"))
    assert code == 2 and "--state" in err
    (tmp_path / "x.seq").write_text("{}")
    code, _, err = run(capsys, "token", "upload", "--rs", "coap://[::1]/authz-info", "--token", "a0",
                       "--as-context", str(tmp_path / "x.toml"), "--state", str(tmp_path / "x.seq"))
    assert code == 2 and "as.db" in err and err.count("\n") == 1  # only the AS's store reserves its numbers


async def test_minted_edhoc_token_uploaded_then_used(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``ace token mint`` → ``ace token upload`` over the AS–RS OSCORE context (WF §2) to a running RS
    → an EDHOC initiator (lakers) names the uploaded token by its session_id (WF §9) and gets the resource."""
    import lakers
    from lakers_peer import LakersInitiator

    from ace.cli.config import load_oscore_secret, write_oscore_secret
    from ace.coap import edhoc

    async with running_deployment(tmp_path / "d") as flow:
        d = flow.d.directory
        rs_ccs = edhoc.ccs_bytes(load_key(d / "rs1-edhoc.key").public())
        (tmp_path / "rs.ccs").write_bytes(rs_ccs)
        ctx = await flow.plain()
        peer = LakersInitiator(ctx, flow.rs_uri, rs_ccs, kid=b"\x2b")
        (tmp_path / "client.ccs").write_bytes(peer.cred_i)
        code, out, err = run(capsys, "token", "mint", "--rs-key", str(d / "rs1-token.key"), "--audience", "rs1",
                             "--scope", "r_temp", "--client-cred", str(tmp_path / "client.ccs"), "--rs-cred",
                             str(tmp_path / "rs.ccs"), "--out", str(tmp_path / "t.cwt"))
        assert code == 0, err
        session_id = cbor2.loads(bytes.fromhex(json.loads(out)["edhoc_info"]))[0]
        as_side = tmp_path / "as-rs.oscore.toml"  # the AS's side of the RS's context with it
        write_oscore_secret(as_side, load_oscore_secret(d / "rs-as.oscore.toml").mirrored())
        mine = flow.as_server.rs_security("rs1")  # the running AS's side of the same context
        assert mine is not None
        before = mine.new_sequence_number()
        ok = await asyncio.to_thread(run, capsys, "token", "upload", "--rs", flow.authz_info_uri, "--token",
                                     f"@{tmp_path / 't.cwt'}", "--as-context", str(as_side), "--state",
                                     str(d / "as.db"), "--timeout", str(TIMEOUT))  # the AS's store reserves
        assert ok[0] == 0 and json.loads(ok[1])["code"] == "2.01", ok
        reserved = store_of(flow).load_sequence_number(mine.name)  # the CLI's numbers are below it
        assert reserved is not None and before < reserved <= mine.new_sequence_number()  # never the same nonce
        assert (await peer.message_1()).code == (2, 4)
        m3 = peer.message_3([lakers.EADItem(2, True, session_id)])  # draft-11 preset: EAD Session ID 2
        assert (await peer.send_message_3(m3)).code == (2, 4)
        got = await peer.get(peer.oscore_context(), "/temp")
        assert (got.code, got.protected) == ((2, 5), True) and got.payload  # over the derived context
