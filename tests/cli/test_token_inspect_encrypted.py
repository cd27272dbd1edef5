"""``ace token inspect`` on issue 16's tokens: a Sign1 token nested in a COSE_Encrypt to the RS's
public key (ECDH-ES), and a Sign1 token whose cnf holds an Encrypted_COSE_Key. Without keys they
show as encrypted; with the RS's private key (and the AS's public key) they are opened; the PoP
key's secret stays redacted unless ``--show-secrets``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ace.cbor.labels import Curve
from ace.cli.main import main
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import encrypted_cnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import issue_token
from ace.tokens.encrypt import Recipient
from ace.tokens.keys import CoseKey, symmetric_key

NOW = 1_750_000_000
AS_KEY = generate(Curve.P_256, kid=b"as")
RS_KEY = generate(Curve.X25519, kid=b"rs1-ecdh")
POP = symmetric_key(bytes.fromhex("00112233445566778899aabbccddeeff"), kid=b"pop-1")
POP_HEX = POP.k.hex() if POP.k else ""


def _claims(**kw: object) -> AccessTokenClaims:
    return AccessTokenClaims(iss="as", aud="rs1", exp=NOW + 3600, iat=NOW, cti=b"\x07", scope="r", **kw)  # type: ignore[arg-type]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name, key in (("rs", RS_KEY), ("as", AS_KEY.public()), ("as_private", AS_KEY)):
        path = tmp_path / f"{name}.key"
        path.write_bytes(key.encode())
        os.chmod(path, 0o600)
        out[name] = str(path)
    return out


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["token", "inspect", *argv, "--at", str(NOW)])
    return code, capsys.readouterr().out


def test_encrypted_token_without_keys(capsys: pytest.CaptureFixture[str]) -> None:
    token = issue_token(_claims(), AS_KEY, kind=Kind.SIGN, encrypt_to=Recipient(RS_KEY.public()))
    code, out = run(capsys, token.hex())
    assert code == 0, out
    assert out.startswith("COSE_Encrypt (untagged)")
    assert "recipient: ECDH_ES_HKDF_256, kid 'rs1-ecdh', sender key on X25519" in out
    assert "claims: (encrypted; give --key to decrypt)" in out


def test_encrypted_token_opened_with_rs_and_as_keys(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    token = issue_token(_claims(), AS_KEY, kind=Kind.SIGN, encrypt_to=Recipient(RS_KEY.public()), tagged=True)
    code, out = run(capsys, token.hex(), "--key", files["rs"], "--key", files["as"], "--audience", "rs1")
    assert code == 0, out
    assert "COSE tag 96" in out and "inside: COSE_Sign1, alg ES256" in out and "verification: OK" in out
    code, out = run(capsys, token.hex(), "--key", files["rs"])  # the AS's key missing: the inner fails
    assert code == 1 and "verification: FAILED" in out
    code, out = run(capsys, token.hex(), "--key", files["as_private"], "--key", files["as"])  # not the RS's key
    assert code == 1 and "verification: FAILED" in out


def test_encrypted_cose_key_shown_and_opened(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    cnf = encrypted_cnf(POP, Recipient(RS_KEY.public()))
    token = issue_token(_claims(cnf=cnf), AS_KEY, kind=Kind.SIGN)
    code, out = run(capsys, token.hex())
    assert code == 0, out
    assert ("PoP key: Encrypted_COSE_Key, COSE_Encrypt, alg AES_CCM_16_64_128, recipient ECDH_ES_HKDF_256 (X25519),"
            " to kid 'rs1-ecdh' (give the RS's key with --key to open it)") in out
    code, out = run(capsys, token.hex(), "--key", files["rs"], "--key", files["as"])
    assert code == 0, out
    assert "verification: OK" in out and "2 / kid /: h'706f702d31'" in out and "redacted 16 B" in out
    assert POP_HEX not in out
    code, out = run(capsys, token.hex(), "--key", files["rs"], "--key", files["as"], "--show-secrets")
    assert POP_HEX in out and "redacted" not in out


def test_encrypted_cose_key_json_and_wrong_key(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    cnf = encrypted_cnf(POP, Recipient(RS_KEY.public()))
    token = issue_token(_claims(cnf=cnf), AS_KEY, kind=Kind.SIGN)
    code, out = run(capsys, token.hex(), "--key", files["rs"], "--json")
    report = json.loads(out)
    assert report["pop_key"]["structure"] == "COSE_Encrypt" and report["pop_key"]["kid"] == b"rs1-ecdh".hex()
    assert report["pop_key"]["key"]["-1"] == "<redacted 16 B>" and report["pop_key"]["error"] is None
    other = CoseKey.decode(generate(Curve.X25519, kid=b"rs1-ecdh").encode())
    path = Path(files["rs"]).with_name("other.key")
    path.write_bytes(other.encode())
    os.chmod(path, 0o600)
    code, out = run(capsys, token.hex(), "--key", str(path), "--key", files["as"])
    assert code == 0 and "not opened: " in out
