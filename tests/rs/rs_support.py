"""What the RS core tests share: the RS's token key, its scope meanings, a settable clock, an RS
(``make_rs``) and tokens and authz-info posts for it (RFC 9203 §4.1). Not a test module."""

from __future__ import annotations

import random
from typing import Any

from support import NOW

from ace.cbor.scope import METHODS
from ace.messages import AuthzInfoRequest
from ace.rs.server import ResourceServer, RsConfig
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import Cnf, OscoreCnf, OscoreInputMaterial
from ace.tokens.cwt import KeyRing, issue_token
from ace.tokens.keys import CoseKey, symmetric_key

RS_KEY = symmetric_key(bytes(range(16)), kid=b"rs1")
OTHER_KEY = symmetric_key(bytes(range(1, 17)), kid=b"rs1")  # same kid, wrong bytes
AS_URI = "coap://as.example/token"
GET, POST, PUT, DELETE = (1 << (METHODS[m] - 1) for m in ("GET", "POST", "PUT", "DELETE"))
MEANING = {"r_temp": [("/temp", GET)], "rw_config": [("/config", GET | PUT)]}
N1 = bytes.fromhex("018a278f7faab55a")


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_rs(clock: Clock | None = None, *, max_tokens: int = 64, seed: int = 1) -> ResourceServer:
    config = RsConfig(audience="rs1", as_uri=AS_URI, scope_meaning=MEANING, hint_scope="r_temp",
                      max_tokens=max_tokens)
    return ResourceServer(config, KeyRing([RS_KEY]), clock=clock or Clock(), rng=random.Random(seed).randbytes)


def material(mid: bytes = b"\x01", **kw: Any) -> OscoreInputMaterial:
    return OscoreInputMaterial(id=mid, ms=bytes([mid[0]]) * 16, **kw)


def token(mid: bytes = b"\x01", *, scope: str | bytes | None = "r_temp", exp: float | None = NOW + 3600,
          aud: str = "rs1", cnf: Cnf | None = None, key: CoseKey = RS_KEY, cti: bytes = b"\x01",
          nbf: float | None = None, sub: str | None = None, cnonce: bytes | None = None) -> bytes:
    claims = AccessTokenClaims(sub=sub, aud=aud, exp=exp, nbf=nbf, cti=cti, scope=scope, cnonce=cnonce,
                               cnf=cnf if cnf is not None else OscoreCnf(material(mid)))
    return issue_token(claims, key, rng=random.Random(cti).randbytes)


def post(tok: bytes, nonce1: bytes = N1, rid: bytes = b"\x01") -> bytes:
    return AuthzInfoRequest(access_token=tok, nonce1=nonce1, ace_client_recipientid=rid).encode()
