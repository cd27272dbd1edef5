"""Keys and claims shared by the token tests (deterministic: fixed key bytes, fixed clock)."""

from __future__ import annotations

import pytest
from support import NOW

from ace.cbor.labels import Curve
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial
from ace.tokens.crypto import generate
from ace.tokens.keys import CoseKey, symmetric_key


@pytest.fixture
def claims() -> AccessTokenClaims:
    return AccessTokenClaims(
        iss="as", aud="rs1", exp=NOW + 3600, iat=NOW, cti=b"\x00\x01", scope="r_temp",
        cnf=OscoreCnf(OscoreInputMaterial(id=b"\x01", ms=bytes(range(16)))),
    )


@pytest.fixture(scope="session")
def ec_key() -> CoseKey:
    return generate(Curve.P_256, kid=b"ec")


@pytest.fixture(scope="session")
def ed_key() -> CoseKey:
    return generate(Curve.ED25519, kid=b"ed")


@pytest.fixture
def k16() -> CoseKey:
    return symmetric_key(bytes(range(16)), kid=b"k16")


@pytest.fixture
def k32() -> CoseKey:
    return symmetric_key(bytes(range(32)), kid=b"k32")
