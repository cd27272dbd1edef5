"""The command line's standard streams: stdout for a command's own output, stderr for one line
per failure (``ace: error: ...``), and the exit codes every command shares.

Exit codes (``ace.cli.main`` is the one place that turns an exception into one of them):

====  ==========================================================================================
0     done
1     the operation failed: the client's request was refused or got no answer, a token does
      not verify, a revocation found nothing, the fleet had failures
2     usage, configuration or input error: a bad argument, a missing or unwritable file, a bad
      config value, an unknown client or audience (nothing was changed)
3     ``ace as`` / ``ace rs``: the port is in use or cannot be bound
130   interrupted (Ctrl-C)
====  ==========================================================================================
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from ace.errors import AceError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BIND, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
ERROR_PREFIX = "ace: error: "


class UsageError(AceError):
    """A bad argument or input file the command line refuses before doing anything (exit 2)."""

    exit_code = EXIT_USAGE


def error_line(message: str) -> str:
    """``message`` as the one line a failure prints: prefixed once, newlines folded."""
    text = " ".join(message.split()) if "\n" in message or "\r" in message else message.strip()
    for prefix in (ERROR_PREFIX, "ace: "):  # a message that already says who speaks
        text = text.removeprefix(prefix)
    return ERROR_PREFIX + (text or "failed")


def os_error_text(exc: OSError, verb: str = "") -> str:
    """``PATH: cannot VERB (No such file or directory)``, naming both paths of a rename or link."""
    where = ": ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    why = exc.strerror or str(exc)
    if not where:
        return why
    return f"{where}: cannot {verb} ({why})" if verb else f"{where}: {why}"


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
