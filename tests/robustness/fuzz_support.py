"""Endpoint fuzzing over real loopback sockets: strategies, the running servers, the loop.

Shared by ``tests/robustness/test_fuzz_endpoints.py`` (short mode, a few hundred cases per
endpoint, fixed seed) and ``scripts/fuzz`` (long mode, ``--cases N`` per endpoint).

A ``Harness`` runs an ``ace init`` deployment (AS + RS, as ``ace demo`` starts them,
through ``deployment.running_deployment``) on ::1 in an event loop of its own thread, so
that the cases can come from a plain (sync) hypothesis ``@given`` function: every case is
one CoAP request sent with ``run_coroutine_threadsafe`` and bounded in time. ``fuzz``
sends ``cases`` cases of one ``Endpoint`` and classifies each answer:

* 2.xx (the input happened to be valid), 4.xx and 5.03 (try later: no EDHOC connection
  identifier left, an introspection in flight) are fine; other 5.xx, a timeout, a client-side
  exception or an endpoint-specific violation (e.g. a 2.xx from /token without OSCORE) is a
  *finding*;
* about one case in ``NON_ONE_IN`` goes out as a NON request (RFC 7252 §4.3): the answer of an
  unauthenticated one may be suppressed by the server's ``AmplificationGuard`` (RFC 7252 §11.3;
  ``GuardSpy`` sees what it suppressed, whose code is then judged like an answer's);
* every ``check_every`` cases (and at the end) the server must still serve a legitimate
  request (a protected GET / a token request; every few checks a full A–F flow);
* no log record at WARNING+ (any thread, any logger) may carry ``exc_info`` or a traceback.

Findings are recorded (with the payload in hex to reproduce them), not raised, so a long
run reports all of them; hypothesis only generates (no shrinking, no example database).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import random
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiocoap
import cbor2
from aiocoap import optiontypes, oscore
from aiocoap.numbers.constants import TransportTuning, Unreliable
from aiocoap.numbers.optionnumbers import OptionNumber
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

_HERE = Path(__file__).resolve().parent
for _p in (_HERE.parent,):  # tests/ (support, deployment, vectors)
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from deployment import Flow, running_deployment  # noqa: E402
from support import Reply  # noqa: E402

from ace.cbor import codec  # noqa: E402
from ace.cbor.labels import AceProfile, ContentFormat  # noqa: E402
from ace.client.flow import Done, ResourceRequest  # noqa: E402
from ace.coap import dtls  # noqa: E402
from ace.coap.client import ClientRunner  # noqa: E402
from ace.coap.render import pair_of  # noqa: E402
from ace.tokens import cose  # noqa: E402
from ace.tokens.crypto import Kind  # noqa: E402
from ace.tokens.keys import CoseKey, symmetric_key  # noqa: E402

T = TypeVar("T")
ACE_CBOR = int(ContentFormat.ACE_CBOR)
CWT = int(ContentFormat.CWT)
CASE_TIMEOUT = 4.0  # seconds for one fuzz request (loopback answers take milliseconds)
HEALTH_TIMEOUT = 20.0  # one legitimate request or full flow
MAX_PAYLOAD = 1000  # bytes: every request fits one datagram (RFC 7252 §4.6)
MAX_FINDINGS_KEPT = 50  # per endpoint: the first ones in full, the rest only counted
NON_ONE_IN = 6  # about one case in this many is a NON request


class Quick(TransportTuning):  # type: ignore[misc]
    """CON retransmission after 0.5 s, twice at most: a lost datagram is retried within the
    case timeout; a request the server drops is not waited for longer than needed."""

    ACK_TIMEOUT = 0.5
    MAX_RETRANSMIT = 2


# -- strategies: arbitrary CBOR -----------------------------------------------------------------

ACE_LABELS = [1, 2, 3, 4, 5, 8, 9, 24, 30, 31, 33, 34, 38, 39, 40, 41, 42, 43, 44]
COSE_LABELS = [0, 1, 2, 3, 4, 5, 6, -1, -2, -3, -4]
KEYS = st.sampled_from(ACE_LABELS) | st.sampled_from(COSE_LABELS) | st.integers(-(2**64), 2**64 - 1) \
    | st.text(max_size=6) | st.binary(max_size=4)
LEAVES = (
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.integers(-(2**70), 2**70)
    | st.binary(max_size=24) | st.text(max_size=10) | st.floats(allow_nan=True, allow_infinity=True)
    | st.just(cbor2.undefined) | st.builds(cbor2.CBORSimpleValue, st.integers(0, 19) | st.integers(32, 255))
    | st.sampled_from([-7, -8, 4, 5, 10, 31, 1, 2, 12, 0, 16, 17, 18, 61, "rs1", "r_temp", "clientA", b"\x01"])
)
TAGS = st.sampled_from([0, 1, 2, 3, 16, 17, 18, 24, 61, 96, 97, 98, 55799]) | st.integers(0, 2**64 - 1)
ANY_CBOR = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5)
    | st.builds(cbor2.CBORTag, TAGS, inner),
    max_leaves=24,
)


def dumps(value: object) -> bytes:
    """cbor2 encoding of anything ANY_CBOR yields (canonical off: duplicates and order kept)."""
    return cbor2.dumps(value)


def _safe_dumps(value: object) -> bytes:
    try:
        return dumps(value)
    except (cbor2.CBOREncodeError, ValueError, TypeError, OverflowError):
        return b"\xf7"  # undefined: the strategy only needs *some* bytes


ARBITRARY_BYTES = st.binary(max_size=300)
ARBITRARY_CBOR = ANY_CBOR.map(_safe_dumps)
ARBITRARY_MAPS = st.dictionaries(st.sampled_from(ACE_LABELS) | KEYS, ANY_CBOR, max_size=6).map(_safe_dumps)
ARBITRARY = st.one_of(ARBITRARY_BYTES, ARBITRARY_CBOR, ARBITRARY_MAPS)

# -- strategies: mutations of valid input -------------------------------------------------------

BYTE_OPS = st.lists(
    st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup", "append"]),
              st.integers(0, 2**16), st.integers(0, 255)),
    min_size=1, max_size=4,
)


def mutate_bytes(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    b = bytearray(data)
    for op, pos, val in ops:
        n = len(b)
        i = pos % (n + 1)
        if op == "flip" and n:
            b[i % n] ^= 1 << (val % 8)
        elif op == "set" and n:
            b[i % n] = val
        elif op == "insert":
            b.insert(i, val)
        elif op == "delete" and n:
            del b[i % n]
        elif op == "truncate":
            del b[i:]
        elif op == "dup" and n:
            b[i:i] = b[i:i + 1 + val % 16]
        elif op == "append":
            b += bytes([val]) * (1 + val % 8)
    return bytes(b[:900])


def _copy(value: Any) -> Any:
    """A deep copy of decoded CBOR (cbor2's tags do not pickle, so no copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, cbor2.CBORTag):
        return cbor2.CBORTag(value.tag, _copy(value.value))
    return value


def _dict_nodes(value: object) -> Iterator[dict[Any, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _dict_nodes(v)
    elif isinstance(value, list):
        for v in value:
            yield from _dict_nodes(v)


def _retyped(value: object) -> list[object]:
    """Neighbours of ``value`` of another CBOR type or an edge value of the same type."""
    if isinstance(value, bytes):
        return [value.decode("latin-1"), b"", value * 8, list(value), len(value)]
    if isinstance(value, str):
        return [value.encode(), "", value * 8, [value], 0]
    if isinstance(value, bool):
        return [int(value), None, not value]
    if isinstance(value, int):
        return [-value - 1, 2**64 - 1, -(2**64), 2**80, float(value % 2**64), str(value),
                (value % 2**72).to_bytes(9, "big")]
    if isinstance(value, dict):
        return [list(value.items()), [], {}, cbor2.CBORTag(24, dumps(value))]
    return [None, 0, b"", ""]


@st.composite
def mutated_map(draw: st.DrawFn, base: dict[Any, Any], max_ops: int = 3) -> dict[Any, Any]:
    """``base`` (nested maps) with up to ``max_ops`` label deletions, replacements, additions
    or retypings at any depth."""
    m = _copy(base)
    for _ in range(draw(st.integers(1, max_ops))):
        node = draw(st.sampled_from(list(_dict_nodes(m))))
        keys = list(node)
        op = draw(st.sampled_from(["del", "set", "add", "retype", "retype"]))
        if op == "add" or not keys:
            node[draw(KEYS)] = draw(ANY_CBOR)
            continue
        key = draw(st.sampled_from(keys))
        if op == "del":
            del node[key]
        elif op == "set":
            node[key] = draw(ANY_CBOR)
        else:
            node[key] = draw(st.sampled_from(_retyped(node[key])))
    return m


def _maybe_map_mutated(draw: st.DrawFn, m: dict[Any, Any], p: float) -> dict[Any, Any]:
    return draw(mutated_map(m)) if draw(st.floats(0, 1)) < p else m


def _maybe_bytes_mutated(draw: st.DrawFn, data: bytes, p: float) -> bytes:
    return mutate_bytes(data, draw(BYTE_OPS)) if draw(st.floats(0, 1)) < p else data


# -- strategies: tokens ---------------------------------------------------------------------------

MATERIAL_IDS = [b"\xf1", b"\xf2", b"\xf3\xf3", b""]  # a small pool: tokens supersede each other
DTLS_KIDS = [b"fz-1", b"fz-2", b"fz-3"]  # no 0x00: a client could use them as psk_identity


def _rng(seed: int) -> Callable[[int], bytes]:
    r = random.Random(seed)
    return r.randbytes


@st.composite
def claims_map(draw: st.DrawFn, profile: str, wild: bool = False) -> dict[Any, Any]:
    """A claims map for rs1 (OSCORE: cnf osc; DTLS: cnf COSE_Key). ``wild``: lengths, ids,
    audiences, expiry times, scopes and optional parameters vary beyond the valid ones."""
    def pick(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
        return draw(valid | other) if wild else draw(valid)

    if profile == "oscore":
        material: dict[int, Any] = {0: pick(st.sampled_from(MATERIAL_IDS[:3]), st.binary(max_size=9)),
                                    2: pick(st.binary(min_size=16, max_size=16), st.binary(max_size=40))}
        for label, values in ((1, st.integers(0, 3)), (3, st.sampled_from([5, 6, 7, "sha256", -10, 99])),
                              (4, st.sampled_from([10, 11, 12, 13, 24, 1, 3, -7, "AES-CCM-16-64-128"])),
                              (5, st.binary(max_size=16)), (6, st.binary(max_size=12))):
            if wild and draw(st.integers(0, 4)) == 0:
                material[label] = draw(values)
        cnf: dict[int, Any] = {4: material}
    else:
        key: dict[int, Any] = {1: pick(st.just(4), st.sampled_from([2, 1, 3, 0])),
                               2: pick(st.sampled_from(DTLS_KIDS), st.binary(max_size=40)),
                               -1: pick(st.binary(min_size=16, max_size=16), st.binary(max_size=40))}
        if wild and draw(st.integers(0, 4)) == 0:
            key[3] = draw(st.sampled_from([5, 10, 25, -7, 1]))
        cnf = {1: key}
    m: dict[Any, Any] = {3: pick(st.just("rs1"), st.sampled_from(["rs2", "", "RS1"])),
                         4: int(time.time()) + pick(st.just(600), st.sampled_from([-600, 0, 10**9, -(10**10)])),
                         7: draw(st.binary(min_size=1, max_size=8)),
                         9: pick(st.sampled_from(["r_temp", "rw_led", "r_temp rw_led"]),
                                 st.sampled_from(["nope", "", " ", dumps([["/temp", 1], ["/led", 5]]), b""])),
                         8: cnf}
    if draw(st.integers(0, 3)) == 0:
        m[2] = draw(st.sampled_from(["fz-client-a", "fz-client-b"]))  # sub: tokens of one client
    if wild and draw(st.integers(0, 3)) == 0:
        m[draw(st.sampled_from([1, 5, 6, 38, 39, 40]))] = draw(ANY_CBOR)
    return m


MODES = ["valid", "claims", "claims", "token", "token", "message", "message", "bytes", "arbitrary"]


@st.composite
def token_bytes(draw: st.DrawFn, token_key: CoseKey, profile: str, mode: str) -> bytes:
    """A token for rs1: claims (map-mutated in mode "claims") protected with the RS's token
    key (now and then a wrong key or another COSE kind), its bytes mutated in mode "token"."""
    claims = draw(claims_map(profile, wild=mode == "claims"))
    if mode == "claims" and draw(st.booleans()):
        claims = draw(mutated_map(claims))
    body = _safe_dumps(claims)
    key, kind, tagged = token_key, Kind.AEAD, False
    if mode != "valid":
        if draw(st.integers(0, 9)) == 0:  # a key the RS does not have, under its kid or another
            key = symmetric_key(draw(st.binary(min_size=16, max_size=16)),
                                kid=draw(st.sampled_from([token_key.kid, b"\x02", None])))
        kind = Kind.AEAD if draw(st.integers(0, 7)) else Kind.MAC
        tagged = draw(st.booleans())
    try:
        token = cose.build(kind, body, key, kid=key.kid, tagged=tagged, rng=_rng(draw(st.integers(0, 2**32))))
    except (ValueError, TypeError):
        token = cose.build(Kind.AEAD, body, token_key, kid=token_key.kid, rng=_rng(0))
    if mode != "valid" and draw(st.integers(0, 7)) == 0:  # CWT tag 61 around it
        token = codec.head(6, 61) + token
    if mode != "valid" and draw(st.integers(0, 7)) == 0:  # re-encoded: the same token, other bytes
        token = _re_encoded(token, draw(st.integers(0, 2)), draw(st.integers(-24, 300)))
    if mode == "token":
        token = mutate_bytes(token, draw(BYTE_OPS))
    return token


def _re_encoded(token: bytes, how: int, label: int) -> bytes:
    """An unauthenticated change of a token's encoding (issue 17 item 2): a header label added to
    the unprotected bucket, the bucket's order reversed, or the array head in a longer form."""
    item = cbor2.loads(token)
    while isinstance(item, cbor2.CBORTag):
        item = item.value
    if how == 0:
        return cbor2.dumps([item[0], {**item[1], label: b"x"}, *item[2:]])
    if how == 1:
        return cbor2.dumps([item[0], dict(reversed(list(item[1].items()))), *item[2:]])
    core = cbor2.dumps(item)
    return bytes((0x98, len(item))) + core[1:]


# -- the cases --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Case:
    """One request: method code, Uri-Path segments (None: the endpoint's), payload, content
    format, further options (number, value)."""

    payload: bytes
    content_format: int | None = ACE_CBOR
    method: int = 2  # POST
    path: tuple[str, ...] | None = None
    options: tuple[tuple[int, Any], ...] = ()
    non: bool = False  # sent as a NON request (else CON)

    def __post_init__(self) -> None:
        # Without block-wise transfer a request must fit one datagram: aiocoap reads at most
        # 4096 bytes (a longer OSCORE request arrives cut and fails to decrypt, correctly 4.00).
        if len(self.payload) > MAX_PAYLOAD:
            object.__setattr__(self, "payload", self.payload[:MAX_PAYLOAD])

    def describe(self) -> dict[str, Any]:
        return {"type": "NON" if self.non else "CON", "method": self.method,
                "path": None if self.path is None else "/" + "/".join(self.path),
                "content_format": self.content_format, "options": [[n, _jsonable(v)] for n, v in self.options],
                "payload_hex": self.payload.hex()}


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return {"hex": v.hex()}
    if isinstance(v, tuple):
        return list(v)
    return v


def with_message_type(cases: st.SearchStrategy[Case]) -> st.SearchStrategy[Case]:
    """``cases``, about one in ``NON_ONE_IN`` of them as a NON request."""
    # (a draw from a wide range: hypothesis picks the ends of a small one far more often)
    return st.tuples(cases, st.integers(0, 2**16 - 1)).map(
        lambda drawn: dataclasses.replace(drawn[0], non=True) if drawn[1] % NON_ONE_IN == 1 else drawn[0])


def content_formats(usual: int | None) -> st.SearchStrategy[int | None]:
    """Mostly ``usual``; else a neighbour (none, CBOR, CWT, ace+cbor) or any number."""
    return st.integers(0, 9).flatmap(
        lambda n: st.just(usual) if n < 8 else st.sampled_from([None, 60, 61, ACE_CBOR, 0]) if n == 8
        else st.integers(0, 65535))


@st.composite
def token_request_case(draw: st.DrawFn) -> Case:
    """POST /token: a valid AccessTokenRequest, mutated (map or bytes), or arbitrary bytes/CBOR."""
    mode = draw(st.sampled_from(MODES))
    if mode == "arbitrary":
        payload = draw(ARBITRARY)
    else:
        m: dict[Any, Any] = {24: "clientA", 5: "rs1", 9: draw(st.sampled_from(["r_temp", "rw_led", "r_temp x"]))}
        if draw(st.booleans()):
            m[38] = draw(st.sampled_from([None, 1, 2, 3]))
        if draw(st.integers(0, 3)) == 0:
            m[39] = draw(st.binary(max_size=16))
        if draw(st.integers(0, 3)) == 0:
            m[4] = draw(st.sampled_from([{1: {1: 4, 2: b"k", -1: b"\x00" * 16}}, {3: b"kid"},
                                         {4: {0: b"\x01", 2: b"\x00" * 16}}]))
        if draw(st.integers(0, 3)) == 0:
            m[33] = draw(st.sampled_from([2, 0, 1, 99]))
        if mode in ("claims", "token", "message"):
            m = draw(mutated_map(m))
        payload = dumps(m)
        if mode == "bytes":
            payload = mutate_bytes(payload, draw(BYTE_OPS))
    method = draw(st.sampled_from([2] * 12 + [1, 3, 4, 5, 6, 7]))
    return Case(payload=payload, content_format=draw(content_formats(ACE_CBOR)), method=method)


def authz_info_oscore_cases(token_key: CoseKey) -> st.SearchStrategy[Case]:
    """POST /authz-info, OSCORE profile: {access_token, nonce1, ace_client_recipientid} with
    mutated claims, token bytes, nonces and ids, message maps or bytes; or arbitrary payloads."""

    @st.composite
    def case(draw: st.DrawFn) -> Case:
        mode = draw(st.sampled_from(MODES))
        if mode == "arbitrary":
            return Case(payload=draw(ARBITRARY), content_format=draw(content_formats(ACE_CBOR)))
        odd = mode == "message"
        m: dict[Any, Any] = {
            1: draw(token_bytes(token_key, "oscore", mode)),
            40: draw(st.binary(max_size=40) if odd else st.binary(min_size=8, max_size=8)),
            43: draw(st.binary(max_size=10) if odd else st.binary(min_size=1, max_size=1)),
        }
        if odd:
            m = draw(mutated_map(m))
        payload = _safe_dumps(m)
        if mode == "bytes":
            payload = mutate_bytes(payload, draw(BYTE_OPS))
        return Case(payload=payload, content_format=draw(content_formats(ACE_CBOR)))

    return case()


def authz_info_dtls_cases(token_key: CoseKey) -> st.SearchStrategy[Case]:
    """POST /authz-info, DTLS profile: the token itself (application/cwt), valid, with
    mutated claims or bytes, or arbitrary bytes/CBOR."""

    @st.composite
    def case(draw: st.DrawFn) -> Case:
        mode = draw(st.sampled_from(MODES))
        if mode == "arbitrary":
            payload = draw(ARBITRARY)
        else:
            payload = draw(token_bytes(token_key, "dtls", "token" if mode in ("bytes", "message") else mode))
        return Case(payload=payload, content_format=draw(content_formats(CWT)))

    return case()


PATHS = st.integers(0, 9).flatmap(
    lambda n: st.sampled_from([("temp",), ("led",), ("authz-info",)]) if n < 6
    else st.sampled_from([(), ("nope",), ("temp", "x"), ("token",), ("temp", ""), ("", "temp"), ("TEMP",),
                          ("..", "temp"), ("temp", "..")]) if n < 8
    else st.lists(st.text(max_size=12), max_size=4).map(tuple))
METHODS = st.sampled_from([1, 1, 1, 2, 3, 3, 4, 5, 6, 7]) | st.integers(8, 31)
OPTION = st.one_of(
    st.tuples(st.just(12), st.integers(0, 65535)),  # Content-Format
    st.tuples(st.just(17), st.integers(0, 65535)),  # Accept
    st.tuples(st.just(15), st.text(max_size=20)),  # Uri-Query
    st.tuples(st.just(1), st.binary(max_size=8)),  # If-Match
    st.tuples(st.just(5), st.just(b"")),  # If-None-Match
    st.tuples(st.just(4), st.binary(min_size=1, max_size=8)),  # ETag
    st.tuples(st.just(14), st.integers(0, 2**32 - 1)),  # Max-Age
    st.tuples(st.just(60), st.integers(0, 2**32 - 1)),  # Size1
    st.tuples(st.just(28), st.integers(0, 2**32 - 1)),  # Size2
    st.tuples(st.just(23), st.tuples(st.integers(0, 2**16), st.booleans(), st.integers(0, 7))),  # Block2
    st.tuples(st.just(27), st.tuples(st.integers(0, 2**16), st.booleans(), st.integers(0, 7))),  # Block1
    st.tuples(st.just(252), st.binary(max_size=40)),  # Echo
    st.tuples(st.just(292), st.binary(max_size=8)),  # Request-Tag
    st.tuples(st.sampled_from([65000, 65001, 2049, 2050, 9999, 10000]), st.binary(max_size=16)),  # unknown
)
# Not sent: Observe (6) would open an observation, No-Response (258) asks for silence.


def resource_cases() -> st.SearchStrategy[Case]:
    """Any method, path, payload and options (sent through a valid security context)."""

    @st.composite
    def case(draw: st.DrawFn) -> Case:
        payload = draw(st.sampled_from([b"", b"on", b"off", b"1"]) | ARBITRARY)
        cf = draw(st.none() | st.sampled_from([0, ACE_CBOR, CWT, 60]) | st.integers(0, 65535))
        return Case(payload=payload, content_format=cf, method=draw(METHODS), path=draw(PATHS),
                    options=tuple(draw(st.lists(OPTION, max_size=4))))

    return case()


# -- strategies: EDHOC (RFC 9528) at the RS's /.well-known/edhoc -------------------------------------

# Real message_1s (lakers.EdhocInitiator().prepare_message_1(C_I, []): method 3, suite 2, G_X, C_I),
# kept as bytes so that a seed always makes the same cases.
MESSAGE_1 = tuple(bytes.fromhex(h) for h in (
    "03025820fc72a9528bef91f98c25e2837d8380b2998f30aa6e3e61ccf6d0f4111b762e3800",
    "03025820bfe8e0ec66bda5c66551c7d10ecee4154bad70d3dd54aefc33f23c43c3f80bdd0e",
    "030258208b73c12662f057726bf0ce44050cccac8e7906d8d336521f701039317bc3344f37",
))
CBOR_TRUE = b"\xf5"  # what starts a message_1 over CoAP (RFC 9528 appendix A.2); else message_3, C_R first
EDHOC_ITEMS = (  # what may stand in place of METHOD, SUITES_I, G_X, C_I; EAD_1 items after them
    st.sampled_from([0, 1, 2, 3, 4, -1, 24, 255]),
    st.sampled_from([2, 0, 6, 24, -1, [6, 2], [2, 2], [], [2], [0, 1, 2, 3, 4, 5, 6, 2], [99, 2]]),
    st.binary(min_size=32, max_size=32) | st.binary(max_size=65),
    st.integers(-24, 23) | st.integers(-(2**16), 2**16) | st.binary(max_size=5),
    st.sampled_from([1, -1, 0, 2, -2, 24, -25]),
)
MESSAGE_MODES = ["valid", "items", "items", "items", "bytes", "bytes", "arbitrary", "message_3"]


def cbor_items(data: bytes) -> list[Any]:
    """The items of a CBOR sequence (RFC 8742)."""
    stream, items = io.BytesIO(data), []
    while stream.tell() < len(data):
        items.append(cbor2.load(stream))
    return items


@st.composite
def message_1_items(draw: st.DrawFn, base: bytes) -> bytes:
    """``base``'s CBOR items with up to three replaced (by a neighbour or any CBOR), dropped, or
    EAD_1 items (label, optional value; negative: critical) added."""
    items = cbor_items(base)
    for _ in range(draw(st.integers(1, 3))):
        op, at = draw(st.sampled_from(["set", "set", "any", "drop", "ead"])), draw(st.integers(0, len(items)))
        if op == "ead" or at == len(items):
            items += [draw(EDHOC_ITEMS[4])] + ([draw(st.binary(max_size=16))] if draw(st.booleans()) else [])
        elif op == "set":
            items[at] = draw(EDHOC_ITEMS[min(at, 4)])
        elif op == "any":
            items[at] = draw(ANY_CBOR)
        else:
            del items[at]
    return b"".join(_safe_dumps(item) for item in items)


def edhoc_cases() -> st.SearchStrategy[Case]:
    """POST /.well-known/edhoc: a real message_1, its items replaced or dropped or EAD_1 added, its
    bytes mutated, arbitrary bytes after CBOR true, or arbitrary bytes taken for message_3 (a C_R
    the RS may have handed out first, or anything); now and then another method or options."""

    @st.composite
    def case(draw: st.DrawFn) -> Case:
        mode, base = draw(st.sampled_from(MESSAGE_MODES)), draw(st.sampled_from(MESSAGE_1))
        if mode == "valid":
            payload = CBOR_TRUE + base
        elif mode == "items":
            payload = CBOR_TRUE + draw(message_1_items(base))
        elif mode == "bytes":
            payload = mutate_bytes(CBOR_TRUE + base, draw(BYTE_OPS))
        elif mode == "arbitrary":
            payload = CBOR_TRUE + draw(ARBITRARY)
        else:
            payload = draw(st.sampled_from([b"\x37", b"\x20", b"\x00", b""]) | st.binary(max_size=2)) \
                + draw(ARBITRARY)
        odd = draw(st.integers(0, 2**16 - 1)) % 8 == 3  # (see with_message_type)
        options = tuple(draw(st.lists(OPTION, max_size=2))) if odd else ()
        return Case(payload=payload, content_format=draw(content_formats(None)), method=draw(METHODS) if odd else 2,
                    options=options)

    return case()


def build_message(case: Case, uri: str) -> aiocoap.Message:
    """The aiocoap request of ``case`` at ``uri`` (its path replaced when the case has one)."""
    tuning = Unreliable() if case.non else Quick()
    msg = aiocoap.Message(code=aiocoap.Code(case.method), uri=uri, payload=case.payload, transport_tuning=tuning)
    if case.path is not None:
        msg.opt.uri_path = case.path
    if case.content_format is not None:
        msg.opt.content_format = case.content_format
    for number, value in case.options:
        num = OptionNumber(number)
        if number in (23, 27):
            opt: Any = optiontypes.BlockOption(num, optiontypes.BlockOption.BlockwiseTuple(*value))
        elif isinstance(value, int):
            opt = optiontypes.UintOption(num, value)
        elif isinstance(value, str):
            opt = optiontypes.StringOption(num, value)
        else:
            opt = optiontypes.OpaqueOption(num, value)
        msg.opt.add_option(opt)
    return msg


async def send(ctx: Any, msg: aiocoap.Message, timeout: float = CASE_TIMEOUT,
               pin: dict[str, Any] | None = None) -> Reply:
    """``deployment.send`` without client-side blockwise handling: Block1/Block2 options of
    a case go to the server as they are (aiocoap's client would assert on them).

    ``pin``: keeps the response's remote (a DTLS client session) referenced. aiocoap pools
    DTLS client sessions weakly; a session collected while tinydtls still uses it makes
    DTLSSocket warn ("tried to call _write in vain") and, now and then, corrupt the heap
    ("double free or corruption"; seen here without the pin)."""
    try:
        raw = await asyncio.wait_for(ctx.request(msg, handle_blockwise=False).response, timeout)
    except oscore.NotAProtectedMessage as exc:
        plain = exc.plain_message
        return Reply(pair_of(plain.code), plain.payload, _cf(plain.opt.content_format), False)
    if pin is not None:
        pin["remote"] = raw.remote
    return Reply(pair_of(raw.code), raw.payload, _cf(raw.opt.content_format), True)


def _cf(cf: Any) -> int | None:
    return None if cf is None else int(cf)


# -- the running servers ----------------------------------------------------------------------------

_NO_RESPONSE_BIT = {2: 0b10, 4: 0b1000, 5: 0b10000}  # RFC 7967: the bit that suppresses a code class


@dataclass(frozen=True, slots=True)
class Silence:
    """No answer came: the server's AmplificationGuard suppressed ``code`` (a NON request's)."""

    code: tuple[int, int]


class GuardSpy:
    """Sees what the servers' ``AmplificationGuard`` (``ace.coap.render``) does to unauthenticated
    answers: ``silenced`` lists the codes of answers it suppressed. Wraps ``admit`` on the
    instances only (test instrumentation; ``ace`` is unchanged)."""

    def __init__(self) -> None:
        self.silenced: list[tuple[int, int]] = []
        self.sites = 0

    def attach(self, site: Any) -> None:
        admit = getattr(site, "admit", None)
        if admit is None:  # a server without the guard
            return
        self.sites += 1

        def admitted(request: aiocoap.Message, request_size: int, response: aiocoap.Message) -> aiocoap.Message:
            out: aiocoap.Message = admit(request, request_size, response)
            if (out.opt.no_response or 0) & _NO_RESPONSE_BIT.get(int(out.code) >> 5, 0):
                self.silenced.append(pair_of(response.code))
            return out

        site.admit = admitted

    async def answer(self, sending: Awaitable[Reply]) -> Reply | Silence:
        """The answer ``sending`` gets, or the Silence the guard decided for it (one request in flight)."""
        self.silenced.clear()
        task = asyncio.ensure_future(sending)
        try:
            while not task.done() and not self.silenced:
                await asyncio.wait({task}, timeout=0.02)
            return task.result() if task.done() else Silence(self.silenced[-1])
        finally:
            task.cancel()


class Harness:
    """An AS + RS deployment on ::1 running in an event loop of its own thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-servers", daemon=True)
        self._stack: contextlib.AsyncExitStack | None = None
        self.flow: Flow | None = None
        self.spy = GuardSpy()

    def call(self, factory: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
        """Run ``factory()`` in the server loop; at most ``timeout`` seconds."""
        async def bounded() -> T:
            return await asyncio.wait_for(factory(), timeout)
        return asyncio.run_coroutine_threadsafe(bounded(), self.loop).result(timeout + 2.0)

    def start(self) -> Flow:
        self.thread.start()

        async def enter() -> Flow:
            self._stack = contextlib.AsyncExitStack()
            return await self._stack.enter_async_context(running_deployment(self.directory))

        self.flow = self.call(enter, 30.0)
        for server in (self.flow.as_server, self.flow.rs_server):
            self.spy.attach(server.context.serversite)
        return self.flow

    def stop(self) -> None:
        try:
            if self._stack is not None:
                self.call(self._stack.aclose, 30.0)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10.0)
            if not self.thread.is_alive():
                self.loop.close()


# -- the endpoints ----------------------------------------------------------------------------------

@dataclass
class Endpoint:
    """One endpoint group: its strategy, how a case is sent, what a legitimate request is."""

    name: str
    describe: str
    strategy: Callable[[Flow], st.SearchStrategy[Case]]
    setup: Callable[[Flow], Awaitable[dict[str, Any]]]  # -> state (contexts, uris)
    send: Callable[[Flow, dict[str, Any], Case], Awaitable[Reply]]
    health: Callable[[Flow, dict[str, Any]], Awaitable[str | None]]  # None: fine, else what failed
    expect: Callable[[Case, Reply], str | None] = lambda case, reply: None


def _token_uri(flow: Flow) -> str:
    return flow.d.as_uri


async def _full_flow(flow: Flow) -> str | None:
    result = await flow.full_flow()
    if not isinstance(result, Done) or result.response.code != (2, 5):
        return f"full flow failed: {result!r}"
    return None


# /token over the client's OSCORE context with the AS -------------------------------------------

async def _setup_token(flow: Flow) -> dict[str, Any]:
    return {"runner": await flow.client(record=False), "checks": 0}


async def _send_token(flow: Flow, state: dict[str, Any], case: Case) -> Reply:
    return await send(state["runner"].context, build_message(case, _token_uri(flow)), CASE_TIMEOUT)


async def _legit_token_request(flow: Flow, ctx: Any) -> str | None:
    payload = codec.dumps({24: "clientA", 5: "rs1", 9: "r_temp"})
    reply = await send(ctx, aiocoap.Message(code=aiocoap.POST, uri=_token_uri(flow), payload=payload,
                                            content_format=ACE_CBOR), HEALTH_TIMEOUT)
    if reply.code != (2, 1) or not reply.protected:
        return f"legitimate token request answered {reply.code} (protected={reply.protected})"
    return None


async def _health_token(flow: Flow, state: dict[str, Any]) -> str | None:
    state["checks"] += 1
    failed = await _legit_token_request(flow, state["runner"].context)
    if failed or state["checks"] % 4:
        return failed
    # a full flow needs client.toml's sequence-number file, which our runner holds: hand it over
    runner = state["runner"]
    flow._runners.remove(runner)
    await runner.stop()
    try:
        return await _full_flow(flow)
    finally:
        state["runner"] = await flow.client(record=False)


def _expect_oscore_reply(case: Case, reply: Reply) -> str | None:
    return None if reply.protected else "the answer to an OSCORE request came unprotected"


# /token without OSCORE ------------------------------------------------------------------------------

async def _setup_plain(flow: Flow) -> dict[str, Any]:
    return {"ctx": await flow.plain(), "checks": 0}


async def _send_token_plain(flow: Flow, state: dict[str, Any], case: Case) -> Reply:
    return await send(state["ctx"], build_message(case, _token_uri(flow)), CASE_TIMEOUT)


def _expect_refused(case: Case, reply: Reply) -> str | None:
    return None if reply.code[0] == 4 else "an unprotected request to /token was not refused"


async def _health_token_plain(flow: Flow, state: dict[str, Any]) -> str | None:
    state["checks"] += 1
    if state["checks"] % 4 == 0:
        return await _full_flow(flow)
    runner = await flow.client(record=False)
    try:
        return await _legit_token_request(flow, runner.context)
    finally:
        flow._runners.remove(runner)
        await runner.stop()


# /authz-info (unprotected) -------------------------------------------------------------------------

async def _send_authz_info(flow: Flow, state: dict[str, Any], case: Case) -> Reply:
    return await send(state["ctx"], build_message(case, flow.authz_info_uri), CASE_TIMEOUT)


async def _health_full_flow(flow: Flow, state: dict[str, Any]) -> str | None:
    return await _full_flow(flow)


# protected resources over OSCORE ---------------------------------------------------------------------

async def _setup_resource(flow: Flow) -> dict[str, Any]:
    plain = await flow.plain()
    token, material = flow.token(scope="r_temp rw_led", exp=time.time() + 3 * 3600)
    session = await flow.post_token(plain, token, material)
    if session.context is None:
        raise RuntimeError(f"setting up an OSCORE session failed: {session.response}")
    ctx = await flow.plain()
    ctx.client_credentials[flow.rs_uri + "/*"] = session.context
    return {"ctx": ctx, "checks": 0}


async def _send_resource(flow: Flow, state: dict[str, Any], case: Case) -> Reply:
    return await send(state["ctx"], build_message(case, flow.rs_uri + "/temp"), CASE_TIMEOUT)


async def _protected_get(ctx: Any, uri: str, pin: dict[str, Any] | None = None) -> str | None:
    reply = await send(ctx, aiocoap.Message(code=aiocoap.GET, uri=uri, transport_tuning=Quick()), HEALTH_TIMEOUT,
                       pin)
    if reply.code != (2, 5) or not reply.protected:
        return f"protected GET /temp answered {reply.code} (protected={reply.protected})"
    return None


async def _health_resource(flow: Flow, state: dict[str, Any]) -> str | None:
    state["checks"] += 1
    failed = await _protected_get(state["ctx"], flow.rs_uri + "/temp")
    if failed or state["checks"] % 4:
        return failed
    return await _full_flow(flow)


# protected resources over DTLS ----------------------------------------------------------------------

def _coaps(flow: Flow) -> str:
    assert flow.rs_server.coaps_port is not None
    return f"coaps://[::1]:{flow.rs_server.coaps_port}"


async def _setup_resource_dtls(flow: Flow) -> dict[str, Any]:
    psk, identity = secrets.token_bytes(16), b"fz-dtls-session"
    claims = {3: "rs1", 4: int(time.time()) + 3 * 3600, 7: b"\x99", 9: "r_temp rw_led",
              8: {1: {1: 4, 2: identity, -1: psk}}}
    token = cose.build(Kind.AEAD, codec.dumps(claims), flow.token_key, kid=flow.token_key.kid,
                       rng=secrets.token_bytes)
    plain = await flow.plain()
    reply = await send(plain, aiocoap.Message(code=aiocoap.POST, uri=flow.authz_info_uri, payload=token,
                                              content_format=CWT))
    if reply.code != (2, 1):
        raise RuntimeError(f"posting the DTLS token failed: {reply}")
    ctx = await aiocoap.Context.create_client_context(transports=["tinydtls", "udp6"])
    flow._contexts.append(ctx)
    dtls.install_client_credentials(ctx, "::1", flow.rs_server.coaps_port, psk, identity)
    return {"ctx": ctx, "checks": 0}


async def _send_resource_dtls(flow: Flow, state: dict[str, Any], case: Case) -> Reply:
    return await send(state["ctx"], build_message(case, _coaps(flow) + "/temp"), CASE_TIMEOUT, state)


async def _health_resource_dtls(flow: Flow, state: dict[str, Any]) -> str | None:
    state["checks"] += 1
    failed = await _protected_get(state["ctx"], _coaps(flow) + "/temp", state)
    if failed or state["checks"] % 4:
        return failed
    return await _full_flow(flow)


# the RS's /.well-known/edhoc (unprotected) ----------------------------------------------------------

async def _edhoc_client(flow: Flow) -> ClientRunner:
    """The deployment's client (client.toml) with profile coap_edhoc_oscore, started."""
    return await flow.client(record=False, profile=int(AceProfile.COAP_EDHOC_OSCORE), timeout=HEALTH_TIMEOUT / 4)


async def _edhoc_get(flow: Flow, runner: ClientRunner) -> str | None:
    result = await runner.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp"))
    if not isinstance(result, Done) or result.response.code != (2, 5):
        return f"GET /temp over EDHOC failed: {result!r}"
    return None


async def _setup_edhoc(flow: Flow) -> dict[str, Any]:
    """A client with a completed EDHOC session (the one the fuzz cases must not displace)."""
    runner = await _edhoc_client(flow)
    failed = await _edhoc_get(flow, runner)
    if failed:
        raise RuntimeError(f"setting up an EDHOC session failed: {failed}")
    return {"ctx": await flow.plain(), "runner": runner, "checks": 0}


async def _send_edhoc(flow: Flow, state: dict[str, Any], case: Case) -> Reply:
    return await send(state["ctx"], build_message(case, flow.rs_uri + "/.well-known/edhoc"), CASE_TIMEOUT)


async def _health_edhoc(flow: Flow, state: dict[str, Any]) -> str | None:
    """The session set up before still serves; every second check a new handshake does too
    (after a fresh token), every fourth the whole A–F flow (OSCORE profile) first."""
    state["checks"] += 1
    failed = await _edhoc_get(flow, state["runner"])
    if failed or state["checks"] % 2:
        return failed
    runner = state["runner"]  # it holds client.toml's sequence-number file: the next client takes it over
    flow._runners.remove(runner)
    await runner.stop()
    if state["checks"] % 4 == 0:
        failed = await _full_flow(flow)
    state["runner"] = await _edhoc_client(flow)
    return failed or await _edhoc_get(flow, state["runner"])


ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in [
    Endpoint("token", "AS POST /token over the registered client's OSCORE context",
             lambda flow: token_request_case(), _setup_token, _send_token, _health_token, _expect_oscore_reply),
    Endpoint("token-plain", "AS POST /token without OSCORE (must be refused)",
             lambda flow: token_request_case(), _setup_plain, _send_token_plain, _health_token_plain,
             _expect_refused),
    Endpoint("authz-info", "RS POST /authz-info, OSCORE profile (ace+cbor map), unprotected",
             lambda flow: authz_info_oscore_cases(flow.token_key), _setup_plain, _send_authz_info,
             _health_full_flow),
    Endpoint("authz-info-dtls", "RS POST /authz-info, DTLS profile (raw token, application/cwt)",
             lambda flow: authz_info_dtls_cases(flow.token_key), _setup_plain, _send_authz_info,
             _health_full_flow),
    Endpoint("resource", "RS resources over a valid OSCORE context: any method, path, payload, options",
             lambda flow: resource_cases(), _setup_resource, _send_resource, _health_resource,
             _expect_oscore_reply),
    Endpoint("resource-dtls", "RS resources over a valid DTLS-PSK session: any method, path, payload, options",
             lambda flow: resource_cases(), _setup_resource_dtls, _send_resource_dtls, _health_resource_dtls),
    Endpoint("edhoc", "RS POST /.well-known/edhoc, unprotected: message_1 (real ones mutated, arbitrary) and more",
             lambda flow: edhoc_cases(), _setup_edhoc, _send_edhoc, _health_edhoc),
]}


# -- log watching ---------------------------------------------------------------------------------------

class TracebackWatch(logging.Handler):
    """On the root logger at WARNING+: keeps the records that carry a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.bad: list[logging.LogRecord] = []
        self.warnings: Counter[str] = Counter()
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is worth a look as well
            text = f"{record.msg!r} % {record.args!r}"
        with self._lock2:
            self.warnings[record.name] += 1
            if record.exc_info or record.exc_text or record.stack_info or "Traceback" in text:
                self.bad.append(record)

    def take(self) -> list[logging.LogRecord]:
        with self._lock2:
            bad, self.bad = self.bad, []
        return bad


@contextlib.contextmanager
def watching_logs() -> Iterator[TracebackWatch]:
    root = logging.getLogger()
    watch = TracebackWatch()
    old_level = root.level
    root.addHandler(watch)
    root.setLevel(min(old_level or logging.WARNING, logging.WARNING))
    try:
        yield watch
    finally:
        root.removeHandler(watch)
        root.setLevel(old_level)


def _record_text(record: logging.LogRecord) -> str:
    text = logging.Formatter("%(levelname)s %(name)s: %(message)s").format(record)
    return text[:2000]


# -- the loop --------------------------------------------------------------------------------------------

@dataclass
class Stats:
    endpoint: str
    cases: int = 0
    non: int = 0  # cases sent as NON requests
    codes: Counter[str] = field(default_factory=Counter)  # "2.04", "4.01"; "2.01 silent": suppressed
    findings: list[dict[str, Any]] = field(default_factory=list)
    findings_total: int = 0
    health_checks: int = 0
    seconds: float = 0.0
    stopped_early: str | None = None

    def finding(self, kind: str, detail: str, case: Case | None) -> None:
        self.findings_total += 1
        if len(self.findings) < MAX_FINDINGS_KEPT:
            self.findings.append({"kind": kind, "detail": detail, "case_no": self.cases,
                                  "case": case.describe() if case is not None else None})

    def as_dict(self) -> dict[str, Any]:
        return {"cases": self.cases, "non": self.non, "codes": dict(sorted(self.codes.items())),
                "health_checks": self.health_checks,
                "seconds": round(self.seconds, 1), "findings_total": self.findings_total,
                "findings": self.findings, **({"stopped_early": self.stopped_early} if self.stopped_early else {})}


def code_text(code: tuple[int, int]) -> str:
    return f"{code[0]}.{code[1]:02d}"


def acceptable(code: tuple[int, int]) -> bool:
    """2.xx, 4.xx, or 5.03 Service Unavailable (a bounded resource is busy: try later)."""
    return code[0] in (2, 4) or code == (5, 3)


def fuzz(harness: Harness, endpoint: Endpoint, *, cases: int, seed: int = 0, check_every: int = 25,
         time_budget: float = 600.0, max_timeouts: int | None = None,
         progress: Callable[[Stats], None] | None = None) -> Stats:
    """Send ``cases`` cases to ``endpoint`` (fewer if ``time_budget`` seconds run out, or once
    ``max_timeouts`` cases got no answer: each costs ``CASE_TIMEOUT``, and one is a finding)."""
    flow = harness.flow
    assert flow is not None
    stats = Stats(endpoint.name)
    started = time.monotonic()
    deadline = started + time_budget
    strategy = with_message_type(endpoint.strategy(flow))

    with watching_logs() as watch:
        state = harness.call(lambda: endpoint.setup(flow), HEALTH_TIMEOUT)

        def check(case: Case | None) -> None:
            stats.health_checks += 1
            try:
                failed = harness.call(lambda: endpoint.health(flow, state), 3 * HEALTH_TIMEOUT)
            except Exception as exc:
                failed = f"{type(exc).__name__}: {exc}"
            if failed:
                stats.finding("not serving", failed, case)

        def logs(case: Case | None) -> None:
            for record in watch.take():
                stats.finding("traceback in log", _record_text(record), case)

        @settings(max_examples=cases, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, print_blob=False)
        @hypothesis_seed(seed)
        @given(case=strategy)
        def one(case: Case) -> None:
            if stats.stopped_early or stats.cases >= cases:
                return
            if time.monotonic() > deadline:
                stats.stopped_early = f"time budget of {time_budget:.0f} s used up"
                return
            if max_timeouts is not None and stats.codes["timeout"] >= max_timeouts:
                stats.stopped_early = f"{max_timeouts} cases got no answer"
                return
            stats.cases += 1
            stats.non += case.non
            try:
                reply = harness.call(lambda: harness.spy.answer(endpoint.send(flow, state, case)), CASE_TIMEOUT + 1.0)
            except TimeoutError:
                stats.codes["timeout"] += 1
                stats.finding("timeout", f"no answer within {CASE_TIMEOUT} s", case)
                reply = None
            except Exception as exc:  # a client-side exception: something came back unusable
                stats.codes["client error"] += 1
                stats.finding("client error", f"{type(exc).__name__}: {exc}"[:500], case)
                reply = None
            if isinstance(reply, Silence):  # judged as the answer the guard suppressed
                stats.codes[code_text(reply.code) + " silent"] += 1
                if not case.non:
                    stats.finding("no answer", f"the answer ({code_text(reply.code)}) to CON suppressed", case)
                reply = Reply(reply.code, b"", None, False)
            elif reply is not None:
                stats.codes[code_text(reply.code)] += 1
            if reply is not None:
                if not acceptable(reply.code):
                    stats.finding("bad code", f"{code_text(reply.code)} {reply.payload[:120]!r}", case)
                else:
                    wrong = endpoint.expect(case, reply)
                    if wrong:
                        stats.finding("unexpected", f"{wrong}: {code_text(reply.code)} {reply.payload[:80]!r}", case)
            logs(case)
            if stats.cases % check_every == 0:
                check(case)
                logs(case)
            if progress is not None and stats.cases % 500 == 0:
                progress(stats)

        one()
        check(None)
        logs(None)
    stats.seconds = time.monotonic() - started
    return stats


def run_endpoint(directory: Path, name: str, **kwargs: Any) -> Stats:
    """A fresh deployment for one endpoint group, fuzzed, stopped."""
    harness = Harness(directory)
    harness.start()
    try:
        return fuzz(harness, ENDPOINTS[name], **kwargs)
    finally:
        harness.stop()
