"""``error_format`` and ``[as.workflow_codes]`` / ``[rs.workflow_codes]`` (draft-ietf-ace-workflow-and-params-08
§6, §11.1): read from as.toml and rs.toml into the servers' error form; the default keeps the RFC 9200
error map; a bad value is one ConfigError line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ace.cli import roles
from ace.cli.config import load_as, load_rs
from ace.cli.init_cmd import init_deployment
from ace.errors import ConfigError
from ace.problem import DEFAULT_CODES, WorkflowCodes
from ace.replies import DEFAULT_FORM, ErrorForm

ANCHORS = {"as": "salt_len = 0", "rs": "cnonce = false"}
LOADERS = {"as": load_as, "rs": load_rs}


@pytest.fixture
def dep(tmp_path: Path) -> Path:
    init_deployment(tmp_path / "dep", as_port=15689, rs_port=15690)
    return tmp_path / "dep"


def configure(dep: Path, role: str, *, lines: str = "", codes: str = "") -> Path:
    path = dep / f"{role}.toml"
    text = path.read_text()
    assert ANCHORS[role] in text
    text = text.replace(ANCHORS[role], ANCHORS[role] + "\n" + lines, 1)
    if codes:
        text += f"\n[{role}.workflow_codes]\n{codes}\n"
    path.write_text(text)
    return path


@pytest.mark.parametrize("role", ["as", "rs"])
def test_the_default_keeps_todays_wire(dep: Path, role: str) -> None:
    cfg = LOADERS[role](dep / f"{role}.toml")
    assert (cfg.error_format, cfg.workflow_codes) == ("ace", DEFAULT_CODES)


@pytest.mark.parametrize("role", ["as", "rs"])
def test_problem_details_and_codes_reach_the_server(dep: Path, role: str) -> None:
    path = configure(dep, role, lines='error_format = "problem-details"',
                     codes="missing_old_token = 200\nfailed_pop_verification = 12")
    cfg = LOADERS[role](path)
    codes = WorkflowCodes(missing_old_token=200, failed_pop_verification=12)
    assert (cfg.error_format, cfg.workflow_codes) == ("problem-details", codes)
    server = roles.build_as(cfg) if role == "as" else roles.build_rs(cfg)  # type: ignore[arg-type]
    assert server.error_form == ErrorForm(problem=True, codes=codes) != DEFAULT_FORM


@pytest.mark.parametrize(("lines", "codes", "message"), [
    ('error_format = "rfc9290"', "", r"error_format must be one of 'ace', 'problem-details', not 'rfc9290'"),
    ("error_format = 1", "", r"error_format must be str"),
    ("", "missing_old_token = 0", r"workflow_codes: missing_old_token must be an int from 1 to 255"),
    ("", "missing_old_token = 256", r"workflow_codes: missing_old_token must be an int from 1 to 255"),
    ("", "missing_old_token = true", r"workflow_codes: missing_old_token must be an int"),
    ("", 'missing_old_token = "9"', r"workflow_codes: missing_old_token must be an int"),
    ("", "missing_old_token = 1", r"workflow_codes: missing_old_token = 1 is already invalid_request"),
    ("", "missing_old_token = 11", r"workflow_codes: missing_old_token = 11 is already failed_pop_verification"),
    ("", "missing_old_tokens = 20", r"workflow_codes: unknown error 'missing_old_tokens'; allowed: "),
    ("workflow_codes = 3", "", r"workflow_codes must be a table"),
])
@pytest.mark.parametrize("role", ["as", "rs"])
def test_bad_values_are_one_line_config_errors(dep: Path, role: str, lines: str, codes: str, message: str) -> None:
    path = configure(dep, role, lines=lines, codes=codes)
    with pytest.raises(ConfigError, match=message) as err:
        LOADERS[role](path)
    assert str(err.value).startswith(f"{path} [{role}]: ") and "\n" not in str(err.value)
