"""What the `ace policy` tests share: running the command on a directory's as.toml and reading back
the RS it registered. Not a test module."""

from __future__ import annotations

from pathlib import Path

from ace.cli.main import main
from ace.store.base import RsRecord
from ace.store.sqlite import SqliteAsStore


def policy(d: Path, *args: str | Path) -> int:
    return main(["policy", "--config", str(d / "as.toml"), *map(str, args)])


def rs_of(d: Path, audience: str = "aud1") -> RsRecord:
    with SqliteAsStore(d / "as.db") as store:
        rs = store.get_rs(audience)
    assert rs is not None
    return rs
