"""The ace command line: keys gen/show and token inspect (exit codes, JSON, redaction)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ace.cli.keyfiles import load_key
from ace.cli.main import main
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial
from ace.tokens.crypto import Kind
from ace.tokens.cwt import issue_token

MS = bytes.fromhex("f9af838368e353e78888e1426bd94e6f")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert run(capsys, "keys", "gen", "--kid-text", "rs1", str(tmp_path / "sym.key"))[0] == 0
    assert run(capsys, "keys", "gen", "--type", "ec2", "--kid", "0a", str(tmp_path / "ec.key"),
               "--public-out", str(tmp_path / "ec.pub"))[0] == 0
    assert run(capsys, "keys", "gen", "--type", "ed25519", str(tmp_path / "ed.key"))[0] == 0
    assert run(capsys, "keys", "gen", "--size", "32", "--alg", "AES-CCM-16-128-256", str(tmp_path / "k32.key"))[0] == 0
    return tmp_path


def token_for(path: Path, kind: Kind = Kind.AEAD, aud: str = "rs1", exp: float | None = None) -> bytes:
    claims = AccessTokenClaims(aud=aud, exp=exp or time.time() + 600, cti=b"\x07", scope="r_temp",
                               cnf=OscoreCnf(OscoreInputMaterial(id=b"\x01", ms=MS)))
    return issue_token(claims, load_key(path), kind=kind)


def test_key_files_are_0600_and_typed(keys: Path) -> None:
    for name in ("sym.key", "ec.key", "ec.pub", "ed.key", "k32.key"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    assert load_key(keys / "sym.key").kid == b"rs1"
    assert load_key(keys / "ec.pub").d is None
    assert load_key(keys / "k32.key").alg == 31 and len(load_key(keys / "k32.key").k or b"") == 32


def test_keys_gen_refuses_overwrite(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "gen", str(keys / "sym.key")]) == 2
    assert "exists" in capsys.readouterr().err


def test_keys_show_redacts(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "keys", "show", str(keys / "sym.key"))
    k = load_key(keys / "sym.key").k or b""
    assert code == 0 and "redacted 16 B" in out and k.hex() not in out
    code, out = run(capsys, "keys", "show", "--json", str(keys / "ec.key"))
    assert json.loads(out) == {"kty": "EC2", "kid": "0a", "alg": None, "crv": "P_256", "private": True}


def test_inspect_without_key_shows_headers(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = token_for(keys / "sym.key")
    code, out = run(capsys, "token", "inspect", token.hex())
    assert code == 0
    assert "COSE_Encrypt0 (untagged)" in out and "alg AES_CCM_16_64_128" in out
    assert "h'727331'" in out  # kid "rs1"
    assert "give --key" in out


@pytest.mark.parametrize(("keyfile", "kind"), [("sym.key", Kind.AEAD), ("ec.pub", Kind.SIGN), ("sym.key", Kind.MAC),
                                                ("ed.key", Kind.SIGN), ("k32.key", Kind.AEAD)])
def test_inspect_with_key_verifies(keys: Path, capsys: pytest.CaptureFixture[str], keyfile: str, kind: Kind) -> None:
    signer = "ec.key" if keyfile == "ec.pub" else keyfile
    token = token_for(keys / signer, kind)
    code, out = run(capsys, "token", "inspect", token.hex(), "--key", str(keys / keyfile), "--audience", "rs1")
    assert code == 0, out
    assert "verification: OK" in out
    assert '"r_temp"' in out and "3 / aud /" in out
    assert MS.hex() not in out and "redacted 16 B" in out


def test_inspect_json_and_failure_exit_code(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = token_for(keys / "sym.key", aud="rs2")
    code, out = run(capsys, "token", "inspect", token.hex(), "--key", str(keys / "sym.key"), "--audience", "rs1",
                    "--json")
    report = json.loads(out)
    assert code == 5  # verified, but not for this audience (ace.cli.token_cmd: exit codes)
    assert report["verified"] is True and report["audience_ok"] is False
    assert "audience" in report["error"] and "4.03" in report["error"]
    assert report["structure"] == "COSE_Encrypt0" and report["unprotected"]["4"] == b"rs1".hex()


def test_inspect_wrong_key_and_expired(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = token_for(keys / "sym.key")
    code, out = run(capsys, "token", "inspect", token.hex(), "--key", str(keys / "k32.key"))
    assert code == 1 and "FAILED" in out
    old = token_for(keys / "sym.key", exp=time.time() - 3600)
    code, out = run(capsys, "token", "inspect", old.hex(), "--key", str(keys / "sym.key"))
    assert code == 4 and "expired since" in out and "verification: OK" in out  # time is its own verdict


def test_inspect_show_secrets_and_file_input(keys: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = token_for(keys / "sym.key")
    (keys / "tok.bin").write_bytes(token)
    (keys / "tok.hex").write_text(token.hex() + "\n")
    for arg in ("@" + str(keys / "tok.bin"), "@" + str(keys / "tok.hex")):
        code, out = run(capsys, "token", "inspect", arg, "--key", str(keys / "sym.key"), "--show-secrets")
        assert code == 0 and MS.hex() in out


def test_inspect_garbage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "inspect", "a0"]) == 1
    assert "not a token" in capsys.readouterr().err


def test_console_script_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "ace.cli.main", "--help"], capture_output=True, text=True,
                         timeout=60, check=True)
    assert "token" in out.stdout and "keys" in out.stdout
