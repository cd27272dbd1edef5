"""Fixtures every store test file shares: ``store`` runs a test on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import fixed_clock

from ace.store.base import AsStore
from ace.store.memory import MemoryAsStore
from ace.store.sqlite import SqliteAsStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AsStore]:
    s: AsStore
    s = MemoryAsStore() if request.param == "memory" else SqliteAsStore(tmp_path / "as.db", clock=fixed_clock())
    yield s
    s.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "as.db"
