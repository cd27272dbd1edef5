"""lakers-python driven directly as an independent EDHOC initiator against our RS over loopback
(the test's own EDHOC: none of ``ace.coap.edhoc*`` runs on this side), and the OSCORE context it
exports (RFC 9528 App. A.1: sender C_R, recipient C_I). Every await is bounded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import cbor2
import lakers
from aiocoap import oscore
from support import TIMEOUT, Reply, bounded

from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.render import pair_of

EDHOC_CT = 64  # application/edhoc+cbor-seq
AES_CCM_16_64_128 = 10


def party(kid: bytes, sub: str | None = None) -> tuple[bytes, bytes, Any]:
    """A fresh P-256 party: (d, CCS bytes ``{2?: sub, 8: {1: COSE_Key}}``, the COSE_Key map)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    n = key.public_key().public_numbers()
    cose = {1: 2, 2: kid, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")}
    ccs: dict[int, Any] = {8: {1: cose}}
    if sub is not None:
        ccs[2] = sub
    return key.private_numbers().private_value.to_bytes(32, "big"), cbor2.dumps(ccs, canonical=True), cose


def reply_of(message: aiocoap.Message, protected: bool) -> Reply:
    cf = message.opt.content_format
    return Reply(pair_of(message.code), bytes(message.payload),
                 None if cf is None else int(cf), protected)


async def send(ctx: Any, msg: aiocoap.Message) -> Reply:
    try:
        raw = await bounded(ctx.request(msg).response, TIMEOUT)
    except oscore.NotAProtectedMessage as exc:
        return reply_of(exc.plain_message, False)
    return reply_of(raw, bool(getattr(raw.remote, "security_context", None)))


class CombinedContext(MemoryOscoreContext):
    """Sends message_3 with its first request (RFC 9668: EDHOC option, payload m3 || OSCORE)."""

    message_3: bytes | None = None

    def protect(self, message: Any, request_id: Any = None, *, kid_context: bool | bytes = True) -> tuple[Any, Any]:
        outer, rid = super().protect(message, request_id, kid_context=kid_context)
        if self.message_3 is not None:
            outer.opt.edhoc = True
            outer.payload = self.message_3 + outer.payload
            self.message_3 = None
        return outer, rid


@dataclass
class LakersInitiator:
    """One handshake with the RS at ``origin`` (``coap://[::1]:port``) as C, credential by kid."""

    ctx: Any
    origin: str
    cred_r: bytes  # the RS's CCS (rs_cnf)
    kid: bytes = b"\x2b"
    sub: str | None = "client"
    c_i: bytes = b"\x2c"
    ini: Any = field(default_factory=lambda: lakers.EdhocInitiator())

    def __post_init__(self) -> None:
        self.d, self.cred_i, self.cose_key = party(self.kid, self.sub)
        self.c_r: bytes = b""
        self.id_cred_r: bytes = b""
        self.ead_2: list[Any] = []

    async def message_1(self, ead_1: list[Any] | None = None, *, abbrev: int | None = None,
                        path: bool = True) -> Reply:
        m1 = self.ini.prepare_message_1(self.c_i, [lakers.EADItem(15, False)] if ead_1 is None else ead_1)
        msg = aiocoap.Message(code=aiocoap.POST, uri=self.origin + ("/.well-known/edhoc" if path else ""),
                              payload=b"\xf5" + bytes(m1))
        if abbrev is not None:
            msg.opt.uri_path_abbrev = abbrev
        reply = await send(self.ctx, msg)
        if reply.code == (2, 4):
            c_r, id_cred_r, ead_2 = self.ini.parse_message_2(reply.payload)
            self.c_r, self.id_cred_r, self.ead_2 = bytes(c_r), bytes(id_cred_r), list(ead_2 or [])
            self.ini.verify_message_2(self.d, self.cred_i, self.cred_r)
        return reply

    def message_3(self, ead_3: list[Any], *, by_value: bool = False) -> bytes:
        how = lakers.CredentialTransfer.ByValue if by_value else lakers.CredentialTransfer.ByReference
        m3, _prk = self.ini.prepare_message_3(how, ead_3)
        return bytes(m3)

    async def send_message_3(self, m3: bytes) -> Reply:
        c_r = self.c_r if len(self.c_r) == 1 else cbor2.dumps(self.c_r)
        msg = aiocoap.Message(code=aiocoap.POST, uri=self.origin + "/.well-known/edhoc", payload=c_r + m3)
        return await send(self.ctx, msg)

    def oscore_context(self, *, message_4: bytes | None = None, combined: bytes | None = None) -> MemoryOscoreContext:
        if message_4 is not None:
            self.ini.process_message_4(message_4)
        else:
            self.ini.completed_without_message_4()
        secret = bytes(self.ini.edhoc_exporter(0, b"", 16))
        salt = bytes(self.ini.edhoc_exporter(1, b"", 8))
        context = CombinedContext(master_secret=secret, master_salt=salt, sender_id=self.c_r,
                                  recipient_id=self.c_i, alg=AES_CCM_16_64_128, hkdf="sha256")
        context.message_3 = combined
        return context

    async def get(self, context: MemoryOscoreContext, path: str, *, method: Any = aiocoap.GET,
                  payload: bytes = b"", content_format: int | None = None) -> Reply:
        self.ctx.client_credentials[self.origin + "/*"] = context
        msg = aiocoap.Message(code=method, uri=self.origin + path, payload=payload)
        if content_format is not None:
            msg.opt.content_format = content_format
        return await send(self.ctx, msg)


def edhoc_error(reason: str, code: int = 1) -> bytes:
    """The EDHOC error message payload: cbor(ERR_CODE) || cbor(ERR_INFO)."""
    return cbor2.dumps(code) + cbor2.dumps(reason)


async def raw_exchange(port: int, msg: aiocoap.Message) -> aiocoap.Message:
    """``msg`` sent as one CON datagram to [::1]:port, the piggybacked answer decoded (for options
    aiocoap's client refuses to send, e.g. an unknown Uri-Path-Abbrev value)."""
    msg.mtype, msg.mid, msg.token = aiocoap.CON, 0x1234, b"\x01"
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()

    class Once(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if not answer.done():
                answer.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Once, remote_addr=("::1", port))
    try:
        transport.sendto(msg.encode())
        return aiocoap.Message.decode(await bounded(answer))
    finally:
        transport.close()
