"""The RS's CoAP side never leaves a stale key under a label (issue 13 review): a channel still
installed for a binding the core let go without reporting it (a POST it refused after making
room) is replaced when a new binding takes the label, and a late report of the old binding does
not remove the new binding's channel."""

from __future__ import annotations

import time
from dataclasses import replace

from ace.cbor.scope import TextScope
from ace.coap import contexts
from ace.coap.rs_server import RsServer
from ace.rs.server import ResourceServer, RsConfig
from ace.rs.store import Binding
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cwt import KeyRing
from ace.tokens.oscore_params import OscoreContextParams

LABEL = b"\x07"


def binding(secret: bytes) -> Binding:
    params = OscoreContextParams(master_secret=secret, sender_id=b"\x01", recipient_id=LABEL)
    return Binding(label=LABEL, token_hash=secret, claims=AccessTokenClaims(), scope=TextScope(("r",)),
                   expires_at=None, nonce1=b"", response=b"", context=params, client_key=secret, pop_id=secret)


def key_under_label(server: RsServer) -> bytes:
    ctx = server.index.exact(LABEL, None)
    assert ctx is not None
    return bytes(ctx.recipient_key)


def test_a_new_binding_replaces_a_stale_channel_under_its_label() -> None:
    core = ResourceServer(RsConfig(audience="rs1", as_uri="coap://as"), KeyRing([]), clock=time.time)
    server = RsServer(core, bind=("::1", 0), resources={})
    old, new = binding(bytes(16)), binding(bytes(range(16)))
    server.install(old, [])
    server.install(new, [])  # the core never reported ``old`` (dropped on a refused POST)
    expected = contexts.from_params(new.context, claims=[LABEL])  # type: ignore[arg-type]
    assert key_under_label(server) == bytes(expected.recipient_key)  # old code: the old key stayed
    server.uninstall(old)  # reported late: the new binding's channel stays
    assert key_under_label(server) == bytes(expected.recipient_key)
    ends = time.time() + 3600
    server.install(replace(new, expires_at=ends), [])  # new rights, same channel: only its end moves
    assert server.index.exact(LABEL, None).expires_at == ends  # type: ignore[union-attr]
    assert key_under_label(server) == bytes(expected.recipient_key)
    server.uninstall(new)
    assert server.index.exact(LABEL, None) is None
