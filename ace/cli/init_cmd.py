"""``ace init DIR``: keys, OSCORE contexts, configs and an AS store for a loopback setup.

Writes an AS (as.toml, as.db), an RS (rs.toml, its token key) and a client (client.toml,
its OSCORE context with the AS) that work together on ::1, with the client registered at
the AS, the RS registered with its token key, and one Resource Owner grant (clientA may
read /temp at rs1). Secrets are fresh (``secrets``) and every secret file is mode 0600.
"""

from __future__ import annotations

import argparse
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ace.cbor.labels import Curve
from ace.cli import init_peer
from ace.cli.config import DEFAULT_AS_PORT, DEFAULT_RS_PORT, write_oscore_secret, write_private, write_psk
from ace.cli.keyfiles import save_key
from ace.cli.stdio import UsageError, os_error_text
from ace.errors import ConfigError
from ace.store.base import ClientRecord, DtlsPsk, Grant, RsRecord
from ace.store.sqlite import SqliteAsStore
from ace.tokens.crypto import generate
from ace.tokens.keys import generate_symmetric
from ace.tokens.oscore_params import OscoreContextParams

CLIENT_ID, AUDIENCE = "clientA", "rs1"
WRITES = ("as.toml", "as.db", "rs.toml", "rs1-token.key", "rs1-edhoc.key", "client.toml", "client-as.oscore.toml",
          "client-as.psk.toml", "client-edhoc.key", "rs-as.oscore.toml")  # what init_deployment writes


@dataclass(frozen=True, slots=True)
class Deployment:
    directory: Path
    as_config: Path
    rs_config: Path
    client_config: Path
    as_uri: str
    rs_uri: str


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="write keys and configs for an AS, an RS and a client on loopback")
    p.add_argument("dir", type=Path)
    p.add_argument("--host", help="loopback address to use (default ::1; with --peer ace-java 127.0.0.1)")
    p.add_argument("--as-port", type=int, default=DEFAULT_AS_PORT)
    p.add_argument("--rs-port", type=int, default=DEFAULT_RS_PORT)
    p.add_argument("--peer", choices=init_peer.PEERS,
                   help="write that implementation's interop deployment instead (its ids, keys, scopes, "
                        "resources and token format): each role stands in for its own")
    p.set_defaults(func=cmd_init)


def _uri(host: str, port: int, path: str = "") -> str:
    h = f"[{host}]" if ":" in host else host
    return f"coap://{h}:{port}{path}"


def _prepare(directory: Path, files: tuple[str, ...]) -> None:
    """Make ``directory``, refusing one that holds a file we would write (never overwrite a secret)."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"init: {directory}: not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "as.toml").exists():
        raise ConfigError(f"{directory}: already initialised (as.toml exists)")
    there = [name for name in files if (directory / name).exists()]
    if there:
        raise UsageError(f"init: {directory / there[0]} exists: choose an empty directory")


def init_deployment(directory: Path, *, host: str = "::1", as_port: int = DEFAULT_AS_PORT,
                    rs_port: int = DEFAULT_RS_PORT) -> Deployment:
    _prepare(directory, WRITES)
    as_uri, rs_uri = _uri(host, as_port, "/token"), _uri(host, rs_port)
    token_key = generate_symmetric(16, kid=b"\x01")
    save_key(directory / "rs1-token.key", token_key)
    ms = secrets.token_bytes(16)
    as_side = OscoreContextParams(master_secret=ms, sender_id=b"\x00", recipient_id=b"\x01")
    write_oscore_secret(directory / "client-as.oscore.toml", as_side.mirrored())
    psk = DtlsPsk(identity=CLIENT_ID.encode(), key=secrets.token_bytes(16))
    rs_ms = secrets.token_bytes(16)  # the RS's own context with the AS (RFC 9770: it observes the TRL)
    rs_as_side = OscoreContextParams(master_secret=rs_ms, sender_id=b"as", recipient_id=b"rs1")
    write_oscore_secret(directory / "rs-as.oscore.toml", rs_as_side.mirrored())
    rs_edhoc = generate(Curve.P_256, kid=b"rs1")  # EDHOC credentials (method 3, suite 2)
    save_key(directory / "rs1-edhoc.key", rs_edhoc)
    client_edhoc = generate(Curve.P_256, kid=b"cA")
    save_key(directory / "client-edhoc.key", client_edhoc)
    write_psk(directory / "client-as.psk.toml", psk)
    with SqliteAsStore(directory / "as.db") as store:
        store.put_client(ClientRecord(client_id=CLIENT_ID, oscore=as_side, psk=psk, profiles=(2, 1, 4)))
        store.register_edhoc_key(CLIENT_ID, client_edhoc.public())  # its key, never first-presented by another
        store.put_rs(RsRecord(audience=AUDIENCE, rs_id=AUDIENCE, token_key=token_key, profiles=(2, 1, 4),
                              auth_key=rs_edhoc.public(), oscore=rs_as_side))
        store.add_grant(Grant(client_id=CLIENT_ID, audience=AUDIENCE, scope="r_temp", default=True))
    write_private(directory / "as.toml", f"""# Authorization Server (ace as --config as.toml)
[as]
bind = "{host}"
port = {as_port}
store = "as.db"          # clients, RSs, grants, token log (ace policy ... edits it)
include_iat = true       # iat (6 bytes per token) lets the RS tell a newer token of a client from a replayed one
salt_len = 0             # OSCORE_Input_Material salt bytes (0: none, smallest tokens)
dtls = false             # true: clients may also use DTLS-PSK, on port + 1 (mind the RS's port)
exi_audiences = []       # RSs without a clock: their tokens carry exi and sequence-numbered ctis
reference_audiences = [] # RSs that get opaque reference tokens and introspect them here (RFC 9200 §5.9)
max_live_tokens = 256    # live tokens one client may hold per RS; a request beyond gets 4.00
""")
    write_private(directory / "rs.toml", f"""# Resource Server (ace rs --config rs.toml)
[rs]
audience = "{AUDIENCE}"
bind = "{host}"
port = {rs_port}
as_uri = "{as_uri}"       # sent in AS Request Creation Hints
as_context = "rs-as.oscore.toml"   # our OSCORE context with the AS
observe_trl = false      # true: observe the AS's Token Revocation List (RFC 9770), drop revoked tokens
introspect = false       # true: introspect every token at the AS (reference tokens always are)
token_keys = ["rs1-token.key"]
hint_scope = "r_temp"
max_tokens = 64          # tokens kept at once (a flood displaces only tokens never used)
max_bytes = 163840       # and the memory they may take (~2.2 KiB each)
cnonce = false           # true: hints carry a fresh cnonce the token must echo (RS without a clock)
state = "rs-state.json"  # what survives a restart: the highest expired exi sequence number
exi_unit = "s"           # "ms" for an AS that sends exi in milliseconds (ace-java does)
profiles = ["coap_oscore", "coap_dtls", "coap_edhoc_oscore"]   # DTLS (RFC 9202) listens on port + 1
edhoc_key = "rs1-edhoc.key"   # the RS's EDHOC credential (the AS sends its public part as rs_cnf)

[rs.scopes]               # what each text scope-token allows: [[path, [methods]], ...]
r_temp = [["/temp", ["GET"]]]
rw_led = [["/led", ["GET", "PUT"]]]
""")
    write_private(directory / "client.toml", f"""# Client (ace client --config client.toml get {rs_uri}/temp)
[client]
client_id = "{CLIENT_ID}"
as_uri = "{as_uri}"
as_context = "client-as.oscore.toml"
state = "client-state.json"
edhoc_key = "client-edhoc.key"   # our EDHOC credential, sent in req_cnf for coap_edhoc_oscore
# as_psk = "client-as.psk.toml"   # with as_uri = "coaps://...": reach the AS over DTLS-PSK instead
# profile = "coap_dtls"   # ask the AS for this profile (default: the AS chooses; OSCORE first)
# trust_first_hints = false   # only the RSs below (default: an unlisted RS's first hints' audience is pinned)

[client.audiences]        # RS origin -> its audience: creation hints naming another one are refused
"{rs_uri}" = "{AUDIENCE}"
""")
    return Deployment(directory, directory / "as.toml", directory / "rs.toml", directory / "client.toml",
                      as_uri, rs_uri)


def init_peer_deployment(directory: Path, peer: str, *, host: str = init_peer.HOST,
                         as_port: int = init_peer.AS_PORT, rs_port: int = init_peer.RS_PORT) -> Deployment:
    """``ace init --peer ace-java``: the reference's values (``ace.cli.init_peer``)."""
    if peer not in init_peer.PEERS:
        raise ConfigError(f"--peer {peer!r}: one of {', '.join(init_peer.PEERS)}")
    _prepare(directory, init_peer.WRITES)  # never overwrite a key or a store
    as_uri, rs_uri = init_peer.write_ace_java(directory, host=host, as_port=as_port, rs_port=rs_port)
    return Deployment(directory, directory / "as.toml", directory / "rs.toml", directory / "client.toml",
                      as_uri, rs_uri)


def cmd_init(args: argparse.Namespace) -> int:
    try:
        return _init(args)
    except BrokenPipeError:  # `ace init DIR | head`: the files are written; main ends quietly
        raise
    except OSError as exc:  # a directory not ours to write, a full disk, ...
        raise UsageError(f"init: {os_error_text(exc, 'write')}") from None


def _init(args: argparse.Namespace) -> int:
    if args.peer is not None:
        d = init_peer_deployment(args.dir, args.peer, host=args.host or init_peer.HOST,
                                 as_port=args.as_port, rs_port=args.rs_port)
        print(f"""wrote {d.directory}/ for {args.peer}'s interop values (TEST keys): as.toml as.db rs.toml
  aud1-token.key client.toml client-as.oscore.toml rs-as.oscore.toml
each role stands in for theirs (AS {d.as_uri}, RS {d.rs_uri}):
  ace as --config {d.as_config}
  ace rs --config {d.rs_config}
  ace client --config {d.client_config} get {d.rs_uri}/temp""")
        return 0
    d = init_deployment(args.dir, host=args.host or "::1", as_port=args.as_port, rs_port=args.rs_port)
    print(f"""wrote {d.directory}/: as.toml as.db rs.toml rs1-token.key rs1-edhoc.key client.toml
  client-as.oscore.toml client-as.psk.toml client-edhoc.key
run, each in its own terminal:
  ace as --config {d.as_config}
  ace rs --config {d.rs_config}
  ace client --config {d.client_config} get {d.rs_uri}/temp
grant more (Resource Owner):
  ace policy --config {d.as_config} grant {CLIENT_ID} {AUDIENCE} "r_temp rw_led\"""")
    return 0
