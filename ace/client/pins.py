"""Which audience serves which RS origin: the client's audience pins (RFC 9200 §6.4, §6.9).

AS Request Creation Hints arrive in an unprotected 4.01, so their audience "should therefore
not be treated a trusted value" (RFC 9200 §6.9), and how a client decides which AS and
audience belong to an RS is left to the application (§6.4). The client's flow takes an RS's
audience from configuration or from a pin made by trust on first use: the audience of an
origin's first hints, kept once that RS answered a protected request (it could use the
token, so it holds that audience's key). Later hints naming another audience are refused.
This module holds the pins in memory (at most ``MAX_PINS`` origins); ``ace.store.pins`` keeps
them in a small JSON file next to the client's state (the core does no I/O).
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from ace.errors import ConfigError

MAX_PINS = 256  # origins a client keeps pins for (memory and file bounded)
DEFAULT_PORTS = {"coap": 5683, "coaps": 5684, "coap+tcp": 5683, "coaps+tcp": 5684}


def normalize_origin(uri: str) -> str:
    """``coap://[::1]:5690/x`` -> ``coap://[::1]:5690``: scheme and host lower case, default port
    dropped, no user part or path. ValueError for a URI without a scheme or host."""
    parts = urlsplit(uri.strip())
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"{uri!r}: bad port") from None
    scheme = parts.scheme.lower()
    if not scheme or not host:
        raise ValueError(f"{uri!r} is not an absolute URI with a host")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    return f"{scheme}://{netloc}"


class AudiencePins(Protocol):
    """Origin (as ``normalize_origin`` spells it) -> the audience pinned for it."""

    def get(self, origin: str) -> str | None: ...

    def pin(self, origin: str, audience: str) -> None: ...


class MemoryPins:
    def __init__(self, pins: dict[str, str] | None = None) -> None:
        self._pins: dict[str, str] = dict(pins or {})

    def get(self, origin: str) -> str | None:
        return self._pins.get(origin)

    def pin(self, origin: str, audience: str) -> None:
        if origin not in self._pins and len(self._pins) >= MAX_PINS:
            raise ConfigError(f"cannot pin {origin}: already {MAX_PINS} audience pins; configure [client.audiences]")
        self._pins[origin] = audience

    def items(self) -> list[tuple[str, str]]:
        return list(self._pins.items())
