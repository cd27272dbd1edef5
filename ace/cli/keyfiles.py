"""COSE_Key files, the command line's business (the token core never touches files): CBOR,
written with mode 0600; a secret is read from a file of mode 0600 or 0640 (a service's files are
``root:ace 0640``: its group reads them), refused when others may read it or its group write it."""

from __future__ import annotations

import os
from pathlib import Path

from ace.errors import ConfigError, DecodeError
from ace.tokens.keys import CoseKey

REFUSED_BITS = 0o027  # group write, anything for others: what a file holding a secret may not allow
SECRET_MODES = "chmod 600 it, or 640 with a group only the service user is in (chown root:ace)"


def secret_mode_refused(mode: int) -> bool:
    """Whether a file of ``mode`` may not hold a secret: owner any, group read only, others nothing."""
    return bool(mode & REFUSED_BITS)


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
    """Read one COSE_Key file; a secret in a file others may read, or its group write, is refused."""
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
    if key.has_private and secret_mode_refused(mode):
        raise ConfigError(f"{p}: holds a secret key but has mode {mode:o}; {SECRET_MODES}")
    return key
