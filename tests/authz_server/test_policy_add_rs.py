"""``ace policy add-rs`` and ``list`` with the per-RS settings of issue 11, run in-process
(``ace.cli.main.main``) on a hand-written as.toml: each option stored, a re-run on a registered
audience changes only what it gives (old: it replaced the record, dropping its RS <-> AS OSCORE
context and auth_key), and what it refuses it refuses with one line and exit 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from policy_support import policy, rs_of

from ace.cbor.labels import Curve
from ace.cli.config import write_oscore_secret
from ace.cli.keyfiles import save_key
from ace.store.base import ACE_JAVA, RFC_FORMAT, RsRecord, TokenFormat
from ace.store.sqlite import SqliteAsStore
from ace.tokens.crypto import generate
from ace.tokens.keys import symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

RS_AS = OscoreContextParams(master_secret=bytes.fromhex("5152530405060708090a0b0c0d0e0f10"), sender_id=b"\x01",
                     recipient_id=b"\x77")


@pytest.fixture
def d(tmp_path: Path) -> Path:
    (tmp_path / "as.toml").write_text('[as]\nstore = "as.db"\n')
    save_key(tmp_path / "aud1.key", symmetric_key(bytes.fromhex("a1a2a30405060708090a0b0c0d0e0f10")))
    save_key(tmp_path / "ec.key", generate(Curve.P_256, kid=b"rs1"))
    write_oscore_secret(tmp_path / "rs-as.oscore.toml", RS_AS)
    return tmp_path


def test_new_rs_keeps_the_rfc_defaults(d: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert policy(d, "add-rs", "aud1", "--token-key", d / "aud1.key") == 0
    assert capsys.readouterr().out.strip() == "registered RS aud1"
    rs = rs_of(d)
    assert (rs.rs_id, rs.token_kind, rs.token_alg, rs.profiles, rs.token_lifetime, rs.oscore, rs.format) == (
        "aud1", "encrypt0", None, (2,), 3600, None, RFC_FORMAT)


def test_every_option_is_stored_and_listed(d: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert policy(d, "add-rs", "aud1", "--token-key", d / "aud1.key", "--rs-id", "rs1", "--oscore",
                  d / "rs-as.oscore.toml", "--alg", "AES-CCM-16-64-128", "--lifetime", "30", "--cose-tag",
                  "--cwt-tag", "--no-sub", "--time-unit", "ms", "--exi", "--exi-cti", "text", "--salt-len", "1",
                  "--profiles", "coap_oscore,coap_dtls") == 0
    rs = rs_of(d)
    assert (rs.rs_id, rs.oscore, rs.token_alg, rs.token_lifetime, rs.profiles) == ("rs1", RS_AS, 10, 30, (2, 1))
    assert rs.format == TokenFormat(cose_tag=True, cwt_tag=True, sub=False, time_unit="ms", exi=True,
                                    exi_cti="text", salt_len=1)
    capsys.readouterr()
    assert policy(d, "list") == 0
    [line] = capsys.readouterr().out.splitlines()
    for part in ("rs     aud1  tokens=encrypt0  lifetime=30s", "rs_id=rs1", "alg=10", "profiles=coap_oscore,coap_dtls",
                 "oscore=yes", "cose_tag=yes", "cwt_tag=yes", "sub=no", "time_unit=ms", "exi=yes", "exi_cti=text",
                 "salt_len=1"):
        assert part in line, part
    assert RS_AS.master_secret.hex() not in line


def test_peer_ace_java_and_an_option_that_wins(d: Path) -> None:
    assert policy(d, "add-rs", "aud1", "--token-key", d / "aud1.key", "--peer", "ace-java", "--rs-id", "rs1") == 0
    assert rs_of(d).format == ACE_JAVA
    assert policy(d, "add-rs", "aud1", "--peer", "ace-java", "--no-exi", "--salt-len", "as") == 0
    assert rs_of(d).format == TokenFormat(cose_tag=True, sub=False, time_unit="ms", exi=False, exi_cti="text")


def test_rerun_changes_only_what_it_gives(d: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert policy(d, "add-rs", "aud1", "--token-key", d / "aud1.key", "--rs-id", "rs1", "--oscore",
                  d / "rs-as.oscore.toml", "--auth-key", d / "ec.key", "--profiles", "coap_oscore,coap_edhoc_oscore",
                  "--peer", "ace-java") == 0
    before = rs_of(d)
    capsys.readouterr()
    assert policy(d, "add-rs", "aud1", "--lifetime", "60", "--sub") == 0  # old: --token-key required, all else lost
    assert capsys.readouterr().out.strip() == "updated RS aud1: sub, token_lifetime"
    after = rs_of(d)
    assert after.oscore == RS_AS and after.auth_key == before.auth_key is not None and after.rs_id == "rs1"
    assert after == RsRecord(**{**{f: getattr(before, f) for f in RsRecord.__dataclass_fields__},  # type: ignore[arg-type]
                                "token_lifetime": 60, "format": TokenFormat(**{
                                    **{f: getattr(ACE_JAVA, f) for f in TokenFormat.__dataclass_fields__},
                                    "sub": True})})
    assert policy(d, "add-rs", "aud1") == 0 and rs_of(d) == after
    assert capsys.readouterr().out.strip() == "updated RS aud1: nothing changed"


REFUSED = [
    (["add-rs", "aud2"], "not registered yet: give --token-key"),
    (["add-rs", "aud2", "--token-key", "{d}/aud1.key", "--alg", "ES256"], "cannot make encrypt0 tokens with alg -7"),
    (["add-rs", "aud2", "--token-key", "{d}/aud1.key", "--kind", "sign1"], "--kind sign1 leaves tokens readable"),
    (["add-rs", "aud2", "--token-key", "{d}/aud1.key", "--oscore", "{d}/rs-as.oscore.toml"],
     "already RS aud1's"),
    (["add-rs", "aud2", "--token-key", "{d}/aud1.key", "--lifetime", "0"], "--lifetime must be positive"),
    (["add-rs", "aud2", "--token-key", "{d}/aud1.key", "--rs-id", ""], "--rs-id must not be empty"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_refused_with_one_line(d: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert policy(d, "add-rs", "aud1", "--token-key", d / "aud1.key", "--oscore", d / "rs-as.oscore.toml") == 0
    capsys.readouterr()
    assert policy(d, *[a.format(d=d) for a in args]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ace: error: ") and message in line, line
    with SqliteAsStore(d / "as.db") as store:
        assert store.get_rs("aud2") is None


@pytest.mark.parametrize(("args", "message"), [(["--salt-len", "65"], "--salt-len takes 0 to 64"),
                                               (["--salt-len", "x"], "--salt-len takes"),
                                               (["--alg", "AES-999"], "--alg takes"),
                                               (["--time-unit", "milliseconds"], "invalid choice")])
def test_bad_values_exit_with_usage(d: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                    message: str) -> None:
    assert policy(d, "add-rs", "aud1", "--token-key", d / "aud1.key", *args) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("ace: error: ") and message in line, line
    assert not (d / "as.db").exists() or not SqliteAsStore(d / "as.db").list_rs()
