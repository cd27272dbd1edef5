"""``ace``: one console script, one subcommand module per concern, and one error boundary.

Every failure is one line on stderr, ``ace: error: WHAT``, naming the command, the file or
argument and what is wrong; never a traceback (``-vv`` adds one for an unexpected error). The
exit codes are those of ``ace.cli.stdio``: 0 done, 1 the operation failed, 2 usage,
configuration or input error, 3 a server's port in use, 130 interrupted.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ace.cli.stdio import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, error_line, os_error_text
from ace.errors import AceError

if TYPE_CHECKING:
    import argparse

def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with ``argv`` naming a command, of that one only (ace.cli.parser)."""
    from ace.cli.parser import build_parser as build

    return build(argv)


def _rs_args(argv: Sequence[str]) -> Any:
    """``[-v...] rs --config PATH``, the command line a service runs, parsed without argparse (its import and
    parser build are a tenth of `ace rs`'s start); None for any other line, which argparse parses as before."""
    verbose, rest = 0, list(argv)
    while rest and (rest[0] == "--verbose" or (len(rest[0]) > 1 and rest[0] == "-" + "v" * (len(rest[0]) - 1))):
        verbose += 1 if rest[0] == "--verbose" else len(rest[0]) - 1
        rest.pop(0)
    if len(rest) == 3 and rest[:2] == ["rs", "--config"] and not rest[2].startswith("-"):
        path = rest[2]
    elif len(rest) == 2 and rest[0] == "rs" and rest[1].startswith("--config="):
        path = rest[1].removeprefix("--config=")
    else:
        return None
    from ace.cli.serve_cmd import cmd_rs

    return SimpleNamespace(verbose=verbose, command="rs", config=Path(path), func=cmd_rs)


def _command(args: Any) -> str:
    """``policy grant``: the command a message names (``ace`` before the arguments parsed)."""
    if args is None or not getattr(args, "command", None):
        return "ace"
    action = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {action}" if isinstance(action, str) else str(args.command)


def _fail(message: str, code: int) -> int:
    print(error_line(message), file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = None
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = _rs_args(argv) or build_parser(argv).parse_args(argv)
        level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return int(args.func(args))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # stdout's reader went away (`ace ... | head`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except AceError as exc:  # our own errors name the file and key: 2 unless they say (3: port in use)
        return _fail(str(exc), int(getattr(exc, "exit_code", EXIT_USAGE)))
    except OSError as exc:  # a file or directory a command was given, not there or not ours to write
        return _fail(f"{_command(args)}: {os_error_text(exc)}", EXIT_USAGE)
    except ValueError as exc:  # input a command took apart without naming it
        return _fail(f"{_command(args)}: {exc}", EXIT_USAGE)
    except SystemExit as exc:
        if isinstance(exc.code, str):  # raise SystemExit("ace: ..."): a usage error said in place
            return _fail(exc.code, EXIT_USAGE)
        raise  # --help, or a command's own exit status
    except Exception as exc:  # a bug or a library's surprise: still one line, the traceback with -vv
        if args is not None and args.verbose >= 2:
            traceback.print_exc()
        return _fail(f"{_command(args)}: unexpected {type(exc).__name__}: {exc} (-vv shows the traceback)",
                     EXIT_FAILED)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
