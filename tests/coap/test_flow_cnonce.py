"""cnonce end to end (RFC 9200 §5.3.1): the RS's hints carry one, the client passes it to the AS,
the AS copies it into the token, the RS takes it once."""

from __future__ import annotations

import pytest
from deployment import Flow
from support import bounded

from ace.client.flow import Done, ResourceRequest


@pytest.mark.deployment(rs_changes={"cnonce": True})
async def test_cnonce_flow(flow: Flow) -> None:
    client = await flow.client()
    got = await bounded(client.request(ResourceRequest(method="GET", uri=flow.rs_uri + "/temp")), 20)
    assert isinstance(got, Done) and got.response.code == (2, 5)
    assert flow.rs_server.core.config.cnonce
    binding = next(iter(flow.rs_server.core.bindings))
    assert binding.claims.cnonce is not None and len(binding.claims.cnonce) == 14  # stamp and tag
