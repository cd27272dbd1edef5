"""Record <-> row mapping of the SQLite AS store.

The SQLite store keeps one column per record field; the few composite fields are encoded here:
``profiles`` as a CBOR array, an RS ``token_key`` and ``auth_key`` as their COSE_Key CBOR (RFC
9052 §7; ``auth_key``, sent to clients as rs_cnf, must be public: refused on write, and read
back as a damaged file if it is not), an ``OscoreContextParams`` (RFC 8613 §3.1) as seven nullable
columns, a client's ``DtlsPsk`` (RFC 4279) as two (``psk_identity``, ``psk``: both NULL or both
set; SQLite's ``ALTER TABLE`` that added them cannot add a CHECK over two columns, so
``psk_from_columns`` refuses a row with only one, and the store's triggers refuse to write
one). Scopes stay ``str`` or ``bytes`` as given (text scope vs AIF, RFC 9237). Values read back
that do not have the stored type mean a damaged file and raise ``ConfigError`` naming the
column, never its value. What both stores accept on write is checked in ``checks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ace.cbor import codec
from ace.errors import ConfigError, DecodeError
from ace.store.base import (
    ClientRecord,
    DtlsPsk,
    Grant,
    IssuedToken,
    ReferenceToken,
    RsRecord,
    TokenFormat,
)
from ace.store.checks import check_encryption_key
from ace.tokens.keys import CoseKey
from ace.tokens.oscore_params import OscoreContextParams

T = TypeVar("T")
Row = Sequence[object]
OscoreColumns = tuple[bytes | None, bytes | None, bytes | None, bytes | None, bytes | None, int | None, str | None]
OSCORE_COLUMNS = ("osc_ms", "osc_sender_id", "osc_recipient_id", "osc_salt", "osc_id_context", "osc_alg", "osc_hkdf")


def _typed(value: object, kind: type[T], column: str) -> T:
    if type(value) is not kind:
        raise ConfigError(f"store damaged: column {column} holds {type(value).__name__}, not {kind.__name__}")
    return value


def text(value: object, column: str) -> str:
    return _typed(value, str, column)


def blob(value: object, column: str) -> bytes:
    return _typed(value, bytes, column)


def integer(value: object, column: str) -> int:
    return _typed(value, int, column)


def opt_blob(value: object, column: str) -> bytes | None:
    return None if value is None else _typed(value, bytes, column)


def opt_integer(value: object, column: str) -> int | None:
    return None if value is None else _typed(value, int, column)


def scope_value(value: object, column: str = "scope") -> str | bytes:
    if type(value) is str or type(value) is bytes:
        return value
    raise ConfigError(f"store damaged: column {column} holds {type(value).__name__}, not text or bytes")


# --- composite columns ----------------------------------------------------------------


def encode_profiles(profiles: tuple[int, ...]) -> bytes:
    return codec.dumps(list(profiles))


def decode_profiles(value: object, column: str = "profiles") -> tuple[int, ...]:
    try:
        items = codec.loads(blob(value, column), what=column)
    except DecodeError as exc:
        raise ConfigError(f"store damaged: column {column} is not CBOR") from exc
    if not isinstance(items, list) or not all(type(p) is int for p in items):
        raise ConfigError(f"store damaged: column {column} is not an array of ints")
    return tuple(items)


def encode_key(key: CoseKey) -> bytes:
    return key.encode()


def decode_key(value: object, column: str = "token_key") -> CoseKey:
    try:
        return CoseKey.decode(blob(value, column), what=column)
    except DecodeError as exc:
        raise ConfigError(f"store damaged: column {column} is not a COSE_Key") from exc


def decode_public_key(value: object, column: str) -> CoseKey | None:
    """NULL or a public COSE_Key; a private or symmetric one means a damaged (or tampered) file."""
    if value is None:
        return None
    key = decode_key(value, column)
    if key.has_private:
        raise ConfigError(f"store damaged: column {column} holds a private key")
    return key


def oscore_columns(osc: OscoreContextParams | None) -> OscoreColumns:
    if osc is None:
        return (None, None, None, None, None, None, None)
    return (osc.master_secret, osc.sender_id, osc.recipient_id, osc.master_salt, osc.id_context, osc.alg, osc.hkdf)


def oscore_from_columns(cols: Row) -> OscoreContextParams | None:
    """The seven ``OSCORE_COLUMNS`` back into a secret (all NULL: no context)."""
    if cols[0] is None:
        return None
    return OscoreContextParams(
        master_secret=blob(cols[0], "osc_ms"),
        sender_id=blob(cols[1], "osc_sender_id"),
        recipient_id=blob(cols[2], "osc_recipient_id"),
        master_salt=blob(cols[3], "osc_salt"),
        id_context=opt_blob(cols[4], "osc_id_context"),
        alg=integer(cols[5], "osc_alg"),
        hkdf=text(cols[6], "osc_hkdf"),
    )


def psk_columns(psk: DtlsPsk | None) -> tuple[bytes | None, bytes | None]:
    return (None, None) if psk is None else (psk.identity, psk.key)


def psk_from_columns(identity: object, key: object) -> DtlsPsk | None:
    """``PSK_COLUMNS`` back into a key: both NULL is none, exactly one NULL a damaged row."""
    if identity is None and key is None:
        return None
    if identity is None or key is None:
        raise ConfigError("store damaged: columns psk_identity and psk must be both NULL or both set")
    return DtlsPsk(identity=blob(identity, "psk_identity"), key=blob(key, "psk"))


# --- whole records ----------------------------------------------------------------------

PSK_COLUMNS = ("psk_identity", "psk")
CLIENT_COLUMNS = ("client_id", "profiles", *OSCORE_COLUMNS, *PSK_COLUMNS)
FORMAT_COLUMNS = ("cose_tag", "cwt_tag", "include_sub", "time_unit", "exi", "exi_cti", "salt_len")  # schema 8
RS_COLUMNS = (
    "audience", "rs_id", "token_key", "token_kind", "token_alg", "profiles", "token_lifetime", *OSCORE_COLUMNS,
    "auth_key", *FORMAT_COLUMNS, "pop_key_encryption", "encryption_key",
    "edhoc_preset", "auth_cred", "edhoc_params", "upload_uri",  # schema 11
)
GRANT_COLUMNS = ("client_id", "audience", "scope", "is_default")
TOKEN_COLUMNS = ("cti", "client_id", "audience", "scope", "issued_at", "expires_at", "token_hash", "pop_kid",
                 "pop_thumbprint", "session_id")


def client_row(c: ClientRecord) -> tuple[object, ...]:
    return (c.client_id, encode_profiles(c.profiles), *oscore_columns(c.oscore), *psk_columns(c.psk))


def client_from_row(row: Row) -> ClientRecord:
    return ClientRecord(
        client_id=text(row[0], "client_id"), profiles=decode_profiles(row[1]), oscore=oscore_from_columns(row[2:9]),
        psk=psk_from_columns(row[9], row[10]),
    )


def rs_row(rs: RsRecord) -> tuple[object, ...]:
    return (
        rs.audience, rs.rs_id, encode_key(rs.token_key), rs.token_kind, rs.token_alg,
        encode_profiles(rs.profiles), rs.token_lifetime, *oscore_columns(rs.oscore),
        None if rs.auth_key is None else encode_key(rs.auth_key), *format_columns(rs.format),
        rs.pop_key_encryption, None if rs.encryption_key is None else encode_key(rs.encryption_key),
        rs.edhoc_preset, rs.auth_cred, rs.edhoc_params, rs.upload_uri,
    )


def format_columns(f: TokenFormat) -> tuple[object, ...]:
    return (int(f.cose_tag), int(f.cwt_tag), int(f.sub), f.time_unit, int(f.exi), f.exi_cti, f.salt_len)


def _flag(value: object, column: str) -> bool:
    if integer(value, column) not in (0, 1):
        raise ConfigError(f"store damaged: column {column} is not 0 or 1")
    return bool(value)


def format_from_columns(cols: Row) -> TokenFormat:
    """``FORMAT_COLUMNS`` back into a ``TokenFormat``; a value it refuses means a damaged file."""
    try:
        return TokenFormat(cose_tag=_flag(cols[0], "cose_tag"), cwt_tag=_flag(cols[1], "cwt_tag"),
                           sub=_flag(cols[2], "include_sub"), time_unit=text(cols[3], "time_unit"),
                           exi=_flag(cols[4], "exi"), exi_cti=text(cols[5], "exi_cti"),
                           salt_len=opt_integer(cols[6], "salt_len"))
    except ValueError as exc:
        raise ConfigError(f"store damaged: rs token format: {exc}") from None


def rs_from_row(row: Row) -> RsRecord:
    return RsRecord(
        audience=text(row[0], "audience"),
        rs_id=text(row[1], "rs_id"),
        token_key=decode_key(row[2]),
        token_kind=text(row[3], "token_kind"),
        token_alg=opt_integer(row[4], "token_alg"),
        profiles=decode_profiles(row[5]),
        token_lifetime=integer(row[6], "token_lifetime"),
        oscore=oscore_from_columns(row[7:14]),
        auth_key=decode_public_key(row[14], "auth_key"),
        format=format_from_columns(row[15:22]),
        pop_key_encryption=text(row[22], "pop_key_encryption"),
        encryption_key=encryption_key_from_columns(row[22], row[23]),
        edhoc_preset=text(row[24], "edhoc_preset"),
        auth_cred=opt_blob(row[25], "auth_cred"),
        edhoc_params=opt_blob(row[26], "edhoc_params"),
        upload_uri=None if row[27] is None else text(row[27], "upload_uri"),
    )


def encryption_key_from_columns(how: object, value: object) -> CoseKey | None:
    """``encryption_key`` (schema 10) as ``checks`` accepts it on write with ``pop_key_encryption``."""
    key = None if value is None else decode_key(value, "encryption_key")
    try:
        check_encryption_key(text(how, "pop_key_encryption"), key)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"store damaged: rs encryption_key: {exc}") from None
    return key


def grant_from_row(row: Row) -> Grant:
    return Grant(
        client_id=text(row[0], "client_id"), audience=text(row[1], "audience"),
        scope=scope_value(row[2]), default=bool(integer(row[3], "is_default")),
    )


def revocation_from_row(row: Row) -> tuple[int, bytes]:
    return (integer(row[0], "revoked_tokens.position"), blob(row[1], "revoked_tokens.token_hash"))


REFERENCE_COLUMNS = ("token_hash", "audience", "claims", "expires_at")


def reference_row(r: ReferenceToken) -> tuple[object, ...]:
    return (r.token_hash, r.audience, r.claims, r.expires_at)


def reference_from_row(row: Row) -> ReferenceToken:
    audience = text(row[1], "reference_tokens.audience")
    if not audience:
        raise ConfigError("store damaged: reference_tokens.audience is empty")
    return ReferenceToken(token_hash=blob(row[0], "reference_tokens.token_hash"), audience=audience,
                          claims=blob(row[2], "reference_tokens.claims"),
                          expires_at=opt_integer(row[3], "reference_tokens.expires_at"))


def token_row(t: IssuedToken) -> tuple[object, ...]:
    return (t.cti, t.client_id, t.audience, t.scope, t.issued_at, t.expires_at, t.token_hash, t.pop_kid,
            t.pop_thumbprint, t.session_id)


def token_from_row(row: Row) -> IssuedToken:
    return IssuedToken(
        cti=blob(row[0], "cti"),
        client_id=text(row[1], "client_id"),
        audience=text(row[2], "audience"),
        scope=None if row[3] is None else scope_value(row[3]),
        issued_at=integer(row[4], "issued_at"),
        expires_at=opt_integer(row[5], "expires_at"),
        token_hash=blob(row[6], "token_hash"),
        pop_kid=opt_blob(row[7], "pop_kid"),
        pop_thumbprint=opt_blob(row[8], "pop_thumbprint"),
        session_id=opt_blob(row[9], "session_id"),
    )
