"""Attack regressions (issue 17): each test replays an attack over real sockets on loopback.
The running deployment (``tests/deployment.py``, the ``flow`` fixture of tests/conftest.py) and
``bounded``/``Reply`` (``tests/support.py``) are shared."""

from __future__ import annotations
