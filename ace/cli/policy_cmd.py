"""``ace policy``: the Resource Owner's grants (A/B) and the AS's registrations.

``add-rs`` refuses (exit 2, one line on stderr) an RS whose tokens would be signed or MACed
(``--kind sign1|mac0``) while one of its profiles puts a secret in the token's cnf
(coap_oscore: the OSCORE master secret; coap_dtls: the PSK): anyone seeing the token would
hold the key (RFC 9203 §5, RFC 8747 §3.3). The AS refuses such tokens at issue time too.

``add-client --edhoc-key FILE`` registers the client's EDHOC credential (its public part: kid and
RFC 9679 thumbprint): from then on the AS refuses that key and that kid to every other client at
every RS, whoever presented it first, and revokes other clients' live tokens bound to that key or
kid (RFC 9770 TRL): a squatter is undone this way.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ace.authz_server import trl
from ace.authz_server.pop import CONFIDENTIAL_KIND, SECRET_PROFILES, thumbprint
from ace.cli import revoke_cmd
from ace.cli.config import PROFILE_NAMES, load_as, load_oscore_secret, load_psk
from ace.cli.keyfiles import load_key
from ace.errors import ConfigError, DecodeError
from ace.profiles import edhoc
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.sqlite import SqliteAsStore
from ace.tokens.keys import CoseKey


def register(sub: Any) -> None:
    p = sub.add_parser("policy", help="grants, clients and RSs at the AS (Resource Owner)")
    p.add_argument("--config", type=Path, required=True, help="the AS's config file")
    ps = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    g = ps.add_parser("grant", help="let CLIENT get SCOPE at AUDIENCE")
    g.add_argument("client"), g.add_argument("audience"), g.add_argument("scope")
    g.add_argument("--aif", action="store_true", help="SCOPE is AIF as hex CBOR (RFC 9237)")
    g.add_argument("--default", action="store_true", help="granted when the client asks for no scope")
    g.set_defaults(func=cmd_grant)
    r = ps.add_parser("revoke", help="remove grants (all of CLIENT at AUDIENCE without SCOPE)")
    r.add_argument("client"), r.add_argument("audience"), r.add_argument("scope", nargs="?")
    r.add_argument("--aif", action="store_true")
    r.add_argument("--keep-tokens", action="store_true",
                   help="do not revoke the live tokens of CLIENT at AUDIENCE (RFC 9770 TRL)")
    r.set_defaults(func=cmd_revoke)
    ps.add_parser("list", help="show clients, RSs and grants").set_defaults(func=cmd_list)
    c = ps.add_parser("add-client", help="register a client and how it authenticates to the AS")
    c.add_argument("client")
    c.add_argument("--oscore", type=Path, help="the AS's side of an OSCORE context (TOML, mode 0600)")
    c.add_argument("--psk", type=Path, help="a DTLS pre-shared key: identity and key (TOML, mode 0600)")
    c.add_argument("--profiles", default="coap_oscore,coap_dtls", help="ACE profiles it supports")
    c.add_argument("--edhoc-key", type=Path,
                   help="its EDHOC credential (COSE_Key file with a kid; the public part is kept): no other client "
                        "gets a token with that key or kid, at any RS (alone: for a client already registered)")
    c.set_defaults(func=cmd_add_client)
    s = ps.add_parser("add-rs", help="register an RS: audience and the key protecting its tokens",
                      epilog="sign1 and mac0 only with coap_edhoc_oscore (the others carry a secret in the token: "
                             "refused, exit 2)")
    s.add_argument("audience"), s.add_argument("--token-key", type=Path, required=True)
    s.add_argument("--kind", choices=["encrypt0", "sign1", "mac0"], default="encrypt0")
    s.add_argument("--lifetime", type=int, default=3600)
    s.add_argument("--profiles", default="coap_oscore", help="ACE profiles it supports (first: preferred)")
    s.add_argument("--auth-key", type=Path, help="its EDHOC credential (COSE_Key file; the public part is kept)")
    s.set_defaults(func=cmd_add_rs)


def _store(args: argparse.Namespace) -> SqliteAsStore:
    return SqliteAsStore(load_as(args.config).store)


def _scope(args: argparse.Namespace) -> str | bytes | None:
    if args.scope is None:
        return None
    return bytes.fromhex(args.scope) if args.aif else str(args.scope)


def cmd_grant(args: argparse.Namespace) -> int:
    scope = _scope(args)
    assert scope is not None
    with _store(args) as store:
        store.add_grant(Grant(client_id=args.client, audience=args.audience, scope=scope, default=args.default))
    print(f"granted {args.client} {scope!r} at {args.audience}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with _store(args) as store:
        n = store.revoke_grant(args.client, args.audience, _scope(args))
        revoked = [] if args.keep_tokens else revoke_cmd.revoke(store, client=args.client, audience=args.audience)
    print(f"revoked {n} grant(s)" + (f" and {len(revoked)} live token(s)" if revoked else ""))
    return 0 if n else 1


def cmd_list(args: argparse.Namespace) -> int:
    with _store(args) as store:
        for c in store.list_clients():
            print(f"client {c.client_id}  oscore={'yes' if c.oscore else 'no'}  profiles={list(c.profiles)}")
            for audience, kid, tp in store.edhoc_credentials(c.client_id):
                if audience is None:  # (those first presented at an RS are many: not listed)
                    print(f"       edhoc key kid={kid.hex()} thumbprint={tp.hex()}")
        for rs in store.list_rs():
            print(f"rs     {rs.audience}  tokens={rs.token_kind}  lifetime={rs.token_lifetime}s")
        for g in store.list_grants():
            scope = g.scope if isinstance(g.scope, str) else "aif:" + g.scope.hex()
            print(f"grant  {g.client_id} -> {g.audience}: {scope}" + ("  (default)" if g.default else ""))
    return 0


def _profiles(names: str) -> tuple[int, ...]:
    try:
        return tuple(PROFILE_NAMES[p.strip()] for p in names.split(","))
    except KeyError:
        raise SystemExit(f"ace: --profiles takes {', '.join(sorted(PROFILE_NAMES))}") from None


def cmd_add_client(args: argparse.Namespace) -> int:
    edhoc_key = _edhoc_key(args.edhoc_key) if args.edhoc_key is not None else None
    only_key = args.oscore is None and args.psk is None
    if only_key and edhoc_key is None:
        raise SystemExit("ace: give --oscore and/or --psk: the client must authenticate to the AS")
    profiles = _profiles(args.profiles)
    with _store(args) as store:
        if only_key and store.get_client(args.client) is None:
            raise SystemExit(f"ace: client {args.client} is not registered: give --oscore and/or --psk too")
        if not only_key:
            store.put_client(ClientRecord(
                client_id=args.client, profiles=profiles,
                oscore=load_oscore_secret(args.oscore) if args.oscore else None,
                psk=load_psk(args.psk) if args.psk else None))
        if edhoc_key is not None:
            assert edhoc_key.kid is not None
            try:
                store.register_edhoc_credential(args.client, kid=edhoc_key.kid, thumbprint=thumbprint(edhoc_key),
                                                now=int(time.time()))
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            revoked = _revoke_squatters(store, args.client, edhoc_key)
            if revoked:
                print(f"revoked {len(revoked)} live token(s) of other clients bound to that key or kid")
    print(f"registered client {args.client}" + (f" with EDHOC key kid {edhoc_key.kid!r}" if edhoc_key else ""))
    return 0


def _revoke_squatters(store: SqliteAsStore, client_id: str, key: CoseKey) -> list[bytes]:
    """Revoke other clients' live tokens bound to ``key``'s kid or thumbprint (an EDHOC credential:
    a thumbprint logged): the RSs drop those bindings, the registered client gets the credential."""
    tp = thumbprint(key)
    tokens = [t for rs in store.list_rs() for t in store.find_tokens(audience=rs.audience)
              if t.client_id != client_id and t.pop_thumbprint is not None
              and (t.pop_thumbprint == tp or t.pop_kid == key.kid)]
    return trl.revoke_issued(store, tokens, now=int(time.time()))


def _edhoc_key(path: Path) -> CoseKey:
    """The public part of the EDHOC credential in ``path`` (a P-256 key with a kid)."""
    key = load_key(path).public()
    try:
        return edhoc.check_credential(key, "client's credential")
    except DecodeError as exc:
        raise ConfigError(f"{path}: {exc.description}") from None


def cmd_add_rs(args: argparse.Namespace) -> int:
    profiles = _profiles(args.profiles)
    secret = sorted(n for n, p in PROFILE_NAMES.items() if p in profiles and p in SECRET_PROFILES)
    if args.kind != CONFIDENTIAL_KIND and secret:  # RFC 9203 §5, RFC 8747 §3.3
        raise ConfigError(f"add-rs {args.audience}: --kind {args.kind} leaves tokens readable, and with "
                          f"{' and '.join(secret)} a token carries a secret key (RFC 9203 §5, RFC 8747 §3.3); "
                          f"use --kind {CONFIDENTIAL_KIND} or --profiles coap_edhoc_oscore")
    auth_key = load_key(args.auth_key) if args.auth_key is not None else None
    if auth_key is not None and auth_key.is_symmetric:
        raise ConfigError(f"{args.auth_key}: an EDHOC credential is a public key pair, not a symmetric key")
    with _store(args) as store:
        store.put_rs(RsRecord(audience=args.audience, rs_id=args.audience, token_key=load_key(args.token_key),
                              token_kind=args.kind, token_lifetime=args.lifetime, profiles=profiles,
                              auth_key=auth_key.public() if auth_key is not None else None))
    print(f"registered RS {args.audience}")
    return 0
