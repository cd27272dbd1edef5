"""``ace token inspect``: decode a token, show it in diagnostic notation, verify it.

With the right key the token is verified (and decrypted) first, and its claims are always
shown; the time validity (exp, nbf: RFC 8392 §3.1.4-5) is a verdict of its own, judged now or
``--at TIME``, and the audience (``--audience``) another. Exit codes: 0 the token is valid (or,
without ``--key``, decoded and not out of time); 1 not a token, or verification/decryption
failed with the key(s) given; 2 usage (bad arguments, unreadable files); 4 verified (or, without
a key, readable) but expired or not yet valid at the time judged; 5 verified and in time, but
its audience does not contain ``--audience``.

A token encrypted to the RS's public key (COSE_Encrypt, ECDH-ES) shows its recipient; with the
RS's private key and the AS's public key (``--key`` twice) it is opened and its inner message
named. A PoP key sent as Encrypted_COSE_Key (RFC 8747 §3.3) is shown as such and, with the RS's
key among ``--key``, opened; its secret stays redacted unless ``--show-secrets``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ace.cbor import codec
from ace.cbor.diag import diag, label_namer
from ace.cbor.labels import Claim, CnfMethod, HeaderParam, KeyParam
from ace.cli.keyfiles import load_key
from ace.cli.stdio import EXIT_FAILED, EXIT_OK
from ace.errors import AceError, ConfigError, RemoteError, coap_code_text
from ace.redact import cose_key_map, message_map, readable_id
from ace.tokens import cose
from ace.tokens.cnf import EncryptedCoseKeyCnf
from ace.tokens.cose import CoseMessage
from ace.tokens.crypto import Kind, alg_name
from ace.tokens.cwt import open_envelope, verify_token
from ace.tokens.encrypt import open_with
from ace.tokens.keys import CoseKey

STRUCTURE = {Kind.AEAD: "COSE_Encrypt0", Kind.SIGN: "COSE_Sign1", Kind.MAC: "COSE_Mac0"}


def structure(msg: CoseMessage) -> str:
    return "COSE_Encrypt" if msg.recipients else STRUCTURE[msg.kind]
EXIT_TIME, EXIT_AUDIENCE = 4, 5  # this command's own (0, 1 and 2 are the CLI's: ace.cli.stdio)


def register(sub: Any) -> None:
    token = sub.add_parser("token", help="work with access tokens")
    tsub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    insp = tsub.add_parser("inspect", help="decode (and with --key verify) a token")
    insp.add_argument("token", help="the token as hex, or @FILE holding its bytes (or hex)")
    insp.add_argument("--key", metavar="FILE", action="append",
                      help="COSE_Key file to verify/decrypt with (twice for a nested token: both keys)")
    insp.add_argument("--audience", help="also check that aud contains this value")
    insp.add_argument("--at", metavar="TIME", type=parse_time,
                      help="judge exp/nbf at this time: ISO 8601 (2015-10-05T16:00:00Z) or seconds since the epoch")
    insp.add_argument("--json", action="store_true", help="one JSON object on stdout")
    insp.add_argument("--show-secrets", action="store_true", help="do not redact PoP key material")
    insp.set_defaults(func=cmd_inspect)
    from ace.cli import mint_cmd  # mint, upload

    mint_cmd.register_actions(tsub)


def parse_time(text: str) -> float:
    """ISO 8601 (naive: UTC) or a NumericDate (RFC 8392 §2: seconds since the epoch)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time or seconds since the epoch: {text!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_token(arg: str) -> bytes:
    if arg.startswith("@"):
        try:
            data = Path(arg[1:]).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read token file {arg[1:]}: {exc.strerror or exc}") from None
        try:
            return bytes.fromhex(data.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return data
    try:
        return bytes.fromhex(arg.strip().removeprefix("0x"))
    except ValueError:
        raise ConfigError("TOKEN must be hex or @FILE") from None


class _GivenKeys:
    """Try the given keys whatever kid the token names (an operator asked for them)."""

    def __init__(self, keys: Sequence[CoseKey]) -> None:
        self.keys = tuple(keys)

    def keys_for(self, kid: bytes | None) -> Sequence[CoseKey]:
        return self.keys


def time_verdict(claims: Mapping[Any, Any], at: float) -> dict[str, Any]:
    """RFC 8392 §3.1.4-5: not accepted on or after exp, nor before nbf; judged at ``at``, no skew."""
    exp, nbf = claims.get(int(Claim.EXP)), claims.get(int(Claim.NBF))
    verdict: dict[str, Any] = {"at": iso(at), "valid": True, "detail": "no exp or nbf: valid at any time"}
    if isinstance(nbf, (int, float)) and at < nbf:
        verdict.update(valid=False, detail=f"not yet valid until {iso(nbf)}")
    elif isinstance(exp, (int, float)) and at >= exp:
        verdict.update(valid=False, detail=f"expired since {iso(exp)}")
    elif isinstance(exp, (int, float)) or isinstance(nbf, (int, float)):
        since = f" from {iso(nbf)}" if isinstance(nbf, (int, float)) else ""
        until = f" until {iso(exp)}" if isinstance(exp, (int, float)) else ""
        verdict["detail"] = f"valid{since}{until}"
    return verdict


def inspect(token: bytes, keys: Sequence[CoseKey] | CoseKey | None, audience: str | None, show_secrets: bool,
            at: float | None = None) -> dict[str, Any]:
    env = open_envelope(token)
    msg = env.message
    report: dict[str, Any] = {
        "size": len(token), "structure": structure(msg), "cose_tag": msg.cbor_tag,
        "cwt_tag": env.cwt_tagged, "protected": dict(msg.protected),
        "unprotected": dict(msg.unprotected), "alg": alg_name(msg.alg) if isinstance(msg.alg, int) else None,
        "claims": None, "verified": None, "error": None, "time": None, "audience_ok": None,
        "recipient": recipient_report(msg), "inner": None, "pop_key": None,
    }
    if msg.kind is not Kind.AEAD:
        report["claims"] = codec.loads(msg.body, what="CWT claims")
    if isinstance(keys, CoseKey):
        keys = [keys]
    if keys:
        try:  # crypto first, time apart: an expired token still shows its claims (infinite skew here)
            claims = verify_token(token, _GivenKeys(keys), audience=None, clock=time.time, skew=math.inf)
            report["claims"], report["verified"] = claims.to_map(), True
            report["inner"] = inner_structure(msg, keys)
            if audience is not None:
                report["audience_ok"] = audience in claims.audiences
                if not report["audience_ok"]:
                    report["error"] = f"token audience does not contain {audience!r} ({coap_code_text((4, 3))})"
        except RemoteError as exc:
            report["verified"] = False
            report["error"] = f"{exc.description} ({coap_code_text(exc.coap_code)})"
    if isinstance(report["claims"], Mapping):
        report["time"] = time_verdict(report["claims"], time.time() if at is None else at)
    if isinstance(report["claims"], Mapping):
        report["pop_key"] = encrypted_key_report(report["claims"], keys or (), show_secrets)
    if isinstance(report["claims"], Mapping) and not show_secrets:
        report["claims"] = message_map(report["claims"])
    return report


def recipient_report(msg: CoseMessage) -> dict[str, Any] | None:
    """A COSE_Encrypt's one recipient: its alg, kid and the curve of the sender's key."""
    if not msg.recipients:
        return None
    r = msg.recipients[0]
    try:
        peer, _ = cose.recipient_peer(r)
        curve = peer.crv.name if peer.crv is not None else None
    except RemoteError:
        curve = None
    return {"alg": alg_name(r.alg), "kid": r.kid, "sender_curve": curve, "protected": dict(r.protected),
            "unprotected": {k: v for k, v in r.unprotected.items() if not isinstance(v, Mapping)}}


def inner_structure(msg: CoseMessage, keys: Sequence[CoseKey]) -> str | None:
    """The structure nested in an encrypted token (RFC 8392 §7.1), once it verified."""
    if msg.kind is not Kind.AEAD:
        return None
    payload = open_with(msg, _GivenKeys(keys))
    if not payload or payload[0] not in (0xD0, 0xD1, 0xD2, 0xD8):
        return None
    inner = cose.parse(codec.loads(payload, what="nested token"), what="nested token")
    return f"{structure(inner)}, alg {alg_name(inner.alg)}"


def encrypted_key_report(claims: Mapping[Any, Any], keys: Sequence[CoseKey],
                         show_secrets: bool) -> dict[str, Any] | None:
    """The cnf's Encrypted_COSE_Key (RFC 8747 §3.3): its structure and, with a key that opens it, the key."""
    cnf = claims.get(int(Claim.CNF))
    if not isinstance(cnf, Mapping) or int(CnfMethod.ENCRYPTED_COSE_KEY) not in cnf:
        return None
    out: dict[str, Any] = {"structure": None, "alg": None, "recipient": None, "kid": None, "key": None, "error": None}
    try:
        enc = EncryptedCoseKeyCnf(codec.dumps(cnf[int(CnfMethod.ENCRYPTED_COSE_KEY)]))
        msg = enc.message
        out.update(structure=structure(msg), alg=alg_name(msg.alg) if isinstance(msg.alg, int) else None,
                   recipient=recipient_report(msg), kid=msg.key_id)
        if keys:
            key = enc.decrypt(_GivenKeys(keys)).to_map()
            out["key"] = key if show_secrets else cose_key_map(key)
    except RemoteError as exc:
        out["error"] = f"{exc.description} ({coap_code_text(exc.coap_code)})"
    return out


def _pop_key_line(p: dict[str, Any]) -> str:
    what = f"Encrypted_COSE_Key, {p['structure']}, alg {p['alg']}"
    if p["recipient"] is not None:
        what += f", recipient {p['recipient']['alg']} ({p['recipient']['sender_curve']})"
    if p["kid"] is not None:
        what += f", to kid {readable_id(p['kid'])}"
    if p["key"] is not None:
        return f"PoP key: {what}: " + diag(p["key"], labels=label_namer(KeyParam))
    if p["error"] is not None:
        return f"PoP key: {what}: not opened: {p['error']}"
    return f"PoP key: {what} (give the RS's key with --key to open it)"


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
    if r["recipient"] is not None:
        rc = r["recipient"]
        kid = f", kid {readable_id(rc['kid'])}" if rc["kid"] is not None else ""
        lines.append(f"recipient: {rc['alg']}{kid}, sender key on {rc['sender_curve']}")
    if r["inner"] is not None:
        lines.append(f"inside: {r['inner']}")
    if r["claims"] is not None:
        lines.append("claims: " + diag(r["claims"], labels=label_namer(Claim)))
    elif r["verified"] is False:
        lines.append("claims: (encrypted; not decrypted with the key given)")
    else:
        lines.append("claims: (encrypted; give --key to decrypt)")
    if r["verified"] is True:
        lines.append("verification: OK")
    elif r["verified"] is False:
        lines.append(f"verification: FAILED: {r['error']}")
    else:
        lines.append("verification: not done (give --key)")
    if r["time"] is not None:
        unverified = "" if r["verified"] else "; claims not verified"
        lines.append(f"time: {r['time']['detail']} (judged at {r['time']['at']}{unverified})")
    if r["pop_key"] is not None:
        lines.append(_pop_key_line(r["pop_key"]))
    if r["audience_ok"] is not None:
        lines.append("audience: OK" if r["audience_ok"] else f"audience: MISMATCH: {r['error']}")
    return "\n".join(lines)


def exit_code(r: dict[str, Any]) -> int:
    if r["verified"] is False:
        return EXIT_FAILED
    if r["time"] is not None and not r["time"]["valid"]:
        return EXIT_TIME
    if r["audience_ok"] is False:
        return EXIT_AUDIENCE
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    token = read_token(args.token)
    keys = [load_key(path) for path in args.key or ()]
    try:
        report = inspect(token, keys, args.audience, args.show_secrets, args.at)
    except AceError as exc:
        print(f"ace: not a token: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(_jsonable(report)) if args.json else render_text(report))
    return exit_code(report)
