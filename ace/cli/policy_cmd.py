"""``ace policy``: the Resource Owner's grants (A/B) and the AS's registrations.

``add-rs`` refuses (exit 2, one line on stderr) an RS whose tokens would be signed or MACed
(``--kind sign1|mac0``) while one of its profiles puts a secret in the token's cnf
(coap_oscore: the OSCORE master secret; coap_dtls: the PSK) and the secret is not encrypted to
the RS (``--pop-key-encryption shared|rs_public`` with ``--encryption-key``): anyone seeing the
token would hold the key (RFC 9203 §3.2, RFC 8747 §3.3). The AS refuses such tokens at issue time too.

``add-client --edhoc-key FILE`` registers the client's EDHOC credential (its public part: kid and
RFC 9679 thumbprint): from then on the AS refuses that key and that kid to every other client at
every RS, whoever presented it first, and revokes other clients' live tokens bound to that key or
kid (RFC 9770 TRL): a squatter is undone this way.
"""

from __future__ import annotations

import argparse
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ace.authz_server import trl
from ace.authz_server.pop import CONFIDENTIAL_KIND, SECRET_PROFILES, secret_reaches
from ace.cbor.labels import Alg
from ace.cli import policy_edhoc, revoke_cmd
from ace.cli.config import PROFILE_NAMES, load_oscore_secret, load_psk, write_oscore_secret
from ace.cli.keyfiles import load_key
from ace.cli.policy_args import check_registered, open_store, parse_profiles, parse_scope, profile_names
from ace.cli.stdio import UsageError, os_error_text
from ace.errors import AceError, ConfigError, DecodeError
from ace.profiles import edhoc
from ace.store.base import (
    ACE_JAVA,
    EXI_CTI_LAYOUTS,
    MAX_SALT_LEN,
    POP_KEY_ENCRYPTIONS,
    TIME_UNITS,
    TOKEN_KINDS,
    ClientRecord,
    Grant,
    RsRecord,
    TokenFormat,
)
from ace.store.checks import check_encryption_fits, check_encryption_key
from ace.store.sqlite import SqliteAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cwt import KIND_BY_NAME, issue_token
from ace.tokens.keys import CoseKey, thumbprint
from ace.tokens.oscore_params import OscoreContextParams


def register(sub: Any) -> None:
    p = sub.add_parser("policy", help="grants, clients and RSs at the AS (Resource Owner)")
    p.add_argument("--config", type=Path, help="the AS's config file (before or after ACTION)")
    ps = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    g = ps.add_parser("grant", help="let CLIENT get SCOPE at AUDIENCE (both registered; SCOPE checked)")
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
    ls = ps.add_parser("list", help="show clients, RSs and grants")
    ls.set_defaults(func=cmd_list)
    c = ps.add_parser("add-client", help="register a client and how it authenticates to the AS")
    c.add_argument("client")
    oscore = c.add_mutually_exclusive_group()
    oscore.add_argument("--oscore", type=Path, help="the AS's side of an OSCORE context (TOML, mode 0600)")
    oscore.add_argument("--oscore-new", type=Path, metavar="FILE",
                        help="make a fresh OSCORE context with the AS: write the client's side to FILE (mode 0600, "
                             "its client.toml's as_context) and keep the AS's side")
    c.add_argument("--psk", type=Path, help="a DTLS pre-shared key: identity and key (TOML, mode 0600)")
    c.add_argument("--profiles", default="coap_oscore,coap_dtls",
                   help="ACE profiles it supports, e.g. oscore,dtls,edhoc or coap_oscore,...")
    c.add_argument("--edhoc-key", type=Path,
                   help="its EDHOC credential (COSE_Key file with a kid; the public part is kept): no other client "
                        "gets a token with that key or kid, at any RS (alone: for a client already registered)")
    c.set_defaults(func=cmd_add_client)
    s = ps.add_parser("add-rs", help="register an RS, or change the given settings of a registered one",
                      epilog="sign1 and mac0 with coap_oscore or coap_dtls only with --encryption-key (their "
                             "tokens carry a secret: encrypted to the RS, else refused, exit 2). For a registered "
                             "RS only the options given change.")
    s.add_argument("audience")
    s.add_argument("--token-key", type=Path, help="the key protecting its tokens (COSE_Key file; a new RS needs it)")
    s.add_argument("--kind", choices=sorted(TOKEN_KINDS), help="its tokens' COSE message (new RS: encrypt0)")
    s.add_argument("--alg", help="their COSE algorithm, by name or number (e.g. AES-CCM-16-64-128 or 10; "
                                 "'key': the key's own, the default)")
    s.add_argument("--lifetime", type=int, help="token lifetime in seconds (new RS: 3600)")
    s.add_argument("--profiles", help="ACE profiles it supports, first preferred, e.g. oscore,edhoc "
                                      "(new RS: coap_oscore)")
    s.add_argument("--auth-key", type=Path, help="its EDHOC credential (COSE_Key file; the public part is kept)")
    s.add_argument("--rs-id", help="its own identity when not its audience (exi ctis; new RS: the audience)")
    s.add_argument("--oscore", type=Path, help="the AS's side of the RS's OSCORE context with the AS (TOML, mode "
                                               "0600): the RS's /introspect requests and TRL observation")
    s.add_argument("--pop-key-encryption", choices=POP_KEY_ENCRYPTIONS,
                   help="sign1/mac0 tokens: how a secret PoP key is encrypted to the RS: shared (COSE_Encrypt0, a "
                        "key shared with it) or rs_public (COSE_Encrypt, ECDH-ES to its public key); none: not "
                        "(default: from --encryption-key's kind)")
    s.add_argument("--encryption-key", type=Path, help="the key for it (COSE_Key file with a kid): the shared "
                                                       "symmetric key, or the RS's key pair (the public part is kept)")
    f = s.add_argument_group("token format", "defaults: RFC 8392, 9200 and 9203 as written; each option is a "
                                             "deviation some peer needs")
    f.add_argument("--peer", choices=sorted(PEER_FORMATS), help="all of that peer's format at once (ace-java: "
                   "--cose-tag --no-sub --time-unit ms --exi --exi-cti text --salt-len 1); options given win")
    f.add_argument("--cose-tag", action=argparse.BooleanOptionalAction, help="tag the COSE message (RFC 9052 §2)")
    f.add_argument("--cwt-tag", action=argparse.BooleanOptionalAction, help="the CWT tag 61 around it (RFC 8392 §6)")
    f.add_argument("--sub", action=argparse.BooleanOptionalAction,
                   help="sub = the client id (default: yes; ace-java: no)")
    f.add_argument("--time-unit", choices=sorted(TIME_UNITS), help="unit of exp and exi (default s; ace-java: ms)")
    f.add_argument("--exi", action=argparse.BooleanOptionalAction,
                   help="exi and a sequence-numbered cti instead of exp (RFC 9200 §5.10.3; or as.toml exi_audiences)")
    f.add_argument("--exi-cti", choices=EXI_CTI_LAYOUTS, help="exi cti: rs id + 4-byte big-endian sequence number "
                   "(bytes, default) or + its decimal digits (text, ace-java)")
    f.add_argument("--salt-len", help=f"OSCORE_Input_Material salt bytes, 0 to {MAX_SALT_LEN}, or 'as': as.toml "
                                      "salt_len (default)")
    policy_edhoc.add_options(s)
    s.set_defaults(func=cmd_add_rs)
    for action in (g, r, ls, c, s):  # `ace policy grant --config as.toml ...` as well as `ace policy --config ...`
        action.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="the AS's config file")


def cmd_grant(args: argparse.Namespace) -> int:
    scope = parse_scope(args)
    assert scope is not None
    with open_store(args) as store:
        check_registered(store, args)
        store.add_grant(Grant(client_id=args.client, audience=args.audience, scope=scope, default=args.default))
    shown = scope if isinstance(scope, str) else "aif:" + scope.hex()
    print(f"granted {args.client} {shown!r} at {args.audience}" + (" (default)" if args.default else ""))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        n = store.revoke_grant(args.client, args.audience, parse_scope(args))
        revoked = [] if args.keep_tokens else revoke_cmd.revoke(store, client=args.client, audience=args.audience)
    print(f"revoked {n} grant(s)" + (f" and {len(revoked)} live token(s)" if revoked else ""))
    return 0 if n else 1


def cmd_list(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        for c in store.list_clients():
            print(f"client {c.client_id}  oscore={'yes' if c.oscore else 'no'}  psk={'yes' if c.psk else 'no'}  "
                  f"profiles={profile_names(c.profiles)}")
            for audience, kid, tp in store.edhoc_credentials(c.client_id):
                if audience is None:  # (those first presented at an RS are many: not listed)
                    print(f"       edhoc key kid={kid.hex()} thumbprint={tp.hex()}")
        for rs in store.list_rs():
            print(f"rs     {rs.audience}  tokens={rs.token_kind}  lifetime={rs.token_lifetime}s  " + _rs_details(rs))
        for g in store.list_grants():
            scope = g.scope if isinstance(g.scope, str) else "aif:" + g.scope.hex()
            print(f"grant  {g.client_id} -> {g.audience}: {scope}" + ("  (default)" if g.default else ""))
    return 0


def _rs_details(rs: RsRecord) -> str:
    """What ``list`` shows of an RS besides its kind and lifetime: every setting, no key material."""
    f = rs.format
    parts = [f"rs_id={rs.rs_id}", f"alg={'key' if rs.token_alg is None else rs.token_alg}",
             f"profiles={profile_names(rs.profiles)}",
             f"oscore={'yes' if rs.oscore else 'no'}", f"auth_key={'yes' if rs.auth_key else 'no'}",
             f"cose_tag={_yn(f.cose_tag)}", f"cwt_tag={_yn(f.cwt_tag)}", f"sub={_yn(f.sub)}",
             f"time_unit={f.time_unit}", f"exi={_yn(f.exi)}", f"exi_cti={f.exi_cti}",
             f"salt_len={'as' if f.salt_len is None else f.salt_len}",
             f"pop_key_encryption={rs.pop_key_encryption}" + (
                 f" (kid {rs.encryption_key.kid.hex()})" if rs.encryption_key and rs.encryption_key.kid else ""),
             f"edhoc_preset={rs.edhoc_preset}", f"authz_info={rs.upload_uri or 'none'}"]
    return "  ".join(parts)


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def cmd_add_client(args: argparse.Namespace) -> int:
    edhoc_key = _edhoc_key(args.edhoc_key) if args.edhoc_key is not None else None
    only_key = args.oscore is None and args.oscore_new is None and args.psk is None
    if only_key and edhoc_key is None:
        raise UsageError("policy add-client: give --oscore, --oscore-new and/or --psk: the client must "
                         "authenticate to the AS")
    if not args.client:
        raise UsageError("policy add-client: CLIENT must not be empty")
    profiles = parse_profiles(args.profiles)
    oscore = load_oscore_secret(args.oscore) if args.oscore else None
    psk = load_psk(args.psk) if args.psk else None
    with open_store(args, create=True) as store:
        if only_key and store.get_client(args.client) is None:
            raise UsageError(f"policy add-client: client {args.client} is not registered: give --oscore, "
                             "--oscore-new and/or --psk too")
        if args.oscore_new is not None:
            oscore = _new_oscore(store, args.oscore_new)
        if not only_key:
            try:
                store.put_client(ClientRecord(client_id=args.client, profiles=profiles, oscore=oscore, psk=psk))
            except BaseException:
                if args.oscore_new is not None:
                    args.oscore_new.unlink(missing_ok=True)
                raise
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


AS_SENDER_ID = b"\x00"  # the AS's sender id in the contexts --oscore-new makes (as ace init's)


def _new_oscore(store: SqliteAsStore, path: Path) -> OscoreContextParams:
    """A fresh OSCORE context with the AS (RFC 8613 §3.1): the client's side written to ``path`` (0600,
    never over an existing file), the AS's side returned. The client's sender id is the first one-byte
    id no other client or RS uses with the AS (RFC 8613 §3.3: unique per recipient at the AS)."""
    contexts = [c.oscore for c in store.list_clients()] + [rs.oscore for rs in store.list_rs()]
    taken = {o.recipient_id for o in contexts if o is not None and o.id_context is None}
    free = next((bytes([i]) for i in range(1, 256) if bytes([i]) not in taken), None)
    if free is None:
        raise UsageError("policy add-client: --oscore-new: every one-byte sender id is taken; give --oscore FILE")
    if path.exists():
        raise UsageError(f"policy add-client: --oscore-new: {path} exists; choose another file (it holds a secret)")
    ms = secrets.token_bytes(16)
    as_side = OscoreContextParams(master_secret=ms, sender_id=AS_SENDER_ID, recipient_id=free)
    try:
        write_oscore_secret(path, as_side.mirrored())
    except OSError as exc:
        raise UsageError(f"policy add-client: --oscore-new: {os_error_text(exc, 'write')}") from None
    print(f"wrote {path}: the client's OSCORE context with the AS (sender id {free.hex()}); "
          "point its client.toml's as_context at it")
    return as_side


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


PEER_FORMATS = {"ace-java": ACE_JAVA}
_FORMAT_OPTIONS = ("cose_tag", "cwt_tag", "sub", "time_unit", "exi", "exi_cti", "salt_len")


def cmd_add_rs(args: argparse.Namespace) -> int:
    fields, fmt = _rs_fields(args), _format_fields(args)
    with open_store(args, create=True) as store:
        old = store.get_rs(args.audience)
        if old is None:
            if "token_key" not in fields:
                raise ConfigError(f"add-rs {args.audience}: not registered yet: give --token-key")
            rs = RsRecord(**{"audience": args.audience, "rs_id": args.audience, **fields}, format=TokenFormat(**fmt))
        else:  # an update: what is not given stays as it is
            rs = replace(old, **fields, format=replace(old.format, **fmt))
        _check_rs(rs, store)
        policy_edhoc.check_preset(rs)
        store.put_rs(rs)
    changed = sorted({*fields, *fmt}) if old is not None else []
    print(f"updated RS {args.audience}: {', '.join(changed) or 'nothing changed'}" if old is not None
          else f"registered RS {args.audience}")
    return 0


def _rs_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``RsRecord`` fields the options give (keys, files: read and checked now)."""
    fields: dict[str, Any] = {}
    if args.token_key is not None:
        fields["token_key"] = load_key(args.token_key)
    if args.auth_key is not None:
        auth_key = load_key(args.auth_key)
        if auth_key.is_symmetric:
            raise ConfigError(f"{args.auth_key}: an EDHOC credential is a public key pair, not a symmetric key")
        fields["auth_key"] = auth_key.public()
    if args.oscore is not None:
        fields["oscore"] = load_oscore_secret(args.oscore)
    if args.alg is not None:
        fields["token_alg"] = _alg(args.alg)
    if args.lifetime is not None:
        if args.lifetime <= 0:
            raise ConfigError(f"add-rs {args.audience}: --lifetime must be positive")
        fields["token_lifetime"] = args.lifetime
    if args.profiles is not None:
        fields["profiles"] = parse_profiles(args.profiles)
    if args.rs_id is not None:
        if not args.rs_id:
            raise ConfigError(f"add-rs {args.audience}: --rs-id must not be empty")
        fields["rs_id"] = args.rs_id
    if args.kind is not None:
        fields["token_kind"] = args.kind
    fields.update(_encryption_fields(args))
    fields.update(policy_edhoc.edhoc_fields(args, fields.get("auth_key")))
    return fields


def _encryption_fields(args: argparse.Namespace) -> dict[str, Any]:
    """--pop-key-encryption and --encryption-key: the RS's key pair becomes its public part; the
    choice, when not given, follows from the key (symmetric: shared, else rs_public)."""
    fields: dict[str, Any] = {}
    if args.encryption_key is not None:
        key = load_key(args.encryption_key)
        fields["encryption_key"] = key if key.is_symmetric else key.public()
        fields["pop_key_encryption"] = args.pop_key_encryption or ("shared" if key.is_symmetric else "rs_public")
    elif args.pop_key_encryption == "none":
        fields.update(pop_key_encryption="none", encryption_key=None)
    elif args.pop_key_encryption is not None:
        raise ConfigError(f"add-rs {args.audience}: --pop-key-encryption {args.pop_key_encryption} needs "
                          "--encryption-key")
    return fields


def _format_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The ``TokenFormat`` fields the options give: a peer's whole format, then each option given."""
    fmt: dict[str, Any] = {}
    if args.peer is not None:
        fmt = {name: getattr(PEER_FORMATS[args.peer], name) for name in _FORMAT_OPTIONS}
    for name in _FORMAT_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            fmt[name] = value
    if isinstance(fmt.get("salt_len"), str):
        fmt["salt_len"] = _salt_len(fmt["salt_len"])
    return fmt


def _salt_len(value: str) -> int | None:
    if value == "as":
        return None
    if not value.isdigit() or not 0 <= int(value) <= MAX_SALT_LEN:
        raise UsageError(f"--salt-len takes 0 to {MAX_SALT_LEN} or 'as', not {value!r}")
    return int(value)


def _alg(value: str) -> int | None:
    """A COSE algorithm by its number or its name (RFC 9053; case and - or _ as one likes); 'key': none."""
    if value == "key":
        return None
    try:
        return int(Alg(int(value))) if value.lstrip("-").isdigit() else int(Alg[value.upper().replace("-", "_")])
    except (KeyError, ValueError):
        raise UsageError(f"--alg takes a COSE algorithm ace knows ({', '.join(a.name for a in Alg)}), "
                         f"its number or 'key', not {value!r}") from None


def _check_rs(rs: RsRecord, store: SqliteAsStore) -> None:
    """What add-rs refuses: readable tokens carrying a secret, a key that cannot make its kind of token
    with its alg, an RS <-> AS OSCORE context whose kid names another RS or a client."""
    secret = sorted(n for n, p in PROFILE_NAMES.items() if p in rs.profiles and p in SECRET_PROFILES)
    if not secret_reaches(rs) and secret:  # RFC 9203 §3.2, RFC 8747 §3.3
        raise ConfigError(f"add-rs {rs.audience}: --kind {rs.token_kind} leaves tokens readable, and with "
                          f"{' and '.join(secret)} a token carries a secret key (RFC 9203 §3.2, RFC 8747 §3.3); "
                          f"use --kind {CONFIDENTIAL_KIND}, --encryption-key (the secret encrypted to the RS) "
                          "or --profiles coap_edhoc_oscore")
    try:
        check_encryption_key(rs.pop_key_encryption, rs.encryption_key)
        check_encryption_fits(rs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"add-rs {rs.audience}: --encryption-key: {exc}") from None
    try:  # a token for nobody, so that a key, kind and alg that do not fit are refused now, not at /token
        issue_token(AccessTokenClaims(aud=rs.audience), rs.token_key, kind=KIND_BY_NAME[rs.token_kind],
                    alg=rs.token_alg)
    except (AceError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"add-rs {rs.audience}: its token key cannot make {rs.token_kind} tokens"
                          + (f" with alg {rs.token_alg}" if rs.token_alg is not None else "") + f" ({exc})") from None
    if rs.oscore is not None:
        kid = (rs.oscore.recipient_id, rs.oscore.id_context)
        others = [o.audience for o in store.list_rs()
                  if o.audience != rs.audience and o.oscore is not None and (o.oscore.recipient_id,
                                                                             o.oscore.id_context) == kid]
        client = store.find_client_by_oscore_kid(*kid)
        if others or client is not None:
            owner = f"RS {others[0]}" if others else f"client {client.client_id}"  # type: ignore[union-attr]
            raise ConfigError(f"add-rs {rs.audience}: its OSCORE recipient id and id context are already {owner}'s")
