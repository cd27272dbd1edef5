"""The token endpoint for RSs whose tokens anyone may read (sign1, mac0) and whose secret PoP key
is encrypted to them (``RsRecord.pop_key_encryption``, issue 16), sans I/O over a MemoryAsStore:
DTLS: cnf = Encrypted_COSE_Key (RFC 8747 §3.3) to the RS's public key (COSE_Encrypt, ECDH-ES) or a
shared key (COSE_Encrypt0); OSCORE: the signed token nested in an encryption to the RS (RFC 9203
§3.2). The client's response is as for an Encrypt0 token. Without an encryption the AS still
refuses (incompatible_ace_profiles) and logs nothing."""

from __future__ import annotations

import pytest
from support import counter_rng, fixed_clock

from ace.authz_server.token import TokenEndpoint
from ace.cbor.labels import AceProfile, Alg, Curve
from ace.errors import ErrorCode, IncompatibleProfiles, UnknownKeyError
from ace.messages import AccessTokenRequest, AccessTokenResponse
from ace.store.base import ClientRecord, Grant, RsRecord
from ace.store.memory import MemoryAsStore
from ace.tokens.claims import AccessTokenClaims
from ace.tokens.cnf import CoseKeyCnf, EncryptedCoseKeyCnf, OscoreCnf
from ace.tokens.crypto import Kind, generate
from ace.tokens.cwt import KeyRing, issue_token, open_envelope, verify_token
from ace.tokens.encrypt import Recipient
from ace.tokens.keys import CoseKey, symmetric_key

AS_SIGN = generate(Curve.P_256, kid=b"as", alg=int(Alg.ES256))
AS_ED = generate(Curve.ED25519, kid=b"as-ed", alg=int(Alg.EDDSA))
MAC_KEY = symmetric_key(bytes(range(32)), kid=b"mac")
RS_PAIR = generate(Curve.P_256, kid=b"rs-ecdh")
RS_X = generate(Curve.X25519, kid=b"rs-x")
SHARED = symmetric_key(bytes(range(16)), kid=b"rs-shared")
DTLS, OSCORE = int(AceProfile.COAP_DTLS), int(AceProfile.COAP_OSCORE)
NOW = 1_700_000_000


def endpoint_for(token_key: CoseKey, kind: str, how: str, enc: CoseKey | None) -> TokenEndpoint:
    store = MemoryAsStore()
    store.put_client(ClientRecord(client_id="c1", profiles=(2, 1)))
    store.put_rs(RsRecord(audience="rs1", rs_id="rs1", token_key=token_key, token_kind=kind, profiles=(2, 1),
                          pop_key_encryption=how, encryption_key=enc))
    store.add_grant(Grant(client_id="c1", audience="rs1", scope="r_temp"))
    return TokenEndpoint(store, clock=fixed_clock(), rng=counter_rng())


def ask(endpoint: TokenEndpoint, profile: int) -> AccessTokenResponse:
    payload = AccessTokenRequest(audience="rs1", scope="r_temp", ace_profile=profile).encode()
    result = endpoint.issue(payload, endpoint.store.get_client("c1"), None)
    return AccessTokenResponse.decode(result.response.encode())


CASES = [  # (id, token key, kind, how, the AS's encryption key, what the RS holds)
    ("sign1-es256-rs_public", AS_SIGN, "sign1", "rs_public", RS_PAIR.public(), [AS_SIGN.public(), RS_PAIR]),
    ("sign1-eddsa-x25519", AS_ED, "sign1", "rs_public", RS_X.public(), [AS_ED.public(), RS_X]),
    ("sign1-shared", AS_SIGN, "sign1", "shared", SHARED, [AS_SIGN.public(), SHARED]),
    ("mac0-shared", MAC_KEY, "mac0", "shared", SHARED, [MAC_KEY, SHARED]),
]


@pytest.mark.parametrize(("name", "key", "kind", "how", "enc", "rs_keys"), CASES, ids=[c[0] for c in CASES])
def test_dtls_psk_travels_as_encrypted_cose_key(name: str, key: CoseKey, kind: str, how: str, enc: CoseKey,
                                                rs_keys: list[CoseKey]) -> None:
    response = ask(endpoint_for(key, kind, how, enc), DTLS)
    assert isinstance(response.cnf, CoseKeyCnf) and response.cnf.key.is_symmetric  # the client's: unchanged
    token = response.access_token
    assert open_envelope(token).message.kind is not Kind.AEAD  # the token itself stays readable
    claims = verify_token(token, KeyRing(rs_keys), audience="rs1", clock=lambda: NOW)
    assert isinstance(claims.cnf, EncryptedCoseKeyCnf)
    assert claims.cnf.decrypt(KeyRing(rs_keys)) == response.cnf.key  # with its kid (the psk_identity)
    assert response.cnf.key.k is not None and response.cnf.key.k not in token
    with pytest.raises(UnknownKeyError):  # only the RS opens it
        claims.cnf.decrypt(KeyRing([AS_SIGN.public()]))


@pytest.mark.parametrize(("name", "key", "kind", "how", "enc", "rs_keys"), CASES, ids=[c[0] for c in CASES])
def test_oscore_material_travels_in_a_token_nested_in_an_encryption(
        name: str, key: CoseKey, kind: str, how: str, enc: CoseKey, rs_keys: list[CoseKey]) -> None:
    response = ask(endpoint_for(key, kind, how, enc), OSCORE)
    assert isinstance(response.cnf, OscoreCnf)
    token = response.access_token
    assert open_envelope(token).message.kind is Kind.AEAD  # RFC 9203 §3.2: readable by the RS only
    assert response.cnf.material.ms not in token
    claims = verify_token(token, KeyRing(rs_keys), audience="rs1", clock=lambda: NOW)
    assert claims.cnf == response.cnf


@pytest.mark.parametrize("profile", [DTLS, OSCORE], ids=["dtls", "oscore"])
def test_without_encryption_a_secret_is_still_refused(profile: int) -> None:
    endpoint = endpoint_for(AS_SIGN, "sign1", "none", None)
    with pytest.raises(IncompatibleProfiles) as info:
        ask(endpoint, profile)
    assert info.value.error_code == ErrorCode.INCOMPATIBLE_ACE_PROFILES and info.value.coap_code == (4, 0)
    assert endpoint.store.issued_tokens() == []


NESTED = [  # (id, token key, kind, how, encryption key, whether the AS reads the token)
    ("sign1-shared", AS_SIGN, "sign1", "shared", SHARED, True),
    ("mac0-shared", MAC_KEY, "mac0", "shared", SHARED, True),
    ("sign1-rs_public", AS_SIGN, "sign1", "rs_public", RS_PAIR.public(), False),
]


@pytest.mark.parametrize(("name", "key", "kind", "how", "enc", "readable"), NESTED, ids=[n[0] for n in NESTED])
def test_the_as_reads_its_nested_tokens_with_a_shared_key_only(name: str, key: CoseKey, kind: str, how: str,
                                                               enc: CoseKey, readable: bool) -> None:
    """Introspection and ``ace revoke --token`` verify a token with the RS's keys at the AS: a Sign1 or
    Mac0 nested in an Encrypt0 under the shared key opens; one encrypted to the RS's public key does not.
    Another encoding of it (a CWT tag added: another hash) is found as the logged token."""
    from ace.authz_server.identity import find_issued, verified_claims

    endpoint = endpoint_for(key, kind, how, enc)
    token = ask(endpoint, OSCORE).access_token
    rs = endpoint.store.get_rs("rs1")
    assert rs is not None
    claims = verified_claims(token, rs, clock=lambda: NOW)
    assert (claims is not None) is readable, how
    if claims is not None:
        assert isinstance(claims.cnf, OscoreCnf)
    [logged] = endpoint.store.issued_tokens()
    found = find_issued(endpoint.store, b"\xd8\x3d" + token, clock=lambda: NOW)
    assert found == (logged if readable else None)


def forged(kind: Kind, nest: bool) -> bytes:
    """A token for rs1 whose every layer is under the shared key: a Mac0 (the shared key as a MAC key)
    nested in an Encrypt0 under it, a bare Mac0 under it, or the claims directly in the Encrypt0."""
    claims = AccessTokenClaims(aud="rs1", cti=b"\x00", exp=NOW + 60)
    return issue_token(claims, SHARED, kind=kind, tagged=True, encrypt_to=Recipient(SHARED) if nest else None)


@pytest.mark.parametrize(("kind", "nest"), [(Kind.MAC, True), (Kind.MAC, False), (Kind.AEAD, False)],
                         ids=["mac0-in-encrypt0", "bare-mac0", "claims-in-encrypt0"])
def test_the_shared_key_opens_the_outer_encryption_only(kind: Kind, nest: bool) -> None:
    """One key, one use (RFC 9052 §7.1): the shared key is never tried as the token key (a MAC key),
    and the inner message must be the RS's kind under its token key."""
    from ace.authz_server.identity import verified_claims

    for token_key, token_kind in ((MAC_KEY, "mac0"), (AS_SIGN, "sign1")):
        endpoint = endpoint_for(token_key, token_kind, "shared", SHARED)
        rs = endpoint.store.get_rs("rs1")
        assert rs is not None
        assert verified_claims(forged(kind, nest), rs, clock=lambda: NOW) is None, token_kind
