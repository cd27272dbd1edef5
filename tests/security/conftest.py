"""Attack regressions (issue 17): each test replays an attack over real sockets on loopback.
The flow fixtures of tests/coap (``running_deployment``, ``send``, ``bounded``) are shared."""

from __future__ import annotations

import sys
from pathlib import Path

_COAP_TESTS = str(Path(__file__).resolve().parent.parent / "coap")
if _COAP_TESTS not in sys.path:  # ``from flow_fixtures import ...`` as in tests/coap
    sys.path.insert(0, _COAP_TESTS)
