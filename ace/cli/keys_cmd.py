"""``ace keys gen`` and ``ace keys import`` (given key bytes): COSE_Key files (mode 0600), and ``ace keys show``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ace.cbor.diag import diag
from ace.cbor.labels import Alg, Curve, KeyType
from ace.cli.keyfiles import load_key, save_key
from ace.cli.stdio import UsageError, os_error_text
from ace.errors import ConfigError
from ace.redact import cose_key_map
from ace.tokens.crypto import generate
from ace.tokens.keys import CoseKey, generate_symmetric, symmetric_key

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
    imp = ksub.add_parser("import", help="write a COSE_Key file (mode 0600) from given key bytes",
                          epilog="e.g. ace-java's token key: ace keys import --alg AES-CCM-16-64-128 "
                                 "--symmetric a1a2a30405060708090a0b0c0d0e0f10 aud1-token.key")
    given = imp.add_mutually_exclusive_group(required=True)
    given.add_argument("--symmetric", metavar="HEX", help="a symmetric key (16, 24 or 32 bytes)")
    given.add_argument("--ec2-d", metavar="HEX", help="a P-256 private key (32 bytes; x and y are derived)")
    given.add_argument("--ec2-xy", nargs=2, metavar=("X", "Y"), help="a P-256 public key (32 bytes each)")
    ikid = imp.add_mutually_exclusive_group()
    ikid.add_argument("--kid", help="key id as hex (default: none)")
    ikid.add_argument("--kid-text", help="key id as UTF-8 text")
    imp.add_argument("--alg", help="pin the key to one COSE alg (name, e.g. AES_CCM_16_64_128, or number)")
    imp.add_argument("--force", action="store_true", help="overwrite an existing file")
    imp.add_argument("out", metavar="FILE")
    imp.set_defaults(func=cmd_import)
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
        raise UsageError(f"--alg: unknown alg {text!r}; one of {', '.join(a.name for a in Alg)}") from None


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise UsageError(f"{what} must be hex, not {value!r}") from None


def _kid(args: argparse.Namespace) -> bytes | None:
    return _hex(args.kid, "--kid") if args.kid else args.kid_text.encode() if args.kid_text else None


def cmd_gen(args: argparse.Namespace) -> int:
    kid = _kid(args)
    alg = parse_alg(args.alg)
    curve = KEY_TYPES[args.type]
    if curve is None:
        if args.size not in (16, 24, 32):
            raise UsageError(f"keys gen: --size must be 16, 24 or 32, not {args.size}")
        key = generate_symmetric(args.size, kid=kid, alg=alg)
    else:
        key = generate(curve, kid=kid, alg=alg)
    if args.public_out and key.is_symmetric:
        raise UsageError("keys gen: --public-out: a symmetric key has no public part")
    _save("keys gen", args.out, key, args.force)
    if args.public_out:
        _save("keys gen", args.public_out, key.public(), args.force)
    print(f"wrote {args.out}" + (f" and {args.public_out}" if args.public_out else ""))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    kid, alg = _kid(args), parse_alg(args.alg)
    if args.symmetric is not None:
        k = _hex(args.symmetric, "--symmetric")
        if len(k) not in (16, 24, 32):
            raise UsageError(f"keys import: --symmetric must be 16, 24 or 32 bytes, not {len(k)}")
        key = symmetric_key(k, kid=kid, alg=alg)
    else:
        key = _ec2(args, kid, alg)
    _save("keys import", args.out, key, args.force)
    print(f"wrote {args.out}")
    return 0


def _ec2(args: argparse.Namespace, kid: bytes | None, alg: int | None) -> CoseKey:
    """A P-256 key from d (x and y derived) or from x and y (a public key; checked to be on the curve)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        if args.ec2_d is not None:
            d = _hex(args.ec2_d, "--ec2-d")
            if len(d) != 32:
                raise ValueError("--ec2-d must be 32 bytes")
            pub = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1()).public_key().public_numbers()
        else:
            x, y = (_hex(v, "--ec2-xy") for v in args.ec2_xy)
            if len(x) != 32 or len(y) != 32:
                raise ValueError("--ec2-xy takes two 32-byte coordinates")
            d = None
            pub = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1())
            pub.public_key()  # raises ValueError when the point is not on the curve
    except ValueError as exc:
        raise UsageError(f"keys import: not a P-256 key: {exc}") from None
    return CoseKey(kty=KeyType.EC2, crv=Curve.P_256, kid=kid, alg=alg, x=pub.x.to_bytes(32, "big"),
                   y=pub.y.to_bytes(32, "big"), d=d)


def _save(command: str, path: str, key: CoseKey, force: bool) -> None:
    """Write a key file, or say in one line why not (exists without --force, no such directory, ...)."""
    try:
        save_key(path, key, overwrite=force)
    except ConfigError as exc:
        if isinstance(exc.__cause__, FileExistsError):
            raise UsageError(f"{command}: {path}: exists; --force replaces it") from None
        raise
    except OSError as exc:
        raise UsageError(f"{command}: {os_error_text(exc, 'write')}") from None


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
