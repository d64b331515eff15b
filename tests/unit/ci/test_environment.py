"""Which CI service a run is in, and the branch and pull request its variables name, per service: branch
builds, pull/merge request builds and tag builds (which have no branch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.ci import CiEnvironment, detect


def test_nothing_is_detected_outside_ci_or_from_a_marker_with_another_value() -> None:
    assert detect({}) is None
    assert detect({"GITHUB_ACTIONS": "false", "GITLAB_CI": "", "TF_BUILD": "False"}) is None


@pytest.mark.parametrize(
    ("environ", "branch", "pr"),
    [
        # a push to a branch with a slash: the whole name, not its last segment
        (
            {"GITHUB_REF": "refs/heads/feature/x", "GITHUB_REF_NAME": "feature/x", "GITHUB_REF_TYPE": "branch"},
            "feature/x",
            None,
        ),
        # a pull request: the source branch; GITHUB_REF_NAME is "7/merge"
        (
            {
                "GITHUB_REF": "refs/pull/7/merge",
                "GITHUB_REF_NAME": "7/merge",
                "GITHUB_REF_TYPE": "branch",
                "GITHUB_HEAD_REF": "fix/y",
            },
            None,  # no event payload says the branch is the repository's own: counted as a fork's
            "7",
        ),
        # a tag push: GITHUB_REF_NAME is the tag, not a branch
        (
            {
                "GITHUB_REF": "refs/tags/v1.2.3",
                "GITHUB_REF_NAME": "v1.2.3",
                "GITHUB_REF_TYPE": "tag",
                "GITHUB_HEAD_REF": "",
            },
            None,
            None,
        ),
    ],
)
def test_github_branch_and_pull_request(environ: dict[str, str], branch: str | None, pr: str | None) -> None:
    found = detect({"GITHUB_ACTIONS": "true", **environ})
    assert found is not None and (found.provider, found.branch, found.pr) == ("github", branch, pr)


def test_github_pull_request_target_takes_the_number_from_the_event_payload(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"number": 42, "pull_request": {"number": 42}}), encoding="utf-8")
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request_target",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REF": "refs/heads/main",  # pull_request_target runs on the base branch's ref
        "GITHUB_HEAD_REF": "contrib/z",
        "GITHUB_OUTPUT": "/tmp/out",
        "GITHUB_STEP_SUMMARY": "/tmp/summary",
        "GITHUB_WORKSPACE": "/work/repo",
    }
    assert detect(environ) == CiEnvironment(
        "github", None, "42", Path("/work/repo"), Path("/tmp/out"), Path("/tmp/summary")
    )
    # a push's payload has no PR number, and an unreadable payload is no number either
    assert detect({**environ, "GITHUB_EVENT_NAME": "push"}).pr is None  # type: ignore[union-attr]
    assert detect({**environ, "GITHUB_EVENT_PATH": str(tmp_path / "missing")}).pr is None  # type: ignore[union-attr]


def _pull_request_event(tmp_path: Path, head: str, base: str) -> str:
    event = tmp_path / "event.json"
    pull = {"number": 7, "head": {"ref": "main", "repo": {"full_name": head}}, "base": {"repo": {"full_name": base}}}
    event.write_text(json.dumps({"number": 7, "pull_request": pull}), encoding="utf-8")
    return str(event)


def test_github_pull_request_branch_only_from_the_repository_itself(tmp_path: Path) -> None:
    """A fork's pull request from its `main` must not build as branch main of this repository."""
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_REF": "refs/pull/7/merge",
        "GITHUB_REF_NAME": "7/merge",
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_HEAD_REF": "main",
    }
    own = detect({**environ, "GITHUB_EVENT_PATH": _pull_request_event(tmp_path, "org/shop", "org/shop")})
    assert own is not None and (own.branch, own.pr) == ("main", "7")
    fork = detect({**environ, "GITHUB_EVENT_PATH": _pull_request_event(tmp_path, "mallory/shop", "org/shop")})
    assert fork is not None and (fork.branch, fork.pr) == (None, "7")


@pytest.mark.parametrize(
    ("environ", "branch", "pr"),
    [
        ({"CI_COMMIT_BRANCH": "feature/x", "CI_COMMIT_REF_NAME": "feature/x"}, "feature/x", None),
        (
            {
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "fix/y",
                "CI_MERGE_REQUEST_IID": "12",
                "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "100",
                "CI_MERGE_REQUEST_PROJECT_ID": "100",
                "CI_COMMIT_REF_NAME": "fix/y",
            },
            "fix/y",
            "12",
        ),
        # a merge request from a fork (another source project): its branch name is the fork owner's choice
        (
            {
                "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "main",
                "CI_MERGE_REQUEST_IID": "13",
                "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "666",
                "CI_MERGE_REQUEST_PROJECT_ID": "100",
                "CI_COMMIT_REF_NAME": "main",
            },
            None,
            "13",
        ),
        ({"CI_COMMIT_TAG": "v1.2.3", "CI_COMMIT_REF_NAME": "v1.2.3"}, None, None),
        ({"CI_COMMIT_REF_NAME": "main"}, "main", None),  # older runners: only the ref name
    ],
)
def test_gitlab_branch_and_merge_request(environ: dict[str, str], branch: str | None, pr: str | None) -> None:
    found = detect({"GITLAB_CI": "true", "CI_PROJECT_DIR": "/builds/g/p", **environ})
    assert found == CiEnvironment("gitlab", branch, pr, Path("/builds/g/p"))


@pytest.mark.parametrize(
    ("environ", "branch", "pr"),
    [
        # BUILD_SOURCEBRANCHNAME would say "x": the full ref is read instead
        ({"BUILD_SOURCEBRANCH": "refs/heads/feature/x", "BUILD_SOURCEBRANCHNAME": "x"}, "feature/x", None),
        (
            {
                "BUILD_SOURCEBRANCH": "refs/pull/5/merge",
                "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/fix/y",
                "SYSTEM_PULLREQUEST_PULLREQUESTID": "998877",
                "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "5",
                "SYSTEM_PULLREQUEST_ISFORK": "False",
            },
            "fix/y",
            "5",
        ),
        # from a fork, or not said: no branch
        (
            {
                "BUILD_SOURCEBRANCH": "refs/pull/6/merge",
                "SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/main",
                "SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "6",
                "SYSTEM_PULLREQUEST_ISFORK": "True",
            },
            None,
            "6",
        ),
        # Azure Repos: no PULLREQUESTNUMBER; the id is the number there
        (
            {"SYSTEM_PULLREQUEST_SOURCEBRANCH": "refs/heads/fix/y", "SYSTEM_PULLREQUEST_PULLREQUESTID": "31"},
            None,
            "31",
        ),
        ({"BUILD_SOURCEBRANCH": "refs/tags/v1.2.3", "BUILD_SOURCEBRANCHNAME": "v1.2.3"}, None, None),
        # only the short name set (a hand-made environment): it is all there is
        ({"BUILD_SOURCEBRANCHNAME": "main"}, "main", None),
    ],
)
def test_azure_branch_and_pull_request(environ: dict[str, str], branch: str | None, pr: str | None) -> None:
    found = detect({"TF_BUILD": "True", "BUILD_SOURCESDIRECTORY": "/agent/s", **environ})
    assert found == CiEnvironment("azure", branch, pr, Path("/agent/s"))
