"""Shared test setup: make ``tests/`` importable, expose the vectors directory, and ``flow``: a
running deployment (AS + RS on loopback, ``tests/deployment.py``) around a test, always stopped;
``@pytest.mark.deployment(**keywords)`` passes ``running_deployment``'s keywords (config
changes, extra scopes, TRL poll interval, the clients' profile)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:  # so subfolder tests can ``from vectors import ...``
    sys.path.insert(0, _TESTS_DIR)

from vectors import VECTORS_DIR, load_vector  # noqa: E402

if TYPE_CHECKING:
    from deployment import Flow

__all__ = ["load_vector"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deployment(**keywords): how the ``flow`` fixture's deployment runs")


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The vectors directory (``ACE_VECTORS`` or the repository's ``tests/vectors``)."""
    assert VECTORS_DIR.is_dir(), f"vectors directory {VECTORS_DIR} not found (set ACE_VECTORS)"
    return VECTORS_DIR


@pytest.fixture
async def flow(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Flow]:
    """An ``ace init`` deployment's AS and RS running on ::1 (free ports) for the test."""
    from deployment import running_deployment  # (here: only tests that use it load aiocoap)

    marker = request.node.get_closest_marker("deployment")
    async with running_deployment(tmp_path / "deployment", **(marker.kwargs if marker else {})) as f:
        yield f
