from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from pipeline.registry.credentials import DockerConfigCredentials


def write_config(directory: Path, data: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(data))
    return directory


def test_auths_entry_by_host_or_url(tmp_path: Path) -> None:
    auth = base64.b64encode(b"alice:pa:ss").decode()
    config = write_config(tmp_path, {"auths": {"https://r.example.com/v1/": {"auth": auth}}})
    creds = DockerConfigCredentials(config)("r.example.com")
    assert creds is not None
    assert (creds.username, creds.password) == ("alice", "pa:ss")
    assert "pa:ss" not in repr(creds)
    assert DockerConfigCredentials(config)("other.example.com") is None


def test_missing_config_means_no_credentials(tmp_path: Path) -> None:
    assert DockerConfigCredentials(tmp_path / "nowhere")("r.example.com") is None


def test_credential_helper_is_called(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        'if [ "$1" = get ] && [ "$server" = r.example.com ]; then\n'
        '  echo \'{"ServerURL":"r.example.com","Username":"bob","Secret":"tok"}\'\nelse exit 1; fi\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = write_config(tmp_path / "cfg", {"credHelpers": {"r.example.com": "fake"}, "credsStore": "fake"})
    creds = DockerConfigCredentials(config)("r.example.com")
    assert creds is not None and (creds.username, creds.password) == ("bob", "tok")
    assert DockerConfigCredentials(config)("unknown.example.com") is None
