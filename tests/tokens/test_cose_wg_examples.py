"""The cose-wg/Examples vectors (Sign1, Mac0, Encrypt0 and CWT/) through ace's COSE layer.

Every JSON file under ``cose_examples/`` is one test case. The key is built from the file's
JWK-style ``input`` key (base64url or ``*_hex`` fields), ``output.cbor`` is parsed with
``cose.parse`` and opened with ``cose.open_message`` (with the file's external AAD, if any):

- pass files must yield the file's plaintext;
- ``"fail": true`` files must raise a ``RemoteError`` from parse or open_message.

Files using algorithms or structures ace does not implement (AES-CBC-MAC, COSE_Sign/Mac/
Encrypt with real recipients, key wrap) are skipped with the reason. The ``ecdh-direct-examples/``
files (COSE_Encrypt/COSE_Mac with one ECDH-ES or ECDH-SS + HKDF-256 recipient) have their own
tests at the end (``test_ecdh_*``): decryption, exact re-encryption, KDF intermediates. In the Mac0 and
Encrypt0 files a single recipient with alg "direct" only names the shared key; the message
on the wire is still a COSE_Mac0/COSE_Encrypt0.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest
from vectors import VECTORS_DIR

from ace.cbor.labels import Alg, Curve, KeyType
from ace.errors import DecodeError, RemoteError, VerificationError
from ace.tokens import cose, ecdh
from ace.tokens.crypto import Kind, public_matches_private
from ace.tokens.encrypt import Recipient, decrypt, encrypt_to
from ace.tokens.keyring import KeyRing
from ace.tokens.keys import CoseKey

EXAMPLES_DIR = VECTORS_DIR / "cose_examples"

# cose-wg/Examples algorithm names -> COSE algorithm ids ace implements (RFC 9053)
SUPPORTED_ALGS: dict[str, int] = {
    "ES256": Alg.ES256,
    "EdDSA": Alg.EDDSA,
    "HS256/64": Alg.HMAC_256_64,
    "HS256": Alg.HMAC_256_256,
    "HS384": Alg.HMAC_384_384,
    "HS512": Alg.HMAC_512_512,
    "A128GCM": Alg.A128GCM,
    "A192GCM": Alg.A192GCM,
    "A256GCM": Alg.A256GCM,
    # that repository writes AES-CCM-<L>-<key bits>/<tag bits>
    "AES-CCM-16-128/64": Alg.AES_CCM_16_64_128,
    "AES-CCM-16-256/64": Alg.AES_CCM_16_64_256,
    "AES-CCM-64-128/64": Alg.AES_CCM_64_64_128,
    "AES-CCM-64-256/64": Alg.AES_CCM_64_64_256,
    "AES-CCM-16-128/128": Alg.AES_CCM_16_128_128,
    "AES-CCM-16-256/128": Alg.AES_CCM_16_128_256,
    "AES-CCM-64-128/128": Alg.AES_CCM_64_128_128,
    "AES-CCM-64-256/128": Alg.AES_CCM_64_128_256,
}
# the structure member of ``input`` -> the single-recipient message kind it describes
STRUCTURES = {"sign0": Kind.SIGN, "mac0": Kind.MAC, "encrypted": Kind.AEAD}
MULTI_STRUCTURES = {"sign": "COSE_Sign", "mac": "COSE_Mac", "enveloped": "COSE_Encrypt"}
CWT_TAG_FOR_KIND = {Kind.SIGN: 18, Kind.MAC: 17, Kind.AEAD: 16}


def _example_files() -> list[Path]:
    files = sorted(EXAMPLES_DIR.glob("**/*.json"))
    assert files, f"no cose-wg example files under {EXAMPLES_DIR} (set ACE_VECTORS)"
    return files


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _field(jwk: dict[str, Any], name: str) -> bytes | None:
    """A binary JWK member, given either base64url (``x``) or hex (``x_hex``)."""
    if f"{name}_hex" in jwk:
        return bytes.fromhex(jwk[f"{name}_hex"])
    if name in jwk:
        return _b64url(jwk[name])
    return None


def key_from_jwk(jwk: dict[str, Any]) -> CoseKey:
    """A CoseKey from the JWK-ish key of a cose-wg example (no alg: the message decides)."""
    kid = jwk["kid"].encode() if "kid" in jwk else None
    kty = jwk["kty"]
    if kty == "oct":
        k = _field(jwk, "k")
        assert k is not None
        return CoseKey(kty=KeyType.SYMMETRIC, kid=kid, k=k)
    if kty == "EC":
        if jwk["crv"] != "P-256":
            pytest.skip(f"curve {jwk['crv']} is not supported by ace")
        return CoseKey(kty=KeyType.EC2, crv=Curve.P_256, kid=kid,
                       x=_field(jwk, "x"), y=_field(jwk, "y"), d=_field(jwk, "d"))
    if kty == "OKP":
        if jwk["crv"] != "Ed25519":
            pytest.skip(f"OKP curve {jwk['crv']} is not supported by ace for signatures")
        return CoseKey(kty=KeyType.OKP, crv=Curve.ED25519, kid=kid, x=_field(jwk, "x"), d=_field(jwk, "d"))
    raise AssertionError(f"unknown kty {kty!r}")


def _declared_alg(section: dict[str, Any]) -> str:
    for bucket in ("protected", "unprotected"):
        alg = section.get(bucket, {}).get("alg")
        if alg is not None:
            return str(alg)
    return str(section["alg"])


def _plaintext(inp: dict[str, Any]) -> bytes:
    if "plaintext_hex" in inp:
        return bytes.fromhex(inp["plaintext_hex"])
    return str(inp["plaintext"]).encode()


class Case:
    """What one example file asks for, or why it is skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        self.fail = bool(self.data.get("fail", False))
        self.skip_reason: str | None = None
        inp: dict[str, Any] = self.data["input"]
        if path.parent.name == "ecdh-direct-examples":
            self.skip_reason = "ECDH direct recipient: tested by test_ecdh_*"
            return
        multi = [MULTI_STRUCTURES[m] for m in MULTI_STRUCTURES if m in inp]
        members = [m for m in STRUCTURES if m in inp]
        if multi or len(members) != 1:
            self.skip_reason = f"{', '.join(multi) or 'unknown structure'}: multi-signer/recipient not supported"
            return
        self.member = members[0]
        self.kind = STRUCTURES[self.member]
        section: dict[str, Any] = inp[self.member]
        self.alg_name = _declared_alg(section)
        if self.alg_name not in SUPPORTED_ALGS:
            self.skip_reason = f"alg {self.alg_name} is not supported by ace"
            return
        self.alg = SUPPORTED_ALGS[self.alg_name]
        if self.kind is Kind.SIGN:
            self.jwk: dict[str, Any] = section["key"]
        else:
            recipients = section.get("recipients", [])
            if len(recipients) != 1:
                self.skip_reason = f"{len(recipients)} recipients: only a single direct key is supported"
                return
            ralg = recipients[0].get("unprotected", {}).get("alg") or recipients[0].get("protected", {}).get("alg")
            if ralg != "direct":
                self.skip_reason = f"recipient alg {ralg}: key wrap/agreement is not supported"
                return
            self.jwk = recipients[0]["key"]
        self.external = bytes.fromhex(section.get("external", ""))
        self.plaintext = _plaintext(inp)
        self.output = bytes.fromhex(self.data["output"]["cbor"])


def _case_params(select: Callable[[Case], bool] = lambda case: True) -> list[Any]:
    return [
        pytest.param(path, id=path.relative_to(EXAMPLES_DIR).with_suffix("").as_posix())
        for path in _example_files()
        if select(Case(path))
    ]


def _redo_protected(case: Case) -> bool:
    """The "Redo protected" pass files: an empty protected bucket re-sent as h'a0'."""
    return bool(case.data["input"].get("failures", {}).get("ChangeProtected") == "a0")


def _expected_error(case: Case) -> type[RemoteError]:
    """What a negative file must raise: a foreign CBOR tag is malformed input (4.00);
    a changed tag/signature or an unknown alg fails verification (4.01)."""
    failures = case.data["input"].get("failures", {})
    if "ChangeCBORTag" in failures:
        return DecodeError
    if "ChangeTag" in failures or "ChangeAttr" in failures:
        return VerificationError
    return RemoteError


@pytest.mark.parametrize("path", _case_params())
def test_cose_wg_example(path: Path) -> None:
    case = Case(path)
    if case.skip_reason is not None:
        pytest.skip(case.skip_reason)
    key = key_from_jwk(case.jwk)
    if case.fail:
        with pytest.raises(_expected_error(case)):
            cose.open_message(cose.parse(case.output), key, external_aad=case.external)
        return
    msg = cose.parse(case.output)
    assert msg.kind is case.kind
    assert msg.alg == case.alg  # whether it sits in the protected or the unprotected bucket
    if _redo_protected(case):
        assert msg.protected_bytes == b"\xa0" and dict(msg.protected) == {}
        # RFC 9052 §4.4: the structure holds h'' when there are no protected attributes
        assert cose.open_message(msg, key, external_aad=case.external) == case.plaintext
        return
    assert cose.open_message(msg, key, external_aad=case.external) == case.plaintext


def _redo_pass(case: Case) -> bool:
    return case.skip_reason is None and not case.fail and _redo_protected(case)


def _plain_pass(case: Case) -> bool:
    return case.skip_reason is None and not case.fail and not _redo_protected(case)


@pytest.mark.parametrize("path", _case_params(_redo_pass))
def test_cose_wg_redo_protected_is_over_the_empty_bstr(path: Path) -> None:
    """The "Redo protected" files: with h'' on the wire too, the same signature/tag verifies."""
    case = Case(path)
    item = cbor2.loads(case.output)
    assert isinstance(item, cbor2.CBORTag) and item.value[0] == b"\xa0"
    item.value[0] = b""
    msg = cose.parse(cbor2.dumps(item))
    assert cose.open_message(msg, key_from_jwk(case.jwk), external_aad=case.external) == case.plaintext


@pytest.mark.parametrize("path", _case_params(_plain_pass))
def test_cose_wg_example_needs_its_external_aad(path: Path) -> None:
    """Pass files with external AAD fail without it; files without it fail with some."""
    case = Case(path)
    key = key_from_jwk(case.jwk)
    wrong_aad = b"" if case.external else b"\x00"
    with pytest.raises(VerificationError):
        cose.open_message(cose.parse(case.output), key, external_aad=wrong_aad)


def test_cose_wg_signing_keys_are_consistent() -> None:
    """The private halves in the Sign1 files belong to their public keys (key builder check)."""
    for path in _example_files():
        case = Case(path)
        if case.skip_reason is None and case.kind is Kind.SIGN:
            assert public_matches_private(key_from_jwk(case.jwk)), path.name


# --- ecdh-direct-examples: COSE_Encrypt/COSE_Mac with one ECDH-ES/SS + HKDF-256 recipient ---

ECDH_FILES = sorted((EXAMPLES_DIR / "ecdh-direct-examples").glob("*.json"))
ECDH_RECIPIENT_ALGS = {"ECDH-ES": Alg.ECDH_ES_HKDF_256, "ECDH-SS": Alg.ECDH_SS_HKDF_256}


class EcdhCase:
    def __init__(self, path: Path) -> None:
        self.data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        inp = self.data["input"]
        self.structure = "enveloped" if "enveloped" in inp else "mac"
        section = inp[self.structure]
        self.content_alg = SUPPORTED_ALGS[section["protected"]["alg"]]
        recipient = section["recipients"][0]
        self.recipient_alg = int(ECDH_RECIPIENT_ALGS[recipient["protected"]["alg"]])
        self.key = key_from_jwk(recipient["key"])
        self.sender = key_from_jwk(recipient["sender_key"]) if "sender_key" in recipient else None
        self.rng_stream = [bytes.fromhex(h) for h in inp["rng_stream"]]
        self.plaintext = _plaintext(inp)
        self.output = bytes.fromhex(self.data["output"]["cbor"])
        self.intermediates = self.data["intermediates"]

    def rng(self) -> Callable[[int], bytes]:
        stream = list(self.rng_stream)

        def take(n: int) -> bytes:
            value = stream.pop(0)
            assert len(value) == n, (len(value), n)
            return value
        return take


def _ecdh_params(select: Callable[[EcdhCase], bool] = lambda case: True) -> list[Any]:
    assert ECDH_FILES, "no ecdh-direct-examples files"
    return [pytest.param(p, id=p.stem) for p in ECDH_FILES if select(EcdhCase(p))]


@pytest.mark.parametrize("path", _ecdh_params(lambda c: c.structure == "enveloped"))
def test_ecdh_example_decrypts(path: Path) -> None:
    case = EcdhCase(path)
    msg = cose.parse(case.output)
    assert msg.kind is Kind.AEAD and msg.cbor_tag == 96 and len(msg.recipients) == 1
    assert msg.recipients[0].alg == case.recipient_alg and msg.key_id == case.key.kid
    assert decrypt(case.output, KeyRing([case.key])) == case.plaintext
    assert cose.open_message(msg, case.key) == case.plaintext
    with pytest.raises(VerificationError):  # the public half alone cannot agree on the key
        cose.open_message(msg, case.key.public())


@pytest.mark.parametrize("path", _ecdh_params(lambda c: c.structure == "enveloped" and c.sender is None))
def test_ecdh_es_example_is_reproduced_exactly(path: Path) -> None:
    """The file's rng_stream (ephemeral scalar, then IV) injected: our bytes are the file's."""
    case = EcdhCase(path)
    to = Recipient(case.key.public(), alg=int(case.content_alg))
    assert encrypt_to(case.plaintext, to, rng=case.rng()) == case.output


@pytest.mark.parametrize("path", _ecdh_params())
def test_ecdh_example_intermediates(path: Path) -> None:
    """Secret (ECDH), COSE_KDF_Context and CEK of every file, the COSE_Mac ones included."""
    case = EcdhCase(path)
    inter = case.intermediates["recipients"][0]
    if case.sender is None:  # ECDH-ES: the first rng draw is the ephemeral scalar
        sender, nonce = ecdh.ephemeral_key(Curve.P_256, case.rng()), None
    else:  # ECDH-SS: the first rng draw is the PartyU nonce
        sender, nonce = case.sender, case.rng_stream[0]
    secret = ecdh.shared_secret(case.key, sender.public())
    assert secret == ecdh.shared_secret(sender, case.key.public()) == bytes.fromhex(inter["Secret_hex"])
    cek = bytes.fromhex(case.intermediates["CEK_hex"])
    protected = cose.alg_header(case.recipient_alg)
    assert ecdh.kdf_context(int(case.content_alg), len(cek), protected, nonce) == bytes.fromhex(inter["Context_hex"])
    assert ecdh.derive_key(secret, int(case.content_alg), len(cek), protected, nonce) == cek
