"""Fuzzing every CoAP endpoint over real loopback sockets (short mode; ``scripts/fuzz`` is
the long one, same strategies: ``fuzz_support``).

Per endpoint group a fresh AS + RS pair runs in-process on ::1 and takes a few hundred
hypothesis-generated cases (fixed seed: deterministic in CI): arbitrary bytes and CBOR, and
mutations of valid messages (claims, token bytes, nonces, ids, maps, bytes). Every answer
must be a CoAP response with a 2.xx or 4.xx code (5.xx, a timeout or a client-side error is
a finding); every 25 cases the server must still serve a legitimate request (a protected
GET or token request; every fourth check the whole A–F flow); no log record at WARNING+
may carry a traceback.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fuzz_support import ENDPOINTS, run_endpoint, watching_logs

# aiocoap's DTLS client warns when tinydtls calls back into a connection already collected.
pytestmark = pytest.mark.filterwarnings("ignore:DTLS module did not shut down:UserWarning")

SEED = 20240801
CASES = {  # per endpoint group; the whole file stays well under 40 s
    "token": 500,
    "token-plain": 300,
    "authz-info": 600,
    "authz-info-dtls": 600,
    "resource": 500,
    "resource-dtls": 400,
}


def test_every_endpoint_group_is_covered() -> None:
    assert set(CASES) == set(ENDPOINTS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fuzz_endpoint(name: str, tmp_path: Path) -> None:
    stats = run_endpoint(tmp_path / "deployment", name, cases=CASES[name], seed=SEED, check_every=25,
                         time_budget=60.0)
    report = json.dumps(stats.as_dict(), indent=1)
    assert stats.cases == CASES[name], report
    assert stats.findings_total == 0, report
    assert stats.health_checks >= CASES[name] // 25, report
    assert all(code[0] in "24" for code in stats.codes), report


def test_log_watch_sees_tracebacks() -> None:
    """The traceback check itself works (records from any logger, exc_info or text)."""
    with watching_logs() as watch:
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("ace.somewhere").warning("failed", exc_info=True)
        logging.getLogger("aiocoap").error("Traceback (most recent call last): ...")
        logging.getLogger("ace").warning("refused: no traceback here")
        logging.getLogger("ace").info("below WARNING: not looked at")
    assert [r.name for r in watch.take()] == ["ace.somewhere", "aiocoap"]


# -- FUZZ-1, found by the long mode: a Block1 gap is a 5.00 with a traceback ------------------

def _block1_gap(name: str, tmp_path: Path) -> list[str]:
    """Two unprotected POSTs with Block1: block 0 (more), then block 5 (a gap); returns the codes
    and the tracebacks logged."""
    import asyncio

    import aiocoap
    from aiocoap.optiontypes import BlockOption
    from fuzz_support import Harness

    harness = Harness(tmp_path / "deployment")
    flow = harness.start()
    uri = {"token": flow.d.as_uri, "authz-info": flow.authz_info_uri, "resource": flow.rs_uri + "/temp"}[name]

    async def post_blocks() -> list[str]:
        ctx = await flow.plain()
        codes = []
        for num in (0, 5):
            msg = aiocoap.Message(code=aiocoap.POST, uri=uri, payload=b"\xa0" * 16)
            msg.opt.block1 = BlockOption.BlockwiseTuple(num, True, 0)
            answer = await asyncio.wait_for(ctx.request(msg, handle_blockwise=False).response, 5)
            codes.append(f"{int(answer.code) >> 5}.{int(answer.code) & 31:02d}")
        return codes

    try:
        with watching_logs() as watch:
            codes = harness.call(post_blocks, 10.0)
        return codes + [f"traceback: {r.getMessage()}" for r in watch.take()]
    finally:
        harness.stop()


@pytest.mark.parametrize("name", ["token", "authz-info", "resource"])
def test_block1_gap_is_4_08_without_traceback(name: str, tmp_path: Path) -> None:
    assert _block1_gap(name, tmp_path) == ["2.31", "4.08"]
