"""The packages of ``ace`` form layers (README, Architecture): a module imports only from its own
layer or the ones below, and no module imports, directly or through others, itself (no import
circle, not even through a function-level import)."""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# lowest first; a package may import its own layer's peers only where listed in PEERS
LAYERS = [
    {"ace", "ace.errors", "ace.requester"},  # who asks the AS: neutral, the RS needs no AS code
    {"ace.cbor"},
    {"ace.tokens"},
    # hints: the messages' field table and an RS's 4.01 hints; trl_wire: the TRL payloads, the AS's and its observers'
    {"ace.messages", "ace.hints", "ace.trl_wire", "ace.problem"},
    {"ace.replies"},
    {"ace.profiles"},
    {"ace.redact"},
    {"ace.client"},
    {"ace.store"},  # implements the roles' stores (the client's pins file among them)
    {"ace.authz_server", "ace.rs"},
    {"ace.coap"},
    {"ace.cli"},
    {"ace.api"},  # the public Python API, on the roles as the CLI builds them
]
# the package root re-exports the public API, loaded on first use (PEP 562): ``import ace`` loads none of it
REEXPORTS = {("ace", "ace.api")}
RANK = {pkg: n for n, layer in enumerate(LAYERS) for pkg in layer}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / "ace").rglob("*.py"))}


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def imports(path: Path) -> Iterator[str]:
    """Every ace module named by an import in ``path``, at any depth (function-level ones too)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("ace"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("ace"):
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def graph_here() -> dict[str, set[str]]:
    mods = modules()
    return {m: {i for i in imports(p) if i in mods and i != m} for m, p in mods.items()}


@functools.cache
def graph() -> dict[str, set[str]]:
    """``graph_here`` in a fresh interpreter: CPython 3.11 may raise SystemError ("AST constructor
    recursion depth mismatch") from ast.parse in a process whose recursion bookkeeping an earlier
    test disturbed."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_layers as t; "
            "print(json.dumps({m: sorted(v) for m, v in t.graph_here().items()}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return {m: set(v) for m, v in json.loads(out.stdout).items()}


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_go_down_the_layers(module: str) -> None:
    own = RANK[package_of(module)]
    upward = sorted(i for i in graph()[module]
                    if RANK[package_of(i)] > own and (module, package_of(i)) not in REEXPORTS)
    assert not upward, f"{module} imports from a higher layer: {upward}"


def test_no_import_circle() -> None:
    g = graph()
    done: set[str] = set()
    path: list[str] = []

    def visit(m: str) -> None:
        if m in path:
            pytest.fail("import circle: " + " -> ".join([*path[path.index(m):], m]))
        if m in done:
            return
        path.append(m)
        for n in sorted(g[m]):
            visit(n)
        path.pop()
        done.add(m)

    for m in sorted(g):
        visit(m)
