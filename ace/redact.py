"""The one redaction helper: what may be logged or shown of tokens and keys.

Tokens are shown as their size and a short SHA-256 fingerprint (enough to correlate log
lines, useless to replay). Secret key material (COSE_Key ``k`` and ``d``, OSCORE ``ms``)
is replaced by its size inside decoded structures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ace.cbor.labels import Claim, CnfMethod, CurveKeyParam, KeyParam, KeyType, OscoreParam, Param
from ace.profiles.ids import DTLS_LABEL_PREFIX, EDHOC_LABEL_PREFIX

SECRET_MARK = "redacted"
_CNF_LABELS = (int(Claim.CNF), int(Param.REQ_CNF), int(Param.RS_CNF))


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def token(data: bytes) -> str:
    """``token(62 B, sha256:1a2b3c4d5e6f)``."""
    return f"token({len(data)} B, sha256:{fingerprint(data)})"


def secret(data: bytes) -> str:
    return f"<{SECRET_MARK} {len(data)} B>"


def cose_key_map(key: Mapping[Any, Any]) -> dict[Any, Any]:
    """A COSE_Key map with k (Symmetric) or d (EC2/OKP) replaced."""
    out = dict(key)
    private = -1 if key.get(int(KeyParam.KTY)) == KeyType.SYMMETRIC else int(CurveKeyParam.D)
    if isinstance(out.get(private), bytes):
        out[private] = secret(out[private])
    return out


def cnf_map(cnf: Mapping[Any, Any]) -> dict[Any, Any]:
    out = dict(cnf)
    key = out.get(int(CnfMethod.COSE_KEY))
    if isinstance(key, Mapping):
        out[int(CnfMethod.COSE_KEY)] = cose_key_map(key)
    osc = out.get(int(CnfMethod.OSC))
    if isinstance(osc, Mapping) and isinstance(osc.get(int(OscoreParam.MS)), bytes):
        osc = dict(osc)
        osc[int(OscoreParam.MS)] = secret(osc[int(OscoreParam.MS)])
        out[int(CnfMethod.OSC)] = osc
    return out


def message_map(m: Mapping[Any, Any]) -> dict[Any, Any]:
    """Claims or a token endpoint message with every cnf member redacted, tokens shortened."""
    out = dict(m)
    for label in _CNF_LABELS:
        if isinstance(out.get(label), Mapping):
            out[label] = cnf_map(out[label])
    if isinstance(out.get(int(Param.ACCESS_TOKEN)), bytes):
        out[int(Param.ACCESS_TOKEN)] = token(out[int(Param.ACCESS_TOKEN)])
    return out


def readable_id(value: bytes) -> str:
    """An identifier as a reader wants it: text when it is printable ASCII, else h'hex'."""
    if value and all(0x20 <= b < 0x7F for b in value):
        return repr(value.decode("ascii"))
    return f"h'{value.hex()}'"


_CHANNEL_PREFIXES = ((DTLS_LABEL_PREFIX, "DTLS psk_identity"), (EDHOC_LABEL_PREFIX, "EDHOC kid"))


def channel(label: bytes) -> str:
    """A binding label for a log line (ace.profiles: DTLS and EDHOC labels carry a prefix, an
    OSCORE label is the recipient id): ``DTLS psk_identity 'client-7'``, ``OSCORE id h'01'``."""
    for prefix, name in _CHANNEL_PREFIXES:
        if label.startswith(prefix):
            return f"{name} {readable_id(label[len(prefix):])}"
    return f"OSCORE id {readable_id(label)}"
