"""Locate and load the shared conformance vectors (read-only data next to the repo).

The vectors live in ``<checkout>/../shared/vectors`` (``/X/main`` and ``/X/shared`` side by
side, locally and in CI); ``ACE_VECTORS`` overrides the directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

VECTORS_DIR: Path = Path(
    os.environ.get("ACE_VECTORS") or Path(__file__).resolve().parents[2] / "shared" / "vectors"
)


def vectors_path(name: str) -> Path:
    """The path of one vector file (``name`` relative to the vectors directory)."""
    return VECTORS_DIR / name


def load_vector(name: str) -> dict[str, Any]:
    """Read one JSON vector file, e.g. ``load_vector("cwt_rfc8392.json")``."""
    with vectors_path(name).open(encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object at top level")
    return data
