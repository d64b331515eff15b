"""A CI checkout (a detached HEAD) as a plan sees it: the branch and pull request come from the CI's
variables, `{{ git.branch }}` and `{{ git.pr }}` tags render from them and are left out where the build
has none, and such a build arg is an error naming the template and its place in pipelines.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.plan import Plan
from pipeline.run.session import Session
from pipeline.run.settings import Settings
from tests.helpers import git, init_git, write_project

CONFIG = """\
registry: r.example/ci
pipelines:
  shop:
    images:
      app:
        context: images/app
        tags: {extra: ["br-{{ git.branch }}", "pr-{{ git.pr }}"]}
"""
PR_BUILD = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_REF": "refs/pull/7/merge",
    "GITHUB_REF_NAME": "7/merge",
    "GITHUB_REF_TYPE": "branch",
    "GITHUB_HEAD_REF": "feature/x",
}


def _project(tmp_path: Path, *, detach: bool) -> Path:
    config = write_project(tmp_path, CONFIG, {"app": "FROM scratch\n"})
    init_git(tmp_path)
    if detach:
        git(tmp_path, "checkout", "-q", "--detach")
    return config


def _plan(config: Path, environ: dict[str, str]) -> Plan:
    return Session(load_config(config), Settings.from_environment(environ)).plan((), None)


def test_a_pull_request_build_on_a_detached_head_tags_the_ci_branch_and_number(tmp_path: Path) -> None:
    config = _project(tmp_path, detach=True)
    plan = _plan(config, PR_BUILD | _event(tmp_path, "org/shop"))
    assert plan.context.git_branch == "feature/x"
    assert plan.images["shop/app"].tags.extra == ("br-feature-x", "pr-7")


def test_a_pull_request_from_a_fork_names_no_branch(tmp_path: Path) -> None:
    """Its branch name is the fork owner's choice (`main`): it must not tag or claim this repository's main."""
    config = _project(tmp_path, detach=True)
    plan = _plan(config, PR_BUILD | {"GITHUB_HEAD_REF": "main"} | _event(tmp_path, "mallory/shop"))
    assert plan.context.git_branch is None
    assert plan.images["shop/app"].tags.extra == ("pr-7",)  # no made-up `br-unknown`


def _event(tmp_path: Path, head_repository: str) -> dict[str, str]:
    event = tmp_path / "event.json"
    pull = {"head": {"repo": {"full_name": head_repository}}, "base": {"repo": {"full_name": "org/shop"}}}
    event.write_text(json.dumps({"number": 7, "pull_request": pull}), encoding="utf-8")
    return {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)}


def test_an_attached_branch_wins_over_the_ci_variables(tmp_path: Path) -> None:
    plan = _plan(_project(tmp_path, detach=False), PR_BUILD)
    assert plan.images["shop/app"].tags.extra == ("br-main", "pr-7")


def test_a_git_pr_tag_is_left_out_outside_a_pull_request(tmp_path: Path) -> None:
    """Like a version tag in a run without a version: one config serves branch builds and PR builds."""
    config = _project(tmp_path, detach=True)
    push = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_REF_TYPE": "branch",
    }
    assert _plan(config, push).images["shop/app"].tags.extra == ("br-main",)


def test_git_pr_in_a_build_arg_outside_a_pull_request_is_an_error(tmp_path: Path) -> None:
    config = write_project(
        tmp_path,
        CONFIG.replace('tags: {extra: ["br-{{ git.branch }}", "pr-{{ git.pr }}"]}', 'build_args: {PR: "{{ git.pr }}"}'),
        {"app": "FROM scratch\n"},
    )
    with pytest.raises(ConfigError, match=r"pipelines.yaml:\d+:\d+: .*build arg template '\{\{ git.pr \}\}' uses"):
        _plan(config, {"GITLAB_CI": "true", "CI_COMMIT_BRANCH": "main"})
    assert _plan(config, {"GITLAB_CI": "true", "CI_MERGE_REQUEST_IID": "4"}).context.git_pr == "4"


TAG_BUILD = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_REF": "refs/tags/v1",
    "GITHUB_REF_NAME": "v1",
    "GITHUB_REF_TYPE": "tag",
}


def test_a_git_branch_tag_is_left_out_of_a_tag_build(tmp_path: Path) -> None:
    """Before, a tag build (detached, no branch) was tagged `br-unknown`, a tag every tag build moved."""
    plan = _plan(_project(tmp_path, detach=True), TAG_BUILD)
    assert plan.context.git_branch is None
    assert plan.images["shop/app"].tags.all == (f"sha-{git(tmp_path, 'rev-parse', 'HEAD')[:12]}",)


def test_a_git_branch_tag_is_left_out_of_a_detached_head_outside_ci(tmp_path: Path) -> None:
    plan = _plan(_project(tmp_path, detach=True), {})
    assert not [t for t in plan.images["shop/app"].tags.all if "unknown" in t or t.startswith("br-")]


def test_git_branch_in_a_build_arg_of_a_tag_build_is_an_error(tmp_path: Path) -> None:
    config = write_project(
        tmp_path,
        CONFIG.replace(
            'tags: {extra: ["br-{{ git.branch }}", "pr-{{ git.pr }}"]}', 'build_args: {BRANCH: "b={{ git.branch }}"}'
        ),
        {"app": "FROM scratch\n"},
    )
    init_git(tmp_path)
    git(tmp_path, "checkout", "-q", "--detach")
    with pytest.raises(
        ConfigError,
        match=r"pipelines.yaml:7:\d+: .*build arg template 'b=\{\{ git.branch \}\}' uses \{\{ git.branch \}\}, "
        "but this build is on no branch",
    ):
        _plan(config, TAG_BUILD)
    branch_build = TAG_BUILD | {"GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch"}
    assert _plan(config, branch_build).images["shop/app"].build_args == {"BRANCH": "b={{ git.branch }}"}


def test_a_variants_build_arg_is_held_to_the_same_rule(tmp_path: Path) -> None:
    """A variant's own build args were not checked: rendering them later failed with a traceback (KeyError)."""
    variants = 'variants: {amd: {platform: linux/amd64, build_args: {PR: "{{ git.pr }}"}}}'
    config = write_project(
        tmp_path,
        CONFIG.replace('tags: {extra: ["br-{{ git.branch }}", "pr-{{ git.pr }}"]}', variants),
        {"app": "FROM scratch\n"},
    )
    with pytest.raises(ConfigError, match=r"variants.amd.build_args.PR: build arg template '\{\{ git.pr \}\}' uses"):
        _plan(config, {"GITLAB_CI": "true", "CI_COMMIT_BRANCH": "main"})
