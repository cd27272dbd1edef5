"""COSE_Key files, the command line's business (the token core never touches files): CBOR,
mode 0600, refused when a secret is readable by others."""

from __future__ import annotations

import os
from pathlib import Path

from ace.errors import ConfigError, DecodeError
from ace.tokens.keys import CoseKey


def save_key(path: str | os.PathLike[str], key: CoseKey, *, overwrite: bool = False) -> None:
    """Write the COSE_Key as CBOR with mode 0600 (created that way, never widened)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path}: exists (pass overwrite to replace it)") from exc
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)
        f.write(key.encode())
        f.flush()
        os.fsync(fd)


def load_key(path: str | os.PathLike[str]) -> CoseKey:
    """Read one COSE_Key file; a file readable by others holding a secret is refused."""
    p = Path(path)
    try:
        data = p.read_bytes()
        mode = p.stat().st_mode & 0o777
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read key file ({exc.strerror})") from exc
    try:
        key = CoseKey.decode(data, what=f"key file {p.name}")
    except DecodeError as exc:
        raise ConfigError(f"{p}: {exc.description}") from exc
    if key.has_private and mode & 0o077:
        raise ConfigError(f"{p}: holds a secret key but has mode {mode:o}; chmod 600 it")
    return key
