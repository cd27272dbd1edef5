"""The core packages never import aiocoap, asyncio or socket (DESIGN.md), directly or not."""

from __future__ import annotations

import ast
import functools
import json
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


@functools.cache
def all_imported_roots() -> dict[str, set[str]]:
    """``imported_roots`` of every core module, in a fresh interpreter: CPython 3.11 may raise
    SystemError ("AST constructor recursion depth mismatch") from ast.parse in a process whose
    recursion bookkeeping an earlier test disturbed."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_sans_io as t; "
            "print(json.dumps({str(p): sorted(t.imported_roots(p)) for p in t.core_modules()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return {p: set(v) for p, v in json.loads(out.stdout).items()}


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_no_io(path: Path) -> None:
    assert not all_imported_roots()[str(path)] & FORBIDDEN


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
