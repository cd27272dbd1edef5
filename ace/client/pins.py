"""Which audience serves which RS origin: the client's audience pins (RFC 9200 §6.4, §6.9).

AS Request Creation Hints arrive in an unprotected 4.01, so their audience "should therefore
not be treated a trusted value" (RFC 9200 §6.9), and how a client decides which AS and
audience belong to an RS is left to the application (§6.4). The client's flow takes an RS's
audience from configuration or from a pin made by trust on first use: the audience of an
origin's first hints, kept once that RS answered a protected request (it could use the
token, so it holds that audience's key). Later hints naming another audience are refused.
This module holds the pins, in memory or in a small JSON file (mode 0600, written
atomically) next to the client's state; both keep at most ``MAX_PINS`` origins.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
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


def pins_path(state: Path) -> Path:
    """Where the pins of a client with sequence-number state ``state`` live: next to it."""
    return state.with_name(state.stem + ".audiences.json")


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


class FilePins(MemoryPins):
    """Pins kept in a JSON object ``{"coap://host:port": "audience", ...}``; a process holding the
    client's state file (locked by ``FileSequenceStore``) is the only writer."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        super().__init__(self._read())

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path}: unreadable audience pin file ({type(exc).__name__})") from exc
        if (not isinstance(data, dict) or len(data) > MAX_PINS
                or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in data.items())):
            raise ConfigError(f"{self.path}: malformed audience pin file (an object of origin: audience)")
        try:
            return {normalize_origin(k): v for k, v in data.items()}
        except ValueError as exc:
            raise ConfigError(f"{self.path}: {exc}") from None

    def pin(self, origin: str, audience: str) -> None:
        previous = self.get(origin)
        if previous == audience:
            return
        super().pin(origin, audience)
        try:
            self._write()
        except OSError as exc:  # in memory only once it is on disk
            if previous is None:
                del self._pins[origin]
            else:
                self._pins[origin] = previous
            raise ConfigError(f"{self.path}: cannot write the audience pins ({exc.strerror})") from exc

    def _write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(dict(self._pins), f, indent=0, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
