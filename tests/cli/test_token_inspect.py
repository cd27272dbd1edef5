"""``ace token inspect``: verify and decrypt first, claims always shown with the right key, time
validity as a verdict of its own (``--at``), and distinct exit codes: 0 valid, 1 not a token or
verification failed, 2 usage, 4 verified but expired / not yet valid, 5 verified but another audience.

The tokens are RFC 8392 Appendix A.5 (Encrypt0, expired since 2015) and A.6 (nested: Sign1 inside
Encrypt0), with the keys of A.2.1 and A.2.3, from tests/vectors/cwt_rfc8392.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ace.cli.main import main
from tests.vectors import load_vector

V: dict[str, Any] = load_vector("cwt_rfc8392.json")["vectors"]
A5, A6 = V["A.5_encrypted_cwt"]["hex"], V["A.6_nested_cwt"]["hex"]
EXP, NBF = "2015-10-05T17:09:04Z", "2015-10-04T07:49:04Z"  # A.1 claims: exp 1444064944, nbf 1443944944
INSIDE = "1443944945"  # one second after nbf


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name, vector in (("sym", "A.2.1_key_symmetric_128"), ("ec", "A.2.3_key_ecdsa_p256"),
                         ("sym256", "A.2.2_key_symmetric_256")):
        path = tmp_path / f"{name}.key"
        path.write_bytes(bytes.fromhex(V[vector]["hex"]))
        os.chmod(path, 0o600)
        out[name] = str(path)
    return out


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["token", "inspect", *argv])
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_expired_rfc8392_a5_shows_claims_and_exits_4(keys: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, A5, "--key", keys["sym"])
    assert code == 4, out
    assert "verification: OK" in out
    assert '"erikw"' in out and '"coap://light.example.com"' in out and "h'0b71'" in out  # the claims
    assert f"time: expired since {EXP}" in out
    assert "give --key" not in out


def test_at_judges_another_time(keys: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, A5, "--key", keys["sym"], "--at", INSIDE, "--audience", "coap://light.example.com")
    assert code == 0, out
    assert f"valid from {NBF} until {EXP}" in out and "audience: OK" in out
    code, out, _ = run(capsys, A5, "--key", keys["sym"], "--at", "2015-10-01T00:00:00Z")
    assert code == 4 and f"not yet valid until {NBF}" in out and "judged at 2015-10-01T00:00:00Z" in out
    code, out, _ = run(capsys, A5, "--key", keys["sym"], "--at", "2015-10-05T17:09:04+00:00")  # exp itself
    assert code == 4 and "expired since" in out


def test_json_report(keys: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, A5, "--key", keys["sym"], "--json")
    report = json.loads(out)
    assert code == 4
    assert report["verified"] is True and report["error"] is None
    assert report["claims"]["2"] == "erikw"
    assert report["time"]["valid"] is False and report["time"]["detail"] == f"expired since {EXP}"


def test_wrong_key_exits_1(keys: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, A5, "--key", keys["sym256"])
    assert code == 1 and "verification: FAILED" in out and "not decrypted" in out
    assert "time:" not in out  # no claims, no time verdict


def test_audience_mismatch_exits_5(keys: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, A5, "--key", keys["sym"], "--at", INSIDE, "--audience", "coap://other")
    assert code == 5 and "audience: MISMATCH" in out and "verification: OK" in out


def test_nested_token_with_both_keys(keys: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, A6, "--key", keys["sym"], "--key", keys["ec"], "--at", INSIDE)
    assert code == 0 and '"erikw"' in out, out


def test_without_key_decodes_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, A5)
    assert code == 0 and "give --key" in out and "verification: not done" in out


@pytest.mark.parametrize("argv", [[A5, "--at", "yesterday"], ["@/nonexistent/token"], ["zz"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_not_a_token_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "a0")
    assert code == 1 and "not a token" in err


def test_exit_code_as_a_process(keys: dict[str, str]) -> None:
    out = subprocess.run([sys.executable, "-m", "ace.cli.main", "token", "inspect", A5, "--key", keys["sym"]],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 4 and "expired since" in out.stdout and "Traceback" not in out.stderr
