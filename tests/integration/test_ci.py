"""`pipeline run` inside GitHub Actions, GitLab CI and Azure Pipelines (their variables set, their files
pointed at temp paths), from a detached-HEAD clone as CI checks out: the exact outputs, dotenv and summary
written, `{{ git.branch }}`/`{{ git.pr }}` tags in the registry, and config errors as annotations."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import git, init_git, run_cli, write_project
from tests.integration.conftest import RegistryPeek, Services

OUTSIDE_CI = {"GITHUB_ACTIONS": "", "GITLAB_CI": "", "TF_BUILD": ""}


def _clone(tmp_path: Path, registry: str) -> Path:
    """One FROM scratch image, committed, cloned and checked out detached (as CI does)."""
    origin = tmp_path / "origin"
    write_project(
        origin,
        f"""\
        registry: {registry}
        pipelines:
          shop:
            images:
              web:
                context: images/web
                tags: {{extra: ["br-{{{{ git.branch }}}}", "pr-{{{{ git.pr }}}}"]}}
        """,
        {"web": "FROM scratch\nCOPY hello /hello\n"},
    )
    (origin / "images" / "web" / "hello").write_text("hello\n", encoding="utf-8")
    sha = init_git(origin)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "checkout", "-q", "--detach", sha)
    return clone


def _same_repository_event(tmp_path: Path) -> Path:
    """A pull request from a branch of the repository itself (a fork's would name no branch)."""
    event = tmp_path / "event.json"
    pull = {"number": 9, "head": {"repo": {"full_name": "org/shop"}}, "base": {"repo": {"full_name": "org/shop"}}}
    event.write_text(json.dumps({"number": 9, "pull_request": pull}), encoding="utf-8")
    return event


def _expected_outputs(report: dict[str, object], digest: str, reference: str, tags: str) -> list[str]:
    images = [
        {"image": "shop/web", "repository": reference.split("@")[0], "digest": digest, "reference": reference}
        | {"tags": tags.split(","), "status": "succeeded"}
    ]
    assert [{k: i[k] for k in images[0]} for i in report["images"]] == images  # type: ignore[attr-defined]
    return [f"images={json.dumps(images, separators=(',', ':'))}", "version=", f"shop-web-digest={digest}"]


def test_github_outputs_summary_groups_and_pr_tags_from_a_detached_clone(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    clone = _clone(tmp_path, f"{services.plain_registry}/{namespace}")
    output, summary, report_file = tmp_path / "out", tmp_path / "summary.md", tmp_path / "report.json"
    output.write_text("earlier=1\n", encoding="utf-8")  # other steps' outputs stay: the file is appended to
    env = OUTSIDE_CI | {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF": "refs/pull/9/merge",
        "GITHUB_REF_NAME": "9/merge",
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_HEAD_REF": "feature/ci",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(_same_repository_event(tmp_path)),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_WORKSPACE": str(clone),
    }
    done = run_cli(["run", "--report", str(report_file)], clone, env)
    assert done.code == 0, done.output

    digest = plain_peek.digest(f"{namespace}/web", "pr-9")
    assert digest is not None and plain_peek.digest(f"{namespace}/web", "br-feature-ci") == digest
    report = json.loads(report_file.read_text(encoding="utf-8"))
    [image] = report["images"]
    tags = ",".join(image["tags"])
    assert {"pr-9", "br-feature-ci"} <= set(image["tags"])
    reference = f"{services.plain_registry}/{namespace}/web@{digest}"
    assert output.read_text(encoding="utf-8").splitlines() == [
        "earlier=1",
        *_expected_outputs(report, digest, reference, tags),
        f"shop-web-ref={reference}",
        f"shop-web-tags={tags}",
    ]
    lines = summary.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "## pipeline run: succeeded"
    assert (
        f"| shop/web | succeeded | {digest} | {tags.replace(',', ', ')} | {image['duration_seconds']:.1f}s |" in lines
    )
    progress = done.stderr.splitlines()
    opened = progress.index("::group::shop/web done")
    assert progress[opened + 1].split("] ", 1)[1].split()[:2] == ["shop/web", "start"]  # the start line inside
    assert progress[opened - 1].split("] ", 1)[1].split()[:2] == ["shop/web", "start"]  # and live, before it
    assert "::endgroup::" in progress[opened:]


def test_gitlab_dotenv_and_azure_output_variables(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    clone = _clone(tmp_path, f"{services.plain_registry}/{namespace}")
    dotenv = tmp_path / "build.env"
    gitlab = OUTSIDE_CI | {
        "GITLAB_CI": "true",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/mr",
        "CI_MERGE_REQUEST_IID": "31",
        "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "100",  # not a fork's: its branch names a branch here
        "CI_MERGE_REQUEST_PROJECT_ID": "100",
        "CI_COMMIT_REF_NAME": "feature/mr",
        "CI_PROJECT_DIR": str(clone),
    }
    done = run_cli(["run", "--dotenv", str(dotenv), "--json"], clone, gitlab)
    assert done.code == 0, done.output
    digest = plain_peek.digest(f"{namespace}/web", "pr-31")
    assert digest is not None and plain_peek.digest(f"{namespace}/web", "br-feature-mr") == digest
    report = json.loads(done.stdout)
    tags = ",".join(report["images"][0]["tags"])
    reference = f"{services.plain_registry}/{namespace}/web@{digest}"
    expected = _expected_outputs(report, digest, reference, tags)
    assert dotenv.read_text(encoding="utf-8").splitlines() == [
        f"PIPELINE_IMAGES={expected[0].split('=', 1)[1]}",
        "PIPELINE_VERSION=",
        f"PIPELINE_SHOP_WEB_DIGEST={digest}",
        f"PIPELINE_SHOP_WEB_REF={reference}",
        f"PIPELINE_SHOP_WEB_TAGS={tags}",
    ]

    azure = OUTSIDE_CI | {
        "TF_BUILD": "True",
        "BUILD_SOURCEBRANCH": "refs/heads/release/2",
        "BUILD_SOURCEBRANCHNAME": "2",
        "BUILD_SOURCESDIRECTORY": str(clone),
    }
    write_project(clone, (clone / "pipelines.yaml").read_text().replace(', "pr-{{ git.pr }}"', ""), {})
    done = run_cli(["run"], clone, azure)
    assert done.code == 0, done.output
    assert plain_peek.digest(f"{namespace}/web", "br-release-2") == digest  # the same inputs: reused
    variables = [line for line in done.stdout.splitlines() if line.startswith("##vso[")]
    prefix = "##vso[task.setvariable variable="
    assert variables[1:3] == [
        f"{prefix}PIPELINE_VERSION;isOutput=true]",
        f"{prefix}PIPELINE_SHOP_WEB_DIGEST;isOutput=true]{digest}",
    ]
    assert variables[0].startswith(f"{prefix}PIPELINE_IMAGES;isOutput=true][{{") and len(variables) == 5
    assert "##[group]shop/web done" in done.stderr.splitlines()
    # --progress given: its lines print live, ungrouped, as outside CI
    done = run_cli(["run", "--progress", "auto"], clone, azure)
    assert done.code == 0 and "##[group]" not in done.stderr and "##[endgroup]" not in done.stderr, done.output


def test_a_config_error_is_an_annotation_on_its_file_line_and_column(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_project(
        repo / "deploy",
        """\
        registry: 127.0.0.1:5000/x
        pipelines:
          shop:
            images:
              web:
                context: images/web
                tags: {extra: ["{{ git.nope }}"]}
        """,
        {"web": "FROM scratch\n"},
    )
    message = "pipelines.shop.images.web.tags.extra[0]: unknown placeholder '{{ git.nope }}' in a tag (known: "
    github = OUTSIDE_CI | {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(repo)}
    done = run_cli(["run"], repo / "deploy", github)
    assert done.code == 2, done.output
    assert done.stderr.startswith("error: pipelines.yaml:7:24: ")  # the ordinary line stays
    [annotation] = done.stdout.splitlines()
    assert annotation.startswith(f"::error file=deploy/pipelines.yaml,line=7,col=24::{message}"), annotation

    azure = OUTSIDE_CI | {"TF_BUILD": "True", "BUILD_SOURCESDIRECTORY": str(repo)}
    done = run_cli(["run"], repo / "deploy", azure)
    [annotation] = done.stdout.splitlines()
    assert annotation.startswith(
        f"##vso[task.logissue type=error;sourcepath=deploy/pipelines.yaml;linenumber=7;columnnumber=24]{message}"
    ), annotation
