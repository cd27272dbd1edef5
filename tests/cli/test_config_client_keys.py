"""client.toml keys for the EDHOC profile's options and token upload: edhoc_reverse (EP-11 §4.4),
edhoc_rs_cred_by_value (EP-11 §4.14) and token_upload (workflow-and-params-08 §3.1) load, reach
the client's flow config, and bad values are ConfigErrors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ace.cli import roles
from ace.cli.config_client import load_client
from ace.cli.init_cmd import init_deployment
from ace.errors import ConfigError

ANCHOR = 'state = "client-state.json"'


@pytest.fixture
def client_toml(tmp_path: Path) -> Path:
    init_deployment(tmp_path / "dep", as_port=15689, rs_port=15690)
    return tmp_path / "dep" / "client.toml"


def add(path: Path, *lines: str) -> Path:
    text = path.read_text()
    assert ANCHOR in text
    path.write_text(text.replace(ANCHOR, "\n".join((ANCHOR, *lines)), 1))
    return path


def test_defaults(client_toml: Path) -> None:
    cfg = load_client(client_toml)
    assert (cfg.edhoc_reverse, cfg.edhoc_rs_cred_by_value, cfg.token_upload) == (False, False, None)


def test_keys_reach_the_flow_config(client_toml: Path) -> None:
    cfg = load_client(add(client_toml, "edhoc_reverse = true", "edhoc_rs_cred_by_value = true", "token_upload = 1"))
    assert (cfg.edhoc_reverse, cfg.edhoc_rs_cred_by_value, cfg.token_upload) == (True, True, 1)
    config = roles.build_client(cfg).flow.config
    assert (config.edhoc_reverse, config.edhoc_rs_cred_by_value, config.token_upload) == (True, True, 1)


@pytest.mark.parametrize("value", ["0", "2"])
def test_token_upload_values(client_toml: Path, value: str) -> None:
    assert load_client(add(client_toml, f"token_upload = {value}")).token_upload == int(value)


@pytest.mark.parametrize(("line", "match"), [
    ("token_upload = 3", "token_upload must be 0"), ("token_upload = true", "token_upload must be int"),
    ('token_upload = "1"', "token_upload must be int"), ('edhoc_reverse = "yes"', "edhoc_reverse must be bool"),
    ("edhoc_rs_cred_by_value = 1", "edhoc_rs_cred_by_value must be bool")])
def test_bad_values(client_toml: Path, line: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_client(add(client_toml, line))
