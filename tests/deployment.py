"""A running AS + RS on loopback (::1, free ports) for the real-socket tests (tests/coap,
tests/security, tests/robustness, tests/cli).

``running_deployment`` writes an ``ace init`` deployment into a temporary directory and
starts the AS and the RS the way ``ace demo`` does (``ace.cli.roles``); clients for a profile
come from ``Flow.client``. Everything a test starts through the returned ``Flow`` (client
runners, plain aiocoap contexts, a restarted AS) is stopped when the context ends, however the
test ends. The ``flow`` fixture of tests/conftest.py runs it around a test
(``@pytest.mark.deployment(...)`` passes its keywords). Every await here is bounded.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiocoap
from aiocoap import oscore
from support import ACE_CBOR, TIMEOUT, Reply, bounded

from ace.authz_server.token import TokenPolicy
from ace.cbor.scope import method_bit
from ace.cli import roles
from ace.cli.config import load_as, load_client, load_rs
from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import Deployment, init_deployment
from ace.cli.keyfiles import load_key
from ace.client.flow import ClientConfig, ClientFlow, Done, Failed, ResourceRequest
from ace.coap import contexts
from ace.coap.as_server import AsServer
from ace.coap.client import ClientRunner, Exchange
from ace.coap.oscore_context import MemoryOscoreContext
from ace.coap.render import pair_of
from ace.coap.rs_server import RsServer
from ace.messages import AuthzInfoRequest, AuthzInfoResponse
from ace.profiles import oscore as oscore_profile
from ace.store.seqno import FileSequenceStore
from ace.store.sqlite import SqliteAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import OscoreCnf, OscoreInputMaterial
from ace.tokens.cwt import issue_token
from ace.tokens.keys import CoseKey
from ace.tokens.oscore_params import OscoreContextParams


async def send(ctx: Any, msg: aiocoap.Message, timeout: float = TIMEOUT) -> Reply:
    """Send ``msg`` over an aiocoap context; an unprotected answer to a protected request
    (NotAProtectedMessage, e.g. 4.01 "Security context not found") is returned as such."""
    try:
        raw = await bounded(ctx.request(msg).response, timeout)
    except oscore.NotAProtectedMessage as exc:
        plain = exc.plain_message
        return Reply(pair_of(plain.code), plain.payload, _cf(plain.opt.content_format), False)
    return Reply(pair_of(raw.code), raw.payload, _cf(raw.opt.content_format), True)


def _cf(cf: Any) -> int | None:
    return None if cf is None else int(cf)


@dataclass(slots=True)
class ManualSession:
    """A token posted by hand to /authz-info and the client-side context derived from it."""

    payload: bytes  # the AuthzInfoRequest as posted
    response: Reply
    context: MemoryOscoreContext | None  # None unless the RS answered 2.01
    server_rid: bytes | None


@dataclass(slots=True)
class Flow:
    d: Deployment
    as_server: AsServer
    rs_server: RsServer
    token_key: CoseKey
    _rs_cfg: Any
    profile: int | None = None  # the clients' ACE profile unless a test names one
    exchanges: list[Exchange] = field(default_factory=list)
    _runners: list[ClientRunner] = field(default_factory=list)
    _contexts: list[Any] = field(default_factory=list)

    # -- addresses ---------------------------------------------------------------------

    @property
    def rs_uri(self) -> str:
        return self.d.rs_uri

    @property
    def authz_info_uri(self) -> str:
        return self.d.rs_uri + "/authz-info"

    # -- clients -------------------------------------------------------------------------

    async def client(self, scope: str | None = None, *, record: bool = True, profile: int | None = None,
                     timeout: float | None = None) -> ClientRunner:
        """A client runner from client.toml (persisted context with the AS), started."""
        runner = roles.build_client(load_client(self.d.client_config), scope=scope,
                                    profile=self.profile if profile is None else profile,
                                    observer=self.exchanges.append if record else None)
        if timeout is not None:
            runner.timeout = timeout
        self._runners.append(runner)
        await bounded(runner.start())
        return runner

    async def stranger(self, directory: Path) -> ClientRunner:
        """A client with an OSCORE context (kid 0x42) the AS has never heard of."""
        secret = OscoreContextParams(master_secret=secrets.token_bytes(16), sender_id=b"\x42", recipient_id=b"\x00")
        flow = ClientFlow(ClientConfig(client_id="mallory", as_uri=self.d.as_uri), clock=time.time)
        runner = ClientRunner(flow, as_secret=secret, as_uri=self.d.as_uri,
                              seqno_store=FileSequenceStore(directory / "stranger-state.json"),
                              observer=self.exchanges.append, timeout=TIMEOUT)
        self._runners.append(runner)
        await bounded(runner.start())
        return runner

    async def plain(self) -> Any:
        """A bare aiocoap client context: unprotected unless a test adds credentials."""
        ctx = await bounded(aiocoap.Context.create_client_context(transports=["oscore", "udp6"]))
        self._contexts.append(ctx)
        return ctx

    async def post_to_as(self, runner: ClientRunner, payload: bytes) -> Reply:
        """POST /token over the runner's persisted OSCORE context with the AS."""
        msg = aiocoap.Message(code=aiocoap.POST, uri=self.d.as_uri, payload=payload, content_format=ACE_CBOR)
        return await send(runner.context, msg)

    async def full_flow(self, method: str = "GET", path: str = "/temp", payload: bytes = b"",
                        scope: str | None = None) -> Done | Failed:
        """One fresh client runs one request (A–F); the client is stopped afterwards."""
        runner = await self.client(scope)
        try:
            return await bounded(runner.request(ResourceRequest(method=method, uri=self.rs_uri + path,
                                                                payload=payload)), 4 * TIMEOUT)
        finally:
            await bounded(runner.stop())
            self._runners.remove(runner)

    def steps(self) -> list[str]:
        return [e.step for e in self.exchanges]

    # -- tokens by hand --------------------------------------------------------------------

    def token(self, *, aud: str = "rs1", exp: float | None = None, scope: str = "r_temp",
              key: CoseKey | None = None, kid: bytes | None = None,
              material: OscoreInputMaterial | None = None) -> tuple[bytes, OscoreInputMaterial]:
        """A token as the AS would issue it for this RS (its key from the deployment)."""
        material = material or OscoreInputMaterial(id=secrets.token_bytes(2), ms=secrets.token_bytes(16))
        claims = AccessTokenClaims(aud=aud, exp=int(time.time() + 600) if exp is None else exp,
                                   cti=secrets.token_bytes(4), scope=scope, cnf=OscoreCnf(material))
        return issue_token(claims, key or self.token_key, kid=kid), material

    async def post_authz_info(self, ctx: Any, payload: bytes) -> Reply:
        msg = aiocoap.Message(code=aiocoap.POST, uri=self.authz_info_uri, payload=payload, content_format=ACE_CBOR)
        return await send(ctx, msg)

    async def post_token(self, ctx: Any, token: bytes, material: OscoreInputMaterial, *,
                         nonce1: bytes | None = None, client_rid: bytes = b"\x21") -> ManualSession:
        """POST /authz-info (RFC 9203 §4.1) and derive the client's context (§4.3) on 2.01."""
        nonce1 = nonce1 or secrets.token_bytes(8)
        payload = AuthzInfoRequest(access_token=token, nonce1=nonce1, ace_client_recipientid=client_rid).encode()
        reply = await self.post_authz_info(ctx, payload)
        if reply.code != (2, 1):
            return ManualSession(payload, reply, None, None)
        answer = AuthzInfoResponse.decode(reply.payload)
        params = oscore_profile.derive(material, nonce1=nonce1, nonce2=answer.nonce2,
                                       sender_id=answer.ace_server_recipientid, recipient_id=client_rid)
        return ManualSession(payload, reply, contexts.from_params(params, claims=["rs"]),
                             answer.ace_server_recipientid)

    async def get_with(self, rs_context: MemoryOscoreContext, path: str = "/temp") -> Reply:
        """GET ``path`` at the RS protected with ``rs_context``, from a fresh aiocoap context."""
        ctx = await self.plain()
        ctx.client_credentials[self.rs_uri + "/*"] = rs_context
        try:
            return await send(ctx, aiocoap.Message(code=aiocoap.GET, uri=self.rs_uri + path))
        finally:
            await self._shutdown(ctx)

    # -- AS lifecycle ---------------------------------------------------------------------

    async def restart_as(self) -> None:
        """Stop the AS and start a new one from as.toml on the same store file and port."""
        await bounded(self.as_server.stop())
        self.as_server.store.close()
        self.as_server = roles.build_as(load_as(self.d.as_config))
        await bounded(self.as_server.start())

    async def restart_rs(self) -> None:
        """Stop the RS (its bindings are in memory only) and start a new one on the same port."""
        await bounded(self.rs_server.stop())
        self.rs_server = roles.build_rs(self._rs_cfg)
        await bounded(self.rs_server.start())

    # -- teardown ---------------------------------------------------------------------------

    async def _shutdown(self, ctx: Any) -> None:
        if ctx in self._contexts:
            self._contexts.remove(ctx)
        await bounded(ctx.shutdown())

    async def close(self) -> None:
        errors: list[BaseException] = []

        async def attempt(fn: Callable[[], Awaitable[Any]]) -> None:
            try:
                await bounded(fn())
            except BaseException as exc:  # keep stopping the rest
                errors.append(exc)

        for runner in self._runners:
            await attempt(runner.stop)
        for ctx in list(self._contexts):
            await attempt(ctx.shutdown)
        await attempt(self.rs_server.stop)
        await attempt(self.as_server.stop)
        self.as_server.store.close()
        if errors:
            raise errors[0]


async def replace_rs(flow: Flow, *, clock: Callable[[], float] = time.time, **changes: Any) -> None:
    """Stop the RS and start a new one on the same ports from rs.toml with ``changes``."""
    await bounded(flow.rs_server.stop())
    flow._rs_cfg = dataclasses.replace(flow._rs_cfg, **changes)
    flow.rs_server = roles.build_rs(flow._rs_cfg, clock=clock)
    await bounded(flow.rs_server.start())


async def replace_as(flow: Flow, clock: Callable[[], float]) -> None:
    """Stop the AS and start one on the same store and port, on ``clock``."""
    await bounded(flow.as_server.stop())
    flow.as_server.store.close()
    cfg = load_as(flow.d.as_config)
    flow.as_server = AsServer(SqliteAsStore(cfg.store), bind=(cfg.bind, cfg.port), clock=clock,
                              policy=TokenPolicy(issuer=cfg.issuer, include_iat=cfg.include_iat, salt_len=cfg.salt_len))
    await bounded(flow.as_server.start())


def with_scopes(rs_cfg: Any, **scopes: list[tuple[str, list[str]]]) -> Any:
    """``rs_cfg`` with more text scope-tokens (``name=[(path, [methods])]``)."""
    extra = {name: [(p, sum(method_bit(m) for m in ms)) for p, ms in entries] for name, entries in scopes.items()}
    return dataclasses.replace(rs_cfg, scopes={**rs_cfg.scopes, **extra})


def port_pair() -> tuple[int, int]:
    """Free ports for the AS and the RS, apart: two lookups may hand out one port, and the
    RS's DTLS port is its port + 1."""
    as_port = rs_port = free_port()
    for _ in range(20):
        if rs_port not in (as_port - 1, as_port, as_port + 1):
            break
        rs_port = free_port()
    return as_port, rs_port


@asynccontextmanager
async def running_deployment(directory: Path, *,
                             rs_scopes: dict[str, list[tuple[str, list[str]]]] | None = None,
                             as_changes: dict[str, Any] | None = None, rs_changes: dict[str, Any] | None = None,
                             trl_poll: float | None = None, profile: int | None = None) -> AsyncIterator[Flow]:
    """An ``ace init`` deployment's AS and RS, started (``*_changes``: config fields replaced;
    ``trl_poll``: how often the AS polls its store for revocations, 1 s by default;
    ``profile``: the ACE profile of the clients ``Flow.client`` starts, client.toml's if None)."""
    as_port, rs_port = port_pair()
    d = init_deployment(directory, as_port=as_port, rs_port=rs_port)
    rs_cfg = dataclasses.replace(load_rs(d.rs_config), **(rs_changes or {}))
    if rs_scopes:
        rs_cfg = with_scopes(rs_cfg, **rs_scopes)
    as_server = roles.build_as(dataclasses.replace(load_as(d.as_config), **(as_changes or {})))
    if trl_poll is not None:
        as_server.trl_watch.interval = trl_poll
    rs_server = roles.build_rs(rs_cfg)
    flow = Flow(d, as_server, rs_server, load_key(d.directory / "rs1-token.key"), rs_cfg, profile)
    try:
        await bounded(as_server.start())
        await bounded(rs_server.start())
        yield flow
    finally:
        await flow.close()


def store_of(flow: Flow) -> SqliteAsStore:
    store = flow.as_server.store
    assert isinstance(store, SqliteAsStore)
    return store
