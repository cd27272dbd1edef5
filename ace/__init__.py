"""ACE-OAuth (RFC 9200) over CoAP: an authorization server, resource servers and clients with
CWT/COSE proof-of-possession tokens, for the OSCORE, DTLS and EDHOC profiles.

The public API, from this package root:

- ``ResourceServerApp``: your CoAP resources (async handlers or aiocoap resources) behind ACE;
- ``Client``: ``await client.get(uri)`` / ``put`` / ``post`` / ``observe``, the whole flow behind it;
- ``Response``, ``RequestFailed``, ``Binding``, ``Handler``: what those take and give.

They are loaded on first use (PEP 562): ``import ace`` alone loads neither aiocoap nor the
roles, so the command-line tools and the sans-I/O core start as lean as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ace.api import Binding, Client, Handler, RequestFailed, ResourceServerApp, Response

__all__ = ["Binding", "Client", "Handler", "RequestFailed", "ResourceServerApp", "Response"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = globals()[name] = getattr(importlib.import_module("ace.api"), name)  # once: then a plain global
        return value
    raise AttributeError(f"module 'ace' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
