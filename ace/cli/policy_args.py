"""What the ``ace policy`` actions take apart and check before they change the AS's store:
the store itself (``--config``), SCOPE (text or AIF), CLIENT and AUDIENCE (registered), --profiles."""

from __future__ import annotations

import argparse

from ace.cbor.scope import AifScope, TextScope
from ace.cli.config import PROFILE_ALIASES, PROFILE_NAMES, profile_choices
from ace.cli.config_as import load_as
from ace.cli.stdio import UsageError
from ace.errors import DecodeError
from ace.store.sqlite import SqliteAsStore


def open_store(args: argparse.Namespace, *, create: bool = False) -> SqliteAsStore:
    """The AS's store; only add-client and add-rs may create it (elsewhere a missing one is a wrong path)."""
    if args.config is None:
        raise UsageError(f"policy {args.policy_command}: give --config FILE (the AS's config, e.g. as.toml)")
    path = load_as(args.config).store
    if not create and not path.exists():
        raise UsageError(f"policy {args.policy_command}: {path}: no such store ({args.config}'s store; "
                         "ace init, add-client or add-rs make one)")
    return SqliteAsStore(path)


def parse_scope(args: argparse.Namespace) -> str | bytes | None:
    """The SCOPE argument checked: text is space-separated scope-tokens (RFC 6749 §3.3), --aif hex CBOR AIF."""
    if args.scope is None:
        return None
    where = f"policy {args.policy_command}: SCOPE {args.scope!r}"
    try:
        if not args.aif:
            return TextScope.parse(args.scope).encode()
        try:
            raw = bytes.fromhex(args.scope)
        except ValueError:
            raise UsageError(f"{where}: --aif takes AIF (RFC 9237) as hex CBOR, e.g. 8182652f74656d7001") from None
        if not AifScope.decode(raw):
            raise UsageError(f"{where}: an empty AIF scope grants nothing")
        return raw
    except DecodeError as exc:
        raise UsageError(f"{where}: {exc.description}") from None


def check_registered(store: SqliteAsStore, args: argparse.Namespace) -> None:
    """Refuse a grant for a client or an audience the AS does not know (it would only fail at /token)."""
    where = f"policy {args.policy_command}"
    if store.get_client(args.client) is None:
        known = sorted(c.client_id for c in store.list_clients())
        raise UsageError(f"{where}: no client {args.client!r} at the AS (known: {names(known)}; "
                         "ace policy add-client registers one)")
    if store.get_rs(args.audience) is None:
        known = sorted(rs.audience for rs in store.list_rs())
        raise UsageError(f"{where}: no RS with audience {args.audience!r} at the AS (known: {names(known)}; "
                         "ace policy add-rs registers one)")


def names(names: list[str], most: int = 8) -> str:
    shown = ", ".join(names[:most]) or "none"
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def profile_names(profiles: tuple[int, ...]) -> str:
    """``coap_oscore,coap_dtls``: as the config files spell them, in the record's order."""
    by_number = {number: name for name, number in PROFILE_NAMES.items()}
    return ",".join(by_number.get(p, str(p)) for p in profiles)


def parse_profiles(names: str) -> tuple[int, ...]:
    """``oscore,dtls`` or ``coap_oscore,coap_dtls`` (either spelling, first preferred) as profile numbers."""
    wanted = [n.strip().lower() for n in names.split(",")]
    bad = [n for n in wanted if n not in PROFILE_ALIASES]
    numbers = tuple(PROFILE_ALIASES[n] for n in wanted if not bad)
    if bad or len(set(numbers)) != len(numbers):
        what = f"unknown profile {bad[0]!r}" if bad else f"a profile named twice in {names!r}"
        raise UsageError(f"--profiles: {what}; allowed: {profile_choices()}, comma-separated")
    return numbers
