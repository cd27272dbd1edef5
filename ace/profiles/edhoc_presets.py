"""The EDHOC profile's code points and peer limits, by preset: the only place their numbers live.

Every number here is TBD at IANA. ``draft-11`` takes the placeholders of
draft-ietf-ace-edhoc-oscore-profile-11 (App. C; EAD examples §4.1, §4.13, §4.14) and of
draft-ietf-ace-workflow-and-params-08 (EAD Session ID, §9); ``ariel-os`` is what Ariel OS's
coapcore (lakers 0.8) accepts: token EAD label 20, a tagged COSE_Encrypt0 (alg 31) or
COSE_Sign1 (ES256) token of at most 256 bytes with iat and an AIF scope of at most 64 bytes, the
client's key as a COSE_Key cnf, suite 2, message_3 only in the combined request, one EAD item;
``aiocoap`` is aiocoap 0.4.17's ``numbers/eaditem.py`` (token 26, RCH 12, Session ID 5).
"""

from __future__ import annotations

from dataclasses import dataclass

from ace.cbor.labels import AceProfile, Alg, CnfMethod
from ace.errors import ConfigError

DEFAULT_PRESET = "draft-11"


@dataclass(frozen=True, slots=True, kw_only=True)
class EdhocCodePoints:
    """One peer dialect of the EDHOC profile.

    EAD labels are positive (the critical form is sent as the negative label, RFC 9528 §3.8).
    ``cnf_method``: the confirmation method of the token's cnf (kccs, or COSE_Key for ariel-os,
    whose RS builds CRED_I as ``{8: {1: COSE_Key}}`` from it). Token limits, checked by the RS
    (``ace.rs.edhoc``) and honoured by the AS: ``token_tagged`` (COSE tag required),
    ``token_algs`` (None: any), ``max_token`` (bytes), ``max_aif`` (bytes of a bstr scope; None:
    no limit), ``require_iat``. ``combined_request_only``: message_3 only in the EDHOC+OSCORE
    request (RFC 9668); ``single_ead_item``: the token alone in its EAD field.
    """

    name: str
    ead_token: int
    ead_cred_by_value: int
    ead_rch: int | None
    ead_session_id: int | None
    cnf_method: CnfMethod = CnfMethod.KCCS
    profile: int = int(AceProfile.COAP_EDHOC_OSCORE)
    token_tagged: bool = False
    token_algs: frozenset[int] | None = None
    max_token: int | None = None
    max_aif: int | None = None
    require_iat: bool = False
    suites: tuple[int, ...] = (2,)
    combined_request_only: bool = False
    single_ead_item: bool = False


PRESETS: dict[str, EdhocCodePoints] = {
    "draft-11": EdhocCodePoints(name="draft-11", ead_token=24, ead_cred_by_value=15, ead_rch=1, ead_session_id=2),
    "ariel-os": EdhocCodePoints(
        name="ariel-os", ead_token=20, ead_cred_by_value=15, ead_rch=None, ead_session_id=None,
        cnf_method=CnfMethod.COSE_KEY, token_tagged=True,
        token_algs=frozenset({int(Alg.AES_CCM_16_128_256), int(Alg.ES256)}),
        max_token=256, max_aif=64, require_iat=True, suites=(2,),
        combined_request_only=True, single_ead_item=True,
    ),
    "aiocoap": EdhocCodePoints(name="aiocoap", ead_token=26, ead_cred_by_value=15, ead_rch=12, ead_session_id=5),
}


def preset(name: str) -> EdhocCodePoints:
    """The preset called ``name``; ConfigError naming the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown EDHOC preset {name!r}; choose one of {', '.join(sorted(PRESETS))}") from None
