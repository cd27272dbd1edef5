"""Self-check of the cose-js peer harness.

Messages are built here directly with cbor2 + cryptography (not with the ace
package) so that the harness is validated independently of our COSE code.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from cosejs_peer import (
    CoseJsRejected,
    cosejs_available,
    cosejs_verify,
    ensure_installed,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.hmac import HMAC
from vectors import VECTORS_DIR

PAYLOAD = b"ACE interop payload \x00\x01\xff"
KID = b"kid-1"
VECTORS = VECTORS_DIR / "cose_examples"

TAGS = {"sign1": 18, "mac0": 17, "encrypt0": 16}

# COSE algorithm identifiers (RFC 9053).
ES256 = -7
HMAC_256_64 = 4
HMAC_256_256 = 5
AES_CCM_16_64_128 = 10
AES_CCM_16_128_256 = 31


@pytest.fixture(scope="module", autouse=True)
def _cosejs_installed() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not available")
    ensure_installed()
    assert cosejs_available()


# --------------------------------------------------------------------------
# Message builders (cbor2 + cryptography only)
# --------------------------------------------------------------------------


def _encode(kind: str, body: list[Any], tagged: bool) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(TAGS[kind], body) if tagged else body)


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def _es256_sign(
    priv: ec.EllipticCurvePrivateKey, protected: bytes, payload: bytes, aad: bytes
) -> bytes:
    to_be_signed = cbor2.dumps(["Signature1", protected, aad, payload])
    r, s = decode_dss_signature(priv.sign(to_be_signed, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _hmac256(key: bytes, protected: bytes, payload: bytes, aad: bytes) -> bytes:
    mac = HMAC(key, hashes.SHA256())
    mac.update(cbor2.dumps(["MAC0", protected, aad, payload]))
    return mac.finalize()


class Built:
    """A COSE message plus what is needed to verify and tamper with it."""

    def __init__(
        self,
        kind: str,
        key: dict[str, bytes],
        body: list[Any],
        aad: bytes = b"",
    ) -> None:
        self.kind = kind
        self.key = key
        self.body = body
        self.aad = aad

    def encode(self, *, tagged: bool = True) -> bytes:
        return _encode(self.kind, self.body, tagged)

    def tampered(self, index: int) -> bytes:
        body = list(self.body)
        body[index] = _flip_last(body[index])
        return _encode(self.kind, body, True)


def build_sign1(aad: bytes = b"") -> Built:
    priv = ec.generate_private_key(ec.SECP256R1())
    numbers = priv.public_key().public_numbers()
    key = {"x": numbers.x.to_bytes(32, "big"), "y": numbers.y.to_bytes(32, "big")}
    protected = cbor2.dumps({1: ES256})
    sig = _es256_sign(priv, protected, PAYLOAD, aad)
    return Built("sign1", key, [protected, {4: KID}, PAYLOAD, sig], aad)


def build_mac0(alg: int = HMAC_256_64, aad: bytes = b"") -> Built:
    k = bytes(range(32))
    protected = cbor2.dumps({1: alg})
    tag = _hmac256(k, protected, PAYLOAD, aad)
    if alg == HMAC_256_64:
        tag = tag[:8]
    return Built("mac0", {"k": k}, [protected, {4: KID}, PAYLOAD, tag], aad)


def build_encrypt0(alg: int = AES_CCM_16_64_128, aad: bytes = b"") -> Built:
    key_len, tag_len = {AES_CCM_16_64_128: (16, 8), AES_CCM_16_128_256: (32, 16)}[alg]
    k = bytes(range(0x40, 0x40 + key_len))
    iv = bytes(range(0xA0, 0xA0 + 13))
    protected = cbor2.dumps({1: alg})
    enc_structure = cbor2.dumps(["Encrypt0", protected, aad])
    ciphertext = AESCCM(k, tag_length=tag_len).encrypt(iv, PAYLOAD, enc_structure)
    return Built("encrypt0", {"k": k}, [protected, {4: KID, 5: iv}, ciphertext], aad)


BUILDERS: dict[str, Callable[[], Built]] = {
    "sign1-es256": build_sign1,
    "mac0-hmac256/64": lambda: build_mac0(HMAC_256_64),
    "mac0-hmac256/256": lambda: build_mac0(HMAC_256_256),
    "encrypt0-aes-ccm-16-64-128": lambda: build_encrypt0(AES_CCM_16_64_128),
    "encrypt0-aes-ccm-16-128-256": lambda: build_encrypt0(AES_CCM_16_128_256),
}
# Index of the element to corrupt: signature / tag / ciphertext.
TAMPER_INDEX = {"sign1": 3, "mac0": 3, "encrypt0": 2}


# --------------------------------------------------------------------------
# Locally built messages
# --------------------------------------------------------------------------


@pytest.mark.parametrize("tagged", [True, False], ids=["tagged", "untagged"])
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_valid_message_verifies(name: str, tagged: bool) -> None:
    built = BUILDERS[name]()
    assert cosejs_verify(built.kind, built.encode(tagged=tagged), built.key) == PAYLOAD


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_tampered_signature_tag_or_ciphertext_rejected(name: str) -> None:
    built = BUILDERS[name]()
    with pytest.raises(CoseJsRejected):
        cosejs_verify(built.kind, built.tampered(TAMPER_INDEX[built.kind]), built.key)


@pytest.mark.parametrize("name", ["sign1-es256", "mac0-hmac256/64"])
def test_tampered_payload_rejected(name: str) -> None:
    built = BUILDERS[name]()
    with pytest.raises(CoseJsRejected):
        cosejs_verify(built.kind, built.tampered(2), built.key)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_wrong_key_rejected(name: str) -> None:
    built = BUILDERS[name]()
    other = build_sign1().key if built.kind == "sign1" else {"k": bytes(b ^ 85 for b in built.key["k"])}
    with pytest.raises(CoseJsRejected):
        cosejs_verify(built.kind, built.encode(), other)


@pytest.mark.parametrize("kind", ["sign1", "mac0", "encrypt0"])
def test_external_aad(kind: str) -> None:
    aad = b"\x01external-aad"
    built = {
        "sign1": lambda: build_sign1(aad=aad),
        "mac0": lambda: build_mac0(aad=aad),
        "encrypt0": lambda: build_encrypt0(aad=aad),
    }[kind]()
    assert cosejs_verify(kind, built.encode(), built.key, external_aad=aad) == PAYLOAD
    with pytest.raises(CoseJsRejected):
        cosejs_verify(kind, built.encode(), built.key)


def test_wrong_tag_for_kind_rejected() -> None:
    built = build_mac0()
    as_sign1 = cbor2.dumps(cbor2.CBORTag(18, built.body))
    with pytest.raises(CoseJsRejected, match="tag"):
        cosejs_verify("mac0", as_sign1, built.key)
    # Tag 98 (COSE_Sign) must not be accepted when asking for Sign1.
    sign1 = build_sign1()
    with pytest.raises(CoseJsRejected, match="tag"):
        cosejs_verify("sign1", cbor2.dumps(cbor2.CBORTag(98, sign1.body)), sign1.key)


def test_trailing_bytes_rejected() -> None:
    built = build_mac0()
    with pytest.raises(CoseJsRejected, match="exactly one"):
        cosejs_verify("mac0", built.encode() + b"\x00", built.key)


def test_alg_in_unprotected_header_only() -> None:
    # Empty protected header (h''), alg + kid unprotected.
    k = bytes(range(32))
    tag = _hmac256(k, b"", PAYLOAD, b"")[:8]
    msg = cbor2.dumps(cbor2.CBORTag(17, [b"", {1: HMAC_256_64, 4: KID}, PAYLOAD, tag]))
    assert cosejs_verify("mac0", msg, {"k": k}) == PAYLOAD


def test_quirk_protected_header_is_reencoded() -> None:
    """cose-js decodes and RE-ENCODES the protected header before building
    Sig_structure/MAC_structure/Enc_structure instead of using the transmitted
    bytes. A correctly signed message whose protected header is not in
    preferred (shortest-form) encoding is therefore rejected by cose-js.
    Our messages must use deterministic encoding to interoperate."""
    priv = ec.generate_private_key(ec.SECP256R1())
    numbers = priv.public_key().public_numbers()
    key = {"x": numbers.x.to_bytes(32, "big"), "y": numbers.y.to_bytes(32, "big")}
    protected = bytes.fromhex("a1013806")  # {1: -7} with a non-shortest int
    assert cbor2.loads(protected) == {1: ES256}
    sig = _es256_sign(priv, protected, PAYLOAD, b"")
    msg = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, PAYLOAD, sig]))
    with pytest.raises(CoseJsRejected, match="Signature missmatch"):
        cosejs_verify("sign1", msg, key)


# --------------------------------------------------------------------------
# cose-wg Examples
# --------------------------------------------------------------------------

EXAMPLES = [
    "ecdsa-examples/ecdsa-sig-01.json",
    "aes-ccm-examples/aes-ccm-enc-01.json",
    "aes-ccm-examples/aes-ccm-enc-02.json",
    "hmac-examples/HMac-enc-05.json",
    "hmac-examples/HMac-enc-01.json",
    "hmac-examples/HMac-enc-04.json",
    "sign1-tests/sign-pass-01.json",
    "sign1-tests/sign-pass-02.json",
    "sign1-tests/sign-pass-03.json",
    "sign1-tests/sign-fail-01.json",
    "sign1-tests/sign-fail-02.json",
    "sign1-tests/sign-fail-03.json",
    "sign1-tests/sign-fail-04.json",
    "mac0-tests/HMac-01.json",
    "mac0-tests/mac-pass-01.json",
    "mac0-tests/mac-pass-02.json",
    "mac0-tests/mac-pass-03.json",
    "mac0-tests/mac-fail-01.json",
    "mac0-tests/mac-fail-02.json",
    "mac0-tests/mac-fail-03.json",
    "mac0-tests/mac-fail-04.json",
]


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _example_request(
    example: dict[str, Any],
) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    inp = example["input"]
    if "sign0" in inp:
        jwk = inp["sign0"]["key"]
        assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
        return "sign1", {"x": _b64url(jwk["x"]), "y": _b64url(jwk["y"])}, inp["sign0"]
    section_name = "mac0" if "mac0" in inp else "encrypted"
    section = inp[section_name]
    jwk = section["recipients"][0]["key"]
    assert jwk["kty"] == "oct"
    kind = "mac0" if section_name == "mac0" else "encrypt0"
    return kind, {"k": _b64url(jwk["k"])}, section


@pytest.mark.parametrize("relpath", EXAMPLES)
def test_cose_wg_example(relpath: str) -> None:
    path = VECTORS / relpath
    if not path.is_file():
        pytest.skip(f"vector {path} not present")
    example = json.loads(path.read_text())
    kind, key, section = _example_request(example)
    message = bytes.fromhex(example["output"]["cbor"])
    aad = bytes.fromhex(section.get("external", ""))
    if example.get("fail"):
        with pytest.raises(CoseJsRejected):
            cosejs_verify(kind, message, key, external_aad=aad)
    else:
        payload = cosejs_verify(kind, message, key, external_aad=aad)
        assert payload == example["input"]["plaintext"].encode()
