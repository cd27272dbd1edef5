"""exi end to end (RFC 9200 §5.10.3): an AS configured for an RS without a clock issues tokens
with exi and a cti of the RS's id and a per-RS sequence number; the RS counts exi from reception
and keeps the highest expired sequence number across restarts."""

from __future__ import annotations

from pathlib import Path

from flow_fixtures import bounded

from ace.cli import roles
from ace.cli.config import load_as, load_client, load_rs
from ace.cli.demo_cmd import free_port
from ace.cli.init_cmd import init_deployment
from ace.client.flow import Done, ResourceRequest


async def test_exi_tokens_flow(tmp_path: Path) -> None:
    d = init_deployment(tmp_path / "dep", as_port=free_port(), rs_port=free_port())
    d.as_config.write_text(d.as_config.read_text().replace("exi_audiences = []", 'exi_audiences = ["rs1"]'))
    as_server, rs_server = roles.build_as(load_as(d.as_config)), roles.build_rs(load_rs(d.rs_config))
    await bounded(as_server.start())
    await bounded(rs_server.start())
    try:
        for n in (1, 2):  # two clients one after the other: sequence numbers 1 and 2
            client = roles.build_client(load_client(d.client_config))
            await bounded(client.start())
            try:
                got = await bounded(client.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp")), 20)
                assert isinstance(got, Done) and got.response.code == (2, 5)
            finally:
                await bounded(client.stop())
            claims = next(b.claims for b in rs_server.core.bindings if b.claims.cti and
                          b.claims.cti.endswith(n.to_bytes(4, "big")))
            assert claims.exp is None and claims.exi == 3600 and claims.cti == b"rs1" + n.to_bytes(4, "big")
    finally:
        await bounded(rs_server.stop())
        await bounded(as_server.stop())
        as_server.store.close()
