"""Keeping stdout for our own output while native code prints to fd 1."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Point fd 1 at stderr for the block (DTLSSocket's C code and aiocoap's shutdown notes print
    to it), so that JSON or text we print afterwards is all stdout carries."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
