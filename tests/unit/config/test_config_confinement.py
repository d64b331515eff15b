"""The pipelines file and the files it names stay inside the repository it comes from; pipelines files
are regular files of at most 4 MiB, so neither `validate` nor a triggered run quotes, hangs on or
exhausts memory on what lies elsewhere on the machine (/etc/shadow, /dev/zero, a FIFO)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from tests.helpers import commit_files, git, init_git, run_cli
from tests.unit.config.test_config_errors import run_main

# Looks like the first line of /etc/shadow; it must never be shown.
HASH = "Zm9vYmFyYmF6cXV4c2VjcmV0aGFzaA"
SHADOW_LINE = f"root:$6$c2VjcmV0LXNhbHQ${HASH}:19000:0:99999:7:::"

GOOD = """\
registry: 127.0.0.1:5000/t
pipelines:
  shop:
    triggers: [{branch: main}]
    images:
      app: {context: images/app}
"""


def repository(root: Path, config: str = GOOD) -> Path:
    """A committed git repository with pipelines.yaml (`config`) and images/app/Dockerfile."""
    (root / "images" / "app").mkdir(parents=True)
    (root / "images" / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "pipelines.yaml").write_text(textwrap.dedent(config))
    init_git(root)
    return root


def shadow(tmp_path: Path) -> Path:
    secret = tmp_path / "shadow"
    secret.write_text(SHADOW_LINE + "\ndaemon:*:19000:0:99999:7:::\n")
    return secret


def test_a_pipelines_file_linked_out_of_its_repository_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = repository(tmp_path / "repo")
    (repo / "pipelines.yaml").unlink()
    (repo / "pipelines.yaml").symlink_to(shadow(tmp_path))
    code, output = run_main(["validate"], capsys, monkeypatch, repo)
    assert code == 2, output
    assert output.splitlines() == [
        f"error: pipelines file 'pipelines.yaml' leads through a symlink to {tmp_path.resolve() / 'shadow'}, "
        f"outside the repository {repo.resolve()}"
    ]
    assert HASH not in output and "$6$" not in output


def test_a_pipelines_file_linked_within_its_repository_is_read(tmp_path: Path) -> None:
    repo = repository(tmp_path / "repo")
    (repo / "deploy").mkdir()
    (repo / "pipelines.yaml").rename(repo / "deploy" / "shop.yaml")
    (repo / "pipelines.yaml").symlink_to(Path("deploy", "shop.yaml"))
    assert list(load_config(repo / "pipelines.yaml").spec.pipelines) == ["shop"]


def test_a_pipelines_file_outside_the_checkout_it_is_loaded_for_is_refused(tmp_path: Path) -> None:
    repo = repository(tmp_path / "repo")
    (tmp_path / "elsewhere.yaml").write_text(GOOD)
    with pytest.raises(ConfigError, match=r"pipelines file '.*elsewhere\.yaml' is outside the repository"):
        load_config(repo / ".." / "elsewhere.yaml", checkout=repo)


NAMED_FILES = {
    "signing key": ("sign: {key: OUTSIDE}\n", r"pipelines\.yaml:7:13: sign\.key: signing key '/"),
    "trust key": (
        "trust: [{repositories: ['*'], keys: [OUTSIDE]}]\n",
        r"pipelines\.yaml:7:38: trust\[0\]\.keys\[0\]: public key '/",
    ),
    "sigstore trust config": (
        "sigstore: {trust_config: OUTSIDE}\n",
        r"pipelines\.yaml:7:26: sigstore\.trust_config: trust config '/",
    ),
    "CA file": (
        "registries: {'127.0.0.1:5000': {ca_file: OUTSIDE}}\n",
        r"pipelines\.yaml:7:42: registries\.127\.0\.0\.1:5000\.ca_file: CA file '/",
    ),
    "secret file": (
        "    secrets: {npmrc: {file: OUTSIDE}}\n",
        r"pipelines\.yaml:5:29: pipelines\.shop\.secrets\.npmrc\.file: secret file '/",
    ),
    "secret file under ~": (
        "    secrets: {npmrc: {file: ~/.npmrc}}\n",
        r"pipelines\.yaml:5:29: pipelines\.shop\.secrets\.npmrc\.file: secret file '~/\.npmrc' is outside",
    ),
}


@pytest.mark.parametrize("kind", NAMED_FILES)
def test_a_triggered_config_names_no_file_outside_its_checkout(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".npmrc").write_text("//registry.npmjs.org/:_authToken=npm_secret\n")
    outside = shadow(tmp_path)
    line, expected = NAMED_FILES[kind]
    config = GOOD + line.replace("OUTSIDE", str(outside))
    if line.startswith(" "):  # a pipeline's key: before `images:`
        config = GOOD.replace("    images:\n", line.replace("OUTSIDE", str(outside)) + "    images:\n")
    repo = repository(tmp_path / "repo", config)
    with pytest.raises(ConfigError, match=expected) as refused:
        load_config(repo / "pipelines.yaml", checkout=repo)
    message = str(refused.value)
    assert "is outside the repository" in message and message.endswith("reads files of its checkout only")
    assert "\n" not in message and HASH not in message and "npm_secret" not in message
    # Where the user chose the checkout (run, validate), a key or secret elsewhere is theirs to name.
    assert load_config(repo / "pipelines.yaml").file == repo / "pipelines.yaml"


def test_a_triggered_config_may_name_files_of_its_checkout(tmp_path: Path) -> None:
    repo = repository(
        tmp_path / "repo", GOOD.replace("    images:\n", "    secrets: {pip: {file: pip.conf}}\n    images:\n")
    )
    (repo / "pip.conf").write_text("[global]\n")
    assert load_config(repo / "pipelines.yaml", checkout=repo).spec.pipelines["shop"].secrets["pip"].file == "pip.conf"


# `validate -f` on what is no pipelines file: one line, exit 2, at once.
def test_validate_refuses_dev_zero(tmp_path: Path) -> None:
    result = run_cli(["validate", "-f", "/dev/zero"], tmp_path, timeout=60)
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "error: /dev/zero: the pipelines file is a character device, not a regular file; refusing to read it"
    ]


def test_validate_refuses_a_fifo_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipelines.yaml")
    result = run_cli(["validate", "-f", "pipelines.yaml"], tmp_path, timeout=60)  # a hang fails, it never blocks
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "error: pipelines.yaml: the pipelines file is a FIFO, not a regular file; refusing to read it"
    ]


def test_validate_refuses_a_file_over_4_mib(tmp_path: Path) -> None:
    (tmp_path / "pipelines.yaml").write_text("#" * (4 * 1024 * 1024 + 1))
    result = run_cli(["validate"], tmp_path, timeout=60)
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "error: pipelines.yaml: the pipelines file is 4194305 bytes, over the 4 MiB limit; refusing to read it"
    ]


def test_trigger_refuses_a_pushed_config_naming_a_secret_file_outside_the_checkout(tmp_path: Path) -> None:
    outside = shadow(tmp_path)
    repo = repository(tmp_path / "repo")
    head = commit_files(
        repo,
        {"pipelines.yaml": GOOD.replace("    images:\n", f"    secrets: {{pw: {{file: {outside}}}}}\n    images:\n")},
    )
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_STATE_HOME": str(tmp_path / "state")}
    result = run_cli(["trigger", "--repo", str(repo), "--ref", "refs/heads/main", "--after", head], tmp_path, env)
    assert result.code == 2, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: ") and "pipelines.shop.secrets.pw.file: secret file" in last, result.output
    assert "reads files of its checkout only" in last
    assert HASH not in result.output


def test_trigger_refuses_a_pushed_pipelines_file_linked_out_of_the_checkout(tmp_path: Path) -> None:
    outside = shadow(tmp_path)
    repo = repository(tmp_path / "repo")
    (repo / "pipelines.yaml").unlink()
    (repo / "pipelines.yaml").symlink_to(outside)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "link")
    head = git(repo, "rev-parse", "HEAD")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "XDG_STATE_HOME": str(tmp_path / "state")}
    result = run_cli(["trigger", "--repo", str(repo), "--ref", "refs/heads/main", "--after", head], tmp_path, env)
    assert result.code == 2, result.output
    assert f"leads through a symlink to {outside.resolve()}, outside the repository" in result.stderr
    assert HASH not in result.output and "$6$" not in result.output
