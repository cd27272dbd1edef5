"""Shared pieces of the robustness tests: a running deployment, hand-made tokens, snapshots.

``start_harness`` writes an ``ace init`` deployment (free ports on ::1), registers a second
client (clientB, OSCORE with the AS) and a second audience (rs2, OSCORE only) in the AS
store, and starts, the way ``ace demo`` does (``ace.cli.roles``):

* the AS (OSCORE to /token),
* RS "main" from rs.toml (OSCORE and DTLS, DTLS on port + 1),
* RS "oscore-only" (the same audience and token key, profiles = OSCORE only),
* RS "edhoc" (the same audience, profile coap_edhoc_oscore only: its /.well-known/edhoc),

plus client contexts: clientA and clientB with the AS, a plain one (unprotected requests),
an OSCORE context and a DTLS session with RS main, each bound to a token posted by hand
("established" channels that the tests then poke at). ``snapshot`` captures everything the
servers keep (AS: token log, cti counter, grants, clients; RS: bindings, the OSCORE context
index, the PSK index, the recipient-ID pool, the EDHOC responder contexts; both: requests
aiocoap holds unanswered) so a test can assert that a refused request changed nothing.
``send_non`` and ``send_block`` send what aiocoap's client would not on its own: a NON
request, one raw Block1 block; ``Reply`` carries the wire sizes of the answer and of the
request it answers (RFC 7252 §11.3). Every await is bounded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiocoap
from aiocoap import oscore
from aiocoap.numbers.constants import Unreliable
from aiocoap.optiontypes import BlockOption
from support import ACE_CBOR, TIMEOUT, Reply, bounded

from ace.authz_server import trl
from ace.cbor import codec
from ace.cbor.labels import AceProfile, ContentFormat, Curve
from ace.cli import roles
from ace.cli.config import load_as, load_oscore_secret, load_rs
from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import Deployment, init_deployment
from ace.cli.keyfiles import load_key, save_key
from ace.coap import contexts, dtls, edhoc
from ace.coap.as_server import AsServer
from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.render import pair_of
from ace.coap.rs_server import RsServer
from ace.messages import AuthzInfoRequest, AuthzInfoResponse
from ace.profiles import oscore as oscore_profile
from ace.profiles.dtls import label_for
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.sqlite import SqliteAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import Cnf, CoseKeyCnf, OscoreCnf, OscoreInputMaterial
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import issue_token
from ace.tokens.keys import CoseKey, symmetric_key
from ace.tokens.oscore_params import OscoreContextParams

CWT = int(ContentFormat.CWT)  # 61


def _cf(cf: Any) -> int | None:
    return None if cf is None else int(cf)


def wire_size(msg: aiocoap.Message) -> int:
    """Bytes ``msg`` takes in a UDP datagram (RFC 7252 §3: header, token, options, payload)."""
    return 4 + len(msg.token) + len(msg.opt.encode()) + (1 + len(msg.payload) if msg.payload else 0)


def _reply(raw: aiocoap.Message, protected: bool) -> Reply:
    request = getattr(raw, "request", None)  # the request as sent (aiocoap sets it on responses)
    return Reply(pair_of(raw.code), raw.payload, _cf(raw.opt.content_format), protected, wire_size(raw),
                 wire_size(request) if isinstance(request, aiocoap.Message) else 0)


async def send(ctx: Any, msg: aiocoap.Message, timeout: float = TIMEOUT, *, blockwise: bool = True) -> Reply:
    """Send ``msg``; an unprotected answer to a protected request (NotAProtectedMessage) is
    returned as such. ``blockwise`` False: Block1/Block2 options go out as they are."""
    try:
        raw = await bounded(ctx.request(msg, handle_blockwise=blockwise).response, timeout)
    except oscore.NotAProtectedMessage as exc:
        return _reply(exc.plain_message, False)
    return _reply(raw, True)


async def send_non(ctx: Any, msg: aiocoap.Message) -> Reply:
    """``msg`` as a NON request (RFC 7252 §4.3): what a spoofing sender uses."""
    msg.transport_tuning = Unreliable()
    return await send(ctx, msg)


async def send_block(ctx: Any, uri: str, num: int, *, more: bool, payload: bytes = b"\xa0" * 16,
                     query: tuple[str, ...] = (), cf: int | None = ACE_CBOR) -> Reply:
    """One POST carrying Block1 block ``num`` (16-byte blocks, SZX 0) of a transfer, as it is."""
    msg = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=payload)
    msg.opt.uri_query = query
    msg.opt.block1 = BlockOption.BlockwiseTuple(num, more, 0)
    if cf is not None:
        msg.opt.content_format = cf
    return await send(ctx, msg, blockwise=False)


class MemorySeqnos:
    """A ``SequenceNumberStore`` in a dict (client contexts that never restart)."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def load_sequence_number(self, context_name: str) -> int | None:
        return self.values.get(context_name)

    def persist_sequence_number(self, context_name: str, value: int) -> None:
        self.values[context_name] = max(value, self.values.get(context_name, value))

    persist_replay_floor = persist_sequence_number


# -- tokens ----------------------------------------------------------------------------------------


def material(**changes: Any) -> OscoreInputMaterial:
    """Fresh OSCORE_Input_Material (id 8 random bytes: never the same PoP key twice)."""
    return OscoreInputMaterial(**{"id": secrets.token_bytes(8), "ms": secrets.token_bytes(16), **changes})


def psk_cnf(*, k: bytes | None = None, kid: bytes | None = None) -> CoseKeyCnf:
    """A DTLS PoP key; the kid never contains 0x00 (aiocoap's client cuts identities there)."""
    kid = kid if kid is not None else bytes(b % 255 + 1 for b in secrets.token_bytes(8))
    return CoseKeyCnf(symmetric_key(k if k is not None else secrets.token_bytes(16), kid=kid))


def claims(cnf: Cnf | None = None, **changes: Any) -> AccessTokenClaims:
    """Claims as the AS issues them for RS rs1 (scope r_temp, 10 minutes), with ``changes``."""
    base: dict[str, Any] = {"aud": "rs1", "exp": int(time.time()) + 600, "cti": secrets.token_bytes(4),
                            "scope": "r_temp", "cnf": cnf if cnf is not None else OscoreCnf(material())}
    return AccessTokenClaims(**{**base, **changes})


def make_token(key: CoseKey, c: AccessTokenClaims, *, kind: Kind = Kind.AEAD, alg: int | None = None,
               kid: bytes | None = None) -> bytes:
    return issue_token(c, key, kind=kind, alg=alg, kid=kid)


def encrypt0_raw(key: CoseKey, payload: bytes, *, protected: dict[int, Any] | None = None,
                 unprotected: dict[int, Any] | None = None) -> bytes:
    """A COSE_Encrypt0 whose headers are given verbatim (AES-CCM-16-64-128 with ``key``)."""
    from ace.tokens import crypto

    prot = codec.dumps(protected) if protected else b""
    iv = secrets.token_bytes(13)
    unprot = {4: key.kid, 5: iv, **(unprotected or {})}
    enc_structure = codec.dumps(["Encrypt0", prot, b""])
    ct = crypto.encrypt(key, 10, iv, payload, enc_structure)
    return codec.dumps([prot, unprot, ct])


def authz_payload(token: bytes, *, nonce1: bytes | None = None, rid: bytes = b"\x21",
                  extra: dict[Any, Any] | None = None) -> bytes:
    m = AuthzInfoRequest(access_token=token, nonce1=nonce1 if nonce1 is not None else secrets.token_bytes(8),
                         ace_client_recipientid=rid).to_map()
    m.update(extra or {})
    return codec.dumps(m)


# -- the running deployment ---------------------------------------------------------------------


@dataclass(slots=True)
class Established:
    """A token posted by hand and the client side of the channel it set up."""

    token: bytes
    label: bytes  # the RS's binding label
    context: MemoryOscoreContext | None = None  # OSCORE
    psk: tuple[bytes, bytes] | None = None  # DTLS (identity, key)
    material: OscoreInputMaterial | None = None


@dataclass(slots=True)
class Harness:
    d: Deployment
    as_server: AsServer
    rs: RsServer  # OSCORE + DTLS
    rs_oscore_only: RsServer
    rs_edhoc: RsServer  # coap_edhoc_oscore only
    token_key: CoseKey
    ec_public: CoseKey  # trusted by both RSs for ES256 Sign1 tokens
    client_a: Any  # aiocoap context: clientA's OSCORE context with the AS
    client_b: Any  # clientB's
    plain: Any  # unprotected
    secrets_seen: dict[str, bytes] = field(default_factory=dict)
    oscore_rs: Any = None  # aiocoap context with the established OSCORE context for RS main
    dtls_rs: Any = None  # aiocoap context with the established DTLS credentials for RS main
    est_oscore: Established | None = None
    est_dtls: Established | None = None
    _contexts: list[Any] = field(default_factory=list)

    @property
    def rs_uri(self) -> str:
        return self.d.rs_uri

    @property
    def rs2_uri(self) -> str:
        return f"coap://[::1]:{self.rs_oscore_only.bind[1]}"

    @property
    def coaps_uri(self) -> str:
        return f"coaps://[::1]:{self.rs.coaps_port}"

    @property
    def edhoc_uri(self) -> str:
        return f"coap://[::1]:{self.rs_edhoc.bind[1]}/.well-known/edhoc"

    async def context(self, transports: tuple[str, ...] = ("oscore", "udp6")) -> Any:
        ctx = await bounded(aiocoap.Context.create_client_context(transports=list(transports)))
        self._contexts.append(ctx)
        return ctx

    async def close(self) -> None:
        for ctx in self._contexts:
            with contextlib.suppress(Exception):  # keep stopping the rest
                await bounded(ctx.shutdown())
        for server in (self.rs_edhoc, self.rs_oscore_only, self.rs, self.as_server):
            await bounded(server.stop())
        self.as_server.store.close()


def register_extras(d: Deployment, token_key: CoseKey) -> OscoreContextParams:
    """clientB (OSCORE with the AS, both profiles) and rs2 (OSCORE only) with default grants;
    returns clientB's side of its context with the AS."""
    ms = secrets.token_bytes(16)
    with SqliteAsStore(d.directory / "as.db") as store:
        store.put_client(ClientRecord(client_id="clientB", profiles=(2, 1), oscore=OscoreContextParams(
            master_secret=ms, sender_id=b"\x00", recipient_id=b"\x02")))
        store.put_rs(RsRecord(audience="rs2", rs_id="rs2", token_key=token_key, profiles=(2,)))
        store.add_grant(Grant(client_id="clientA", audience="rs2", scope="r_temp", default=True))
        store.add_grant(Grant(client_id="clientB", audience="rs1", scope="r_temp", default=True))
    return OscoreContextParams(master_secret=ms, sender_id=b"\x02", recipient_id=b"\x00")


async def start_harness(directory: Path) -> Harness:
    d = init_deployment(directory, as_port=free_port(), rs_port=free_port())
    token_key = load_key(d.directory / "rs1-token.key")
    secret_b = register_extras(d, token_key)
    # the RSs also trust an ES256 public key (kid 0x02): the target of "HMAC with a public key"
    ec_key = generate(Curve.P_256, kid=b"\x02")
    save_key(d.directory / "rs1-ec.pub.key", ec_key.public())
    rs_cfg = load_rs(d.rs_config)
    # RS main offers exactly the two profiles under test (OSCORE first, as ace init writes them)
    rs_cfg = dataclasses.replace(rs_cfg, token_keys=(*rs_cfg.token_keys, d.directory / "rs1-ec.pub.key"),
                                 profiles=(2, 1))
    as_server = roles.build_as(load_as(d.as_config))
    rs = roles.build_rs(rs_cfg)
    rs2 = roles.build_rs(dataclasses.replace(rs_cfg, port=free_port(), profiles=(2,),
                                             state=d.directory / "rs2-state.json"))
    assert rs_cfg.edhoc_key is not None  # ace init writes the RS's EDHOC credential
    rs3 = roles.build_rs(dataclasses.replace(rs_cfg, port=free_port(), profiles=(int(AceProfile.COAP_EDHOC_OSCORE),),
                                             state=d.directory / "rs-edhoc-state.json"))
    await bounded(as_server.start())
    await bounded(rs.start())
    await bounded(rs2.start())
    await bounded(rs3.start())
    h = Harness(d, as_server, rs, rs2, rs3, token_key, ec_key.public(), None, None, None)
    as_origin = d.as_uri.rsplit("/", 1)[0]
    secret_a = load_oscore_secret(d.directory / "client-as.oscore.toml")
    h.client_a = await h.context()
    h.client_a.client_credentials[as_origin + "/*"] = contexts.from_secret(secret_a, store=MemorySeqnos(),
                                                                           claims=["as"])
    h.client_b = await h.context()
    h.client_b.client_credentials[as_origin + "/*"] = contexts.from_secret(secret_b, store=MemorySeqnos(),
                                                                           claims=["as"])
    h.plain = await h.context()
    h.secrets_seen.update({"client A master secret (AS)": secret_a.master_secret,
                           "client B master secret (AS)": secret_b.master_secret, "RS token key": token_key.k or b""})
    return h


async def establish_oscore(h: Harness, *, sub: str = "est-oscore", rid: bytes = b"\x21") -> Established:
    """POST a hand-made r_temp token to RS main's /authz-info, derive the client context and
    use it once (GET /temp, so the binding counts as used); sets ``h.oscore_rs``."""
    m = material()
    token = make_token(h.token_key, claims(OscoreCnf(m), sub=sub))
    nonce1 = secrets.token_bytes(8)
    reply = await post(h.plain, h.rs_uri + "/authz-info", authz_payload(token, nonce1=nonce1, rid=rid))
    assert reply.code == (2, 1), reply
    answer = AuthzInfoResponse.decode(reply.payload)
    params = oscore_profile.derive(m, nonce1=nonce1, nonce2=answer.nonce2, sender_id=answer.ace_server_recipientid,
                                   recipient_id=rid)
    ctx = contexts.from_params(params, claims=["rs"])
    h.oscore_rs = await h.context()
    h.oscore_rs.client_credentials[h.rs_uri + "/*"] = ctx
    got = await send(h.oscore_rs, aiocoap.Message(code=aiocoap.GET, uri=h.rs_uri + "/temp"))
    assert got.code == (2, 5), got
    h.est_oscore = Established(token, answer.ace_server_recipientid, context=ctx, material=m)
    return h.est_oscore


async def establish_dtls(h: Harness, *, sub: str = "est-dtls") -> Established:
    """POST a hand-made r_temp DTLS token (raw, application/cwt) to RS main and GET /temp over a
    DTLS session with its key; sets ``h.dtls_rs``."""
    cnf = psk_cnf()
    token = make_token(h.token_key, claims(cnf, sub=sub))
    reply = await post(h.plain, h.rs_uri + "/authz-info", token, cf=CWT)
    assert reply.code == (2, 1), reply
    identity, key = cnf.key.kid or b"", cnf.key.k or b""
    h.dtls_rs = await h.context(("tinydtls", "udp6"))
    dtls.install_client_credentials(h.dtls_rs, "::1", h.rs.coaps_port, key, identity)
    got = await send(h.dtls_rs, aiocoap.Message(code=aiocoap.GET, uri=h.coaps_uri + "/temp"))
    assert got.code == (2, 5), got
    h.est_dtls = Established(token, label_for(identity), psk=(identity, key))
    return h.est_dtls


async def post(ctx: Any, uri: str, payload: bytes, *, cf: int | None = ACE_CBOR) -> Reply:
    msg = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=payload)
    if cf is not None:
        msg.opt.content_format = cf
    return await send(ctx, msg)


# -- state snapshots -------------------------------------------------------------------------------


def requests_in_progress(server: AsServer | RsServer) -> int:
    """Requests aiocoap still holds a pipe for (``TokenManager.incoming_requests``): none once
    each has been answered."""
    return sum(len(getattr(ri, "incoming_requests", None) or ()) for ri in server.context.request_interfaces)


def as_snapshot(as_server: AsServer) -> dict[str, Any]:
    store = as_server.store
    assert isinstance(store, SqliteAsStore)
    with sqlite3.connect(f"file:{store.path}?mode=ro", uri=True) as conn:
        (counter,) = conn.execute("SELECT value FROM counters WHERE name = 'cti'").fetchone()
    return {
        "tokens": [(t.cti, t.client_id, t.audience, t.scope, t.token_hash, t.pop_kid)
                   for t in store.issued_tokens(100_000)],
        "cti counter (file)": counter,
        "next cti (reserved block)": store._cti_next,  # a refused request must not use one up
        "grants": store.list_grants(),
        "clients": store.list_clients(),
        "rs": store.list_rs(),
        "requests in progress": requests_in_progress(as_server),
    }


def rs_snapshot(rs: RsServer) -> dict[str, Any]:
    core = rs.core
    return {
        "bindings": sorted((b.label, b.token_hash, b.nonce1, b.response, b.expires_at) for b in core.bindings),
        "used": sorted(core.bindings._used),
        "oscore contexts": sorted(((c.recipient_id, c.id_context or b"", id(c)) for c in rs.index),
                                  key=lambda t: (t[0], t[1])),
        "psk labels": sorted(getattr(rs.channels.get(AceProfile.COAP_DTLS), "labels", {}).items()),  # offered only
        "psk count": len(rs.psks),
        "recipient ids": sorted(core.ids._in_use),
        "edhoc responders": sorted((bytes(e.context.recipient_id), e.complete)
                                   for e in edhoc.responder_contexts(rs.credentials)),
        "requests in progress": requests_in_progress(rs),
    }


def snapshot(h: Harness) -> dict[str, Any]:
    return {"as": as_snapshot(h.as_server), "rs": rs_snapshot(h.rs), "rs oscore-only": rs_snapshot(h.rs_oscore_only),
            "rs edhoc": rs_snapshot(h.rs_edhoc)}


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names of what changed, e.g. ``["rs.bindings", "as.tokens"]``."""
    return [f"{role}.{name}" for role in before for name in before[role] if before[role][name] != after[role][name]]


def token_hash(token: bytes) -> bytes:
    return trl.token_hash(token)
