"""Locate and load the conformance vectors: the repository's own copy in ``tests/vectors/``
(RFC and COSE example files, with their provenance in ``tests/vectors/README.md``), so that a
clone with nothing beside it runs every test; ``ACE_VECTORS`` overrides the directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

VECTORS_DIR: Path = Path(
    os.environ.get("ACE_VECTORS") or Path(__file__).resolve().parent / "vectors"
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
