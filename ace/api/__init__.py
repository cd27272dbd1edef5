"""The public Python API (re-exported by the package root ``ace``): ``ResourceServerApp`` serves your
CoAP resources behind ACE, ``Client`` calls them, the whole flow behind each call.

The top layer: built on the roles as ``ace rs`` and ``ace client`` build them (``ace.cli.roles``).
"""

from __future__ import annotations

from ace.api.client import Client, RequestFailed, Response
from ace.api.rs import Binding, Handler, ResourceServerApp

__all__ = ["Binding", "Client", "Handler", "RequestFailed", "ResourceServerApp", "Response"]
