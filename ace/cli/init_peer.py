"""``ace init --peer ace-java DIR``: our AS, RS and client with RISE ace-java's interop values.

Each of the three roles written here stands in for the matching one of the reference's OSCORE
interop deployment (INTEROP.md; their ``TestASoscoreProfile``, ``TestRSoscoreProfile`` and
``TestClientOscoreProfile``) with no edits: the same ports on 127.0.0.1, ids, keys, OSCORE
contexts, audience, text scopes and RS resources. The keys are the reference's published test
keys: the files say so, and they are for interop tests only. What differs from the RFCs is the
reference's token format, kept per RS in the AS store (``TokenFormat`` ``ACE_JAVA``: tagged
COSE, no ``sub``, exi in milliseconds with text ctis, a 1-byte salt) and, at our RS,
``exi_unit = "ms"`` and ``token_tags = "cose"``.

Their DTLS-profile classes (``ACEJAVA_PROFILE=dtls``: AS on coaps 5689 with clientA's PSK,
RS with /authz-info on coap 5690 and DTLS on 5691) have the ``*-dtls.toml`` variants: our AS
with ``dtls_port = 5689`` (its plain port moves to 5688), our RS offering coap_dtls, and our
client reaching the AS over DTLS. clientA's PSK with the AS is their identity "clientA" and
the same 16 bytes as its OSCORE Master Secret. The DTLS handshake between our tinydtls and
their Scandium does not complete either way (no renegotiation_info: INTEROP.md).
"""

from __future__ import annotations

from pathlib import Path

from ace.cbor.labels import Alg
from ace.cli.config import write_oscore_secret, write_private, write_psk
from ace.cli.keyfiles import save_key
from ace.store.base import ACE_JAVA, ClientRecord, DtlsPsk, Grant, RsRecord
from ace.store.sqlite import SqliteAsStore
from ace.tokens.keys import symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

PEERS = ("ace-java",)
HOST, AS_PORT, RS_PORT = "127.0.0.1", 5689, 5690
AS_DTLS_PLAIN_PORT = 5688  # as-dtls.toml: their DTLS client wants coaps on 5689 (AS_PORT)
CLIENT_ID, AUDIENCE, RS_ID, ISSUER = "clientA", "aud1", "rs1", "AS"
CLIENT_AS_SECRET = bytes.fromhex("6162630405060708090a0b0c0d0e0f10")  # AS Sender ID 00, client 55
RS_AS_SECRET = bytes.fromhex("5152530405060708090a0b0c0d0e0f10")  # AS Sender ID 01, RS 77
TOKEN_KEY = bytes.fromhex("a1a2a30405060708090a0b0c0d0e0f10")  # aud1's COSE_Encrypt0 key, no kid
TOKEN_LIFETIME = 30  # seconds
GRANT = "r_temp rw_config"
SCOPES = {  # TestRSoscoreProfile's scopes (rw_*: GET, POST and PUT)
    "r_helloWorld": ("/helloWorld", "GET"), "r_temp": ("/temp", "GET"), "rw_temp": ("/temp", "GET POST PUT"),
    "r_config": ("/config", "GET"), "rw_config": ("/config", "GET POST PUT"),
}
WARNING = "# ace-java's published interop TEST keys (ace init --peer ace-java): never use them for real\n"


def _uri(host: str, port: int, path: str = "") -> str:
    return f"coap://[{host}]:{port}{path}" if ":" in host else f"coap://{host}:{port}{path}"


WRITES = ("aud1-token.key", "client-as.oscore.toml", "client-as.psk.toml", "rs-as.oscore.toml", "as.db",
          "as.toml", "rs.toml", "client.toml", "as-dtls.toml", "rs-dtls.toml", "client-dtls.toml")  # all of them


def write_ace_java(directory: Path, *, host: str = HOST, as_port: int = AS_PORT,
                   rs_port: int = RS_PORT) -> tuple[str, str]:
    """Write the deployment into ``directory`` (already checked to be empty of as.toml); the AS's
    token endpoint and the RS's origin come back."""
    as_uri, rs_uri = _uri(host, as_port, "/token"), _uri(host, rs_port)
    token_key = symmetric_key(TOKEN_KEY, alg=int(Alg.AES_CCM_16_64_128))
    save_key(directory / "aud1-token.key", token_key)
    client_as = OscoreContextParams(master_secret=CLIENT_AS_SECRET, sender_id=b"\x55", recipient_id=b"\x00")
    write_oscore_secret(directory / "client-as.oscore.toml", client_as)
    client_psk = DtlsPsk(identity=CLIENT_ID.encode(), key=CLIENT_AS_SECRET)  # their DTLS client's PSK
    write_psk(directory / "client-as.psk.toml", client_psk)
    rs_as = OscoreContextParams(master_secret=RS_AS_SECRET, sender_id=b"\x77", recipient_id=b"\x01")
    write_oscore_secret(directory / "rs-as.oscore.toml", rs_as)
    with SqliteAsStore(directory / "as.db") as store:
        store.put_client(ClientRecord(client_id=CLIENT_ID, profiles=(2, 1), psk=client_psk,
                                      oscore=client_as.mirrored()))
        store.put_rs(RsRecord(audience=AUDIENCE, rs_id=RS_ID, token_key=token_key, token_lifetime=TOKEN_LIFETIME,
                              profiles=(2, 1), format=ACE_JAVA, oscore=rs_as.mirrored()))
        store.add_grant(Grant(client_id=CLIENT_ID, audience=AUDIENCE, scope=GRANT))  # no default: as theirs
    write_private(directory / "as.toml", _as_toml(host, as_port))
    write_private(directory / "rs.toml", _rs_toml(host, rs_port, as_uri))
    write_private(directory / "client.toml", _client_toml(as_uri, rs_uri))
    _write_dtls(directory, host, as_port, rs_uri)
    return as_uri, rs_uri


def _write_dtls(directory: Path, host: str, as_port: int, rs_uri: str) -> None:
    """The ``*-dtls.toml`` variants for their DTLS-profile deployment (module docstring)."""
    text = (directory / "as.toml").read_text()
    write_private(directory / "as-dtls.toml", text.replace(f"port = {as_port}\n", (
        f"port = {AS_DTLS_PLAIN_PORT if as_port == AS_PORT else as_port - 1}   # plain CoAP (OSCORE clients)\n"), 1)
        .replace("dtls = false\n", f"dtls = true\ndtls_port = {as_port}   # coaps, where their DTLS client looks\n", 1)
        .replace("TestASoscoreProfile", "TestASdtlsProfile", 1))
    text = (directory / "rs.toml").read_text()
    write_private(directory / "rs-dtls.toml", text.replace('profiles = ["coap_oscore"]', 'profiles = ["coap_dtls"]'
                                                           "   # /authz-info on the port above, DTLS on port + 1", 1)
                  .replace('state = "rs-state.json"', 'state = "rs-dtls-state.json"', 1)
                  .replace("TestRSoscoreProfile", "TestRSdtlsProfile", 1))
    as_uri = f"coaps://[{host}]:{as_port}/token" if ":" in host else f"coaps://{host}:{as_port}/token"
    write_private(directory / "client-dtls.toml", f"""# Client standing in for TestClientDtlsProfilePSKauthPSKpop
# ace client --config client-dtls.toml get {rs_uri}/temp
{WARNING}[client]
client_id = "{CLIENT_ID}"
as_uri = "{as_uri}"
as_psk = "client-as.psk.toml"   # identity "clientA"
as_context = "client-as.oscore.toml"
profile = "coap_dtls"
state = "client-dtls-state.json"
scope = "{GRANT}"

[client.audiences]
"{rs_uri}" = "{AUDIENCE}"
""")


def _as_toml(host: str, port: int) -> str:
    return f"""# Authorization Server standing in for ace-java's TestASoscoreProfile (ace as --config as.toml)
{WARNING}[as]
bind = "{host}"
port = {port}
store = "as.db"          # clientA, aud1 (token format: ace policy list), the grant {GRANT!r}
issuer = "{ISSUER}"            # their tokens' iss
include_iat = true
salt_len = 1             # their AS always sends a 1-byte salt (aud1's own format says 1 too)
dtls = false
exi_audiences = []       # aud1 gets exi tokens through its token format in the store (ace-java)
reference_audiences = []
max_live_tokens = 256
"""


def _rs_toml(host: str, port: int, as_uri: str) -> str:
    scopes = "".join(f'{name} = [["{path}", {_list(methods.split())}]]\n' for name, (path, methods) in SCOPES.items())
    return f"""# Resource Server standing in for ace-java's TestRSoscoreProfile (ace rs --config rs.toml)
{WARNING}[rs]
audience = "{AUDIENCE}"
rs_id = "{RS_ID}"              # their exi ctis: "rs1" + the sequence number in decimal
bind = "{host}"
port = {port}
as_uri = "{as_uri}"
as_context = "rs-as.oscore.toml"   # our OSCORE context with the AS (Sender ID 77)
introspect = false
reference_tokens = false   # their AS issues self-contained tokens only: opaque bytes are junk, never asked about
token_tags = "cose"      # their tokens are tagged COSE_Encrypt0 (and so are their introspection requests)
token_keys = ["aud1-token.key"]
hint_scope = "r_temp"
state = "rs-state.json"
exi_unit = "ms"          # their exi is in milliseconds
profiles = ["coap_oscore"]

[rs.scopes]
{scopes}
[[rs.resources]]
path = "/helloWorld"
value = "Hello World!"

[[rs.resources]]
path = "/temp"
methods = ["GET", "PUT", "POST"]
value = "0"
answer = "{{value}} C"
accept = "integer"

[[rs.resources]]
path = "/config"
methods = ["GET", "PUT", "POST"]
value = "Default"
"""


def _client_toml(as_uri: str, rs_uri: str) -> str:
    return f"""# Client standing in for ace-java's TestClientOscoreProfile
# ace client --config client.toml get {rs_uri}/temp
{WARNING}[client]
client_id = "{CLIENT_ID}"
as_uri = "{as_uri}"
as_context = "client-as.oscore.toml"   # Sender ID 55, no salt, no ID Context
state = "client-state.json"
scope = "{GRANT}"        # their AS has no default scope

[client.audiences]
"{rs_uri}" = "{AUDIENCE}"
"""


def _list(items: list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"
