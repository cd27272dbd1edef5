"""Who may read a secret: a key file (or an OSCORE context file) of mode 0600 or 0640 is read,
as a service's files are (``root:ace 0640``: its group reads them); one others may read, or its
group write, is refused; the files ``ace`` writes stay 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ace.cli.config import load_oscore_secret
from ace.cli.keyfiles import load_key, save_key
from ace.errors import ConfigError
from ace.tokens.keys import symmetric_key

ACCEPTED = (0o600, 0o640, 0o400, 0o440)
REFUSED = (0o660, 0o644, 0o604, 0o620, 0o606, 0o666)


def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "rs.key"
    save_key(path, symmetric_key(bytes(16), kid=b"k"))
    return path


def test_written_keys_are_0600(tmp_path: Path) -> None:
    assert stat.S_IMODE(key_file(tmp_path).stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", ACCEPTED, ids=oct)
def test_group_readable_keys_are_read(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path)
    os.chmod(path, mode)
    assert load_key(path).has_private


@pytest.mark.parametrize("mode", REFUSED, ids=oct)
def test_keys_others_read_or_the_group_writes_are_refused(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path)
    os.chmod(path, mode)
    with pytest.raises(ConfigError, match=f"holds a secret key but has mode {mode:o}; chmod 600 it, or 640"):
        load_key(path)


@pytest.mark.parametrize(("mode", "read"), [(0o640, True), (0o644, False), (0o660, False)], ids=oct)
def test_oscore_context_files_follow_the_same_rule(tmp_path: Path, mode: int, read: bool) -> None:
    path = tmp_path / "ctx.toml"
    path.write_text('master_secret = "000102030405060708090a0b0c0d0e0f"\nsender_id = "01"\nrecipient_id = "02"\n')
    os.chmod(path, mode)
    if read:
        load_oscore_secret(path)
    else:
        with pytest.raises(ConfigError, match="holds a master secret"):
            load_oscore_secret(path)
