"""``ace``: one console script, one subcommand module per concern, and one error boundary.

Every failure is one line on stderr, ``ace: error: WHAT``, naming the command, the file or
argument and what is wrong; never a traceback (``-vv`` adds one for an unexpected error). The
exit codes are those of ``ace.cli.stdio``: 0 done, 1 the operation failed, 2 usage,
configuration or input error, 3 a server's port in use, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from ace.cli.stdio import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, UsageError, error_line, os_error_text
from ace.cli.version import VersionAction
from ace.errors import AceError

EPILOG = ("exit status: 0 done, 1 the operation failed (a refused request, a token that does not verify), "
          "2 usage, configuration or input error, 3 a server's port in use, 130 interrupted")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line through the error boundary (not usage text + exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog.removeprefix('ace ')}: {message} (see {self.prog} --help)")


# the module registering each command, in --help order: only the one a command line names is imported
# (`ace rs` loads no AS, client or tooling code)
COMMANDS = {"init": "init_cmd", "demo": "demo_cmd", "as": "serve_cmd", "rs": "serve_cmd", "client": "serve_cmd",
            "policy": "policy_cmd", "revoke": "revoke_cmd", "token": "token_cmd", "keys": "keys_cmd",
            "fleet": "fleet_cmd"}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with ``argv`` naming a command, of that one only."""
    parser = Parser(prog="ace", description="ACE-OAuth over CoAP (RFC 9200)", epilog=EPILOG)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v INFO, -vv DEBUG")
    parser.add_argument("--version", action=VersionAction, help="print the installed version and exit (status 0)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")  # subparsers: Parser too
    named = next((a for a in argv or () if not a.startswith("-")), None)
    modules = [COMMANDS[named]] if named in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(f"ace.cli.{name}").register(sub)
    return parser


def _command(args: argparse.Namespace | None) -> str:
    """``policy grant``: the command a message names (``ace`` before the arguments parsed)."""
    if args is None or not getattr(args, "command", None):
        return "ace"
    action = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {action}" if isinstance(action, str) else str(args.command)


def _fail(message: str, code: int) -> int:
    print(error_line(message), file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser(argv).parse_args(argv)
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
