"""``ace``: one console script, one subcommand module per concern."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ace.cli import demo_cmd, fleet_cmd, init_cmd, keys_cmd, policy_cmd, revoke_cmd, serve_cmd, token_cmd
from ace.errors import AceError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ace", description="ACE-OAuth over CoAP (RFC 9200)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v INFO, -vv DEBUG")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (init_cmd, demo_cmd, serve_cmd, policy_cmd, revoke_cmd, token_cmd, keys_cmd, fleet_cmd):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except AceError as exc:  # exit 2: configuration (and usage, as argparse); 3: a server's port in use
        print(f"ace: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
