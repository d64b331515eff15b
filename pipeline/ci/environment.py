"""Which CI service a run is inside, and what its variables say about the checkout: branch, pull request,
workspace and the files it reads outputs from. Read once from the environment (by the CLI)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.common.checkout import Checkout

Provider = Literal["github", "gitlab", "azure"]

BRANCH_PREFIX = "refs/heads/"
GITHUB_PR_REF = re.compile(r"^refs/pull/(\d+)/(?:merge|head)$")


@dataclass(frozen=True)
class CiEnvironment:
    provider: Provider
    branch: str | None  # the branch built (a pull request's source branch if not a fork's); None for a tag
    pr: str | None  # the pull/merge request number; None outside one
    workspace: Path | None  # the checkout's root, which annotation paths are relative to
    output_file: Path | None = None  # GitHub: $GITHUB_OUTPUT
    summary_file: Path | None = None  # GitHub: $GITHUB_STEP_SUMMARY


def checkout_of(
    sha: str | None, branch: str | None, root: Path | None, ci: CiEnvironment | None, named: str | None = None
) -> Checkout:
    """The checkout's git and CI facts as every command plans with them (`run`, `plan`, `changed`):
    `named` (a trigger's branch) first, then HEAD's branch, then the CI's branch, since CI checks out
    a detached HEAD; the pull request's number only from the CI. One place, so `changed` and a run
    never plan the same commit with different facts."""
    return Checkout(sha, named or branch or (ci.branch if ci else None), ci.pr if ci else None, root)


def detect(environ: Mapping[str, str]) -> CiEnvironment | None:
    """The CI service whose marker variable is set (GitHub, then GitLab, then Azure), or None."""
    for provider, (variable, value) in MARKERS.items():
        if environ.get(variable, "").lower() == value:
            return READERS[provider](_set_only(environ))
    return None


def _set_only(environ: Mapping[str, str]) -> dict[str, str]:
    """CI services export some variables empty (GITHUB_HEAD_REF outside a pull request): empty is unset."""
    return {k: v for k, v in environ.items() if v}


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def _github(env: Mapping[str, str]) -> CiEnvironment:
    # GITHUB_REF_NAME is the branch only for branch refs: on a tag push it is the tag, on a pull request
    # "N/merge"; a pull request's branch is GITHUB_HEAD_REF.
    if "GITHUB_HEAD_REF" in env:
        branch = env["GITHUB_HEAD_REF"] if _github_same_repository(env) else None
    else:
        branch = env.get("GITHUB_REF_NAME") if env.get("GITHUB_REF_TYPE") == "branch" else None
    return CiEnvironment(
        provider="github",
        branch=branch,
        pr=_github_pr(env),
        workspace=_path(env.get("GITHUB_WORKSPACE")),
        output_file=_path(env.get("GITHUB_OUTPUT")),
        summary_file=_path(env.get("GITHUB_STEP_SUMMARY")),
    )


def _github_event(env: Mapping[str, str]) -> dict[str, object]:
    """The event payload GitHub wrote for the job ({} when there is none to read)."""
    try:
        payload = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))
    except (KeyError, OSError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _github_same_repository(env: Mapping[str, str]) -> bool:
    """Whether a pull request's head branch lives in the repository itself. A fork's branch name is chosen
    by whoever opened the pull request (a fork's `main`), so it never names a branch here; unknown counts
    as a fork."""
    pull = _github_event(env).get("pull_request")
    if not isinstance(pull, dict):
        return False
    names = [
        side.get("repo", {}).get("full_name")
        for side in (pull.get("head"), pull.get("base"))
        if isinstance(side, dict) and isinstance(side.get("repo"), dict)
    ]
    return len(names) == 2 and names[0] is not None and names[0] == names[1]


def _github_pr(env: Mapping[str, str]) -> str | None:
    """refs/pull/N/merge (pull_request events); else the event payload's number, which pull_request_target
    needs (its GITHUB_REF is the base branch)."""
    matched = GITHUB_PR_REF.match(env.get("GITHUB_REF", ""))
    if matched:
        return matched.group(1)
    if not env.get("GITHUB_EVENT_NAME", "").startswith("pull_request"):
        return None
    # No payload to read: no number, which {{ git.pr }} reports if a tag needs it.
    payload = _github_event(env)
    pull = payload.get("pull_request")
    number = payload.get("number") or (pull.get("number") if isinstance(pull, dict) else None)
    return str(number) if isinstance(number, int) else None


def _gitlab(env: Mapping[str, str]) -> CiEnvironment:
    # CI_COMMIT_BRANCH is unset in merge request pipelines and for tags; CI_COMMIT_REF_NAME is the tag then.
    if "CI_MERGE_REQUEST_IID" in env:
        # A merge request from a fork names a branch of the fork, which the fork's owner chose.
        source, target = env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID"), env.get("CI_MERGE_REQUEST_PROJECT_ID")
        same = source is not None and source == target
        branch = env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") if same else None
    else:
        branch = env.get("CI_COMMIT_BRANCH")
    if branch is None and "CI_COMMIT_TAG" not in env and "CI_MERGE_REQUEST_IID" not in env:
        branch = env.get("CI_COMMIT_REF_NAME")
    return CiEnvironment(
        provider="gitlab",
        branch=branch,
        pr=env.get("CI_MERGE_REQUEST_IID"),
        workspace=_path(env.get("CI_PROJECT_DIR")),
    )


def _azure(env: Mapping[str, str]) -> CiEnvironment:
    # BUILD_SOURCEBRANCHNAME is only the last path segment (refs/heads/feature/x gives "x"), so the branch
    # comes from the full ref; a tag build (refs/tags/...) has none.
    ref = env.get("SYSTEM_PULLREQUEST_SOURCEBRANCH") or env.get("BUILD_SOURCEBRANCH", "")
    branch = ref[len(BRANCH_PREFIX) :] if ref.startswith(BRANCH_PREFIX) else None
    if "SYSTEM_PULLREQUEST_SOURCEBRANCH" in env:
        # A fork's branch name is chosen by whoever opened the pull request; unknown counts as a fork.
        branch = branch if env.get("SYSTEM_PULLREQUEST_ISFORK", "").lower() == "false" else None
    if not ref and "BUILD_SOURCEBRANCHNAME" in env:
        branch = env["BUILD_SOURCEBRANCHNAME"]  # only the name given (a job that sets variables itself)
    return CiEnvironment(
        provider="azure",
        branch=branch or None,
        # GitHub-hosted repositories: PULLREQUESTNUMBER is the PR's number and PULLREQUESTID an internal id;
        # Azure Repos set only PULLREQUESTID, which is the number there.
        pr=env.get("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER") or env.get("SYSTEM_PULLREQUEST_PULLREQUESTID"),
        workspace=_path(env.get("BUILD_SOURCESDIRECTORY")),
    )


MARKERS: dict[Provider, tuple[str, str]] = {
    "github": ("GITHUB_ACTIONS", "true"),
    "gitlab": ("GITLAB_CI", "true"),
    "azure": ("TF_BUILD", "true"),  # Azure sets "True"; compared case-insensitively like the others
}
READERS = {"github": _github, "gitlab": _gitlab, "azure": _azure}
