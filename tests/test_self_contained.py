"""The repository carries its own test data: a clone with nothing beside it runs every test.

Only the ace-java interop module may look outside the checkout (``../shared/peers/ace-java``,
skipped with its reason when absent); everything else reads data from inside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

from vectors import VECTORS_DIR

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"/work/shared|\.\./shared")
ALLOWED = {"tests/interop/acejava_peer.py", "tests/interop/test_acejava.py", "tests/test_self_contained.py"}


def test_vectors_are_in_the_repository() -> None:
    assert VECTORS_DIR.resolve().is_relative_to(ROOT) or "ACE_VECTORS" in __import__("os").environ
    assert (VECTORS_DIR / "README.md").is_file()  # provenance kept with the data
    assert len(list((VECTORS_DIR / "cose_examples").rglob("*.json"))) >= 34


def test_no_test_reads_outside_the_checkout() -> None:
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "scripts").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ALLOWED or "node_modules" in rel:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
