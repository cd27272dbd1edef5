"""A file-backed ``SequenceNumberStore`` for a client (RFC 8613 §B.1.1).

A client keeps no AS database, but its long-lived OSCORE context with the AS must never
reuse a sender sequence number after a restart. This store keeps one small JSON object per
file, written atomically (temp file, fsync, rename, fsync of the directory) with mode 0600.
An exclusive lock on ``<file>.lock`` is held while the store is open: a second process using
the same state would start from the same numbers and reuse (key, nonce) pairs, so it is
refused instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path

from ace.errors import ConfigError


class FileSequenceStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._lockfd: int | None = None
        self._lockfd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lockfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lockfd)
            self._lockfd = None
            raise ConfigError(f"{self.path}: in use by another process") from None
        self._values: dict[str, int] = self._read()

    def close(self) -> None:
        if self._lockfd is not None:
            os.close(self._lockfd)  # releases the lock
            self._lockfd = None

    def __del__(self) -> None:
        self.close()

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path}: unreadable sequence number file ({type(exc).__name__})") from exc
        if not isinstance(data, dict) or not all(isinstance(v, int) and v >= 0 for v in data.values()):
            raise ConfigError(f"{self.path}: malformed sequence number file")
        return {str(k): int(v) for k, v in data.items()}

    def load_sequence_number(self, context_name: str) -> int | None:
        with self._lock:
            return self._values.get(context_name)

    def persist_replay_floor(self, context_name: str, value: int) -> None:
        self.persist_sequence_number(context_name, value)

    def persist_sequence_number(self, context_name: str, value: int) -> None:
        with self._lock:
            if value <= self._values.get(context_name, -1):
                return
            values = {**self._values, context_name: value}  # in memory only once it is on disk
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(values, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
            self._values = values
