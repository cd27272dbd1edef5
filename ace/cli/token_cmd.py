"""``ace token inspect``: decode a token, show it in diagnostic notation, verify it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ace.cbor import codec
from ace.cbor.diag import diag, label_namer
from ace.cbor.labels import Claim, HeaderParam
from ace.cli.keyfiles import load_key
from ace.errors import AceError, RemoteError, coap_code_text
from ace.redact import message_map
from ace.tokens.crypto import Kind, alg_name
from ace.tokens.cwt import open_envelope, verify_token
from ace.tokens.keys import CoseKey

STRUCTURE = {Kind.AEAD: "COSE_Encrypt0", Kind.SIGN: "COSE_Sign1", Kind.MAC: "COSE_Mac0"}


def register(sub: Any) -> None:
    token = sub.add_parser("token", help="work with access tokens")
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    insp = tsub.add_parser("inspect", help="decode (and with --key verify) a token")
    insp.add_argument("token", help="the token as hex, or @FILE holding its bytes (or hex)")
    insp.add_argument("--key", metavar="FILE", help="COSE_Key file to verify/decrypt with")
    insp.add_argument("--audience", help="also check that aud contains this value")
    insp.add_argument("--json", action="store_true", help="one JSON object on stdout")
    insp.add_argument("--show-secrets", action="store_true", help="do not redact PoP key material")
    insp.set_defaults(func=cmd_inspect)


def read_token(arg: str) -> bytes:
    if arg.startswith("@"):
        data = Path(arg[1:]).read_bytes()
        try:
            return bytes.fromhex(data.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return data
    try:
        return bytes.fromhex(arg.strip().removeprefix("0x"))
    except ValueError:
        raise SystemExit("ace: TOKEN must be hex or @FILE") from None


class _OneKey:
    """Try the given key whatever kid the token names (an operator asked for it)."""

    def __init__(self, key: CoseKey) -> None:
        self.key = key

    def keys_for(self, kid: bytes | None) -> Sequence[CoseKey]:
        return (self.key,)


def inspect(token: bytes, key: CoseKey | None, audience: str | None, show_secrets: bool) -> dict[str, Any]:
    env = open_envelope(token)
    msg = env.message
    report: dict[str, Any] = {
        "size": len(token), "structure": STRUCTURE[msg.kind], "cose_tag": msg.cbor_tag,
        "cwt_tag": env.cwt_tagged, "protected": dict(msg.protected),
        "unprotected": dict(msg.unprotected), "alg": alg_name(msg.alg) if isinstance(msg.alg, int) else None,
        "claims": None, "verified": None, "error": None,
    }
    if msg.kind is not Kind.AEAD:
        report["claims"] = codec.loads(msg.body, what="CWT claims")
    if key is not None:
        try:
            claims = verify_token(token, _OneKey(key), audience=audience, clock=time.time)
            report["claims"], report["verified"] = claims.to_map(), True
        except RemoteError as exc:
            report["verified"] = False
            report["error"] = f"{exc.description} ({coap_code_text(exc.coap_code)})"
    if isinstance(report["claims"], Mapping) and not show_secrets:
        report["claims"] = message_map(report["claims"])
    return report


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def render_text(r: dict[str, Any]) -> str:
    tags = ", ".join(t for t in (("CWT tag 61" if r["cwt_tag"] else ""),
                                 (f"COSE tag {r['cose_tag']}" if r["cose_tag"] else "")) if t) or "untagged"
    lines = [f"{r['structure']} ({tags}), {r['size']} bytes, alg {r['alg']}",
             "protected: " + diag(r["protected"], labels=label_namer(HeaderParam)),
             "unprotected: " + diag(r["unprotected"], labels=label_namer(HeaderParam))]
    if r["claims"] is not None:
        lines.append("claims: " + diag(r["claims"], labels=label_namer(Claim)))
    else:
        lines.append("claims: (encrypted; give --key to decrypt)")
    if r["verified"] is True:
        lines.append("verification: OK")
    elif r["verified"] is False:
        lines.append(f"verification: FAILED: {r['error']}")
    return "\n".join(lines)


def cmd_inspect(args: argparse.Namespace) -> int:
    token = read_token(args.token)
    key = load_key(args.key) if args.key else None
    try:
        report = inspect(token, key, args.audience, args.show_secrets)
    except AceError as exc:
        print(f"ace: not a token: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(_jsonable(report)) if args.json else render_text(report))
    return 1 if report["verified"] is False else 0
