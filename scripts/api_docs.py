"""Build the HTML API reference of the public API with pdoc (``scripts/docs`` runs this).

``python scripts/api_docs.py OUT``: writes OUT/ace.html (the package root: ``ace.ResourceServerApp``,
``ace.Client``, ...) and OUT/ace/api.html. The root loads its names on first use (PEP 562): they are
loaded here first, so pdoc documents them where users import them from.
"""

from __future__ import annotations

import sys
from pathlib import Path


def build(out: Path) -> Path:
    """Write the reference into ``out``; returns the root page."""
    import pdoc
    import pdoc.render

    import ace

    for name in ace.__all__:  # the lazily re-exported names, loaded: pdoc reads the module's __dict__
        getattr(ace, name)
    pdoc.render.configure(docformat="markdown", show_source=False)
    pdoc.pdoc("ace", "ace.api", output_directory=out)
    return out / "ace.html"


if __name__ == "__main__":
    page = build(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/api"))
    print(f"API reference: {page}")
