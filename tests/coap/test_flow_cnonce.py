"""cnonce end to end (RFC 9200 §5.3.1): the RS's hints carry one, the client passes it to the AS,
the AS copies it into the token, the RS takes it once."""

from __future__ import annotations

from pathlib import Path

from flow_fixtures import bounded

from ace.cli import roles
from ace.cli.config import load_as, load_client, load_rs
from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import init_deployment
from ace.client.flow import Done, ResourceRequest
from ace.coap.client import Exchange


async def test_cnonce_flow(tmp_path: Path) -> None:
    d = init_deployment(tmp_path / "dep", as_port=free_port(), rs_port=free_port())
    d.rs_config.write_text(d.rs_config.read_text().replace("cnonce = false", "cnonce = true"))
    as_server, rs_server = roles.build_as(load_as(d.as_config)), roles.build_rs(load_rs(d.rs_config))
    exchanges: list[Exchange] = []
    client = roles.build_client(load_client(d.client_config), observer=exchanges.append)
    await bounded(as_server.start())
    await bounded(rs_server.start())
    await bounded(client.start())
    try:
        got = await bounded(client.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp")), 20)
        assert isinstance(got, Done) and got.response.code == (2, 5)
        assert rs_server.core.config.cnonce
        binding = next(iter(rs_server.core.bindings))
        assert binding.claims.cnonce is not None and len(binding.claims.cnonce) == 14  # stamp and tag
    finally:
        await bounded(client.stop())
        await bounded(rs_server.stop())
        await bounded(as_server.stop())
        as_server.store.close()
