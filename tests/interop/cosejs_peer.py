"""Independent COSE peer: verify our COSE messages with cose-js (Node.js).

cose-js 0.9.0 is pinned in ``tests/interop/cosejs/package.json`` (+ lockfile).
The Node side lives in ``tests/interop/cosejs/verify.js``; this module is the
Python wrapper used by interop tests.

Supported by cose-js (and therefore here): Sign1 ES256 (no EdDSA), Mac0 with
HMAC 256/64 (alg 4) and HMAC 256/256 (alg 5), Encrypt0 with AES-CCM
(algs 10-13, 30-33, including 31 = AES-CCM-16-128-256) and AES-GCM (1-3).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Final

COSEJS_DIR: Final[Path] = Path(__file__).resolve().parent / "cosejs"
VERIFY_JS: Final[Path] = COSEJS_DIR / "verify.js"
KINDS: Final[frozenset[str]] = frozenset({"sign1", "mac0", "encrypt0"})

#: The exact command CI runs (from COSEJS_DIR) to install the pinned lockfile.
NPM_CI_COMMAND: Final[tuple[str, ...]] = (
    "npm",
    "ci",
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
)
INSTALL_TIMEOUT_S: Final[float] = 300.0
VERIFY_TIMEOUT_S: Final[float] = 30.0


class CoseJsRejected(Exception):
    """cose-js refused the message (bad signature/tag, unsupported alg, ...)."""


class CoseJsHarnessError(RuntimeError):
    """The harness itself failed (node missing, bad output, crash, ...)."""


def _installed() -> bool:
    return (COSEJS_DIR / "node_modules" / "cose-js" / "package.json").is_file()


def cosejs_available() -> bool:
    """True when ``node`` is on PATH and the pinned node_modules are installed."""
    return shutil.which("node") is not None and _installed()


def ensure_installed() -> None:
    """Install the pinned cose-js (``npm ci``) if node_modules is missing."""
    if _installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise CoseJsHarnessError("npm not found on PATH; cannot install cose-js")
    try:
        proc = subprocess.run(
            [npm, *NPM_CI_COMMAND[1:]],
            cwd=COSEJS_DIR,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CoseJsHarnessError(
            f"npm ci timed out after {INSTALL_TIMEOUT_S} s"
        ) from exc
    if proc.returncode != 0 or not _installed():
        raise CoseJsHarnessError(
            f"npm ci failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )


def _key_to_hex(kind: str, key: dict[str, bytes]) -> dict[str, str]:
    wanted = ("x", "y") if kind == "sign1" else ("k",)
    missing = [name for name in wanted if name not in key]
    if missing:
        raise ValueError(f"{kind} key needs {wanted}, missing {missing}")
    return {name: bytes(key[name]).hex() for name in wanted}


def cosejs_verify(
    kind: str,
    message: bytes,
    key: dict[str, bytes],
    *,
    external_aad: bytes = b"",
) -> bytes:
    """Verify/decrypt ``message`` with cose-js and return the payload.

    ``kind`` is ``"sign1"`` (key ``{"x", "y"}``: P-256 public coordinates),
    ``"mac0"`` or ``"encrypt0"`` (key ``{"k"}``). Tagged (18/17/16) and
    untagged messages are accepted. Raises :class:`CoseJsRejected` when
    cose-js rejects the message and :class:`CoseJsHarnessError` when the
    harness itself misbehaves.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(KINDS)}")
    node = shutil.which("node")
    if node is None:
        raise CoseJsHarnessError("node not found on PATH")
    if not _installed():
        raise CoseJsHarnessError(
            f"cose-js not installed; run ensure_installed() or npm ci in {COSEJS_DIR}"
        )
    request = {
        "kind": kind,
        "message_hex": bytes(message).hex(),
        "key": _key_to_hex(kind, key),
        "external_aad_hex": bytes(external_aad).hex(),
    }
    try:
        proc = subprocess.run(
            [node, str(VERIFY_JS)],
            cwd=COSEJS_DIR,
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=VERIFY_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CoseJsHarnessError(
            f"verify.js timed out after {VERIFY_TIMEOUT_S} s"
        ) from exc
    if proc.returncode != 0:
        raise CoseJsHarnessError(
            f"verify.js exited {proc.returncode}: {proc.stderr.strip()}"
        )
    lines = proc.stdout.strip().splitlines()
    if len(lines) != 1:
        raise CoseJsHarnessError(
            f"verify.js must print one JSON line, got: {proc.stdout!r}"
        )
    try:
        result = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise CoseJsHarnessError(f"verify.js printed non-JSON: {lines[0]!r}") from exc
    if not isinstance(result, dict):
        raise CoseJsHarnessError(f"verify.js printed a non-object: {lines[0]!r}")
    if result.get("ok") is True and isinstance(result.get("payload_hex"), str):
        return bytes.fromhex(result["payload_hex"])
    if result.get("ok") is False:
        raise CoseJsRejected(str(result.get("error", "")))
    raise CoseJsHarnessError(f"verify.js printed an unexpected object: {lines[0]!r}")
