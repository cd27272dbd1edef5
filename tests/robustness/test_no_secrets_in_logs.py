"""No key, secret or token reaches the logs, even at DEBUG (OSCORE and DTLS profiles).

For each profile a complete flow runs in-process on ::1 (an ``ace init`` deployment, the
roles built as ``ace demo`` builds them): GET /temp (token, /authz-info, protected GET),
PUT /led (refused), GET /temp again over the same channel. The root logger is at DEBUG with
every logger that exists set to DEBUG too (aiocoap's "coap", "coap-server", ... included), and a
handler keeps the fully formatted text of every
record (message, arguments, exception text). Afterwards that text is searched for every
secret of the run, hex (lower and upper case) and as the body of its Python ``repr``:

* the client's OSCORE master secret with the AS and the Sender/Recipient Keys and Common IV
  of both sides of that context, the client's DTLS PSK with the AS,
* the RS token key,
* the token (full bytes, hex) and its PoP key: OSCORE_Input_Material ms (OSCORE) or PSK (DTLS),
* the derived client↔RS OSCORE keys and Common IV (both sides) or the DTLS PSK.

aiocoap routes keys through ``aiocoap.defaults.log_secret`` ("[redacted]" unless
AIOCOAP_REVEAL_KEYS is set) — except one message: ``_construct_nonce`` logs the Common IV in clear
("Nonce construction: common <iv> ^ components ... = <nonce>") on "aiocoap.cryptography";
``ace.coap`` keeps that logger at INFO, and the capture here leaves that one setting alone.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deployment import running_deployment
from support import TIMEOUT, bounded

from ace.cbor.labels import AceProfile
from ace.cli.config import load_oscore_secret, load_psk
from ace.cli.keyfiles import load_key
from ace.client.flow import Done, ResourceRequest
from ace.messages import AccessTokenResponse
from ace.profiles.dtls import DtlsChannel
from ace.tokens.cnf import CoseKeyCnf, OscoreCnf

pytestmark = pytest.mark.filterwarnings("ignore:DTLS module did not shut down:UserWarning")
PROFILES = {"oscore": AceProfile.COAP_OSCORE, "dtls": AceProfile.COAP_DTLS}


class Everything(logging.Handler):
    """Keeps (logger name, formatted text) of every record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, self.format(record)))


@pytest.fixture
def captured() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    saved = {name: lg.level for name, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    saved_root = root.level
    for name in saved:  # everything propagates at DEBUG, but for what ace itself keeps quiet
        if name != "aiocoap.cryptography":
            logging.getLogger(name).setLevel(logging.NOTSET)
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_root)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def forms(secret: bytes) -> set[str]:
    """How a secret could show in text: hex, upper-case hex, the body of its repr, base64."""
    body = repr(secret)[2:-1]
    return {secret.hex(), secret.hex().upper(), body, base64.b64encode(secret).decode()}


def context_keys(name: str, ctx: Any) -> dict[str, bytes]:
    return {f"{name} sender key": ctx.sender_key, f"{name} recipient key": ctx.recipient_key,
            f"{name} common IV": ctx.common_iv}


async def run_flow(directory: Path, profile: str) -> dict[str, bytes]:
    """The flow; returns every secret it used, by name."""
    found: dict[str, bytes] = {}
    async with running_deployment(directory, profile=PROFILES[profile]) as flow:
        d, as_server, rs_server, exchanges = flow.d, flow.as_server, flow.rs_server, flow.exchanges
        client = await flow.client()
        got = await bounded(client.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp")), 4 * TIMEOUT)
        refused = await bounded(client.request(ResourceRequest(method="PUT", uri=d.rs_uri + "/led", payload=b"on")),
                                4 * TIMEOUT)
        again = await bounded(client.request(ResourceRequest(method="GET", uri=d.rs_uri + "/temp")), 4 * TIMEOUT)
        assert isinstance(got, Done) and got.response.code == (2, 5), got
        assert isinstance(refused, Done) and refused.response.code in ((4, 3), (4, 5)), refused
        assert isinstance(again, Done) and again.response.code == (2, 5), again
        # what was secret in this run
        found["client-AS master secret"] = load_oscore_secret(d.directory / "client-as.oscore.toml").master_secret
        found["client-AS DTLS PSK"] = load_psk(d.directory / "client-as.psk.toml").key
        found["RS token key"] = load_key(d.directory / "rs1-token.key").k or b""
        found.update(context_keys("client->AS", client._as_security))
        for ctx in as_server.index:
            found.update(context_keys(f"AS<-{ctx.recipient_id.hex()}", ctx))
        (token_exchange,) = [e for e in exchanges if e.step == "token"]
        response = AccessTokenResponse.decode(token_exchange.response.payload)
        found["access token"] = response.access_token
        if isinstance(response.cnf, OscoreCnf):
            found["OSCORE_Input_Material ms"] = response.cnf.material.ms
            for _, ctx in client.channels[AceProfile.COAP_OSCORE].live.values():
                found.update(context_keys("client->RS", ctx))
            for ctx in rs_server.index:
                found.update(context_keys(f"RS<-{ctx.recipient_id.hex()}", ctx))
        else:
            assert isinstance(response.cnf, CoseKeyCnf)
            found["DTLS PoP key (PSK)"] = response.cnf.key.k or b""
            session = got.session
            assert session is not None and isinstance(session.context, DtlsChannel)
            assert session.context.key == found["DTLS PoP key (PSK)"]
        assert any(e.step.startswith("resource (") for e in exchanges)  # the protected step really ran
    return found


async def leaks_of(profile: str, directory: Path, captured: Everything) -> list[tuple[str, str, str]]:
    """(secret name, logger, log text) for every log line holding one of the run's secrets."""
    secrets_ = await run_flow(directory, profile)
    assert captured.lines, "nothing was logged: the capture is not working"
    return [(what, name, text) for what, secret in secrets_.items() if secret
            for name, text in captured.lines if any(form in text for form in forms(secret))]


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_no_secret_in_debug_logs(profile: str, tmp_path: Path, captured: Everything) -> None:
    leaks = await leaks_of(profile, tmp_path / "deployment", captured)
    assert [(what, name, text[:200]) for what, name, text in leaks] == []


def test_aiocoaps_nonce_trace_stays_off() -> None:
    """ace.coap keeps aiocoap's crypto trace (which prints the Common IV) above DEBUG."""
    import ace.coap  # noqa: F401

    assert logging.getLogger("aiocoap.cryptography").getEffectiveLevel() >= logging.INFO


def test_forms_find_a_planted_secret() -> None:
    """The search would see a key logged raw, as hex or inside a repr."""
    secret = bytes(range(0x30, 0x40))
    for text in (f"key={secret.hex()}", f"ctx <k {secret!r}>", f"K={secret.hex().upper()}"):
        assert any(form in text for form in forms(secret)), text
