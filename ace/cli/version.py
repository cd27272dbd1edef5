"""``ace --version``: the installed distribution's version, looked up only when asked."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

DISTRIBUTION = "ace-oauth-coap"  # pyproject.toml's [project] name: what pip installs


def distribution_version() -> str:
    from importlib import metadata  # not at import: every other command starts without it

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class VersionAction(argparse.Action):
    """``ace --version``: ``ace (ace-oauth-coap) 0.1.0`` on stdout, exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"ace ({DISTRIBUTION}) {distribution_version()}")
        parser.exit(0)
