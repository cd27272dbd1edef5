"""Fixtures every store test file shares: ``store`` runs a test on both stores; ``db`` is a path
for a new SQLite file, ``v1_file`` a private copy of the version-1 fixture there."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_support import V1_FILE
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


@pytest.fixture
def v1_file(db: Path) -> Path:
    shutil.copyfile(V1_FILE, db)
    db.chmod(0o600)
    return db
