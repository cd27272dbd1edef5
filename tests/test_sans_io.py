"""The core packages never import aiocoap, asyncio or socket (DESIGN.md), directly or not."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ["cbor", "tokens", "profiles", "authz_server", "rs", "client", "store"]
CORE_FILES = ["errors.py", "messages.py", "redact.py", "replies.py"]
FORBIDDEN = {"aiocoap", "asyncio", "socket", "pycose"}


def core_modules() -> list[Path]:
    files = [ROOT / "ace" / f for f in CORE_FILES]
    for pkg in CORE:
        files.extend(sorted((ROOT / "ace" / pkg).rglob("*.py")))
    return [f for f in files if f.exists()]


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_no_io(path: Path) -> None:
    assert not imported_roots(path) & FORBIDDEN


def test_core_import_pulls_in_no_io_module() -> None:
    names = [
        "ace." + str(p.relative_to(ROOT / "ace").with_suffix("")).replace("/", ".").removesuffix(".__init__")
        for p in core_modules()
    ]
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}: importlib.import_module(n)\n"
        f"print(sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
