"""Whole-message sizes and 802.15.4 frame counts in ``ace demo`` (issue 12), and the DTLS and
EDHOC handshakes as steps of their own. The frame estimate is checked against hand-worked cases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ace.cli.demo_cmd import render_text, run_demo
from ace.cli.frames import DTLS_RECORD, Link, frames_802154

# Hand-worked, default link: 127 - 9 (MAC) - 2 (FCS) = 116 B per frame; 6LoWPAN IPHC + UDP NHC = 9 B.
# Unfragmented: 116 - 9 = 107 B of CoAP message. FRAG1: 116 - 4 - 9 = 103 B of room; its uncompressed
# part 48 + chunk must be a multiple of 8: chunk 96 (48 + 96 = 144). FRAGN: 116 - 5 = 111 -> 104 B.
HAND_WORKED = [
    (0, 1), (11, 1), (107, 1),          # fits one frame
    (108, 2), (136, 2), (200, 2),       # 96 in FRAG1 + up to 104 in one FRAGN
    (201, 3), (269, 3), (304, 3),       # 96 + 104 + 104 = 304
    (305, 4),
]


@pytest.mark.parametrize(("message", "frames"), HAND_WORKED)
def test_frames_hand_worked(message: int, frames: int) -> None:
    assert frames_802154(message) == frames


def test_frames_dtls_record_counts() -> None:
    # 11 B CoAP in a 29 B DTLS record: 40 B UDP payload, one frame; 79 + 29 = 108 B: two
    assert DTLS_RECORD == 29
    assert frames_802154(11, DTLS_RECORD) == 1
    assert frames_802154(78, DTLS_RECORD) == 1
    assert frames_802154(79, DTLS_RECORD) == 2


def test_frames_other_link() -> None:
    # checksum elided and ports in 0xF0Bx (NHC 1 + ports 1): 2 + 1 + 1 = 4 B; one frame holds 112 B
    link = Link(compressed_headers=4)
    assert frames_802154(112, link=link) == 1
    assert frames_802154(113, link=link) == 2
    with pytest.raises(ValueError):
        frames_802154(-1)


def _demo(tmp_path: Path, profile: str) -> dict[str, Any]:
    return asyncio.run(asyncio.wait_for(run_demo(tmp_path, profile), 60))


def _check_sizes(r: dict[str, Any]) -> None:
    assert r["ok"]
    for x in r["exchanges"]:
        for part in (x["request"], x["response"]):
            n = part["message_bytes"]
            assert n is not None and n >= 4 + part["bytes"], x  # RFC 7252 §3: header + ... + payload
            dtls = x["uri"].startswith("coaps:")
            assert part["frames_802154"] == frames_802154(n, DTLS_RECORD if dtls else 0)


def test_demo_oscore_sizes(tmp_path: Path) -> None:
    r = _demo(tmp_path, "oscore")
    _check_sizes(r)
    steps = [x["what"] for x in r["exchanges"]]
    authz = r["exchanges"][steps.index("authz-info")]
    # unprotected: the whole message is the payload plus header, token, Uri-Path, Content-Format, 0xFF
    assert authz["request"]["message_bytes"] > authz["request"]["bytes"] + 4
    assert all(not x["handshake"] for x in r["exchanges"])
    text = render_text(r)
    assert "B message" in text and "frame" in text and "6LoWPAN" in text


def test_demo_edhoc_handshake_step(tmp_path: Path) -> None:
    r = _demo(tmp_path, "edhoc")
    _check_sizes(r)
    shakes = [h for x in r["exchanges"] for h in x["handshake"]]
    assert [h["step"] for h in shakes] == ["EDHOC"]
    names = [m["name"] for m in shakes[0]["messages"]]
    assert names == ["message_1", "message_2", "message_3 + OSCORE request (F)"]
    assert "EDHOC" in render_text(r).split("\nF ")[0]


def test_demo_dtls_handshake_step(tmp_path: Path) -> None:
    r = _demo(tmp_path, "dtls")
    _check_sizes(r)
    shakes = [h for x in r["exchanges"] for h in x["handshake"]]
    assert [h["step"] for h in shakes] == ["DTLS"]
    dirs = {m["dir"] for m in shakes[0]["messages"]}
    assert dirs == {"sent", "received"}  # both flights, measured on the wire
