"""``ace as`` / ``ace rs`` as a service: signals, reload without a restart, and a bounded clean stop.

SIGTERM or SIGINT: the server stops (its transports shut down, the RS's state file closed; the
AS's store is closed by ``cmd_as``) and the process exits 0 after one line on stderr. Nothing is
left to write then: sender sequence numbers are reserved in the store before they are used and a
replay floor is raised before its request is handed on (RFC 8613 §B.1.1, §B.1.2), so a kill -9
loses nothing either (at most one reserved chunk of numbers goes unused).

SIGHUP: the config file is read again and what can change safely while running is applied
(``reload_as``, ``reload_rs``); one line on stderr says what was applied and which changed
settings wait for a restart. A config that no longer loads changes nothing. The AS needs no reload
for its clients, RSs and grants: they live in the store, read on every request.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, Protocol

from ace.cli import roles
from ace.cli.config import RsFileConfig, load_rs
from ace.errors import AceError
from ace.rs.scopes import Scopes

if TYPE_CHECKING:  # annotations only: the servers' modules are the caller's to import
    from ace.cli.config_as import AsFileConfig
    from ace.coap.as_server import AsServer
    from ace.coap.rs_server import RsServer

STOP_TIMEOUT = 10.0  # seconds the server may take to stop (systemd's TimeoutStopSec is above it)
AS_RELOADED = ("issuer", "include_iat", "salt_len", "exi_audiences", "reference_audiences", "max_live_tokens")
RS_RELOADED = ("token_keys", "scopes", "hint_scope")


class Stoppable(Protocol):
    async def stop(self) -> None: ...


def say(line: str) -> None:
    """A line at any verbosity, on stderr (where the logs go; stdout stays for data)."""
    print(line, file=sys.stderr, flush=True)


class Service:
    """The signals of one running server: ``install`` them, ``wait`` for a stop, ``stop`` it."""

    def __init__(self, who: str, reload: Callable[[], str] | None = None) -> None:
        self.who, self._reload = who, reload
        self._stop = asyncio.Event()
        self.signal_name: str | None = None  # the signal that asked us to stop

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stopping, sig)
        if self._reload is not None:
            loop.add_signal_handler(signal.SIGHUP, self.reload)

    def _stopping(self, sig: int) -> None:
        self.signal_name = self.signal_name or signal.Signals(sig).name
        self._stop.set()

    def reload(self) -> None:
        assert self._reload is not None
        try:
            said = self._reload()
        except (AceError, OSError, ValueError) as exc:
            said = f"reload failed, nothing changed: {exc}"
        say(f"{self.who}: {said}")

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self, server: Stoppable) -> None:
        try:
            await asyncio.wait_for(server.stop(), STOP_TIMEOUT)
        except TimeoutError:
            say(f"{self.who}: not stopped after {STOP_TIMEOUT:g} s; exiting anyway "
                "(sequence numbers and replay floors are written before use)")
            return
        if self.signal_name is not None:
            say(f"{self.who}: stopped on {self.signal_name}; sequence numbers and replay state are on disk")


def _restart_needed(started: Any, new: Any, reloaded: tuple[str, ...]) -> list[str]:
    """The settings that changed in the file but are not applied while running."""
    return [f.name for f in fields(started)
            if f.name != "path" and f.name not in reloaded and getattr(started, f.name) != getattr(new, f.name)]


def _said(path: Any, applied: str, restart: list[str]) -> str:
    return f"reloaded {path}: {applied}" + (f"; needs a restart: {', '.join(restart)}" if restart else "")


def reload_as(server: AsServer, started: AsFileConfig) -> str:
    """The token policy of as.toml (issuer, iat, salt, exi and reference audiences, the live-token
    limit) applies to the next token issued; bind, ports, DTLS and the store need a restart."""
    from ace.cli.config_as import load_as  # the AS's only: `ace rs` does not build its config class

    new = load_as(started.path)
    server.endpoint.policy = roles.token_policy(new)
    return _said(started.path, "token policy", _restart_needed(started, new, AS_RELOADED))


def reload_rs(server: RsServer, started: RsFileConfig) -> str:
    """The token keys (the files listed are read again: a key rotated at the AS) apply to tokens
    POSTed from now on: tokens already held stay until they expire, even those a removed key
    verified (to cut those off, revoke them at the AS or restart). The scopes and the hint scope
    apply from the next request on, to tokens already held too. The rest of rs.toml needs a restart."""
    new = load_rs(started.path)
    keys = roles.token_keys(new)  # everything is read before anything changes
    core = server.core
    core.keys, core.scopes = keys, Scopes(new.scopes)
    core.config = replace(core.config, scope_meaning=new.scopes, hint_scope=new.hint_scope)
    applied = f"token_keys ({len(new.token_keys)}), scopes ({len(new.scopes)}), hint_scope"
    return _said(started.path, applied, _restart_needed(started, new, RS_RELOADED))
