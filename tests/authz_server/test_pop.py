"""What may travel in a token's cnf unencrypted (RFC 9203 §5, RFC 8747 §3.3) and the COSE Key
Thumbprint (RFC 9679) that tells the AS whose PoP key a request presents."""

from __future__ import annotations

import pytest

from ace.authz_server.pop import carries_secret
from ace.cbor.labels import Curve, KeyType
from ace.tokens.cnf import CoseKeyCnf, EncryptedCoseKeyCnf, KidCnf, OscoreCnf, OscoreInputMaterial
from ace.tokens.crypto import generate
from ace.tokens.keys import CoseKey, symmetric_key, thumbprint

# RFC 9679 §6: the EC2 key of RFC 9052 §C.7.1 ("meriadoc.brandybuck@buckland.example") and its thumbprint
X = bytes.fromhex("65eda5a12577c2bae829437fe338701a10aaa375e1bb5b5de108de439c08551d")
Y = bytes.fromhex("1e52ed75701163f7f9e40ddf9f341b3dc9ba860af7e0ca7ca7e9eecd0084d19c")
RFC9679_THUMBPRINT = bytes.fromhex("496bd8afadf307e5b08c64b0421bf9dc01528a344a43bda88fadd1669da253ec")


def test_rfc9679_vector_and_what_the_thumbprint_ignores() -> None:
    key = CoseKey(kty=KeyType.EC2, crv=Curve.P_256, x=X, y=Y, kid=b"meriadoc.brandybuck@buckland.example")
    assert thumbprint(key) == RFC9679_THUMBPRINT
    assert thumbprint(key.with_kid(b"other")) == RFC9679_THUMBPRINT  # the kid is not the key
    assert thumbprint(CoseKey(kty=KeyType.EC2, crv=Curve.P_256, x=X, y=Y, alg=-7)) == RFC9679_THUMBPRINT
    other = generate(Curve.P_256, kid=b"x")
    assert thumbprint(other) == thumbprint(other.public()) != RFC9679_THUMBPRINT


@pytest.mark.parametrize(("cnf", "secret"), [
    (OscoreCnf(OscoreInputMaterial(id=b"\x01", ms=b"\x00" * 16)), True),
    (CoseKeyCnf(symmetric_key(b"\x00" * 16, kid=b"k")), True),
    (CoseKeyCnf(generate(Curve.P_256, kid=b"k")), True),  # a private part (d)
    (CoseKeyCnf(generate(Curve.P_256, kid=b"k").public()), False),
    (KidCnf(b"k"), False),
    (EncryptedCoseKeyCnf(b"\x83\x40\xa0\x40"), False),
    (None, False),
], ids=["oscore-material", "symmetric", "private", "public", "kid", "encrypted", "none"])
def test_carries_secret(cnf: object, secret: bool) -> None:
    assert carries_secret(cnf) is secret  # type: ignore[arg-type]
