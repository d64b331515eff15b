"""The session's settings: the environment is read once, into Settings, and nothing below the CLI reads it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.run.session import Session
from pipeline.run.settings import Settings


def test_settings_come_from_the_environment_given() -> None:
    settings = Settings.from_environment(
        {
            "DOCKER_CONFIG": "/cfg/docker",
            "XDG_RUNTIME_DIR": "/run/user/7",
            "XDG_STATE_HOME": "/state",
            "XDG_CACHE_HOME": "/cache",
            "PIPELINE_REGISTRY_TIMEOUT": "2.5",
            "DOCKER_HOST": "unix:///elsewhere.sock",
        }
    )
    assert settings.docker_config == Path("/cfg/docker")
    assert settings.lock_dir == Path("/run/user/7/pipeline/locks")
    assert settings.state_dir == Path("/state/pipeline")
    assert settings.repos_dir == Path("/cache/pipeline/repos")
    assert settings.registry_timeout == 2.5
    assert settings.environment["DOCKER_HOST"] == "unix:///elsewhere.sock"  # handed to the backends as is


def test_settings_defaults_follow_xdg() -> None:
    settings = Settings.from_environment({})
    assert settings.docker_config == Path.home() / ".docker"
    assert settings.lock_dir == Path.home() / ".cache" / "pipeline" / "locks"
    assert settings.state_dir == Path.home() / ".local" / "state" / "pipeline"
    assert settings.registry_timeout == 60


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "3601"])
def test_a_bad_registry_timeout_is_refused(raw: str) -> None:
    with pytest.raises(UsageError, match=f"PIPELINE_REGISTRY_TIMEOUT='{raw}': give seconds between 0 and 3600"):
        Settings.from_environment({"PIPELINE_REGISTRY_TIMEOUT": raw})


def test_credentials_read_the_docker_config_of_the_settings(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"auths": {"r.example": {"auth": "dTpw"}}}')
    session = Session(None, replace(Settings.from_environment({}), docker_config=tmp_path))
    found = session.credentials()("r.example")
    assert found is not None and (found.username, found.password) == ("u", "p")


def test_a_session_without_a_config_refuses_to_plan() -> None:
    with pytest.raises(UsageError, match="no pipelines file"):
        Session(None, Settings.from_environment({})).plan((), None)
