"""How many IEEE 802.15.4 frames one CoAP message needs after 6LoWPAN (RFC 4944, RFC 6282).

A pure estimate for the demo and the bench, under stated assumptions (``ASSUMPTIONS``):

* 127-byte PSDU; MAC header 9 bytes (short addresses, PAN ID compression) + 2-byte FCS, no
  layer-2 security: 116 bytes of MAC payload per frame;
* IPHC 2 bytes with link-local addresses derived from the short MAC addresses (+0), traffic
  class and flow label elided, hop limit 255 compressed (+0); UDP NHC 1 byte + both ports inline
  (4 bytes: 5683 is not in 0xF0Bx) + checksum inline (2 bytes: RFC 6282 §4.3.2 elides it only
  when an upper layer authorizes it): 9 bytes of compressed headers standing for 48 (IPv6 40 + UDP 8);
* fragmentation (RFC 4944 §5.3): FRAG1 header 4 bytes, FRAGN 5 bytes; every fragment but the
  last carries a multiple of 8 bytes of the uncompressed datagram (the FRAG1's compressed headers
  count as their 48 uncompressed bytes).

``extra`` adds bytes between UDP and CoAP (a DTLS 1.2 record around the message: ``DTLS_RECORD``).
"""

from __future__ import annotations

from dataclasses import dataclass

DTLS_RECORD = 13 + 8 + 8  # DTLS 1.2 record header, explicit nonce, AES-CCM-8 tag (RFC 6347, RFC 6655)


@dataclass(frozen=True, slots=True)
class Link:
    psdu: int = 127
    mac_header: int = 9
    fcs: int = 2
    compressed_headers: int = 9  # IPHC 2 + UDP NHC 1 + ports 4 + checksum 2
    uncompressed_headers: int = 48  # IPv6 40 + UDP 8
    frag1: int = 4
    fragn: int = 5

    @property
    def mac_payload(self) -> int:
        return self.psdu - self.mac_header - self.fcs


LINK = Link()
ASSUMPTIONS = ("127-byte PSDU, MAC header 9 B (short addresses, PAN ID compressed) + FCS 2 B, no L2 security; "
               "6LoWPAN IPHC + UDP NHC 9 B (link-local from MAC, ports inline, checksum inline); "
               "FRAG1 4 B / FRAGN 5 B, fragments in multiples of 8 (RFC 4944, RFC 6282)")


def frames_802154(coap_bytes: int, extra: int = 0, link: Link = LINK) -> int:
    """802.15.4 frames for one CoAP message of ``coap_bytes`` (whole message) plus ``extra`` UDP payload."""
    udp_payload = coap_bytes + extra
    if udp_payload < 0:
        raise ValueError("a message has no negative size")
    if link.compressed_headers + udp_payload <= link.mac_payload:
        return 1
    # FRAG1: the compressed headers and the first chunk; header + chunk (uncompressed) a multiple of 8
    room = link.mac_payload - link.frag1 - link.compressed_headers
    first = (link.uncompressed_headers + room) // 8 * 8 - link.uncompressed_headers
    per_fragn = (link.mac_payload - link.fragn) // 8 * 8
    rest = udp_payload - first
    return 1 + -(-rest // per_fragn)


__all__ = ["ASSUMPTIONS", "DTLS_RECORD", "LINK", "Link", "frames_802154"]
