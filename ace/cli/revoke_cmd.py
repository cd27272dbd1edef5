"""``ace revoke``: put issued tokens on the AS's Token Revocation List (RFC 9770).

``--client C [--audience A]`` revokes every live token issued to C (for A only, if given);
``--token HEX`` one token, found by its identity (its exact bytes, or another encoding of a
self-contained token: verified with each registered RS's key and found by its cti). The
running AS notices the new entries within a second (it polls its store) and notifies the
clients and RSs observing its TRL.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ace.authz_server import trl
from ace.cli.config_as import load_as
from ace.errors import ConfigError
from ace.store.sqlite import SqliteAsStore


def register(sub: Any) -> None:
    p = sub.add_parser("revoke", help="revoke issued access tokens (RFC 9770 Token Revocation List)")
    p.add_argument("--config", type=Path, required=True, help="the AS's config file")
    p.add_argument("--client", help="revoke the live tokens issued to this client")
    p.add_argument("--audience", help="... only those for this audience (RS)")
    p.add_argument("--token", help="revoke this one token (hex of its bytes)")
    p.set_defaults(func=cmd_revoke)


def revoke(store: Any, *, client: str | None = None, audience: str | None = None, token: bytes | None = None,
           clock: trl.Clock = time.time) -> list[bytes]:
    """What ``ace revoke`` does, on an open store: the hashes newly put on the TRL."""
    if token is not None:
        if client is not None or audience is not None:
            raise ConfigError("give --token alone, or --client [--audience]")
        h = trl.revoke_token(store, token, clock=clock)
        return [h] if h is not None else []
    if client is None:
        raise ConfigError("give --client (and optionally --audience) or --token")
    return trl.revoke_tokens(store, client_id=client, audience=audience, clock=clock)


def cmd_revoke(args: argparse.Namespace) -> int:
    token = None
    if args.token is not None:
        try:
            token = bytes.fromhex(args.token)
        except ValueError:
            raise ConfigError("--token must be hex") from None
    with SqliteAsStore(load_as(args.config).store) as store:
        added = revoke(store, client=args.client, audience=args.audience, token=token)
    for h in added:
        print(f"revoked {h.hex()}")
    print(f"{len(added)} token(s) put on the revocation list")
    return 0
