"""The claims of an ACE access token: CWT (RFC 8392 §3) plus RFC 9200 §5.10 additions.

``AccessTokenClaims`` is a frozen dataclass of iss, sub, aud, exp, nbf, iat, cti, cnf
(RFC 8747), scope, ace_profile, cnonce and exi (RFC 9200 §5.10.3), edhoc_info (EDHOC profile
§3.3.1) and token_series_id (workflow-and-params §3.6). Unknown claims are kept
in ``extra`` and re-encoded unchanged (RFC 8392 §7.2: claims not understood are ignored).
``aud`` may be one string or, as some peers send, an array of strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ace.cbor import codec
from ace.cbor.codec import MapReader
from ace.cbor.labels import Claim
from ace.errors import DecodeError
from ace.tokens.cnf import Cnf, cnf_from_map, cnf_to_map, with_raw
from ace.tokens.edhoc_info import EdhocInfo

NumericDate = int | float


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessTokenClaims:
    iss: str | None = None
    sub: str | None = None
    aud: str | tuple[str, ...] | None = None
    exp: NumericDate | None = None
    nbf: NumericDate | None = None
    iat: NumericDate | None = None
    cti: bytes | None = None
    cnf: Cnf | None = field(default=None, repr=False)
    scope: str | bytes | None = None
    ace_profile: int | None = None
    cnonce: bytes | None = None
    exi: int | None = None
    edhoc_info: EdhocInfo | None = None
    token_series_id: bytes | None = None
    extra: tuple[tuple[Any, Any], ...] = ()

    @property
    def audiences(self) -> tuple[str, ...]:
        if self.aud is None:
            return ()
        return (self.aud,) if isinstance(self.aud, str) else self.aud

    def to_map(self) -> dict[Any, Any]:
        m: dict[Any, Any] = {}
        claims: tuple[tuple[Claim, Any], ...] = (
            (Claim.ISS, self.iss), (Claim.SUB, self.sub),
            (Claim.AUD, list(self.aud) if isinstance(self.aud, tuple) else self.aud),
            (Claim.EXP, self.exp), (Claim.NBF, self.nbf), (Claim.IAT, self.iat), (Claim.CTI, self.cti),
            (Claim.CNF, cnf_to_map(self.cnf) if self.cnf is not None else None),
            (Claim.SCOPE, self.scope), (Claim.ACE_PROFILE, self.ace_profile),
            (Claim.CNONCE, self.cnonce), (Claim.EXI, self.exi),
            (Claim.EDHOC_INFO, self.edhoc_info.to_map() if self.edhoc_info is not None else None),
            (Claim.TOKEN_SERIES_ID, self.token_series_id))
        for label, value in claims:
            if value is not None:
                m[int(label)] = value
        m.update(self.extra)
        return m

    def encode(self) -> bytes:
        return codec.dumps(self.to_map())

    @classmethod
    def from_map(cls, value: object, data: bytes | None = None) -> AccessTokenClaims:
        """``data``: the encoded claims, whose cnf bytes a kccs or COSE_Key cnf keeps (``decode``)."""
        r = MapReader(value, "CWT claims", Claim)
        cnf = r.map_(Claim.CNF)
        edhoc_info = r.map_(Claim.EDHOC_INFO)
        return cls(
            iss=r.text(Claim.ISS),
            sub=r.text(Claim.SUB),
            aud=_aud(r.raw(Claim.AUD)),
            exp=_date(r, Claim.EXP),
            nbf=_date(r, Claim.NBF),
            iat=_date(r, Claim.IAT),
            cti=r.bytes_(Claim.CTI),
            cnf=_cnf(cnf, data),
            scope=r.text_or_bytes(Claim.SCOPE),
            ace_profile=r.uint(Claim.ACE_PROFILE),
            cnonce=r.bytes_(Claim.CNONCE),
            exi=r.uint(Claim.EXI),
            edhoc_info=EdhocInfo.from_map(edhoc_info, "edhoc_info claim") if edhoc_info is not None else None,
            token_series_id=r.bytes_(Claim.TOKEN_SERIES_ID),
            extra=codec.freeze_extra(r.extra()),
        )

    @classmethod
    def decode(cls, data: bytes) -> AccessTokenClaims:
        """From the encoded claims; a kccs or COSE_Key cnf keeps the bytes it arrived as (EDHOC
        uses them as CRED_I)."""
        return cls.from_map(codec.loads(data, what="CWT claims"), data)


def _cnf(value: Any, data: bytes | None) -> Cnf | None:
    if value is None:
        return None
    cnf = cnf_from_map(value)
    return cnf if data is None else with_raw(cnf, data, (int(Claim.CNF),))


def _aud(value: object) -> str | tuple[str, ...] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(a, str) for a in value):
        return tuple(value)
    raise DecodeError("CWT claims: aud(3) must be a text string or an array of them")


def _date(r: MapReader, label: Claim) -> NumericDate | None:
    value = r.raw(label)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise DecodeError(f"CWT claims: {label.name.lower()}({int(label)}) must be a NumericDate")
    return value
