"""``ace.ResourceServerApp``: your own CoAP resources behind ACE, in a few lines.

A thin façade over ``ace.coap.rs_server.RsServer`` (the RS ``ace rs`` runs): the scope check per
path and method stays the RS core's (``ace.rs.server.ResourceServer``), /authz-info and the
profiles come from the configuration, and a protected handler sees only requests its token allows.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, overload

import aiocoap

from ace.cli.rs_resources import RESERVED_PATHS
from ace.coap.devices import HANDLER_METHODS, ResourceSpec
from ace.coap.observe import Notify, Served
from ace.coap.resources import served_target
from ace.coap.rs_server import ProtectedResource, RsServer
from ace.rs.config import RsConfig
from ace.rs.store import Binding
from ace.tokens.cwt import KeyRing
from ace.tokens.keyring import rs_keyring
from ace.tokens.keys import CoseKey

__all__ = ["Binding", "Handler", "ResourceServerApp"]

Handler = Callable[[aiocoap.Message, Binding], Awaitable[aiocoap.Message]]
"""What ``protect`` takes: an async callable ``(request, binding) -> response``; ``binding.claims``
holds the access token's claims (``ace.tokens.claims.AccessTokenClaims``: ``sub``, ``scope``, ``exp``...)."""

H = TypeVar("H")


class ResourceServerApp:
    """A resource server: /authz-info for the configured ACE profiles and the resources you protect.

    >>> rs = ResourceServerApp.from_config("rs.toml")
    >>> @rs.protect("/temp", methods=("GET",), observable=True)
    ... async def temp(request, binding):
    ...     return aiocoap.Message(code=aiocoap.CONTENT, payload=b"21.5")
    >>> async with rs:  # serving until the block ends
    ...     rs.notify("/temp")  # observers of /temp get a fresh rendering

    Resources are registered before ``start``; each request is authorized (RFC 9200 §5.10.2) before
    your handler runs: no valid token is 4.01 with AS Request Creation Hints, a token whose scope does
    not cover the path is 4.03, one that covers the path but not the method 4.05.
    """

    def __init__(self, config: RsConfig, keys: KeyRing | Iterable[CoseKey], *,
                 bind: tuple[str, int] = ("::", 5683), clock: Callable[[], float] = time.time,
                 state: str | Path | None = None, edhoc_key: CoseKey | None = None) -> None:
        """An RS from its core configuration and the keys tokens are verified with.

        ``bind``: address and port (DTLS, if offered, on port + 1); ``state``: a file that keeps
        OSCORE sequence numbers across restarts (needed for ``cnonce`` and introspection);
        ``edhoc_key``: the RS's own EDHOC credential when ``config.profiles`` offers EDHOC."""
        from ace.rs.server import ResourceServer
        from ace.store.seqno import FileSequenceStore

        ring = keys if isinstance(keys, KeyRing) else rs_keyring(keys)
        core = ResourceServer(config, ring, clock=clock,
                              state=FileSequenceStore(Path(state)) if state is not None else None)
        self.server = RsServer(core, bind=bind, resources={}, edhoc_key=edhoc_key)
        """The underlying ``RsServer`` (advanced use; its interface may change)."""

    @classmethod
    def from_config(cls, path: str | Path, *, host: str | None = None, port: int | None = None,
                    clock: Callable[[], float] = time.time) -> ResourceServerApp:
        """An RS from an rs.toml, as ``ace rs`` builds it (TRL, introspection and its
        ``[[rs.resources]]`` included), without the demo resources: you ``protect`` yours.

        ``host`` and ``port`` override rs.toml's ``bind`` and ``port`` (e.g. ``host="::1"`` to serve
        on loopback only, ``port=0`` for any free port; DTLS, if offered, on port + 1)."""
        from ace.cli import roles
        from ace.cli.config import load_rs

        cfg = load_rs(Path(path))
        if port is not None and not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, not {port}")
        cfg = dataclasses.replace(cfg, bind=cfg.bind if host is None else host,
                                  port=cfg.port if port is None else port)
        return cls.from_server(roles.build_rs(cfg, clock=clock, demo=False))

    @classmethod
    def from_server(cls, server: RsServer) -> ResourceServerApp:
        """Wrap an ``RsServer`` built elsewhere (not started yet)."""
        app = cls.__new__(cls)
        app.server = server
        return app

    @property
    def address(self) -> tuple[str, int]:
        """The address and port the RS listens on (unprotected and OSCORE requests)."""
        return self.server.bind

    @overload
    def protect(self, path: str, handler: None = None, *, methods: Iterable[str] = ("GET",),
                observable: bool = False, content_format: int | None = None) -> Callable[[H], H]: ...

    @overload
    def protect(self, path: str, handler: H, *, methods: Iterable[str] = ("GET",),
                observable: bool = False, content_format: int | None = None) -> H: ...

    def protect(self, path: str, handler: Any = None, *, methods: Iterable[str] = ("GET",),
                observable: bool = False, content_format: int | None = None) -> Any:
        """Serve ``handler`` at ``path`` for ``methods``, behind the token's scope; as a decorator
        when ``handler`` is left out.

        ``handler``: an async ``Handler`` ``(request, binding) -> aiocoap.Message`` (an
        ``observed(notify)`` attribute, if it has one, is told while the resource is observed), or an
        aiocoap ``Resource`` (an instance or a class), whose ``render`` answers. ``observable``: GET
        may be observed (RFC 7641); call ``notify(path)`` when the state changes. ``content_format``:
        given to answers with a payload and none of their own. Returns ``handler``. A path served
        already (by rs.toml's ``[[rs.resources]]`` too) is a ValueError."""
        if handler is None:
            def decorator(fn: H) -> H:
                self.protect(path, fn, methods=methods, observable=observable, content_format=content_format)
                return fn
            return decorator
        if self.server.context is not None:
            raise RuntimeError("protect() resources before start()")
        path = _normalized(path)
        if path in self.server.resources or path in RESERVED_PATHS or path == "/":
            raise ValueError(f"{path} is served already")
        canonical = {m.upper(): m for m in HANDLER_METHODS}  # as aiocoap names them (iPATCH)
        unknown = [m for m in methods if m.upper() not in canonical]
        if unknown:
            raise ValueError(f"methods {unknown} are none of {list(HANDLER_METHODS)}")
        name = getattr(handler, "__qualname__", type(handler).__qualname__)
        spec = ResourceSpec(path=path, methods=tuple(canonical[m.upper()] for m in methods),
                            content_format=content_format, handler=f"{getattr(handler, '__module__', '?')}:{name}")
        served = served_target(spec, handler, f"protect({path!r})")
        if observable and served.watch is None:
            served = Served(dict(served), _quiet_watch)
        self.server.resources = {**self.server.resources, path: served}
        return handler

    def notify(self, path: str) -> None:
        """Observers of ``path`` get a fresh rendering (each authorized again by the core)."""
        path = _normalized(path)
        for resource in self._resources():
            if resource.path == path:
                resource.updated_state()

    def _resources(self) -> list[ProtectedResource]:
        return list(self.server._protected)

    async def start(self) -> None:
        """Start serving (binds the sockets; returns once listening)."""
        await self.server.start()

    async def stop(self) -> None:
        """Stop serving: observations end, sockets close, sequence numbers are persisted."""
        await self.server.stop()

    async def __aenter__(self) -> ResourceServerApp:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()


def _normalized(path: str) -> str:
    """``path`` as the RS serves it: one leading slash, no empty segments."""
    return "/" + "/".join(s for s in path.split("/") if s)


def _quiet_watch(notify: Notify | None) -> None:
    """A resource that announces its changes through ``ResourceServerApp.notify``."""
