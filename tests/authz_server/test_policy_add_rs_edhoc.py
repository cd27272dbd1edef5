"""``ace policy add-rs`` with the EDHOC profile's options (issue 15): the preset, the RS's own CCS
(given, or made from --auth-key), the EDHOC_Information it publishes and its /authz-info URI for
token upload; what it refuses (an ariel-os RS with tokens coapcore cannot take, a bad map or URI),
with one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest
from policy_support import policy, rs_of

from ace.cbor.labels import Curve
from ace.cli.keyfiles import save_key
from ace.tokens.crypto import generate
from ace.tokens.keys import symmetric_key


@pytest.fixture
def d(tmp_path: Path) -> Path:
    (tmp_path / "as.toml").write_text('[as]\nstore = "as.db"\n')
    save_key(tmp_path / "aud1.key", symmetric_key(bytes(16)))
    save_key(tmp_path / "ariel.key", symmetric_key(bytes(32), alg=31))
    save_key(tmp_path / "ec.key", generate(Curve.P_256, kid=b"\x0a"))
    return tmp_path


def test_edhoc_options_stored_and_listed(d: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert policy(d, "add-rs", "aud1", "--token-key", d / "ariel.key", "--profiles", "edhoc", "--auth-key",
                  d / "ec.key", "--edhoc-preset", "ariel-os", "--edhoc-info", "a2 01 03 03 f5",
                  "--authz-info", "coap://[::1]:5683/authz-info") == 0
    rs = rs_of(d)
    assert rs.edhoc_preset == "ariel-os" and rs.upload_uri == "coap://[::1]:5683/authz-info"
    assert rs.edhoc_params == bytes.fromhex("a20103" "03f5")
    assert rs.auth_cred is not None and cbor2.loads(rs.auth_cred)[8][1][2] == b"\x0a"  # the CCS of --auth-key
    capsys.readouterr()
    assert policy(d, "list") == 0
    assert "edhoc_preset=ariel-os" in capsys.readouterr().out
    ccs = cbor2.dumps({2: "rs", 8: {1: cbor2.loads(rs.auth_cred)[8][1]}})
    (d / "rs.ccs").write_text(ccs.hex())
    assert policy(d, "add-rs", "aud1", "--auth-cred", d / "rs.ccs") == 0
    assert rs_of(d).auth_cred == ccs and rs_of(d).edhoc_preset == "ariel-os"  # the rest kept


@pytest.mark.parametrize(("args", "needle"), [
    (("--token-key", "aud1.key", "--edhoc-preset", "ariel-os"), "alg 31"),
    (("--token-key", "ariel.key", "--edhoc-preset", "ariel-os", "--kind", "sign1"), "cannot make sign1"),
    (("--token-key", "aud1.key", "--edhoc-info", "a100f5"), "session_id"),
    (("--token-key", "aud1.key", "--edhoc-info", "zz"), "hex CBOR map"),
    (("--token-key", "aud1.key", "--authz-info", "http://x/authz-info"), "coap://"),
])
def test_refusals(d: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], needle: str) -> None:
    argv = [d / a if a.endswith(".key") else a for a in args]
    assert policy(d, "add-rs", "aud1", "--profiles", "edhoc", "--auth-key", d / "ec.key", *argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
