"""The flow as people read it, one exchange at a time: shared by ``ace demo`` and ``ace client --trace``.

``record`` turns a runner ``Exchange`` into a plain dict (the demo's JSON), ``exchange_lines``
renders one as text: the request and the answer, each with its bytes in hex and, for ace+cbor,
in diagnostic notation with RFC 9200 labels. ``redact=True`` (``ace client --trace``, real keys)
shows PoP key material by its size only and leaves out the hex of payloads that hold it; the
demo's throwaway keys are shown in full.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from ace.cbor import codec
from ace.cbor.diag import diag, label_namer
from ace.cbor.labels import ContentFormat, CreationHint, Param
from ace.cli.frames import DTLS_RECORD, frames_802154
from ace.coap.client import Exchange
from ace.errors import DecodeError, RemoteError
from ace.messages import AccessTokenResponse
from ace.redact import SECRET_MARK, message_map

STEP = {"resource": "C0", "token": "C/D", "authz-info": "E", "resource (protected)": "F", "resource (DTLS)": "F",
        "resource (EDHOC)": "F"}
SECURITY = {"resource (DTLS)": "DTLS", "resource (EDHOC)": "EDHOC+OSCORE"}


def _namer(step: str, response: bool, code: tuple[int, int]) -> type[IntEnum] | None:
    if step.startswith("resource") and response and code[0] == 4:  # RFC 9200 §5.3: 4.01/4.03/4.05 hints
        return CreationHint
    if step in ("token", "authz-info"):
        return Param
    return None


def _describe(payload: bytes, cf: Any, labels: type[IntEnum] | None, redact: bool) -> tuple[str | None, bool]:
    """The payload in diagnostic notation (or None), and whether it holds key material left out."""
    if cf is None or int(cf) != ContentFormat.ACE_CBOR or not payload:
        return None, False
    try:
        value = codec.loads(payload)
    except DecodeError:
        return None, False
    if redact and isinstance(value, dict):
        value = message_map(value)
        text = diag(value, labels=label_namer(labels))
        return text, SECRET_MARK in text
    return diag(value, labels=label_namer(labels)), False


def _part(payload: bytes, cf: Any, labels: type[IntEnum] | None, redact: bool) -> dict[str, Any]:
    described, secret = _describe(payload, cf, labels, redact)
    return {"bytes": len(payload), "hex": None if secret else payload.hex(), "diag": described}


def _frames(message_bytes: int | None, dtls: bool) -> int | None:
    """802.15.4 frames for one whole CoAP message (``ace.cli.frames`` states the assumptions)."""
    return None if message_bytes is None else frames_802154(message_bytes, DTLS_RECORD if dtls else 0)


def handshake_steps(e: Exchange) -> list[dict[str, Any]]:
    """The DTLS or EDHOC handshake run inside ``e``, as a step of its own (what the tap measured)."""
    dtls = [(what, n) for what, n in e.handshake if what.startswith("dtls")]
    edhoc = [(what, n) for what, n in e.handshake if what.startswith("edhoc")]
    steps = []
    if dtls:  # datagrams of DTLS records other than application data: the PSK handshake's flights
        steps.append({"step": "DTLS", "what": "DTLS 1.2 PSK handshake (RFC 9202 §3.3), before F",
                      "messages": [{"dir": what.split()[1], "datagram_bytes": n,
                                    "frames_802154": frames_802154(n)} for what, n in dtls]})
    if edhoc:  # message_1, message_2, then message_3 combined with the first OSCORE request (RFC 9668)
        names = ["message_1", "message_2", "message_3 + OSCORE request (F)"]
        steps.append({"step": "EDHOC", "what": "EDHOC (RFC 9528) over CoAP, before F",
                      "messages": [{"dir": "sent" if what.endswith("request") else "received",
                                    "name": names[i] if i < len(names) else what, "message_bytes": n,
                                    "frames_802154": frames_802154(n)} for i, (what, n) in enumerate(edhoc)]})
    return steps


def record(e: Exchange, *, redact: bool = False) -> dict[str, Any]:
    labels_req, labels_resp = _namer(e.step, False, e.response.code), _namer(e.step, True, e.response.code)
    req_cf = ContentFormat.ACE_CBOR if e.step in ("token", "authz-info") else None
    response = _part(e.response.payload, e.response.content_format, labels_resp, redact)
    dtls = e.uri.startswith("coaps:")
    return {
        "step": STEP.get(e.step, e.step), "what": e.step, "method": e.method, "uri": e.uri,
        "protected": e.protected, "elapsed_ms": round(e.elapsed * 1000, 2),
        "handshake": handshake_steps(e),
        "request": {**_part(e.request_payload, req_cf, labels_req, redact),
                    "message_bytes": e.request_message_bytes, "frames_802154": _frames(e.request_message_bytes, dtls)},
        "response": {"code": f"{e.response.code[0]}.{e.response.code[1]:02d}", **response,
                     "content_format": _cf(e.response.content_format), "message_bytes": e.response_message_bytes,
                     "frames_802154": _frames(e.response_message_bytes, dtls)},
    }


def _cf(cf: Any) -> int | None:
    return None if cf is None else int(cf)


def _size(p: dict[str, Any]) -> str:
    """"12 B payload" and, when measured, ", 30 B message, 1 frame" (whole CoAP message, 802.15.4 frames)."""
    text = f"{p['bytes']} B payload"
    n, frames = p.get("message_bytes"), p.get("frames_802154")
    if n is not None:
        text += f", {n} B message, {frames} frame{'s' if frames != 1 else ''}"
    return text


def handshake_lines(h: dict[str, Any]) -> list[str]:
    out = [f"{h['step']:<4} {h['what']}"]
    for m in h["messages"]:
        arrow = "client ->" if m["dir"] == "sent" else "<-"
        size = f"{m['message_bytes']} B message" if "message_bytes" in m else f"{m['datagram_bytes']} B datagram"
        out.append(f"     {arrow} {m.get('name', 'DTLS records')}, {size}, {m['frames_802154']} frame(s)")
    return out


def exchange_lines(x: dict[str, Any]) -> list[str]:
    """One exchange (a ``record``) as text: its handshake if one ran, the request line, the answer
    line, their payloads; sizes are payloads and, when measured, whole CoAP messages and 802.15.4 frames."""
    sec = SECURITY.get(x["what"], "OSCORE") if x["protected"] else "unprotected"
    out = [line for h in x.get("handshake", []) for line in handshake_lines(h)]
    out.append(f"{x['step']:<4} client -> {x['method']} {x['uri']} ({sec}), {_size(x['request'])}")
    out += payload_lines(x["request"])
    resp = x["response"]
    out.append(f"     <- {resp['code']}, {_size(resp)}, {x['elapsed_ms']} ms")
    return out + payload_lines(resp)


def payload_lines(p: dict[str, Any]) -> list[str]:
    if not p["bytes"]:
        return []
    if p["hex"] is None:
        lines = ["       hex  (not shown: it holds key material; redacted below)"]
    else:
        lines = [f"       hex  {p['hex']}"]
    if p["diag"]:
        first, *rest = p["diag"].splitlines()
        lines += ["       diag " + first] + ["            " + line for line in rest]
    elif p["hex"] is not None:
        text = bytes.fromhex(p["hex"]).decode("utf-8", "replace")
        lines.append(f"       text {text!r}")
    return lines


def issued_token(exchanges: list[Exchange]) -> bytes | None:
    """The access token of the last successful token response among ``exchanges``."""
    for e in reversed(exchanges):
        if e.step == "token" and e.response.success:
            try:
                return AccessTokenResponse.decode(e.response.payload).access_token
            except RemoteError:
                return None
    return None




def client_trace(exchanges: list[Exchange]) -> str:
    """``ace client --trace``: every exchange, PoP keys redacted, then the access token in full (it is
    printed, never logged: it is not a secret to its holder, and lets one inspect or revoke it)."""
    out = ["ace client --trace: the ACE flow (RFC 9200) as it ran; PoP key material is redacted"]
    for e in exchanges:
        out += exchange_lines(record(e, redact=True))
    token = issued_token(exchanges)
    if token is not None:
        out += [f"access token ({len(token)} B; not a secret to you, its holder, and never logged, but it is "
                "yours: do not publish it):", f"  {token.hex()}",
                "  inspect: ace token inspect HEX --key <the RS's token key>   revoke: ace revoke --config "
                "<as.toml> --token HEX"]
    return "\n".join(out)


__all__ = ["STEP", "client_trace", "exchange_lines", "handshake_steps", "issued_token", "payload_lines", "record"]
