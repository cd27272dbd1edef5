"""Config strictness (issue 11): unknown keys and enum values in as.toml, rs.toml, client.toml and
the OSCORE context files are ConfigErrors naming the file, the key and what is allowed; the
[[rs.resources]] table is checked the same way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ace.cli.config import load_as, load_client, load_oscore_secret, load_rs
from ace.cli.init_cmd import init_deployment
from ace.coap.devices import ResourceSpec
from ace.errors import ConfigError

ACE = [sys.executable, "-m", "ace.cli.main"]


@pytest.fixture
def dep(tmp_path: Path) -> Path:
    init_deployment(tmp_path / "dep", as_port=15689, rs_port=15690)
    return tmp_path / "dep"


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return path


def test_plain_init_configs_load(dep: Path) -> None:
    assert load_as(dep / "as.toml").port == 15689
    rs = load_rs(dep / "rs.toml")
    assert rs.exi_unit == 1.0 and rs.resources is None  # no table: the demo's /temp and /led
    assert load_client(dep / "client.toml").client_id == "clientA"


@pytest.mark.parametrize(("name", "section", "anchor"), [
    ("as.toml", "[as]", "salt_len = 0"), ("rs.toml", "[rs]", "cnonce = false"),
    ("client.toml", "[client]", 'state = "client-state.json"')])
def test_unknown_key_names_file_key_and_allowed(dep: Path, name: str, section: str, anchor: str) -> None:
    path = edit(dep / name, anchor, anchor + "\nsalt_lenght = 1")
    loader = {"as.toml": load_as, "rs.toml": load_rs, "client.toml": load_client}[name]
    with pytest.raises(ConfigError) as err:
        loader(path)
    msg = str(err.value)
    assert str(path) in msg and section in msg and "'salt_lenght'" in msg and "allowed:" in msg


def test_unknown_top_level_table(dep: Path) -> None:
    path = dep / "as.toml"
    path.write_text(path.read_text() + "\n[rs]\nport = 1\n")
    with pytest.raises(ConfigError, match=r"unknown table 'rs'; allowed: as"):
        load_as(path)


@pytest.mark.parametrize("unit", ["msec", "milliseconds", "seconds", "MS", ""])
def test_exi_unit_only_s_or_ms(dep: Path, unit: str) -> None:
    path = edit(dep / "rs.toml", 'exi_unit = "s"', f'exi_unit = "{unit}"')
    with pytest.raises(ConfigError, match=r"exi_unit must be one of 's', 'ms', not"):
        load_rs(path)


def test_exi_unit_ms(dep: Path) -> None:
    assert load_rs(edit(dep / "rs.toml", 'exi_unit = "s"', 'exi_unit = "ms"')).exi_unit == 0.001


@pytest.mark.parametrize(("old", "new", "pattern"), [
    ('"coap_dtls"', '"coap_dtsl"', r"profiles: unknown profile 'coap_dtsl'; allowed: coap_dtls"),
    ('introspect = false', 'introspect = false\ntoken_tags = "tagged"', r"token_tags must be one of 'none'"),
    ('edhoc_key = "rs1-edhoc.key"', "edhoc_key = 5", r"edhoc_key must be str"),
])
def test_rs_enum_and_type_errors(dep: Path, old: str, new: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_rs(edit(dep / "rs.toml", old, new))


def test_client_profile_enum(dep: Path) -> None:
    path = edit(dep / "client.toml", 'state = "client-state.json"', 'state = "client-state.json"\nprofile = "oscor"')
    with pytest.raises(ConfigError, match=r"\[client\]: profile: unknown profile 'oscor'; allowed: coap_dtls"):
        load_client(path)


def test_oscore_file_unknown_key_and_hkdf(dep: Path) -> None:
    path = dep / "client-as.oscore.toml"
    edit(path, 'hkdf = "sha256"', 'hkdf = "sha-256"')
    with pytest.raises(ConfigError, match=r"hkdf must be one of 'sha256', 'sha384', 'sha512', not 'sha-256'"):
        load_oscore_secret(path)
    edit(path, 'hkdf = "sha-256"', 'hkdf = "sha256"\nmaster_sallt = ""')
    with pytest.raises(ConfigError, match=r"unknown key 'master_sallt'; allowed: alg, hkdf, id_context"):
        load_oscore_secret(path)


# -- [[rs.resources]] ----------------------------------------------------------------------

TABLE = '''
[[rs.resources]]
path = "/temp"
methods = ["GET", "PUT", "POST"]
value = "0"
answer = "{value} C"
accept = "integer"

[[rs.resources]]
path = "/config"
methods = ["GET", "POST"]
value = "Default"
'''


def test_resource_table_loads(dep: Path) -> None:
    path = dep / "rs.toml"
    path.write_text(path.read_text() + TABLE)
    assert load_rs(path).resources == (
        ResourceSpec(path="/temp", methods=("GET", "PUT", "POST"), value="0", answer="{value} C", accept="integer"),
        ResourceSpec(path="/config", methods=("GET", "POST"), value="Default"))


@pytest.mark.parametrize(("old", "new", "pattern"), [
    ('accept = "integer"', 'accept = "int"', r"#1: accept must be one of 'text', 'integer', not 'int'"),
    ('value = "0"', 'value = "zero"', r"#1: value 'zero' is not what accept = 'integer' stores"),
    ('methods = ["GET", "POST"]', 'methods = ["GET", "DELETE"]', r"#2: methods must be a non-empty list of "
                                                                 r"distinct GET, PUT, POST"),
    ('path = "/config"', 'path = "/temp"', r"#2: path '/temp' is declared twice"),
    ('path = "/config"', 'path = "config"', r"#2: path must be like"),
    ('path = "/config"', 'path = "/authz-info"', r"#2: path '/authz-info' is the RS's own"),
    ('value = "Default"', 'value = "Default"\nscript = "x"', r"#2: unknown key 'script'; allowed: accept, answer"),
    ('value = "Default"', 'value = "Default"\nhandler = "m:f"', r"#2: value does not go with a handler resource"),
    ('value = "Default"', 'handler = "m:f"\nfile = "x"', r"#2: file and handler are two kinds of resource"),
    ('value = "Default"', 'handler = "m.f"', r"#2: handler must be \"module:attr\", not 'm.f'"),
    ('value = "Default"', 'file = "missing.txt"', r"#2: file '.*missing.txt' is not an existing file"),
    ('value = "Default"', 'file = "rs.toml"\npoll = 0.01', r"#2: poll must be a number from 0.1 to 3600, not 0.01"),
    ('value = "Default"', 'file = "rs.toml"\nmax_bytes = 0', r"#2: max_bytes must be a number from 1 to 65536"),
    ('value = "Default"', 'file = "rs.toml"\nmax_bytes = true', r"#2: max_bytes must be a number"),
    ('value = "Default"', 'content_format = "text"', r"#2: content_format must be a number from 0 to 65535"),
    ('value = "Default"', 'value = 5', r"#2: value must be a string"),
])
def test_resource_table_errors(dep: Path, old: str, new: str, pattern: str) -> None:
    path = dep / "rs.toml"
    path.write_text(path.read_text() + TABLE.replace(old, new, 1))
    with pytest.raises(ConfigError, match=pattern) as err:
        load_rs(path)
    assert str(path) in str(err.value) and "[[rs.resources]]" in str(err.value)


def test_cli_config_error_is_one_line_exit_2(dep: Path) -> None:
    path = edit(dep / "rs.toml", 'exi_unit = "s"', 'exi_unit = "milliseconds"')
    out = subprocess.run([*ACE, "rs", "--config", str(path)], capture_output=True, text=True, timeout=30,
                         check=False)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"ace: error: {path} [rs]: exi_unit must be one of 's', 'ms', not 'milliseconds'"]
