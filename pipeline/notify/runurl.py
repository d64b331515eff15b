"""The address of the run a notice is about, when the CI (or `serve`) says it."""

from __future__ import annotations

from collections.abc import Mapping

# Set by `pipeline serve`'s worker for the runs it starts: the run's own status page.
RUN_URL_VARIABLE = "PIPELINE_RUN_URL"


def run_url(environment: Mapping[str, str]) -> str | None:
    """PIPELINE_RUN_URL, else the CI job's page: GitHub Actions, GitLab CI, Azure Pipelines (None: unknown)."""
    env = {name: value for name, value in environment.items() if value}
    if RUN_URL_VARIABLE in env:
        return env[RUN_URL_VARIABLE]
    if {"GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"} <= env.keys():
        url = f"{env['GITHUB_SERVER_URL'].rstrip('/')}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
        return url + (f"/attempts/{env['GITHUB_RUN_ATTEMPT']}" if "GITHUB_RUN_ATTEMPT" in env else "")
    if "CI_JOB_URL" in env:
        return env["CI_JOB_URL"]
    if {"SYSTEM_COLLECTIONURI", "SYSTEM_TEAMPROJECT", "BUILD_BUILDID"} <= env.keys():
        base = env["SYSTEM_COLLECTIONURI"].rstrip("/")
        return f"{base}/{env['SYSTEM_TEAMPROJECT']}/_build/results?buildId={env['BUILD_BUILDID']}"
    return None
