"""EDHOC_Information (draft-ietf-ace-edhoc-oscore-profile-11 §3.4): the ``edhoc_info`` token
response parameter (47) and CWT claim (41), a map with integer keys (``EdhocInfoKey``).

Sets of integers (methods, cipher_suites, cred_types, id_cred_types, eads) are an int or an
array of ints on the wire; a one-element tuple is sent as the bare int. ``trust_anchors`` is kept
as its decoded CBOR value, unread. Unknown keys are kept in ``extra``. Decoding is strict about
types; only session_id (a byte string) is required, and EDHOC_Information is never empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ace.cbor import codec
from ace.cbor.codec import MapReader
from ace.cbor.labels import EdhocInfoKey
from ace.errors import DecodeError

MAX_SESSION_ID = 16  # bytes; ours are 8

_INT_SETS = ("methods", "cipher_suites", "cred_types", "id_cred_types", "eads")
_BOOLS = ("message_4", "comb_req", "initiator", "responder")


@dataclass(frozen=True, slots=True, kw_only=True)
class EdhocInfo:
    session_id: bytes
    methods: tuple[int, ...] | None = None
    cipher_suites: tuple[int, ...] | None = None
    message_4: bool | None = None
    comb_req: bool | None = None
    uri_path: str | None = None
    cred_types: tuple[int, ...] | None = None
    id_cred_types: tuple[int, ...] | None = None
    eads: tuple[int, ...] | None = None
    initiator: bool | None = None
    responder: bool | None = None
    trust_anchors: Any = None
    extra: tuple[tuple[Any, Any], ...] = ()

    def to_map(self) -> dict[int, Any]:
        m: dict[int, Any] = {}
        for key in EdhocInfoKey:
            value = getattr(self, key.name.lower())
            if value is None:
                continue
            if isinstance(value, tuple):
                value = value[0] if len(value) == 1 else list(value)
            m[int(key)] = value
        m.update(self.extra)
        return m

    def encode(self) -> bytes:
        return codec.dumps(self.to_map())

    @classmethod
    def from_map(cls, value: object, what: str = "edhoc_info") -> EdhocInfo:
        r = MapReader(value, what, EdhocInfoKey)
        session_id = r.bytes_(EdhocInfoKey.SESSION_ID, required=True)
        if not session_id or len(session_id) > MAX_SESSION_ID:
            raise DecodeError(f"{what}: session_id of 1 to {MAX_SESSION_ID} bytes")
        fields: dict[str, Any] = {name: _int_set(r.raw(EdhocInfoKey[name.upper()]), what, name)
                                  for name in _INT_SETS}
        fields.update({name: r.bool_(EdhocInfoKey[name.upper()]) for name in _BOOLS})
        return cls(session_id=session_id, uri_path=r.text(EdhocInfoKey.URI_PATH),
                   trust_anchors=r.raw(EdhocInfoKey.TRUST_ANCHORS),
                   extra=codec.freeze_extra(r.extra()), **fields)

    @classmethod
    def decode(cls, data: bytes) -> EdhocInfo:
        return cls.from_map(codec.loads(data, what="edhoc_info"))


def _int_set(value: object, what: str, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise DecodeError(f"{what}: {name} must be an integer or a non-empty array of integers")
    return tuple(items)
