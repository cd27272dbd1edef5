"""``scripts/docs`` builds the HTML API reference (pdoc), and it documents every public name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ace

ROOT = Path(__file__).resolve().parents[2]


def test_api_reference_builds_with_every_public_name(tmp_path: Path) -> None:
    pytest.importorskip("pdoc")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "api_docs.py"), str(tmp_path)], cwd=ROOT,
                   check=True, timeout=120, capture_output=True)
    page = (tmp_path / "ace.html").read_text()
    for name in ace.__all__:
        assert f'id="{name}"' in page, f"{name} is not documented"
    for member in ("ResourceServerApp.protect", "ResourceServerApp.from_config", "Client.get", "Client.observe"):
        assert f'id="{member}"' in page, f"{member} is not documented"


def test_every_public_name_has_a_docstring() -> None:
    for name in ace.__all__:
        value = getattr(ace, name)
        if isinstance(value, type):
            assert value.__doc__, name
            for attr, member in vars(value).items():
                if not attr.startswith("_") and callable(getattr(member, "__func__", member)):
                    assert getattr(member, "__doc__", None), f"{name}.{attr}"
