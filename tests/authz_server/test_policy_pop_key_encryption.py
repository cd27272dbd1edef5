"""``ace policy add-rs --pop-key-encryption/--encryption-key`` (issue 16): a sign1 or mac0 RS with
the OSCORE or DTLS profile is accepted once its secret PoP keys are encrypted to it (the RS's public
key, or a shared key), refused otherwise (RFC 9203 §3.2, RFC 8747 §3.3); ``list`` shows the choice;
a key that does not fit the choice is refused with one line and exit 2, nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from policy_support import policy

from ace.cbor.labels import Alg, Curve, KeyType
from ace.cli.keyfiles import save_key
from ace.store.base import RsRecord
from ace.store.sqlite import SqliteAsStore
from ace.tokens.crypto import generate
from ace.tokens.keys import CoseKey, symmetric_key

RS_PAIR = generate(Curve.P_256, kid=b"rs-ecdh")
AS_PAIR = generate(Curve.P_256, kid=b"as", alg=int(Alg.ES256))
MAC = symmetric_key(bytes(range(32)), kid=b"mac")


@pytest.fixture
def d(tmp_path: Path) -> Path:
    (tmp_path / "as.toml").write_text('[as]\nstore = "as.db"\n')
    save_key(tmp_path / "as-sign.key", generate(Curve.P_256, kid=b"as"))
    save_key(tmp_path / "rs-ecdh.key", RS_PAIR)
    save_key(tmp_path / "rs-ecdh.pub", RS_PAIR.public())
    save_key(tmp_path / "shared.key", symmetric_key(bytes(range(16)), kid=b"sh"))
    save_key(tmp_path / "nokid.key", symmetric_key(bytes(range(16))))
    return tmp_path


def rs_of(d: Path, audience: str = "rs1") -> RsRecord | None:
    with SqliteAsStore(d / "as.db") as store:
        return store.get_rs(audience)


SIGN1 = ["add-rs", "rs1", "--token-key", "{d}/as-sign.key", "--kind", "sign1", "--profiles", "coap_oscore,coap_dtls"]


@pytest.mark.parametrize(("key", "how", "stored"), [
    ("rs-ecdh.key", None, "rs_public"),  # the pair given: only its public part is kept
    ("rs-ecdh.pub", "rs_public", "rs_public"),
    ("shared.key", None, "shared"),
])
def test_signed_rs_accepted_with_an_encryption(d: Path, capsys: pytest.CaptureFixture[str], key: str,
                                               how: str | None, stored: str) -> None:
    extra = ["--pop-key-encryption", how] if how else []
    assert policy(d, *[a.format(d=d) for a in SIGN1], "--encryption-key", d / key, *extra) == 0
    rs = rs_of(d)
    assert rs is not None and rs.token_kind == "sign1" and rs.pop_key_encryption == stored
    assert rs.encryption_key is not None and not (rs.encryption_key.has_private and stored == "rs_public")
    capsys.readouterr()
    assert policy(d, "list") == 0
    out = capsys.readouterr().out
    assert f"pop_key_encryption={stored} (kid {rs.encryption_key.kid.hex()})" in out  # type: ignore[union-attr]
    assert bytes(range(16)).hex() not in out and (RS_PAIR.d or b"").hex() not in out
    assert policy(d, "add-rs", "rs1", "--lifetime", "60") == 0  # an update keeps it
    assert rs_of(d) == RsRecord(**{**{f: getattr(rs, f) for f in RsRecord.__dataclass_fields__},  # type: ignore[arg-type]
                                   "token_lifetime": 60})


def test_back_to_none_is_refused_while_a_profile_needs_it(d: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert policy(d, *[a.format(d=d) for a in SIGN1], "--encryption-key", d / "rs-ecdh.pub") == 0
    before = rs_of(d)
    assert policy(d, "add-rs", "rs1", "--pop-key-encryption", "none") == 2
    assert "leaves tokens readable" in capsys.readouterr().err and rs_of(d) == before
    assert policy(d, "add-rs", "rs1", "--pop-key-encryption", "none", "--profiles", "coap_edhoc_oscore",
                  "--auth-key", d / "rs-ecdh.key") == 0
    after = rs_of(d)
    assert after is not None and after.pop_key_encryption == "none" and after.encryption_key is None


REFUSED = [
    ([], "leaves tokens readable"),
    (["--pop-key-encryption", "rs_public"], "--pop-key-encryption rs_public needs --encryption-key"),
    (["--encryption-key", "{d}/shared.key", "--pop-key-encryption", "rs_public"], "not a symmetric key"),
    (["--encryption-key", "{d}/rs-ecdh.pub", "--pop-key-encryption", "shared"], "needs a symmetric encryption_key"),
    (["--encryption-key", "{d}/nokid.key"], "needs a kid"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[m for _, m in REFUSED])
def test_refused_with_one_line(d: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert policy(d, *[a.format(d=d) for a in SIGN1 + args]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ace: error: ") and message in line, line
    assert not (d / "as.db").exists() or rs_of(d) is None


UNFIT = [  # (id, the AS's token key file, kind, the encryption key, what the refusal says)
    ("ed25519 signing key", "as-sign.key", "sign1", generate(Curve.ED25519, kid=b"ed").public(), "key agreement"),
    ("ES256 key", "as-sign.key", "sign1", generate(Curve.P_256, kid=b"es", alg=int(Alg.ES256)).public(), "ES256"),
    ("20-byte shared key", "as-sign.key", "sign1", symmetric_key(bytes(20), kid=b"s20"), "does not fit"),
    ("MAC key reused", "mac.key", "mac0", MAC, "is the token key"),
    ("AS signing key reused", "as-sign.key", "sign1", AS_PAIR, "is the token key"),
    ("kid of the token key", "as-sign.key", "sign1", generate(Curve.P_256, kid=b"as").public(), "kid"),
    ("X25519 low-order point", "as-sign.key", "sign1",
     CoseKey(kty=KeyType.OKP, crv=Curve.X25519, x=bytes(32), kid=b"x0"), "not a valid point"),
    ("P-256 point off the curve", "as-sign.key", "sign1",
     CoseKey(kty=KeyType.EC2, crv=Curve.P_256, x=bytes(32), y=bytes(31) + b"\x01", kid=b"p0"), "not a valid point"),
]


@pytest.mark.parametrize(("token_key", "kind", "enc", "message"), [u[1:] for u in UNFIT], ids=[u[0] for u in UNFIT])
def test_encryption_key_that_cannot_serve_refused(d: Path, capsys: pytest.CaptureFixture[str], token_key: str,
                                                  kind: str, enc: CoseKey, message: str) -> None:
    """A key the AS cannot encrypt to (not P-256/X25519, an alg of its own, no AEAD size) or that is
    the token key (one key, one use; the RS finds each by kid) is refused now, not a 5.00 at /token."""
    save_key(d / "as-sign.key", AS_PAIR, overwrite=True)
    save_key(d / "mac.key", MAC)
    save_key(d / "enc.key", enc)
    assert policy(d, "add-rs", "rs1", "--token-key", d / token_key, "--kind", kind,
                  "--profiles", "coap_oscore,coap_dtls", "--encryption-key", d / "enc.key") == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ace: error: ") and message in line, line
    assert not (d / "as.db").exists() or rs_of(d) is None
