"""A libFuzzer target (atheris) over every decoder a peer's bytes reach: only RemoteError
may escape.

    python tests/robustness/atheris_decoders.py -runs=100000 [CORPUS_DIR ...] [libFuzzer flags]

The first input byte picks the decoder, the rest is its input: ``codec.loads``, each message
of ``ace.messages`` (``decode``), ``cose.parse`` (bytes and decoded item),
``verify_token`` (symmetric and EC keys, audience rs1), claims, COSE_Key, cnf, scopes, and
the RS core's POST /authz-info for both profiles (sans I/O). Without a corpus directory
on the command line, a temporary one is seeded with valid tokens and messages. Any other
exception is a crash (libFuzzer writes the input to ``crash-*``). Not run by pytest (atheris
is no project dependency); ``scripts/fuzz`` runs it for a bounded number of runs when
atheris is importable.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["ace"]):
    from ace.cbor import codec
    from ace.cbor.labels import ContentFormat, Curve
    from ace.cbor.scope import AifScope, parse_scope
    from ace.errors import RemoteError
    from ace.messages import MESSAGE_TYPES, AccessTokenRequest, AuthzInfoRequest
    from ace.rs.server import ResourceServer, RsConfig
    from ace.tokens import cose
    from ace.tokens.claims import AccessTokenClaims
    from ace.tokens.cnf import CoseKeyCnf, OscoreCnf, OscoreInputMaterial, cnf_from_map
    from ace.tokens.crypto import Kind, generate
    from ace.tokens.cwt import KeyRing, issue_token, open_envelope, verify_token
    from ace.tokens.keys import CoseKey, symmetric_key

NOW = 1_700_000_000
K16 = symmetric_key(bytes(range(16)), kid=b"\x01")
EC = generate(Curve.P_256, kid=b"e")
RING = KeyRing([K16, EC.public()], try_all_without_kid=True)
RS = ResourceServer(RsConfig(audience="rs1", as_uri="coap://[::1]/token",
                             scope_meaning={"r_temp": [("/temp", 1)], "rw_led": [("/led", 5)]},
                             profiles=(2, 1)), RING, clock=lambda: NOW)


def _cose_item(data: bytes) -> Any:
    return cose.parse(codec.loads(data))


DECODERS: list[tuple[str, Callable[[bytes], Any]]] = [
    ("codec.loads", codec.loads),
    ("codec.loads(any tag)", lambda b: codec.loads(b, allowed_tags=frozenset(range(0, 300)))),
    *[(f"{m.__name__}.decode", m.decode) for m in MESSAGE_TYPES],
    ("cose.parse(bytes)", cose.parse),
    ("cose.parse(item)", _cose_item),
    ("open_envelope", open_envelope),
    ("verify_token", lambda b: verify_token(b, RING, audience="rs1", clock=lambda: NOW)),
    ("AccessTokenClaims.decode", AccessTokenClaims.decode),
    ("CoseKey.decode", CoseKey.decode),
    ("cnf_from_map", lambda b: cnf_from_map(codec.loads(b))),
    ("AifScope.decode", AifScope.decode),
    ("parse_scope(bytes)", parse_scope),
    ("parse_scope(text)", lambda b: parse_scope(b.decode("utf-8", "surrogateescape"))),
    ("rs.authz_info(ace+cbor)", lambda b: RS.authz_info(b, int(ContentFormat.ACE_CBOR))),
    ("rs.authz_info(cwt)", lambda b: RS.authz_info(b, int(ContentFormat.CWT))),
    ("rs.authz_info(none)", lambda b: RS.authz_info(b, None)),
]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    _name, decode = DECODERS[data[0] % len(DECODERS)]
    with contextlib.suppress(RemoteError):  # the RS core's state stays bounded (and 5.03 when full is fine)
        decode(data[1:])


def _seeds() -> list[bytes]:
    """Valid inputs for each decoder (prefixed with its index)."""
    osc = AccessTokenClaims(aud="rs1", exp=NOW + 600, cti=b"\x01", scope="r_temp",
                            cnf=OscoreCnf(OscoreInputMaterial(id=b"\x02", ms=bytes(16))))
    psk = AccessTokenClaims(aud="rs1", exp=NOW + 600, cti=b"\x02", scope="rw_led",
                            cnf=CoseKeyCnf(symmetric_key(bytes(16), kid=b"psk")))
    tokens = [issue_token(osc, K16, rng=lambda n: bytes(n)), issue_token(psk, K16, rng=lambda n: bytes(n)),
              issue_token(osc, K16, kind=Kind.MAC, cwt_tag=True), issue_token(osc, EC, kind=Kind.SIGN)]
    messages = [AuthzInfoRequest(access_token=tokens[0], nonce1=bytes(8), ace_client_recipientid=b"\x21").encode(),
                AccessTokenRequest(client_id="clientA", audience="rs1", scope="r_temp").encode(),
                osc.encode(), K16.encode(), codec.dumps([["/temp", 1]])]
    out: list[bytes] = []
    for i, _ in enumerate(DECODERS):
        for sample in tokens + messages:
            out.append(bytes([i]) + sample)
    return out


def main() -> None:
    argv = list(sys.argv)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if not any(not a.startswith("-") for a in argv[1:]):  # no corpus directory given: seed one
        tmp = tempfile.TemporaryDirectory(prefix="ace-atheris-corpus-")
        for n, seed in enumerate(_seeds()):
            (Path(tmp.name) / f"seed-{n:03d}").write_bytes(seed)
        argv.append(tmp.name)
    started = time.monotonic()
    atheris.Setup(argv, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        print(f"atheris_decoders: {time.monotonic() - started:.1f} s", file=sys.stderr)
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
