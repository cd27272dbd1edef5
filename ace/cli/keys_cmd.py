"""``ace keys gen``: COSE_Key files (mode 0600), and ``ace keys show``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ace.cbor.diag import diag
from ace.cbor.labels import Alg, Curve
from ace.cli.keyfiles import load_key, save_key
from ace.redact import cose_key_map
from ace.tokens.keys import CoseKey, generate_curve_key, generate_symmetric

KEY_TYPES = {"symmetric": None, "ec2": Curve.P_256, "ed25519": Curve.ED25519, "x25519": Curve.X25519}


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="generate and show COSE_Key files")
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    gen = ksub.add_parser("gen", help="write a new COSE_Key file (mode 0600)")
    gen.add_argument("--type", choices=sorted(KEY_TYPES), default="symmetric")
    gen.add_argument("--size", type=int, default=16, help="symmetric key bytes (16 or 32)")
    kid = gen.add_mutually_exclusive_group()
    kid.add_argument("--kid", help="key id as hex")
    kid.add_argument("--kid-text", help="key id as UTF-8 text")
    gen.add_argument("--alg", help="pin the key to one COSE alg (name, e.g. AES_CCM_16_64_128, or number)")
    gen.add_argument("--public-out", metavar="FILE", help="also write the public key (curve keys)")
    gen.add_argument("--force", action="store_true", help="overwrite existing files")
    gen.add_argument("out", metavar="FILE")
    gen.set_defaults(func=cmd_gen)
    show = ksub.add_parser("show", help="print a key file (secrets redacted)")
    show.add_argument("file")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)


def parse_alg(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return int(Alg[text.upper().replace("-", "_").replace(" ", "_").replace("/", "_")])
    except KeyError:
        raise SystemExit(f"ace: unknown alg {text!r}; one of {', '.join(a.name for a in Alg)}") from None


def cmd_gen(args: argparse.Namespace) -> int:
    kid = bytes.fromhex(args.kid) if args.kid else args.kid_text.encode() if args.kid_text else None
    alg = parse_alg(args.alg)
    curve = KEY_TYPES[args.type]
    if curve is None:
        if args.size not in (16, 24, 32):
            raise SystemExit("ace: --size must be 16, 24 or 32")
        key = generate_symmetric(args.size, kid=kid, alg=alg)
    else:
        key = generate_curve_key(curve, kid=kid, alg=alg)
    save_key(args.out, key, overwrite=args.force)
    if args.public_out:
        if key.is_symmetric:
            raise SystemExit("ace: a symmetric key has no public part")
        save_key(args.public_out, key.public(), overwrite=args.force)
    print(f"wrote {args.out}" + (f" and {args.public_out}" if args.public_out else ""))
    return 0


def key_summary(key: CoseKey) -> dict[str, Any]:
    return {
        "kty": key.kty.name, "kid": key.kid.hex() if key.kid else None,
        "alg": key.alg, "crv": key.crv.name if key.crv else None, "private": key.has_private,
    }


def cmd_show(args: argparse.Namespace) -> int:
    key = load_key(args.file)
    if args.json:
        print(json.dumps(key_summary(key)))
    else:
        print(diag(cose_key_map(key.to_map())))
    return 0
