"""`pipeline run` inside GitHub Actions, GitLab CI and Azure Pipelines (their variables set, their files
pointed at temp paths), from a detached-HEAD clone as CI checks out: the exact outputs, dotenv and summary
written, `{{ git.branch }}`/`{{ git.pr }}` tags in the registry, and config errors as annotations."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import struct
import subprocess
import sys
import termios
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
import xmlschema

from tests.helpers import (
    BASE_DOCKERFILE,
    app_project,
    assert_valid_report,
    git,
    init_git,
    run_cli,
    shop_config,
    write_project,
)
from tests.integration.conftest import RegistryPeek, Services

JUNIT_XSD = Path(__file__).resolve().parents[1] / "data" / "schemas" / "junit-10.xsd"
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
    report = assert_valid_report(report_file)
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
    starts = [i for i, line in enumerate(progress) if line.split("] ", 1)[-1].split()[:2] == ["shop/web", "start"]]
    assert starts == [opened - 1]  # the start line live, before the group, and only there
    assert "::endgroup::" in progress[opened:]


def test_gitlab_dotenv_and_azure_output_variables(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    clone = _clone(tmp_path, f"{services.plain_registry}/{namespace}")
    dotenv = tmp_path / "reports" / "gitlab" / "build.env"  # none of these directories exists yet: made
    gitlab = OUTSIDE_CI | {
        "GITLAB_CI": "true",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/mr",
        "CI_MERGE_REQUEST_IID": "31",
        "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "100",  # not a fork's: its branch names a branch here
        "CI_MERGE_REQUEST_PROJECT_ID": "100",
        "CI_COMMIT_REF_NAME": "feature/mr",
        "CI_PROJECT_DIR": str(clone),
    }
    files = ["--report", "reports/run.json", "--junit", "reports/junit/junit.xml"]  # as README's jobs name them
    done = run_cli(["run", "--dotenv", str(dotenv), *files, "--json"], clone, gitlab)
    assert done.code == 0, done.output
    assert json.loads((clone / "reports" / "run.json").read_text()) == json.loads(done.stdout)
    assert 'name="web"' in (clone / "reports" / "junit" / "junit.xml").read_text()
    digest = plain_peek.digest(f"{namespace}/web", "pr-31")
    assert digest is not None and plain_peek.digest(f"{namespace}/web", "br-feature-mr") == digest
    report = assert_valid_report(done.stdout)
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


# Lines a failing RUN step prints that the runners would take for commands, were they printed as they are.
LONG = "y" * 110 + "::warning::long"  # rich used to wrap a message of 160 characters so `::` began a line
ATTACKS = ["##vso[task.setvariable variable=EVIL]pwned", "::set-output name=x::y", "::warning::x", LONG]
# Each runner's rule for a command in a line (GitHub's runner also takes its older `##[` anywhere).
RULES = {
    "github": lambda line: line.lstrip().startswith("::") or "##[" in line,
    "azure": lambda line: "##vso[" in line or line.lstrip().startswith("##["),
}
OWN = {  # pipeline's own commands: log groups, outputs, the error annotation
    "github": ("::group::shop/web ", "::endgroup::", "::error::"),
    "azure": (
        "##[group]shop/web ",
        "##[endgroup]",
        "##vso[task.setvariable variable=PIPELINE_",
        "##vso[task.logissue ",
    ),
}


def _one_image(root: Path, registry: str, step: str) -> None:
    """A committed project of one busybox image, `shop/web`, whose last step is `step`."""
    app_project(root, registry, f"{BASE_DOCKERFILE}{step}\n", busybox=True, image="web")
    init_git(root)


def _commands(provider: str, text: str) -> list[str]:
    return [line for line in text.splitlines() if RULES[provider](line)]


def test_build_output_cannot_set_variables_or_annotate_in_ci(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    echoes = "; ".join(f"echo '{line}'" for line in ATTACKS)
    _one_image(tmp_path, f"{services.plain_registry}/{namespace}", f"RUN {echoes}; exit 3")
    output = tmp_path / "out"
    github = OUTSIDE_CI | {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output), "GITHUB_WORKSPACE": str(tmp_path)}
    azure = OUTSIDE_CI | {"TF_BUILD": "True", "BUILD_SOURCESDIRECTORY": str(tmp_path)}
    for provider, env, args in (("github", github, ["--json"]), ("azure", azure, [])):
        done = run_cli(["run", *args], tmp_path, env)
        assert done.code == 1, done.output
        assert ATTACKS[0] in "".join(done.output.split("\u2800")), done.output  # the lines were printed
        found = _commands(provider, done.stdout) + _commands(provider, done.stderr)
        assert [line for line in found if not line.startswith(OWN[provider])] == [], done.output
        assert not any("EVIL" in line or "set-output" in line for line in found), found
        assert any(line.startswith(OWN[provider][0]) for line in done.stderr.splitlines())  # groups still work
        if provider == "github":
            report, _ = json.JSONDecoder().raw_decode(done.stdout)  # the annotation follows it
            [image] = report["images"]  # the --json report: the build's exact lines
            assert [line for line in image["log_tail"] if line in ATTACKS] == ATTACKS, image["log_tail"]
            assert output.read_text(encoding="utf-8").startswith("images=[{")  # outputs still written
        else:
            variables = [line for line in done.stdout.splitlines() if line.startswith(OWN["azure"][2])]
            assert len(variables) == 2, done.stdout  # images and version
            # the table's error line is printed whole, not wrapped at 160 characters
            assert any(
                "build failed" in line and LONG in line.replace("\u2800", "") for line in done.stdout.splitlines()
            )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_grouped_run_prints_the_lines_its_groups_held(
    tmp_path: Path, services: Services, namespace: str, signum: signal.Signals
) -> None:
    seconds = random.randint(600, 999)  # names the step's process: `sleep N` runs on this machine's engine
    _one_image(tmp_path, f"{services.plain_registry}/{namespace}", f"RUN echo held-step && sleep {seconds}")
    env = {**os.environ, **OUTSIDE_CI, "GITHUB_ACTIONS": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test worker (pytest-xdist) may ignore SIGINT, and a child inherits that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # The step runs, and pipeline has read what buildx wrote about it (the step's line is held in the group).
        _wait_until(process, lambda: bool(_running(f"sleep {seconds}")) and _read_all_buildx_wrote(process.pid))
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        _stop(f"sleep {seconds}")
    assert process.returncode == (130 if signum == signal.SIGINT else 143), stderr
    lines = stderr.splitlines()
    reason = "interrupted" if signum == signal.SIGINT else "terminated"
    opened = lines.index(f"::group::shop/web {reason}")
    closed = lines.index("::endgroup::", opened)
    held = [line.split("] ", 1)[1].split(None, 2) for line in lines[opened + 1 : closed]]
    assert ["shop/web", "build", f"[4/4] RUN echo held-step && sleep {seconds}"] in held, stderr
    assert sum(1 for line in lines if " shop/web " in line and " start " in line) == 1  # printed once


def _wait_until(process: subprocess.Popen[str], condition: Callable[[], bool], seconds: float = 180) -> None:
    """Poll `condition` while `process` runs, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)


def _read_all_buildx_wrote(parent: int) -> bool:
    """Whether pipeline (`parent`) has read everything its `docker buildx build` children wrote so far: none
    is left in their stderr pipes (FIONREAD on each pipe, opened through /proc)."""
    children = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(parent)], capture_output=True, text=True)
    builds = [int(line.split()[0]) for line in children.stdout.splitlines() if "buildx build" in line]
    for pid in builds:
        try:
            fd = os.open(f"/proc/{pid}/fd/2", os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return False
        try:
            left = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        finally:
            os.close(fd)
        if left:
            return False
    return bool(builds)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stopped_run_writes_its_report_junit_and_outputs_for_what_it_knew(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, signum: signal.Signals
) -> None:
    exit_code = 128 + signum
    root = tmp_path / signum.name
    seconds = random.randint(600, 999)  # names the step's process: `sleep N` runs on this machine's engine
    write_project(
        root,
        shop_config(f"{services.plain_registry}/{namespace}", ("quick", "slow")),
        {"quick": "FROM scratch\nCOPY hello /hello\n", "slow": f"{BASE_DOCKERFILE}RUN sleep {seconds}\n"},
        busybox=("slow",),
    )
    (root / "images" / "quick" / "hello").write_text(f"hello {seconds}\n", encoding="utf-8")
    sha = init_git(root)
    output, summary = root / "out", root / "summary.md"
    env = {
        **os.environ,
        **OUTSIDE_CI,
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    command = ["run", "--jobs", "2", "--report", "reports/run.json", "--junit", "reports/junit.xml"]
    (root / "reports").mkdir()
    progress = root / "stderr.txt"
    with progress.open("w", encoding="utf-8") as stderr_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", *command],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # see the test above
        )
    try:
        # quick is done (its log group printed, its build tag in the registry) and slow's RUN step is running.
        _wait_until(
            process,
            lambda: (
                "::group::shop/quick done" in progress.read_text(encoding="utf-8").splitlines()
                and plain_peek.digest(f"{namespace}/quick", f"sha-{sha[:12]}") is not None
                and bool(_running(f"sleep {seconds}"))
            ),
        )
        process.send_signal(signum)
        stdout, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        _stop(f"sleep {seconds}")
    stderr = progress.read_text(encoding="utf-8")

    assert process.returncode == exit_code, stderr
    pushed = plain_peek.digest(f"{namespace}/quick", f"sha-{sha[:12]}")
    report = assert_valid_report(root / "reports" / "run.json")
    images = {image["image"]: image for image in report["images"]}
    assert report["ok"] is False and report["interrupted"] == signum.name and report["published"] is False
    assert images["shop/quick"]["status"] == "succeeded" and images["shop/quick"]["digest"] == pushed, images
    assert images["shop/quick"]["reference"] == f"{services.plain_registry}/{namespace}/quick@{pushed}"
    assert images["shop/slow"]["status"] == "interrupted" and images["shop/slow"]["digest"] is None, images
    assert images["shop/slow"]["error"] == f"shop/slow: interrupted by {signum.name} before it finished"
    assert plain_peek.all_tags(f"{namespace}/slow") == set()
    # JUnit: valid, quick passed, slow an error saying it was interrupted.
    junit = (root / "reports" / "junit.xml").read_text(encoding="utf-8")
    xmlschema.XMLSchema(JUNIT_XSD).validate(junit)
    cases = {case.get("name"): case for case in ET.fromstring(junit).iter("testcase")}
    assert list(cases["quick"]) and cases["quick"][0].tag == "system-out", junit
    [error] = list(cases["slow"])
    assert error.tag == "error" and error.get("type") == "interrupted", junit
    assert error.get("message") == f"shop/slow: interrupted by {signum.name} before it finished", junit
    # The step's outputs name quick's digest; the job summary says the run was interrupted.
    lines = output.read_text(encoding="utf-8").splitlines()
    assert f"shop-quick-digest={pushed}" in lines and not any(li.startswith("shop-slow-") for li in lines), lines
    assert summary.read_text(encoding="utf-8").startswith(f"## pipeline run: interrupted by {signum.name}\n")
    reason = "interrupted" if signum == signal.SIGINT else "terminated"
    assert f"{reason}: no release or floating tag was moved by the unfinished run" in stderr.splitlines()
    assert "shop/quick" in stdout and "interrupted" in stdout  # the summary table


def _running(args: str) -> list[int]:
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [int(line.split(None, 1)[0]) for line in ps.splitlines() if line.split(None, 1)[1:] == [args]]


def _stop(args: str) -> None:
    """The build step the run left (its engine goes on without it), by its process id."""
    for pid in _running(args):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_unwritable_outputs_after_publishing_are_a_warning(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    clone = _clone(tmp_path, f"{services.plain_registry}/{namespace}")
    missing = tmp_path / "missing" / "out"
    env = OUTSIDE_CI | {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/pull/9/merge", "GITHUB_OUTPUT": str(missing)}
    done = run_cli(["run", "--version", "1.0.0"], clone, env)
    assert done.code == 0, done.output  # the release is published: it succeeded
    assert plain_peek.digest(f"{namespace}/web", "1.0.0") is not None
    [warning] = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith(f"warning: {missing}: cannot write the step outputs: No such file or directory; ")
    assert "::error" not in done.stdout
    # nothing published (--no-push): the outputs are all the run made, so it fails for them
    done = run_cli(["run", "--no-push"], clone, env)
    assert done.code == 1 and f"error: {missing}: cannot write the step outputs" in done.stderr, done.output
