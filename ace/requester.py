"""Who asks the AS: a client (its id) or an RS (``RsPeer``, its audience). Neutral types the AS's
cores and the CoAP layer share, so that an RS never loads the AS's code to name them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RsPeer:
    """The authenticated identity of an RS at the AS (its audience): the authenticated claim of
    the RS's OSCORE context with the AS, distinct from any client id."""

    audience: str


Requester = str | RsPeer  # a client id, or an RS
