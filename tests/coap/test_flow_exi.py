"""exi end to end (RFC 9200 §5.10.3): an AS configured for an RS without a clock issues tokens
with exi and a cti of the RS's id and a per-RS sequence number; the RS counts exi from reception
and keeps the highest expired sequence number across restarts."""

from __future__ import annotations

import pytest
from deployment import Flow

from ace.client.flow import Done


@pytest.mark.deployment(as_changes={"exi_audiences": ("rs1",)})
async def test_exi_tokens_flow(flow: Flow) -> None:
    for n in (1, 2):  # two clients one after the other: sequence numbers 1 and 2
        got = await flow.full_flow()  # a client of its own, stopped after its request
        assert isinstance(got, Done) and got.response.code == (2, 5)
        claims = next(b.claims for b in flow.rs_server.core.bindings if b.claims.cti and
                      b.claims.cti.endswith(n.to_bytes(4, "big")))
        assert claims.exp is None and claims.exi == 3600 and claims.cti == b"rs1" + n.to_bytes(4, "big")
