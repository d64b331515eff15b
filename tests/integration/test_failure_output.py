"""A failing build shows what failed, on BuildKit and on the classic builder: the failing step and its
last 20 output lines on stderr and in the report (`error`, `log_tail`); `--progress plain` streams every
line of the steps' output, `-q` prints only the results, the default one line per step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import (
    BASE_DOCKERFILE,
    FROM_BASE,
    assert_valid_report,
    image_entry,
    init_git,
    run_cli,
    shop_config,
    write_project,
)
from tests.integration.conftest import RegistryPeek, Services

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

FAILING_RUN = 'RUN for i in $(seq 1 30); do echo "numbered line $i"; done; exit 3'
NUMBERED = [f"numbered line {n}" for n in range(1, 31)]
PROGRESS = re.compile(r"^\[\s*([\d.]+)s\] (\S+)\s+(\S+)\s+(.*)$")


def failing_project(root: Path, registry: str, builder: str) -> None:
    write_project(
        root,
        shop_config(
            registry,
            {"base": "", "worker": image_entry("worker", FROM_BASE), "app": image_entry("app", FROM_BASE)},
            top=f"builder: {builder}",
        ),
        {
            "base": BASE_DOCKERFILE,
            "worker": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo worker > /worker\n",
            "app": f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo before > /before\n{FAILING_RUN}\n",
        },
        busybox=("base",),
    )
    init_git(root)


def progress_lines(stderr: str) -> list[tuple[float, str, str, str]]:
    """(elapsed, image, step, message) of each progress line."""
    found = []
    for line in stderr.splitlines():
        match = PROGRESS.match(line)
        if match:
            found.append((float(match.group(1)), match.group(2), match.group(3), match.group(4)))
    return found


def run_failing(root: Path, *options: str) -> tuple[int, str, str, dict[str, dict[str, object]]]:
    result = run_cli(
        ["run", "--version", "1.0.0", "--jobs", "2", "--keep-going", "--report", "report.json", *options], root
    )
    report = assert_valid_report(root / "report.json")
    return result.code, result.stdout, result.stderr, {i["image"]: i for i in report["images"]}


@pytest.mark.parametrize("builder", ["docker", "classic"])
def test_a_failed_step_shows_its_last_20_lines_on_stderr_and_in_the_report(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, builder: str
) -> None:
    failing_project(tmp_path, f"{services.plain_registry}/{namespace}", builder)

    code, stdout, stderr, images = run_failing(tmp_path)

    assert code == 1, stderr
    app = images["shop/app"]
    assert app["status"] == "failed"
    # The error names the image and the failing step, on one line; the tail is the step's last 20 lines.
    error = str(app["error"])
    assert error.startswith("shop/app: build failed at ") and "for i in $(seq 1 30)" in error, error
    assert "\n" not in error
    assert app["log_tail"] == NUMBERED[10:]
    # On stderr: the failed line, then exactly those 20 lines, indented.
    lines = stderr.splitlines()
    failed = next(i for i, line in enumerate(lines) if PROGRESS.match(line) and " failed " in line)
    assert "shop/app" in lines[failed] and "for i in $(seq 1 30)" in lines[failed], lines[failed]
    # The failing command once: the engine's own copy of it (`executor failed running [/bin/sh -c ...]`,
    # `The command '/bin/sh -c ...' returned ...`) is left out, its exit code kept.
    assert lines[failed].count("for i in $(seq 1 30)") == 1 and lines[failed].endswith(": exit code: 3"), lines[failed]
    assert error.count("for i in $(seq 1 30)") == 1, error
    assert lines[failed + 1 : failed + 21] == [f"    | {line}" for line in NUMBERED[10:]]
    assert "numbered line 10" not in stderr
    # By default: one progress line per step, none of the steps' own output.
    events = progress_lines(stderr)
    assert not [e for e in events if e[2] == "log"], stderr
    app_steps = [message for _, image, step, message in events if image == "shop/app" and step == "build"]
    assert app_steps and len(app_steps) == len(set(app_steps)), app_steps
    assert sum("for i in $(seq 1 30)" in step for step in app_steps) == 1, app_steps
    assert not any("LABEL" in step or step.startswith("labels") for step in app_steps), app_steps
    # One clock for the whole run: times never go back, across images.
    times = [elapsed for elapsed, *_ in events]
    assert times == sorted(times), events
    assert {image for _, image, _, _ in events} >= {"shop/base", "shop/worker", "shop/app"}
    # Nothing of the failed image was pushed, and no release tag moved.
    assert plain_peek.all_tags(f"{namespace}/app") == set()
    assert "1.0.0" not in plain_peek.tags(f"{namespace}/worker")
    assert "shop/app" in stdout  # the results still go to stdout


@pytest.mark.parametrize("builder", ["docker", "classic"])
def test_progress_plain_streams_every_line(tmp_path: Path, services: Services, namespace: str, builder: str) -> None:
    failing_project(tmp_path, f"{services.plain_registry}/{namespace}", builder)

    code, _, stderr, images = run_failing(tmp_path, "--progress", "plain")

    assert code == 1, stderr
    logged = [message for _, image, step, message in progress_lines(stderr) if image == "shop/app" and step == "log"]
    assert [line for line in logged if line.startswith("numbered line")] == NUMBERED, logged
    assert images["shop/app"]["log_tail"] == NUMBERED[10:]


@pytest.mark.parametrize("builder", ["docker", "classic"])
def test_quiet_prints_only_the_results(tmp_path: Path, services: Services, namespace: str, builder: str) -> None:
    failing_project(tmp_path, f"{services.plain_registry}/{namespace}", builder)

    code, stdout, stderr, _ = run_failing(tmp_path, "-q")

    assert code == 1, stderr
    events = progress_lines(stderr)
    assert [(image, step) for _, image, step, _ in events] == [("shop/app", "failed")], stderr
    assert stderr.count(FAILING_RUN.removeprefix("RUN ")) == 1, stderr  # the failing RUN line, once
    assert [line for line in stderr.splitlines() if line.startswith("    | ")] == [f"    | {n}" for n in NUMBERED[10:]]
    assert "shop/worker" in stdout and "succeeded" in stdout  # the summary table
