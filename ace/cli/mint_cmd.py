"""``ace token mint`` and ``ace token upload``: tokens for a device with no AS running.

``mint`` issues a token as the AS would (``ace.authz_server.token``, in memory: the same claims,
presets, edhoc_info and session_id), from the RS's token key and, for the EDHOC profile, the
client's credential (a CCS, sent verbatim as the token's kccs cnf, or a COSE_Key file) and the
RS's (a CCS or COSE_Key file, for rs_cnf). It prints the token response the client would have got
(token, its RFC 9770 hash, the PoP material: OSCORE_Input_Material or edhoc_info and rs_cnf) as
JSON, or the token alone as hex, base64 or raw bytes (``--out``). The cti is random (no counter
kept): never repeated in practice. ``upload`` POSTs a token to an RS's /authz-info: the token
alone (application/cwt), or with ``--to-rs`` the map a client would send (application/ace+cbor,
e.g. the OSCORE profile's nonce1 and id1), unprotected or over the AS's OSCORE context with the RS
(``--as-context``: the RS takes uploads from the AS alone), its sequence numbers reserved in the
AS's own store (``--state as.db``, even while the AS runs: disjoint ranges, RFC 8613 §5.2).

Exit codes: 0 done (upload: the RS answered 2.01 or 2.04); 1 refused (mint: the AS would refuse,
e.g. over a preset's limits; upload: the RS refused or did not answer); 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cbor2

from ace.cbor.labels import ContentFormat, Param
from ace.cli.keyfiles import load_key
from ace.cli.policy_edhoc import read_cbor_or_hex
from ace.cli.stdio import EXIT_FAILED, EXIT_OK, UsageError
from ace.errors import ConfigError, RemoteError
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.store.base import EDHOC_PRESETS, TOKEN_KINDS, ClientRecord, Grant, RsRecord
from ace.store.memory import MemoryAsStore
from ace.tokens.cnf import CoseKeyCnf, KccsCnf
from ace.tokens.hashing import token_hash

if TYPE_CHECKING:
    from ace.store.sqlite import SqliteAsStore
    from ace.tokens.oscore_params import OscoreContextParams

PROFILES = {"edhoc": 4, "oscore": 2, "dtls": 1}  # RFC 9200 §8.8 numbers; edhoc: the presets' default


class _MintStore(MemoryAsStore):
    """A one-shot AS store whose ctis are random (no counter survives the run)."""

    def next_cti(self) -> int:
        return int.from_bytes(secrets.token_bytes(8), "big") | 1 << 63


def register_actions(tsub: Any) -> None:
    m = tsub.add_parser("mint", help="issue a token for an RS with no AS running (its token key)")
    m.add_argument("--rs-key", type=Path, required=True, help="the key protecting the RS's tokens (COSE_Key file)")
    m.add_argument("--audience", required=True)
    m.add_argument("--scope", required=True, help="text scope, or AIF as hex CBOR with --aif")
    m.add_argument("--aif", action="store_true", help="SCOPE is AIF (RFC 9237) as hex CBOR")
    m.add_argument("--profile", choices=sorted(PROFILES), default="edhoc")
    m.add_argument("--preset", choices=EDHOC_PRESETS, default="draft-11", help="EDHOC code points and token shape")
    m.add_argument("--client-cred", type=Path, metavar="FILE",
                   help="the client's EDHOC credential: a CCS (CBOR or hex, used verbatim) or a COSE_Key file")
    m.add_argument("--rs-cred", type=Path, metavar="FILE", help="the RS's EDHOC credential (CCS or COSE_Key file)")
    m.add_argument("--kind", choices=sorted(TOKEN_KINDS), default="encrypt0")
    m.add_argument("--alg", type=int, help="the token's COSE algorithm number (default: the key's)")
    m.add_argument("--lifetime", type=int, default=3600, help="seconds (default 3600)")
    m.add_argument("--client-id", default="minted", help="the token's sub (default: minted)")
    m.add_argument("--output", choices=("json", "hex", "base64"), default="json")
    m.add_argument("--out", type=Path, metavar="FILE", help="also write the token's bytes to FILE")
    m.set_defaults(func=cmd_mint)
    u = tsub.add_parser("upload", help="POST a token to an RS's /authz-info")
    u.add_argument("--rs", required=True, metavar="URI", help="the RS's /authz-info, e.g. coap://[::1]/authz-info")
    u.add_argument("--token", required=True, help="the token as hex, or @FILE holding its bytes (or hex)")
    u.add_argument("--to-rs", metavar="HEX", help="the map a client would send besides the token (ace+cbor)")
    u.add_argument("--as-context", type=Path, help="the AS's context with the RS (TOML, mode 0600; needs --state)")
    u.add_argument("--state", type=Path, help="the AS's store (as.db): it reserves that context's sequence numbers")
    u.add_argument("--timeout", type=float, default=10.0)
    u.set_defaults(func=cmd_upload)


def read_cred(path: Path) -> CoseKeyCnf | KccsCnf:
    """A CCS file (raw CBOR or hex: kept byte for byte) or a COSE_Key file."""
    data = read_cbor_or_hex(path)
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, EOFError):
        return CoseKeyCnf(load_key(path).public())  # a key file in another form (load_key says why not)
    if isinstance(value, dict) and 8 in value:
        return KccsCnf(data)
    return CoseKeyCnf(load_key(path).public())


def _scope(args: argparse.Namespace) -> str | bytes:
    if not args.aif:
        return str(args.scope)
    try:
        return bytes.fromhex(args.scope)
    except ValueError:
        raise UsageError("--scope with --aif takes hex CBOR") from None


def _rs_record(args: argparse.Namespace, profile: int) -> RsRecord:
    fields: dict[str, Any] = {}
    if args.rs_cred is not None:
        cred = read_cred(args.rs_cred)
        fields["auth_key"] = cred.key
        if isinstance(cred, KccsCnf):
            fields["auth_cred"] = cred.raw
    return RsRecord(audience=args.audience, rs_id=args.audience, token_key=load_key(args.rs_key),
                    token_kind=args.kind, token_alg=args.alg, profiles=(profile,), token_lifetime=args.lifetime,
                    edhoc_preset=args.preset, **fields)


def mint(args: argparse.Namespace) -> AccessTokenResponse:
    import time

    from ace.authz_server.token import TokenEndpoint

    if args.lifetime <= 0:
        raise UsageError("--lifetime must be positive")
    profile = PROFILES[args.profile]
    scope = _scope(args)
    store = _MintStore()
    store.put_rs(_rs_record(args, profile))
    client = ClientRecord(client_id=args.client_id, profiles=(profile,))
    store.put_client(client)
    store.add_grant(Grant(client_id=client.client_id, audience=args.audience, scope=scope))
    req_cnf = read_cred(args.client_cred) if args.client_cred is not None else None
    request = AccessTokenRequest(audience=args.audience, scope=scope, req_cnf=req_cnf, ace_profile=profile)
    endpoint = TokenEndpoint(store, clock=time.time)
    return endpoint.issue(request.encode(), client, int(ContentFormat.ACE_CBOR)).response


def report(response: AccessTokenResponse) -> dict[str, Any]:
    token = response.access_token
    out: dict[str, Any] = {"token": token.hex(), "token_base64": base64.b64encode(token).decode(),
                           "bytes": len(token), "token_hash": token_hash(token).hex(),
                           "response": response.encode().hex()}
    m = cbor2.loads(response.encode())
    for name, label in (("cnf", Param.CNF), ("rs_cnf", Param.RS_CNF), ("edhoc_info", Param.EDHOC_INFO)):
        if int(label) in m:
            out[name] = cbor2.dumps(m[int(label)]).hex()
    return out


def cmd_mint(args: argparse.Namespace) -> int:
    try:
        response = mint(args)
    except RemoteError as exc:
        print(f"ace token mint: refused: {exc.description}", file=sys.stderr)
        return EXIT_FAILED
    token = response.access_token
    if args.out is not None:
        try:
            _write_private(args.out, token)
        except OSError as exc:
            raise ConfigError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    if args.output == "hex":
        print(token.hex())
    elif args.output == "base64":
        print(base64.b64encode(token).decode())
    else:
        print(json.dumps(report(response), indent=2))
    return EXIT_OK


def _write_private(path: Path, data: bytes) -> None:
    """Mode 0600, as our other secret files (an existing file is narrowed too): a bearer of the token's PoP key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)
        f.write(data)


def upload_payload(token: bytes, to_rs: str | None) -> tuple[bytes, int]:
    """The token alone (application/cwt), or with the map a client would send (application/ace+cbor)."""
    if to_rs is None:
        return token, int(ContentFormat.CWT)
    try:
        extra = cbor2.loads(bytes.fromhex(to_rs))
    except (ValueError, cbor2.CBORDecodeError, EOFError):
        raise UsageError("--to-rs takes a hex CBOR map") from None
    if not isinstance(extra, dict) or int(Param.ACCESS_TOKEN) in extra:
        raise UsageError("--to-rs: a CBOR map without access_token (1)")
    return cbor2.dumps({int(Param.ACCESS_TOKEN): token, **extra}), int(ContentFormat.ACE_CBOR)


def _read_token(arg: str) -> bytes:
    """hex, or @FILE holding the bytes (or their hex), as ``ace token inspect`` takes it."""
    if arg.startswith("@"):
        return read_cbor_or_hex(Path(arg[1:]))
    try:
        return bytes.fromhex(arg.strip().removeprefix("0x"))
    except ValueError:
        raise UsageError("--token must be hex or @FILE") from None


def cmd_upload(args: argparse.Namespace) -> int:
    token = _read_token(args.token)
    payload, cf = upload_payload(token, args.to_rs)
    if (args.as_context is None) != (args.state is None):
        raise UsageError("--as-context and --state go together (--state: the AS's store, as.db, which reserves "
                         "the context's sequence numbers)")
    state = _as_store(args.state) if args.state is not None else None
    try:
        secret = _as_secret(args.as_context, state) if state is not None else None
        outcome = asyncio.run(_upload(args, payload, cf, secret, state))
    finally:
        if state is not None:
            state.close()
    if outcome.code is None:
        print(f"ace token upload: no answer from {args.rs}: {outcome.detail}", file=sys.stderr)
        return EXIT_FAILED
    code = f"{outcome.code[0]}.{outcome.code[1]:02d}"
    print(json.dumps({"code": code, "payload": outcome.payload.hex(), "content_format": outcome.content_format}))
    if outcome.code[0] != 2:
        print(f"ace token upload: the RS refused the token: {code}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _as_store(path: Path) -> SqliteAsStore:
    """The AS's own store (as.db), which reserves the context's sequence numbers for it and for us
    in disjoint ranges (``SequenceReservations``): safe while the AS runs, never a nonce twice."""
    from ace.store.sqlite import SqliteAsStore

    if not path.is_file():
        raise UsageError(f"--state {path}: not the AS's store (as.db)")
    try:
        return SqliteAsStore(path)
    except ConfigError as exc:
        raise UsageError(f"--state must be the AS's store (as.db): {exc}") from None


def _as_secret(path: Path, store: SqliteAsStore) -> OscoreContextParams:
    """The AS's side of an RS's context, as that store has it (else its numbers would not be the AS's)."""
    from ace.cli.config import load_oscore_secret
    from ace.coap.contexts import secret_fingerprint

    secret = load_oscore_secret(path)
    if not any(rs.oscore is not None and secret_fingerprint(rs.oscore) == secret_fingerprint(secret)
               for rs in store.list_rs()):
        raise UsageError(f"--as-context {path}: not the context of any RS in the AS's store {store.path}")
    return secret


async def _upload(args: argparse.Namespace, payload: bytes, cf: int, secret: OscoreContextParams | None,
                  state: SqliteAsStore | None) -> Any:
    import aiocoap

    from ace.coap import as_upload, contexts

    coap = await aiocoap.Context.create_client_context(transports=["oscore", "udp6"])
    try:
        security = None if secret is None or state is None else contexts.from_secret(secret, store=state,
                                                                                      claims=["as"])
        return await as_upload.upload(coap, args.rs, payload, cf, security=security, timeout=args.timeout)
    finally:
        await coap.shutdown()
