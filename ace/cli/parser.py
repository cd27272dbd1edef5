"""``ace``'s argparse parser: the global options and, for a command line naming a command, that
command's parser only (its module is imported then; ``ace --help`` builds them all)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from typing import NoReturn

from ace.cli.stdio import UsageError
from ace.cli.version import VersionAction

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
