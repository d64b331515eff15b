"""`pipeline bases` as a user sees it without a registry: its help, the JSON of a project with no
external base, --update writing an empty lock once, a malformed lock as one line with exit 2, and
`--locked` on every command that builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli, shop_config, write_project

CONFIG = shop_config(
    "127.0.0.1:5000/shop",
    {"base": "", "app": '{context: images/app, depends_on: [base], build_args: {BASE: "{{ images.base }}"}}'},
    network=None,
)
# Only scratch and the run's own image: nothing external, so nothing is asked of a registry.
DOCKERFILES = {"base": "FROM scratch\nCOPY . /\n", "app": "ARG BASE\nFROM ${BASE}\nCOPY . /\n"}


def test_help_names_the_fields_and_shows_examples(tmp_path: Path) -> None:
    shown = run_cli(["bases", "--help"], tmp_path)
    assert shown.code == 0
    text = " ".join(shown.stdout.split())
    fields = '"reference", "platform", "os_version", "current", "index", "locked", "images", "stage_platform"'
    assert f'Print {{"bases": [{{{fields}}}' in text
    assert "Example: pipeline bases # what is out of date" in text
    assert "pipeline bases --update && git commit" in text
    assert "bases" in run_cli(["--help"], tmp_path).stdout


def test_no_external_base_is_an_empty_list_and_an_empty_lock_written_once(tmp_path: Path) -> None:
    write_project(tmp_path, CONFIG, DOCKERFILES)
    listed = run_cli(["bases", "--json"], tmp_path)
    assert listed.code == 0, listed.output
    assert json.loads(listed.stdout) == {"bases": []}
    assert (
        run_cli(["bases"], tmp_path).stdout == "no external base images (only scratch and the pipelines' own images)\n"
    )
    written = run_cli(["bases", "--update", "--json"], tmp_path)
    assert written.code == 0, written.output
    assert json.loads(written.stdout) == {
        "bases": [],
        "moved": [],
        "rebuilds": {"images": [], "dependants": []},
        "lock": "pipelines.lock",
        "written": True,
    }
    assert (tmp_path / "pipelines.lock").read_text().splitlines()[-2:] == ["version: 1", "bases: []"]
    again = run_cli(["bases", "--update"], tmp_path)
    assert again.stdout == "pipelines.lock: up to date (0 base(s)); left untouched\n"


def test_a_malformed_lock_is_one_line_and_exit_2(tmp_path: Path) -> None:
    write_project(tmp_path, CONFIG, DOCKERFILES)
    (tmp_path / "pipelines.lock").write_text("version: 1\nbases: {}\n")
    for args in (["bases"], ["bases", "--update"]):
        failed = run_cli(args, tmp_path)
        assert failed.code == 2
        assert failed.stderr == "error: pipelines.lock: key 'bases' must be a list\n"
    assert (tmp_path / "pipelines.lock").read_text() == "version: 1\nbases: {}\n"


@pytest.mark.parametrize("command", ["run", "release", "trigger", "watch"])
def test_every_command_that_builds_takes_locked(tmp_path: Path, command: str) -> None:
    shown = run_cli([command, "--help"], tmp_path)
    assert "--locked" in shown.stdout
    assert "pipelines.lock" in " ".join(shown.stdout.split())
