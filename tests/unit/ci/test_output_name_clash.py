"""Two images whose CI output names would be the same are refused where outputs are written (GitHub,
Azure, --dotenv), before anything is built or tagged, and only there: outside CI the config is valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.cli.workflow import report_sink
from pipeline.common.reporting import SILENT
from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.run.session import Session
from pipeline.run.settings import Settings
from tests.helpers import git, init_git, write_project

CLASH = """\
registry: 127.0.0.1:9/clash
pipelines:
  shop:
    images:
      web-app: {context: images/web-app}
      web_app: {context: images/web_app}
"""
KEYS = ["shop/web-app", "shop/web_app"]


def _session(config: Path, environ: dict[str, str]) -> Session:
    return Session(load_config(config), Settings.from_environment(environ), SILENT)


def test_names_are_kept_apart_only_where_outputs_are_written(tmp_path: Path) -> None:
    config = write_project(tmp_path, CLASH, {"web-app": "FROM scratch\n", "web_app": "FROM scratch\n"})
    report_sink(_session(config, {}), None, "pipeline run", KEYS)  # outside CI: nothing reads outputs
    report_sink(_session(config, {"GITLAB_CI": "true"}), None, "pipeline run", KEYS)  # GitLab reads --dotenv
    for environ, dotenv in (
        ({}, tmp_path / "build.env"),
        ({"GITHUB_ACTIONS": "true"}, None),
        ({"TF_BUILD": "True"}, None),
    ):
        with pytest.raises(ConfigError, match="would both write the CI outputs 'shop-web-app-"):
            report_sink(_session(config, environ), dotenv, "pipeline run", KEYS)


def test_release_refuses_them_before_it_cuts_or_builds_anything(tmp_path: Path) -> None:
    config = write_project(tmp_path, CLASH, {"web-app": "FROM scratch\n", "web_app": "FROM scratch\n"})
    init_git(tmp_path)
    done = CliRunner().invoke(
        cli,
        ["release", "-f", str(config), "--version", "0.0.1"],
        env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(tmp_path / "out")},
    )
    # main() turns a ConfigError into its one line and exit 2
    assert isinstance(done.exception, ConfigError) and done.exception.exit_code == 2, done.output
    assert "would both write the CI outputs" in str(done.exception)
    assert git(tmp_path, "tag", "--list") == ""  # no release cut: the git tag was never made
    assert not (tmp_path / "out").exists()
