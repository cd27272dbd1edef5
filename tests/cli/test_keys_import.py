"""``ace keys import``: COSE_Key files (mode 0600) from given key bytes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ace.cli.keyfiles import load_key
from ace.cli.main import main
from ace.tokens.keys import KeyType

ACE_JAVA_TOKEN_KEY = "a1a2a30405060708090a0b0c0d0e0f10"


def test_import_symmetric_with_alg_no_kid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "aud1-token.key"
    assert main(["keys", "import", "--alg", "AES-CCM-16-64-128", "--symmetric", ACE_JAVA_TOKEN_KEY, str(out)]) == 0
    key = load_key(out)
    assert key.kty is KeyType.SYMMETRIC and key.k == bytes.fromhex(ACE_JAVA_TOKEN_KEY)
    assert key.kid is None and key.alg == 10
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert ACE_JAVA_TOKEN_KEY not in capsys.readouterr().out


@pytest.mark.parametrize(("kid_args", "kid"), [(["--kid", "0a0b"], b"\x0a\x0b"), (["--kid-text", "rs1"], b"rs1")])
def test_import_kid(tmp_path: Path, kid_args: list[str], kid: bytes) -> None:
    out = tmp_path / "k.key"
    assert main(["keys", "import", *kid_args, "--symmetric", "00" * 32, str(out)]) == 0
    assert load_key(out).kid == kid and len(load_key(out).k or b"") == 32


def test_import_ec2_from_d_and_from_xy(tmp_path: Path) -> None:
    priv = ec.generate_private_key(ec.SECP256R1())
    d = priv.private_numbers().private_value.to_bytes(32, "big")
    nums = priv.public_key().public_numbers()
    x, y = nums.x.to_bytes(32, "big"), nums.y.to_bytes(32, "big")
    assert main(["keys", "import", "--ec2-d", d.hex(), "--alg", "ES256", str(tmp_path / "p.key")]) == 0
    key = load_key(tmp_path / "p.key")
    assert (key.d, key.x, key.y, key.alg) == (d, x, y, -7)
    assert main(["keys", "import", "--ec2-xy", x.hex(), y.hex(), str(tmp_path / "p.pub")]) == 0
    pub = load_key(tmp_path / "p.pub")
    assert pub.d is None and (pub.x, pub.y) == (x, y)


@pytest.mark.parametrize(("argv", "says"), [
    (["--symmetric", "0011"], "16, 24 or 32 bytes"),
    (["--symmetric", "zz" * 16], "must be hex"),
    (["--ec2-xy", "11" * 32, "22" * 32], "not a P-256 key"),
    (["--ec2-d", "11" * 31], "not a P-256 key"),
    (["--alg", "AES-CCM-99", "--symmetric", "00" * 16], "unknown alg"),
])
def test_import_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                  says: str) -> None:
    assert main(["keys", "import", *argv, str(tmp_path / "k.key")]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("ace: error: ") and says in line, line
    assert not (tmp_path / "k.key").exists()


def test_import_refuses_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "k.key"
    assert main(["keys", "import", "--symmetric", "00" * 16, str(out)]) == 0
    assert main(["keys", "import", "--symmetric", "11" * 16, str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["keys", "import", "--force", "--symmetric", "11" * 16, str(out)]) == 0
    assert load_key(out).k == bytes.fromhex("11" * 16)
