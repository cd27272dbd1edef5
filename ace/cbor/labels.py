"""Every integer label ace puts on the wire, as IntEnums citing their IANA tables.

Bare protocol integers live only here. Sources: RFC 9200 §8 (OAuth Parameters CBOR
Mappings, Introspection, Error Codes, Grant Types, Token Types, ACE Profiles, CWT claims
scope/ace_profile/cnonce/exi), RFC 9201 §5 (req_cnf, rs_cnf), RFC 9203 §9 (nonce1/2,
recipient ids, OSCORE Security Context Parameters, cnf "osc"), RFC 8392 §9.1 (CWT Claims),
RFC 8747 §7.2 (CWT Confirmation Methods), RFC 9052/9053 (COSE headers, keys, algorithms),
RFC 7252 §12.3 and RFC 9770 (content formats).
"""

from __future__ import annotations

from enum import IntEnum


class ContentFormat(IntEnum):
    """CoAP Content-Formats registry (RFC 7252 §12.3)."""

    COSE_ENCRYPT0 = 16  # RFC 9052
    COSE_MAC0 = 17
    COSE_SIGN1 = 18
    ACE_CBOR = 19  # RFC 9200 §8.16
    CBOR = 60
    CWT = 61  # RFC 8392 §9.3
    COSE_KEY = 101
    COSE_KEY_SET = 102
    EDHOC_CBOR_SEQ = 64  # RFC 9528 §9.9 application/edhoc+cbor-seq
    CID_EDHOC_CBOR_SEQ = 65  # RFC 9528 §9.9 application/cid-edhoc+cbor-seq
    CONCISE_PROBLEM_DETAILS = 257  # RFC 9290 §6.3
    ACE_TRL_CBOR = 262  # RFC 9770
    AIF_CBOR = 290  # RFC 9237 §5.3 (application/aif+cbor, default Toid/Tperm)


UPDATED_RIGHTS_KEY = 57  # WF §3.7.1 updated_rights: no code point proposed; configurable (ours: next after 56)


class Param(IntEnum):
    """OAuth Parameters CBOR Mappings (RFC 9200 §8.10, RFC 9201 §5, RFC 9203 §9.2)."""

    ACCESS_TOKEN = 1
    EXPIRES_IN = 2
    REQ_CNF = 4  # RFC 9201
    AUDIENCE = 5
    CNF = 8  # RFC 9201
    SCOPE = 9
    CLIENT_ID = 24
    CLIENT_SECRET = 25
    RESPONSE_TYPE = 26
    REDIRECT_URI = 27
    STATE = 28
    CODE = 29
    ERROR = 30
    ERROR_DESCRIPTION = 31
    ERROR_URI = 32
    GRANT_TYPE = 33
    TOKEN_TYPE = 34
    USERNAME = 35
    PASSWORD = 36
    REFRESH_TOKEN = 37
    ACE_PROFILE = 38
    CNONCE = 39
    NONCE1 = 40  # RFC 9203
    RS_CNF = 41  # RFC 9201
    NONCE2 = 42  # RFC 9203
    ACE_CLIENT_RECIPIENTID = 43  # RFC 9203
    ACE_SERVER_RECIPIENTID = 44  # RFC 9203
    # draft-ietf-ace-edhoc-oscore-profile-11 App. C and draft-ietf-ace-workflow-and-params-08 App. B:
    # TBD at IANA, the drafts' own placeholders (presets: ace.profiles.edhoc_presets)
    EDHOC_INFO = 47
    TOKEN_UPLOAD = 49
    TOKEN_HASH = 50
    TO_RS = 51
    FROM_RS = 52
    TOKEN_SERIES_ID = 56


class IntrospectionParam(IntEnum):
    """OAuth Token Introspection Response CBOR Mappings (RFC 9200 §8.12) and request."""

    ISS = 1
    SUB = 2
    AUD = 3
    EXP = 4
    NBF = 5
    IAT = 6
    CTI = 7
    CNF = 8
    SCOPE = 9
    ACTIVE = 10
    TOKEN = 11
    CLIENT_ID = 24
    ERROR = 30
    ERROR_DESCRIPTION = 31
    ERROR_URI = 32
    TOKEN_TYPE_HINT = 33
    TOKEN_TYPE = 34
    USERNAME = 35
    ACE_PROFILE = 38
    CNONCE = 39
    EXI = 40
    RS_CNF = 41  # RFC 9201


class CreationHint(IntEnum):
    """AS Request Creation Hints (RFC 9200 §5.3, Figure 2)."""

    AS = 1
    KID = 2
    AUDIENCE = 5
    SCOPE = 9
    CNONCE = 39


class Claim(IntEnum):
    """CBOR Web Token Claims (RFC 8392 §9.1; RFC 9200 §8.13 adds scope, ace_profile, cnonce, exi)."""

    ISS = 1
    SUB = 2
    AUD = 3
    EXP = 4
    NBF = 5
    IAT = 6
    CTI = 7
    CNF = 8  # RFC 8747
    SCOPE = 9
    ACE_PROFILE = 38
    CNONCE = 39
    EXI = 40
    EDHOC_INFO = 41  # draft-ietf-ace-edhoc-oscore-profile-11 App. C (TBD at IANA)
    TOKEN_SERIES_ID = 42  # draft-ietf-ace-workflow-and-params-08 App. B (TBD at IANA)


class CnfMethod(IntEnum):
    """CWT Confirmation Methods (RFC 8747 §7.2; RFC 9203 §9.6 adds osc)."""

    COSE_KEY = 1
    ENCRYPTED_COSE_KEY = 2
    KID = 3
    OSC = 4
    KCCS = 11  # draft-ietf-ace-edhoc-oscore-profile-11 §7.10, App. C (TBD at IANA)


class ProblemDetail(IntEnum):
    """Concise problem details (RFC 9290 §2) and the custom key ace-error
    (draft-ietf-ace-workflow-and-params-08 §6, App. B: TBD at IANA, placeholder 2)."""

    TITLE = -1
    DETAIL = -2
    INSTANCE = -3
    RESPONSE_CODE = -4
    BASE_URI = -5
    BASE_LANG = -6
    BASE_RTL = -7
    ACE_ERROR = 2


class EdhocInfoKey(IntEnum):
    """EDHOC_Information parameters (draft-ietf-ace-edhoc-oscore-profile-11 §3.4, App. C)."""

    SESSION_ID = 0
    METHODS = 1
    CIPHER_SUITES = 2
    MESSAGE_4 = 3
    COMB_REQ = 4
    URI_PATH = 5
    CRED_TYPES = 6
    ID_CRED_TYPES = 7
    EADS = 8
    INITIATOR = 9
    RESPONDER = 10
    TRUST_ANCHORS = 11


class OscoreParam(IntEnum):
    """OSCORE Security Context Parameters (RFC 9203 §9.4, §3.2.1)."""

    ID = 0
    VERSION = 1
    MS = 2
    HKDF = 3
    ALG = 4
    SALT = 5
    CONTEXT_ID = 6


class TrlParam(IntEnum):
    """The TRL response map's keys (RFC 9770, IANA registry "ACE Token Revocation List Parameters")."""

    FULL_SET = 0
    DIFF_SET = 1
    CURSOR = 2
    MORE = 3


class GrantType(IntEnum):
    """OAuth Grant Type CBOR Mappings (RFC 9200 §8.5)."""

    PASSWORD = 0
    AUTHORIZATION_CODE = 1
    CLIENT_CREDENTIALS = 2
    REFRESH_TOKEN = 3


class TokenType(IntEnum):
    """OAuth Access Token Type CBOR Mappings (RFC 9200 §8.8)."""

    BEARER = 1
    POP = 2


class AceProfile(IntEnum):
    """ACE Profile registry (RFC 9200 §8.8; RFC 9202 §9, RFC 9203 §9.1)."""

    COAP_DTLS = 1
    COAP_OSCORE = 2
    # draft-ietf-ace-edhoc-oscore-profile: value TBD at IANA; 4 is the draft's own placeholder
    # (Appendix C CDDL) and what other implementations use until it is assigned
    COAP_EDHOC_OSCORE = 4


class HeaderParam(IntEnum):
    """COSE Header Parameters (RFC 9052 §3.1)."""

    ALG = 1
    CRIT = 2
    CONTENT_TYPE = 3
    KID = 4
    IV = 5
    PARTIAL_IV = 6
    EPHEMERAL_KEY = -1  # RFC 9053 §6.3.1
    STATIC_KEY = -2
    STATIC_KEY_ID = -3
    PARTY_U_NONCE = -22  # RFC 9053 §5.1


class KeyParam(IntEnum):
    """COSE Key Common Parameters (RFC 9052 §7.1)."""

    KTY = 1
    KID = 2
    ALG = 3
    KEY_OPS = 4
    BASE_IV = 5


class CurveKeyParam(IntEnum):
    """COSE Key Type Parameters of EC2 and OKP keys (RFC 9053 §7.1.1, §7.2)."""

    CRV = -1
    X = -2
    Y = -3  # EC2 only
    D = -4


class SymmetricKeyParam(IntEnum):
    """COSE Key Type Parameter of Symmetric keys (RFC 9053 §7.3)."""

    K = -1


class KeyType(IntEnum):
    """COSE Key Types (RFC 9053 §7)."""

    OKP = 1
    EC2 = 2
    SYMMETRIC = 4


class Curve(IntEnum):
    """COSE Elliptic Curves (RFC 9053 §7.1)."""

    P_256 = 1
    X25519 = 4
    ED25519 = 6


class Alg(IntEnum):
    """COSE Algorithms used by ace (RFC 9053)."""

    ES256 = -7
    EDDSA = -8
    DIRECT = -6
    DIRECT_HKDF_SHA_256 = -10
    ECDH_ES_HKDF_256 = -25  # RFC 9053 §6.3.1: ephemeral-static, direct key agreement
    ECDH_SS_HKDF_256 = -27  # RFC 9053 §6.3.1: static-static, direct key agreement
    A128GCM = 1
    A192GCM = 2
    A256GCM = 3
    HMAC_256_64 = 4
    HMAC_256_256 = 5
    HMAC_384_384 = 6
    HMAC_512_512 = 7
    AES_CCM_16_64_128 = 10
    AES_CCM_16_64_256 = 11
    AES_CCM_64_64_128 = 12
    AES_CCM_64_64_256 = 13
    AES_CCM_16_128_128 = 30
    AES_CCM_16_128_256 = 31
    AES_CCM_64_128_128 = 32
    AES_CCM_64_128_256 = 33


class CoseTag(IntEnum):
    """CBOR tags of COSE and CWT (RFC 9052 §2, RFC 8392 §6)."""

    ENCRYPT0 = 16
    MAC0 = 17
    SIGN1 = 18
    CWT = 61
    ENCRYPT = 96
    MAC = 97
    SIGN = 98
