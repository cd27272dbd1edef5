"""The client's sequence-number file: monotonic, durable, 0600, one process at a time."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ace.errors import ConfigError
from ace.store.seqno import FileSequenceStore


def test_values_persist_and_never_go_down(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = FileSequenceStore(path)
    assert store.load_sequence_number("as") is None
    store.persist_sequence_number("as", 16)
    store.persist_sequence_number("as", 8)  # ignored: never lower
    assert store.load_sequence_number("as") == 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.close()
    again = FileSequenceStore(path)
    assert again.load_sequence_number("as") == 16 and json.loads(path.read_text()) == {"as": 16}
    again.close()


def test_second_user_of_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = FileSequenceStore(path)
    with pytest.raises(ConfigError, match="in use"):
        FileSequenceStore(path)
    first.close()
    FileSequenceStore(path).close()  # free again once the first is closed


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"as": -1}', '{"as": "x"}'])
def test_malformed_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(ConfigError):
        FileSequenceStore(path)
