"""The client's audience pins (``ace.client.pins``) kept in a small JSON file next to its
sequence-number state: mode 0600, written atomically, at most ``MAX_PINS`` origins."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ace.client.pins import MAX_PINS, MemoryPins, normalize_origin
from ace.errors import ConfigError


def pins_path(state: Path) -> Path:
    """Where the pins of a client with sequence-number state ``state`` live: next to it."""
    return state.with_name(state.stem + ".audiences.json")


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
