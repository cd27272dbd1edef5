"""Building the three roles from their config files (shared by the CLI and the demo).

Each builder imports what its role uses, when called: building an RS loads no AS or client code,
and no TRL or introspection link unless the config asks for one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ace.cli.config import RsFileConfig, load_oscore_secret, load_psk
from ace.cli.keyfiles import load_key
from ace.errors import ConfigError
from ace.store.seqno import FileSequenceStore

if TYPE_CHECKING:
    from ace.authz_server.token import TokenPolicy
    from ace.cli.config_as import AsFileConfig
    from ace.cli.config_client import ClientFileConfig
    from ace.coap.as_server import AsServer
    from ace.coap.client import ClientRunner, Exchange
    from ace.coap.rs_server import RsServer
    from ace.tokens.cwt import KeyRing


def token_policy(cfg: AsFileConfig) -> TokenPolicy:
    from ace.authz_server.token import TokenPolicy

    return TokenPolicy(issuer=cfg.issuer, include_iat=cfg.include_iat, salt_len=cfg.salt_len,
                       exi_audiences=frozenset(cfg.exi_audiences),
                       reference_audiences=frozenset(cfg.reference_audiences), max_live_tokens=cfg.max_live_tokens)


def build_as(cfg: AsFileConfig) -> AsServer:
    from ace.coap.as_server import AsServer
    from ace.replies import ErrorForm
    from ace.store.sqlite import SqliteAsStore

    store = SqliteAsStore(cfg.store)
    return AsServer(store, bind=(cfg.bind, cfg.port), policy=token_policy(cfg), dtls=cfg.dtls,
                    dtls_port=cfg.dtls_port, error_form=ErrorForm.named(cfg.error_format, cfg.workflow_codes))


def token_keys(cfg: RsFileConfig) -> KeyRing:
    """The keys the RS verifies tokens with (read again on reload)."""
    from ace.tokens.keyring import rs_keyring

    return rs_keyring(load_key(p) for p in cfg.token_keys)


def build_rs(cfg: RsFileConfig, *, clock: Callable[[], float] = time.time,
             demo: bool = True) -> RsServer:
    """The RS of ``cfg``: its rs.toml resources, else (``demo``) the demo's /temp and /led."""
    from ace.coap.devices import demo_resources
    from ace.coap.resources import table_resources
    from ace.coap.rs_server import RsServer
    from ace.replies import ErrorForm
    from ace.rs.server import ResourceServer, RsConfig

    keys = token_keys(cfg)
    core = ResourceServer(
        RsConfig(audience=cfg.audience, as_uri=cfg.as_uri, scope_meaning=cfg.scopes, hint_scope=cfg.hint_scope,
                 max_tokens=cfg.max_tokens, max_bytes=cfg.max_bytes, profiles=cfg.profiles,
                 cnonce=cfg.cnonce, rs_id=cfg.rs_id, exi_unit=cfg.exi_unit, introspect=cfg.introspect,
                 reference_tokens=cfg.reference_tokens and cfg.as_context is not None and cfg.state is not None,
                 token_tags=cfg.token_tags, reference_len=cfg.reference_len or None, edhoc_preset=cfg.edhoc_preset),
        keys, clock=clock, state=FileSequenceStore(cfg.state) if cfg.state is not None else None)
    edhoc_key = load_key(cfg.edhoc_key) if cfg.edhoc_key is not None else None
    resources = (table_resources(cfg.resources, cfg.path.parent) if cfg.resources is not None
                 else demo_resources() if demo else {})
    server = RsServer(core, bind=(cfg.bind, cfg.port), resources=resources, edhoc_key=edhoc_key,
                      edhoc_message_4=cfg.edhoc_message_4,
                      error_form=ErrorForm.named(cfg.error_format, cfg.workflow_codes))
    if cfg.observe_trl:  # RFC 9770: over our OSCORE context with the AS, its numbers kept with our state
        if cfg.as_context is None or core.fresh.state is None:
            raise ConfigError(f"{cfg.path}: observe_trl needs as_context and state")
        from ace.coap.trl_client import TrlLink, trl_uri

        server.trl = TrlLink(trl_uri(cfg.as_uri, cfg.trl_path), load_oscore_secret(cfg.as_context),
                             core.fresh.state, server.revoked)
    if cfg.as_context is not None and core.fresh.state is not None:  # RFC 9200 §5.9: reference tokens
        from ace.coap.introspect_client import IntrospectionClient, uri_at_as

        server.introspector = IntrospectionClient(uri_at_as(cfg.as_uri, cfg.introspect_path),
                                                  load_oscore_secret(cfg.as_context), core.fresh.state)
    elif cfg.introspect:
        raise ConfigError(f"{cfg.path}: introspect needs as_context and state")
    return server


def build_client(cfg: ClientFileConfig, *, observer: Callable[[Exchange], None] | None = None,
                 scope: str | None = None, profile: int | None = None) -> ClientRunner:
    from ace.client.flow import ClientConfig, ClientFlow
    from ace.coap.client import ClientRunner
    from ace.coap.trl_client import TrlObserver, trl_uri
    from ace.store.pins import FilePins, pins_path

    flow = ClientFlow(ClientConfig(client_id=cfg.client_id, as_uri=cfg.as_uri, audience=cfg.audience,
                                   audiences=cfg.audiences, trust_first_hints=cfg.trust_first_hints,
                                   scope=scope or cfg.scope, profile=profile or cfg.profile,
                                   edhoc_key=load_key(cfg.edhoc_key) if cfg.edhoc_key is not None else None,
                                   edhoc_preset=cfg.edhoc_preset, edhoc_reverse=cfg.edhoc_reverse,
                                   edhoc_rs_cred_by_value=cfg.edhoc_rs_cred_by_value,
                                   token_upload=cfg.token_upload),
                      clock=time.time, pins=FilePins(pins_path(cfg.state)))  # RFC 9200 §6.9: audiences pinned
    runner = ClientRunner(flow, as_secret=load_oscore_secret(cfg.as_context), as_uri=cfg.as_uri,
                          as_psk=load_psk(cfg.as_psk) if cfg.as_psk is not None else None,
                          seqno_store=FileSequenceStore(cfg.state), observer=observer)
    if cfg.observe_trl:  # RFC 9770: over the client's secure association with the AS
        runner.trl = TrlObserver(trl_uri(cfg.as_uri, cfg.trl_path), runner.revoked)
    return runner
