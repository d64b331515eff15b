"""What the CLI prints of an error, its CI annotation and release's progress lines are redacted: their text
comes from anywhere (DOCKER_HOST, a variable, an argument), not only from a run's redacted result."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import common
from pipeline.cli.release_commands import _progress
from tests.helpers import run_cli, write_project

PASSWORD = "Sup3rSecretPw-SECRETSCAN"
TOKEN = "zq9-token-value-SECRETSCAN"
CI = {"GITHUB_ACTIONS": "true", "TF_BUILD": "", "GITLAB_CI": "", "DOCKER_CONFIG": "/nonexistent"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "repo",
        "registry: 127.0.0.1:5000/local\npipelines:\n  shop:\n    images:\n      app: {context: images/app}\n",
        {"app": "FROM scratch\n"},
    ).parent


def test_a_docker_host_password_shows_neither_on_the_error_line_nor_in_the_annotation(project: Path) -> None:
    done = run_cli(["run"], project, {**CI, "DOCKER_HOST": f"tcp://bob:{PASSWORD}@127.0.0.1:1"}, timeout=60)
    assert done.code == 3, done.output
    assert "error: cannot reach the Docker engine at tcp://127.0.0.1:1" in done.stderr
    assert "::error::cannot reach the Docker engine at tcp://127.0.0.1:1" in done.stdout
    assert "SECRETSCAN" not in done.output


def test_a_secret_variables_value_in_an_error_is_masked(project: Path) -> None:
    done = run_cli(["run"], project, {**CI, "PIPELINE_REGISTRY_TIMEOUT": TOKEN, "DEPLOY_TOKEN": TOKEN}, timeout=60)
    assert done.code == 2, done.output
    assert "error: PIPELINE_REGISTRY_TIMEOUT='***': give seconds" in done.stderr
    assert "::error::PIPELINE_REGISTRY_TIMEOUT='***'" in done.stdout
    assert "SECRETSCAN" not in done.output


def test_a_usage_errors_argument_is_redacted(project: Path) -> None:
    done = run_cli(["run", "--progress", f"https://bob:{PASSWORD}@example.com/p"], project, CI, timeout=60)
    assert done.code == 2, done.output
    assert "https://example.com/p" in done.stderr
    assert "SECRETSCAN" not in done.output


@pytest.fixture
def fresh_redactor() -> Iterator[None]:
    common._redactor.cache_clear()  # it is built once per process, from the environment of the moment
    yield
    common._redactor.cache_clear()


@pytest.mark.usefixtures("fresh_redactor")
def test_releases_progress_lines_are_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", TOKEN)
    monkeypatch.setenv("DOCKER_CONFIG", "/nonexistent")
    _progress("push", f"git tag v1.0.0 to https://oauth2:{PASSWORD}@git.example.com/x.git ({TOKEN})")
    assert capsys.readouterr().err == "push     git tag v1.0.0 to https://git.example.com/x.git (***)\n"
