"""``ace policy add-rs``'s EDHOC and token-upload options (schema 11 of the AS store).

``--edhoc-preset draft-11|ariel-os|aiocoap``: the code points and token shape the RS speaks
(``ace.profiles.edhoc_presets``). ``--auth-cred FILE``: its credential as the exact CCS bytes it
uses as CRED_R (raw CBOR or hex), sent to clients as ``rs_cnf`` kccs; without it, ``--auth-key``
gives the CCS our RS makes of the key (``ace.coap.edhoc.ccs_bytes``). ``--edhoc-info HEX``: the
EDHOC_Information the AS passes to clients besides session_id (draft-ietf-ace-edhoc-oscore-profile
§3.4: methods, cipher_suites, message_4, comb_req, uri_path), as a hex CBOR map. ``--authz-info
URI``: where the AS uploads tokens for clients that ask (draft-ietf-ace-workflow-and-params §3.1).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

import cbor2

from ace.cli.stdio import UsageError
from ace.errors import ConfigError
from ace.store.base import EDHOC_PRESETS, MAX_AUTH_CRED, RsRecord
from ace.tokens.keys import CoseKey

EDHOC_PROFILE = 4  # coap_edhoc_oscore (PROFILE_NAMES)


def add_options(s: Any) -> None:
    e = s.add_argument_group("EDHOC profile and token upload")
    e.add_argument("--edhoc-preset", choices=EDHOC_PRESETS,
                   help="the code points and token shape the RS speaks (new RS: draft-11)")
    e.add_argument("--auth-cred", type=Path, metavar="FILE",
                   help="its EDHOC credential as the CCS bytes it uses (CBOR or hex; default: made from --auth-key)")
    e.add_argument("--edhoc-info", metavar="HEX",
                   help="EDHOC_Information for clients, without session_id, as a hex CBOR map (a103f5: message_4)")
    e.add_argument("--authz-info", metavar="URI", help="its /authz-info URI, where the AS uploads tokens")


def edhoc_fields(args: argparse.Namespace, auth_key: CoseKey | None) -> dict[str, Any]:
    """The ``RsRecord`` fields of these options (``auth_key``: the one --auth-key gave, if any)."""
    fields: dict[str, Any] = {}
    if args.edhoc_preset is not None:
        fields["edhoc_preset"] = args.edhoc_preset
    if args.auth_cred is not None:
        fields["auth_cred"] = _read_cred(args.auth_cred)
    elif auth_key is not None:
        from ace.coap.edhoc import ccs_bytes

        try:
            fields["auth_cred"] = ccs_bytes(auth_key)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"add-rs {args.audience}: --auth-key is no EDHOC credential: {exc}") from None
    if args.edhoc_info is not None:
        fields["edhoc_params"] = _edhoc_info(args.edhoc_info)
    if args.authz_info is not None:
        if not args.authz_info.startswith(("coap://", "coaps://", "coap+tcp://")):
            raise UsageError(f"--authz-info takes a coap:// URI, not {args.authz_info!r}")
        fields["upload_uri"] = args.authz_info
    return fields


def check_preset(rs: RsRecord) -> None:
    """Refuse registering an RS whose preset cannot take its tokens (ariel-os: COSE_Encrypt0 with
    alg 31 or COSE_Sign1 with ES256), rather than refusing every token request later."""
    from ace.profiles.edhoc_presets import preset

    if EDHOC_PROFILE not in rs.profiles:
        return
    cp = preset(rs.edhoc_preset)
    alg = rs.token_alg if rs.token_alg is not None else rs.token_key.alg
    if cp.token_algs is not None and (rs.token_kind == "mac0" or alg not in cp.token_algs):
        raise ConfigError(f"add-rs {rs.audience}: an {cp.name} RS takes encrypt0 tokens with alg 31 "
                          f"(AES-CCM-16-128-256) or sign1 with ES256 (-7), not {rs.token_kind} alg {alg}")


def read_cbor_or_hex(path: Path) -> bytes:
    """A file's bytes: CBOR as it is, or its hex spelling decoded."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    with contextlib.suppress(UnicodeDecodeError, ValueError):
        data = bytes.fromhex(data.decode("ascii").strip())
    return data


def _read_cred(path: Path) -> bytes:
    data = read_cbor_or_hex(path)
    try:
        ccs = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, EOFError):
        raise ConfigError(f"{path}: not a CBOR CWT Claims Set") from None
    if isinstance(ccs, cbor2.CBORTag):
        ccs = ccs.value
    if not isinstance(ccs, dict) or not isinstance(ccs.get(8), dict) or not 0 < len(data) <= MAX_AUTH_CRED:
        raise ConfigError(f"{path}: a CCS is a CBOR map with a cnf (8) claim, at most {MAX_AUTH_CRED} bytes")
    return data


def _edhoc_info(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.replace(" ", ""))
        value = cbor2.loads(raw)
    except (ValueError, cbor2.CBORDecodeError, EOFError):
        raise UsageError("--edhoc-info takes a hex CBOR map, e.g. a103f5") from None
    if not isinstance(value, dict) or 0 in value:
        raise UsageError("--edhoc-info: a CBOR map without session_id (0): the AS assigns that")
    return raw
