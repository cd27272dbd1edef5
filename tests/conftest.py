"""Shared test setup: make ``tests/`` importable and expose the vectors directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:  # so subfolder tests can ``from vectors import ...``
    sys.path.insert(0, _TESTS_DIR)

from vectors import VECTORS_DIR, load_vector  # noqa: E402

__all__ = ["load_vector"]


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The vectors directory (``ACE_VECTORS`` or the repository's ``tests/vectors``)."""
    assert VECTORS_DIR.is_dir(), f"vectors directory {VECTORS_DIR} not found (set ACE_VECTORS)"
    return VECTORS_DIR
