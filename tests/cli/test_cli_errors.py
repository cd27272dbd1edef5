"""The command line's one error boundary, row by row: bad arguments, files and configs.

Each row runs ``python -m ace.cli.main`` as a user would (a subprocess, this checkout's ``ace``)
and asserts the exit code (2: usage, configuration or input; see ``ace.cli.stdio``), exactly one
line on stderr, ``ace: error: ...`` matching the row's pattern, and no traceback. No row may
change anything: they share one deployment.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ace.cli import keys_cmd
from ace.cli.config import load_oscore_secret
from ace.cli.init_cmd import init_deployment
from ace.cli.main import main
from ace.store.sqlite import SqliteAsStore

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60  # seconds a row may take (a Python start and one command)


def _free_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        port: int = s.getsockname()[1]
        return port


def ace(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ace.cli.main", *argv], capture_output=True, text=True,
                          timeout=TIMEOUT, check=False, env=env, cwd=cwd, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deployment (d/) and the bad files the rows name (t/)."""
    base = tmp_path_factory.mktemp("cli-errors")
    d = init_deployment(base / "d", as_port=_free_port(), rs_port=_free_port()).directory
    t = base / "t"
    t.mkdir()
    (t / "afile").write_text("not a directory\n")
    (t / "garbage.key").write_bytes(b"\xff\x00 not CBOR")
    os.chmod(t / "garbage.key", 0o600)
    (t / "open.key").write_bytes((d / "rs1-token.key").read_bytes())
    os.chmod(t / "open.key", 0o644)
    (t / "notoml.toml").write_text("[as\nport = \n")
    as_toml = (d / "as.toml").read_text()
    (t / "nostore.toml").write_text(as_toml.replace('store = "as.db"', f'store = "{d}/as-typo.db"'))
    (t / "typo.toml").write_text(as_toml.replace("port = ", "prot = ", 1))
    rs_toml = (d / "rs.toml").read_text()
    (t / "exi.toml").write_text(rs_toml.replace('exi_unit = "s"', 'exi_unit = "msec"'))
    port = _free_port()  # beside the deployment's files (its paths are relative to the config)
    (d / "rs-any.toml").write_text(re.sub(r"(?m)^port = \d+", f"port = {port}", rs_toml.replace('bind = "::1"',
                                                                                             'bind = "::"')))
    return base


# (id, argv with {d} the deployment and {t} the bad files, exit code, pattern the one line must match)
ROWS: list[tuple[str, list[str], int, str]] = [
    # usage: argparse's errors are one line too, naming the command
    ("no-command", [], 2, r"required: COMMAND \(see ace --help\)"),
    ("unknown-command", ["frobnicate"], 2, r"invalid choice: 'frobnicate'"),
    ("keys-no-action", ["keys"], 2, r"keys: the following arguments are required: ACTION"),
    ("keys-bad-type", ["keys", "gen", "--type", "rsa", "{t}/x.key"], 2, r"keys gen: .*invalid choice: 'rsa'"),
    ("keys-size-not-int", ["keys", "gen", "--size", "abc", "{t}/x.key"], 2, r"invalid int value: 'abc'"),
    ("demo-bad-profile", ["demo", "--profile", "foo"], 2, r"demo: argument --profile: invalid choice"),
    ("client-bad-profile", ["client", "--config", "{d}/client.toml", "--profile", "foo", "get", "coap://[::1]/x"], 2,
     r"client: argument --profile: invalid choice"),
    ("init-port-not-int", ["init", "--as-port", "abc", "{t}/new"], 2, r"init: argument --as-port: invalid int"),
    ("fleet-devices-not-int", ["fleet", "--devices", "x"], 2, r"fleet: argument --devices: invalid int"),
    ("keys-import-nothing", ["keys", "import", "{t}/x.key"], 2, r"one of the arguments --symmetric"),
    # keys
    ("keys-gen-no-dir", ["keys", "gen", "/nonexistent/x.key"], 2,
     r"keys gen: /nonexistent/x\.key: cannot write \(No such file or directory\)"),
    ("keys-gen-exists", ["keys", "gen", "{d}/rs1-token.key"], 2, r"rs1-token\.key: exists; --force replaces it"),
    ("keys-gen-size", ["keys", "gen", "--size", "20", "{t}/x.key"], 2, r"--size must be 16, 24 or 32, not 20"),
    ("keys-gen-kid-hex", ["keys", "gen", "--kid", "zz", "{t}/x.key"], 2, r"--kid must be hex, not 'zz'"),
    ("keys-gen-alg", ["keys", "gen", "--alg", "NOPE", "{t}/x.key"], 2, r"--alg: unknown alg 'NOPE'"),
    ("keys-gen-public-sym", ["keys", "gen", "--public-out", "{t}/x.pub", "{t}/x.key"], 2,
     r"a symmetric key has no public part"),
    ("keys-gen-under-file", ["keys", "gen", "{t}/afile/x.key"], 2, r"afile/x\.key: cannot write \(Not a directory\)"),
    ("keys-show-missing", ["keys", "show", "{t}/missing.key"], 2, r"missing\.key: cannot read key file"),
    ("keys-show-garbage", ["keys", "show", "{t}/garbage.key"], 2, r"garbage\.key: "),
    ("keys-show-readable", ["keys", "show", "{t}/open.key"], 2, r"open\.key: holds a secret key but has mode 644"),
    ("keys-import-short", ["keys", "import", "--symmetric", "0011", "{t}/x.key"], 2, r"16, 24 or 32 bytes, not 2"),
    ("keys-import-not-p256", ["keys", "import", "--ec2-d", "11", "{t}/x.key"], 2, r"not a P-256 key"),
    # token inspect
    ("token-nofile", ["token", "inspect", "@{t}/nofile"], 2, r"nofile"),
    ("token-not-hex", ["token", "inspect", "zz"], 2, r"hex"),
    ("token-key-missing", ["token", "inspect", "a0", "--key", "{t}/missing.key"], 2, r"missing\.key"),
    # init
    ("init-under-file", ["init", "{t}/afile/x"], 2, r"init: .*afile/x: cannot write \(Not a directory\)"),
    ("init-onto-file", ["init", "{t}/afile"], 2, r"init: .*afile: not a directory"),
    ("init-unwritable", ["init", "/proc/ace-cli-test/x"], 2, r"init: /proc/ace-cli-test.*: cannot write"),
    ("init-again", ["init", "{d}"], 2, r"already initialised"),
    # policy: --config, the store, SCOPE, registered clients and audiences, --profiles, --oscore-new
    ("policy-no-config", ["policy", "list"], 2, r"policy list: give --config FILE"),
    ("policy-config-missing", ["policy", "list", "--config", "{t}/missing.toml"], 2, r"missing\.toml: cannot read"),
    ("policy-config-rs", ["policy", "--config", "{d}/rs.toml", "list"], 2, r"rs\.toml: unknown table 'rs'"),
    ("policy-config-not-toml", ["policy", "--config", "{t}/notoml.toml", "list"], 2, r"notoml\.toml: invalid TOML"),
    ("policy-no-store", ["policy", "grant", "clientA", "rs1", "r_temp", "--config", "{t}/nostore.toml"], 2,
     r"as-typo\.db: no such store"),
    ("grant-aif-not-hex", ["policy", "--config", "{d}/as.toml", "grant", "--aif", "clientA", "rs1", "zz"], 2,
     r"policy grant: SCOPE 'zz': --aif takes AIF \(RFC 9237\) as hex CBOR"),
    ("grant-aif-empty", ["policy", "--config", "{d}/as.toml", "grant", "--aif", "clientA", "rs1", "80"], 2,
     r"an empty AIF scope grants nothing"),
    ("grant-aif-not-array", ["policy", "--config", "{d}/as.toml", "grant", "--aif", "clientA", "rs1", "a0"], 2,
     r"AIF scope must be an array"),
    ("grant-unknown-client", ["policy", "--config", "{d}/as.toml", "grant", "clientX", "rs1", "r_temp"], 2,
     r"no client 'clientX' at the AS \(known: clientA; ace policy add-client"),
    ("grant-unknown-audience", ["policy", "--config", "{d}/as.toml", "grant", "clientA", "rs9", "r_temp"], 2,
     r"no RS with audience 'rs9' at the AS \(known: rs1; ace policy add-rs"),
    ("grant-bad-scope-token", ["policy", "--config", "{d}/as.toml", "grant", "clientA", "rs1", 'r"temp'], 2,
     r"scope-tokens \(RFC 6749 §3\.3\)"),
    ("grant-empty-scope", ["policy", "grant", "clientA", "rs1", "", "--config", "{d}/as.toml"], 2, r"scope-tokens"),
    ("revoke-aif-not-hex", ["policy", "--config", "{d}/as.toml", "revoke", "--aif", "clientA", "rs1", "xy"], 2,
     r"policy revoke: SCOPE 'xy': --aif takes"),
    ("add-client-profile", ["policy", "--config", "{d}/as.toml", "add-client", "c2", "--oscore-new", "{t}/c2.toml",
                            "--profiles", "oscre"], 2, r"--profiles: unknown profile 'oscre'; allowed: coap_dtls"),
    ("add-client-twice", ["policy", "--config", "{d}/as.toml", "add-client", "c2", "--oscore-new", "{t}/c2.toml",
                          "--profiles", "oscore,coap_oscore"], 2, r"a profile named twice"),
    ("add-client-no-auth", ["policy", "--config", "{d}/as.toml", "add-client", "c2"], 2,
     r"give --oscore, --oscore-new"),
    ("add-client-new-exists", ["policy", "--config", "{d}/as.toml", "add-client", "c2", "--oscore-new",
                               "{d}/client.toml"], 2, r"--oscore-new: .*client\.toml exists"),
    ("add-client-new-no-dir", ["policy", "--config", "{d}/as.toml", "add-client", "c2", "--oscore-new",
                               "/nonexistent/c2.toml"], 2, r"--oscore-new: /nonexistent/c2\.toml: cannot write"),
    ("add-client-both", ["policy", "--config", "{d}/as.toml", "add-client", "c2", "--oscore", "{t}/a",
                         "--oscore-new", "{t}/b"], 2, r"argument --oscore-new: not allowed with argument --oscore"),
    ("add-client-oscore-missing", ["policy", "--config", "{d}/as.toml", "add-client", "c2", "--oscore",
                                   "{t}/missing.toml"], 2, r"missing\.toml"),
    ("add-rs-no-key", ["policy", "--config", "{d}/as.toml", "add-rs", "rs9"], 2, r"add-rs rs9: not registered yet"),
    ("add-rs-salt", ["policy", "--config", "{d}/as.toml", "add-rs", "rs1", "--salt-len", "99"], 2,
     r"--salt-len takes 0 to \d+ or 'as', not '99'"),
    # fleet: arguments checked before the run
    ("fleet-json-no-dir", ["fleet", "--json", "/nonexistent/r.json"], 2,
     r"fleet: --json: /nonexistent/r\.json: cannot write \(No such file or directory\)"),
    ("fleet-json-dir", ["fleet", "--json", "{t}"], 2, r"fleet: --json: .*: cannot write \(Is a directory\)"),
    ("fleet-loss", ["fleet", "--loss", "2"], 2, r"--loss must be in \[0, 1\)"),
    # servers and the client: config files
    ("as-config-missing", ["as", "--config", "{t}/missing.toml"], 2, r"missing\.toml: cannot read"),
    ("as-config-typo", ["as", "--config", "{t}/typo.toml"], 2, r"typo\.toml \[as\]: unknown key 'prot'"),
    ("rs-exi-unit", ["rs", "--config", "{t}/exi.toml"], 2, r"exi\.toml \[rs\]: exi_unit must be one of"),
    ("rs-any-address-dtls", ["rs", "--config", "{d}/rs-any.toml"], 2, r"(?i)dtls.*(bind|address)"),
    ("client-not-a-uri", ["client", "--config", "{d}/client.toml", "get", "notauri"], 2, r"(?i)ur[il]"),
]


@pytest.mark.parametrize(("argv", "code", "pattern"), [pytest.param(a, c, p, id=i) for i, a, c, p in ROWS])
def test_bad_input_is_one_line(w: Path, argv: list[str], code: int, pattern: str) -> None:
    done = ace(*[a.format(d=w / "d", t=w / "t") for a in argv], cwd=w)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ace: error: ") and not lines[0].startswith("ace: error: ace:"), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert done.returncode == code, (done.returncode, lines[0])
    assert done.stdout == "" or code != 2, done.stdout


def test_the_table_is_large_and_changed_nothing(w: Path) -> None:
    assert len(ROWS) >= 40 and len({r[0] for r in ROWS}) == len(ROWS)
    with SqliteAsStore(w / "d" / "as.db") as store:
        assert [c.client_id for c in store.list_clients()] == ["clientA"]
        assert [rs.audience for rs in store.list_rs()] == ["rs1"]
        assert len(store.list_grants()) == 1
    assert not (w / "as-typo.db").exists() and not (w / "d" / "as-typo.db").exists()
    assert sorted(p.name for p in (w / "t").iterdir() if p.suffix == ".key") == ["garbage.key", "open.key"]
    assert not (w / "t" / "c2.toml").exists() and not (w / "t" / "new").exists()


def test_policy_config_after_the_action_short_profiles_and_oscore_new(tmp_path: Path) -> None:
    d = init_deployment(tmp_path / "d").directory
    cfg = str(d / "as.toml")
    new = ace("policy", "add-client", "clientB", "--oscore-new", str(d / "b.oscore.toml"), "--profiles",
              "oscore,edhoc", "--config", cfg)
    assert new.returncode == 0 and new.stderr == "", new.stderr
    assert stat.S_IMODE((d / "b.oscore.toml").stat().st_mode) == 0o600
    client_side = load_oscore_secret(d / "b.oscore.toml")
    with SqliteAsStore(d / "as.db") as store:
        record = store.get_client("clientB")
        assert record is not None and record.oscore is not None and record.profiles == (2, 4)
        as_side = record.oscore
        taken = {c.oscore.recipient_id for c in store.list_clients() if c.client_id != "clientB" and c.oscore}
    assert (as_side.master_secret, as_side.sender_id, as_side.recipient_id) == (
        client_side.master_secret, client_side.recipient_id, client_side.sender_id)
    assert as_side.recipient_id not in taken and as_side.sender_id != as_side.recipient_id
    assert ace("policy", "grant", "clientB", "rs1", "r_temp", "--config", cfg).returncode == 0
    listed = ace("policy", "list", "--config", cfg)
    assert listed.returncode == 0, listed.stderr
    assert "client clientB  oscore=yes  psk=no  profiles=coap_oscore,coap_edhoc_oscore" in listed.stdout
    assert "grant  clientB -> rs1: r_temp" in listed.stdout
    aif = ace("policy", "--config", cfg, "grant", "--aif", "clientB", "rs1", "8182652f74656d7001")
    assert aif.returncode == 0 and "aif:8182652f74656d7001" in aif.stdout


def test_interrupt_is_one_line_exit_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(keys_cmd, "cmd_show", interrupted)
    assert main(["keys", "show", str(tmp_path / "k.key")]) == 130
    assert capsys.readouterr().err.splitlines() == ["ace: error: interrupted"]


def test_unexpected_error_is_one_line_exit_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(keys_cmd, "cmd_show", broken)
    assert main(["keys", "show", str(tmp_path / "k.key")]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line == "ace: error: keys show: unexpected RuntimeError: boom second line (-vv shows the traceback)"


def test_fleet_json_to_stdout(tmp_path: Path) -> None:
    done = ace("fleet", "--devices", "1", "--clients", "1", "--duration", "0.3", "--json", "-", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # stdout is the report alone; the summary went to stderr
    assert report["devices"] == 1 and report["ok"] is True
    assert "result: OK" in done.stderr and not list(tmp_path.iterdir())
