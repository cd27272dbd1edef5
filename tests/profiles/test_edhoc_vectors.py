"""RFC 9529 trace 2 (method 3, suite 2, P-256 static DH, kid) against lakers, aiocoap and
``ace.coap.edhoc``.

lakers-python 0.6.2 draws its ephemeral keys itself (``EdhocInitiator()`` takes no X, and the
responder makes Y inside ``prepare_message_2``), so it cannot replay the trace byte for byte.
Covered here: (1) the trace's CRED_R/CRED_I rebuilt from the keys by ``ccs_bytes`` byte for
byte, ID_CRED by kid and its compact form; (2) lakers' responder on the trace's message_1 (and
its refusal of the suite-6-only first message_1); (3) a lakers run with the trace's static keys,
credentials and connection ids: message sizes, ID_CRED as lakers reports them, our index
resolving ID_CRED_I; (4) the whole key schedule recomputed independently (ECDH, HKDF, AES-CCM
with ``cryptography``) from the trace's private keys: every intermediate of the trace, messages
2-4, PRK_out, PRK_exporter, OSCORE Master Secret/Salt and key update; (5) that same KDF applied
to lakers' own PRK_out gives lakers' exporter output, and aiocoap asks the exporter for exactly
the trace's Master Secret/Salt inputs and takes the trace's Sender IDs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

import cbor2
import lakers
import pytest
from aiocoap.edhoc import EdhocResponderContext
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from vectors import load_vector

from ace.cbor.labels import Curve, KeyType
from ace.coap import edhoc
from ace.tokens.keys import CoseKey

TRACE: dict[str, Any] = load_vector("edhoc_rfc9529.json")["trace_2"]
S: dict[str, str] = TRACE["summary"]


def h(name: str) -> bytes:
    return bytes.fromhex(S[name])


def entry(section: str, name: str) -> bytes:
    """One hex block of the trace (the raw value where the trace prints several encodings)."""
    found = [e for e in TRACE["entries"] if e["section"] == section and e["name"] == name]
    return bytes.fromhex(next((e for e in found if e.get("encoding") != "CBOR Data Item"), found[0])["hex"])


def bstr(b: bytes) -> bytes:
    encoded: bytes = cbor2.dumps(b)
    return encoded


def edhoc_kdf(prk: bytes, label: int, context: bytes, length: int) -> tuple[bytes, bytes]:
    """RFC 9528 §4.1.2: HKDF-Expand(PRK, info = (label, bstr context, length)); (info, output)."""
    info = cbor2.dumps(label) + bstr(context) + cbor2.dumps(length)
    return info, HKDFExpand(hashes.SHA256(), length, info).derive(prk)


def extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def ecdh(private: bytes, x: bytes, y: bytes) -> bytes:
    key = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1())
    peer = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1())
    return key.exchange(ec.ECDH(), peer.public_key())


def p256(kid: bytes, x: str, y: str) -> CoseKey:
    return CoseKey(kty=KeyType.EC2, crv=Curve.P_256, kid=kid, x=h(x), y=h(y))


R_KEY = p256(b"\x32", "PK_R_x", "PK_R_y")
I_KEY = p256(b"\x2b", "PK_I_x", "PK_I_y")


def test_trace_is_method_3_suite_2() -> None:
    assert (TRACE["method"], TRACE["cipher_suite"], S["METHOD"]) == (3, 2, "03")


@pytest.mark.parametrize(("key", "subject", "cred", "private"), [
    (R_KEY, "example.edu", "CRED_R", "SK_R"),
    (I_KEY, "42-50-31-FF-EF-37-32-39", "CRED_I", "SK_I"),
])
def test_credentials_rebuilt_byte_for_byte(key: CoseKey, subject: str, cred: str, private: str) -> None:
    assert edhoc.ccs_bytes(key, subject=subject) == h(cred)
    assert edhoc.key_from_ccs(h(cred)) == key
    pub = ec.derive_private_key(int.from_bytes(h(private), "big"), ec.SECP256R1()).public_key().public_numbers()
    assert (pub.x.to_bytes(32, "big"), pub.y.to_bytes(32, "big")) == (key.x, key.y)


def test_id_cred_by_kid_and_its_compact_form() -> None:
    assert edhoc.id_cred_by_kid(b"\x32") == h("ID_CRED_R")
    assert edhoc.id_cred_by_kid(b"\x2b") == h("ID_CRED_I")
    # PLAINTEXT_2 = C_R, ID_CRED_R compacted to the bare int -19 (0x32), MAC_2
    assert h("PLAINTEXT_2")[:2] == h("C_R_cbor") + b"\x32"
    assert edhoc.kid_of_id_cred(h("PLAINTEXT_2")[1:2]) == b"\x32" == edhoc.kid_of_id_cred(h("ID_CRED_R"))
    assert edhoc.kid_of_id_cred(h("PLAINTEXT_3")[:1]) == b"\x2b"


def test_lakers_responder_takes_the_trace_message_1() -> None:
    responder = lakers.EdhocResponder(h("SK_R"), h("CRED_R"))
    c_i, ead_1 = responder.process_message_1(h("message_1"))
    assert (c_i, ead_1) == (h("C_I_raw"), [])
    first = lakers.EdhocResponder(h("SK_R"), h("CRED_R"))
    with pytest.raises(ValueError, match="UnsupportedCipherSuite"):  # the trace answers error 0202
        first.process_message_1(h("message_1_first_time"))


def test_lakers_run_with_the_trace_static_keys() -> None:
    initiator, responder = lakers.EdhocInitiator(), lakers.EdhocResponder(h("SK_R"), h("CRED_R"))
    message_1 = initiator.prepare_message_1(h("C_I_raw"), [])
    # lakers offers suite 2 alone (SUITES_I 02, not the trace's [6, 2]); C_I 0x37 last
    assert message_1[:4] == bytes.fromhex("03025820") and message_1[-1:] == h("C_I_cbor")
    assert responder.process_message_1(message_1)[0] == h("C_I_raw")
    message_2 = responder.prepare_message_2(lakers.CredentialTransfer.ByReference, h("C_R_raw"), None)
    assert len(message_2) == len(h("message_2"))  # ID_CRED_R sent compactly, as in the trace
    c_r, id_cred_r, ead_2 = initiator.parse_message_2(message_2)
    assert (c_r, id_cred_r, ead_2) == (h("C_R_raw"), h("ID_CRED_R"), [])  # handed over expanded
    initiator.verify_message_2(h("SK_I"), h("CRED_I"), h("CRED_R"))
    message_3, prk_out_i = initiator.prepare_message_3(lakers.CredentialTransfer.ByReference, None)
    assert len(message_3) == len(h("message_3"))
    id_cred_i, _ = responder.parse_message_3(message_3)
    assert id_cred_i == h("ID_CRED_I")
    index = edhoc.PeerCredentialIndex()
    index.add_ccs(b"\x2b", h("CRED_I"), "token")
    found = index.lookup_edhoc_peer(id_cred_i)
    assert found == (h("CRED_I"), "token")
    assert responder.verify_message_3(found[0]) == prk_out_i
    message_4 = responder.prepare_message_4(None)
    assert len(message_4) == len(h("message_4"))
    initiator.process_message_4(message_4)
    # (5) our RFC 9528 KDF on lakers' PRK_out gives lakers' exporter output, both sides
    prk_exporter = edhoc_kdf(prk_out_i, 10, b"", 32)[1]
    for side in (initiator, responder):
        assert bytes(side.edhoc_exporter(0, [], 16)) == edhoc_kdf(prk_exporter, 0, b"", 16)[1]
        assert bytes(side.edhoc_exporter(1, [], 8)) == edhoc_kdf(prk_exporter, 1, b"", 8)[1]
    context = entry("Key Update", "context for KeyUpdate")
    assert bytes(initiator.edhoc_key_update(context)) == edhoc_kdf(prk_out_i, 11, context, 32)[1]


def test_key_schedule_recomputed_from_the_trace_keys() -> None:
    g_x_y, g_y_y = entry("message_1 (second time)", "Initiator's ephemeral public key, one 'y'-coordinate"), \
        entry("message_2", "Responder's ephemeral public key, one 'y'-coordinate")
    g_xy, g_rx, g_iy = ecdh(h("X"), h("G_Y"), g_y_y), ecdh(h("SK_R"), h("G_X"), g_x_y), ecdh(h("SK_I"), h("G_Y"), g_y_y)
    assert (g_xy, g_rx, g_iy) == (h("G_XY"), h("G_RX"), h("G_IY"))
    assert ecdh(h("Y"), h("G_X"), g_x_y) == g_xy
    th_2 = hashlib.sha256(bstr(h("G_Y")) + bstr(hashlib.sha256(h("message_1")).digest())).digest()
    assert th_2 == h("TH_2")
    prk_2e = extract(th_2, g_xy)
    assert prk_2e == h("PRK_2e")
    info, salt_3e2m = edhoc_kdf(prk_2e, 1, th_2, 32)
    assert (info, salt_3e2m) == (entry("message_2", "info for SALT_3e2m"), entry("message_2", "SALT_3e2m"))
    prk_3e2m = extract(salt_3e2m, g_rx)
    assert prk_3e2m == h("PRK_3e2m")
    context_2 = h("C_R_cbor") + h("ID_CRED_R") + bstr(th_2) + h("CRED_R")
    assert edhoc_kdf(prk_3e2m, 2, context_2, 8)[1] == h("MAC_2")
    plaintext_2 = h("PLAINTEXT_2")
    keystream_2 = edhoc_kdf(prk_2e, 0, th_2, len(plaintext_2))[1]
    ciphertext_2 = bytes(a ^ b for a, b in zip(plaintext_2, keystream_2, strict=True))
    assert bstr(h("G_Y") + ciphertext_2) == h("message_2")

    th_3 = hashlib.sha256(bstr(th_2) + plaintext_2 + h("CRED_R")).digest()
    assert th_3 == h("TH_3")
    salt_4e3m = edhoc_kdf(prk_3e2m, 5, th_3, 32)[1]
    prk_4e3m = extract(salt_4e3m, g_iy)
    assert prk_4e3m == h("PRK_4e3m")
    context_3 = h("ID_CRED_I") + bstr(th_3) + h("CRED_I")
    assert edhoc_kdf(prk_4e3m, 6, context_3, 8)[1] == h("MAC_3")
    k_3, iv_3 = edhoc_kdf(prk_3e2m, 3, th_3, 16)[1], edhoc_kdf(prk_3e2m, 4, th_3, 13)[1]
    a_3 = cbor2.dumps(["Encrypt0", b"", th_3])
    assert bstr(AESCCM(k_3, tag_length=8).encrypt(iv_3, h("PLAINTEXT_3"), a_3)) == h("message_3")

    th_4 = hashlib.sha256(bstr(th_3) + h("PLAINTEXT_3") + h("CRED_I")).digest()
    assert th_4 == h("TH_4")
    k_4, iv_4 = edhoc_kdf(prk_4e3m, 8, th_4, 16)[1], edhoc_kdf(prk_4e3m, 9, th_4, 13)[1]
    assert bstr(AESCCM(k_4, tag_length=8).encrypt(iv_4, b"", cbor2.dumps(["Encrypt0", b"", th_4]))) == h("message_4")
    prk_out = edhoc_kdf(prk_4e3m, 7, th_4, 32)[1]
    assert prk_out == h("PRK_out")
    info, prk_exporter = edhoc_kdf(prk_out, 10, b"", 32)
    assert (info, prk_exporter) == (entry("PRK_out and PRK_exporter", "info for PRK_exporter"), h("PRK_exporter"))


def test_oscore_master_secret_salt_and_key_update() -> None:
    section = "OSCORE Parameters"
    assert edhoc_kdf(h("PRK_exporter"), 0, b"", 16) == (entry(section, "info for OSCORE Master Secret"),
                                                          h("OSCORE_master_secret"))
    assert edhoc_kdf(h("PRK_exporter"), 1, b"", 8) == (entry(section, "info for OSCORE Master Salt"),
                                                         h("OSCORE_master_salt"))
    context = entry("Key Update", "context for KeyUpdate")
    prk_out = edhoc_kdf(h("PRK_out"), 11, context, 32)[1]
    assert prk_out == entry("Key Update", "PRK_out after KeyUpdate")
    prk_exporter = edhoc_kdf(prk_out, 10, b"", 32)[1]
    assert prk_exporter == entry("Key Update", "PRK_exporter after KeyUpdate")
    assert edhoc_kdf(prk_exporter, 0, b"", 16)[1] == entry("Key Update", "OSCORE Master Secret after KeyUpdate")
    assert edhoc_kdf(prk_exporter, 1, b"", 8)[1] == entry("Key Update", "OSCORE Master Salt after KeyUpdate")


class TraceExporter:
    """Stands in for a finished lakers session whose exporter is the trace's."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, list[Any], int]] = []

    def selected_cipher_suite(self) -> int:
        return 2

    def edhoc_exporter(self, label: int, context: list[Any], length: int) -> bytes:
        self.asked.append((label, context, length))
        return edhoc_kdf(h("PRK_exporter"), label, bytes(context), length)[1]


def test_aiocoap_builds_the_trace_oscore_context() -> None:
    exporter = TraceExporter()
    server = EdhocResponderContext(None, h("C_I_raw"), h("C_R_raw"), None, logging.getLogger(__name__))
    server._make_ready(exporter, h("C_R_raw"), h("C_I_raw"))
    assert exporter.asked == [(0, [], 16), (1, [], 8)]  # = info 004010 and 014008 of the trace
    assert server.sender_id == h("OSCORE_server_sender_id") and server.recipient_id == h("OSCORE_client_sender_id")
    assert server.alg_aead.value == 10  # Application AEAD Algorithm of the trace
