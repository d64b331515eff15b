"""What a run prints while it runs (the progress modes) and the report's failure fields."""

from __future__ import annotations

import io
from pathlib import Path

from pipeline.config import load_config
from pipeline.plan import RunContext, make_plan
from pipeline.run.executor import Event, ImageResult, RunResult, Status
from pipeline.run.report import ProgressMode, ProgressPrinter, print_summary, report_data
from tests.helpers import shop_config, write_project

TAIL = tuple(f"line {n}" for n in range(11, 31))
EVENTS = [
    Event("shop/app", "start", "building 127.0.0.1:5000/shop/app", 0.0),
    Event("shop/app", "build", "[1/2] FROM docker.io/library/busybox", 0.1),
    Event("shop/app", "build", "[2/2] RUN ./make.sh", 0.2),
    *(Event("shop/app", "log", f"line {n}", 0.3) for n in range(1, 31)),
    Event("shop/app", "failed", "shop/app: build failed at [2/2] RUN ./make.sh: exit code: 3", 0.4, TAIL),
]


def printed(mode: ProgressMode, events: list[Event] = EVENTS) -> list[str]:
    stream = io.StringIO()
    printer = ProgressPrinter(mode, stream)
    for event in events:
        printer(event)
    return stream.getvalue().splitlines()


def test_auto_prints_one_line_per_step_and_no_step_output() -> None:
    lines = printed("auto")
    assert [line.split("] ", 1)[1].split()[1] for line in lines if line.startswith("[")] == [
        "start",
        "build",
        "build",
        "failed",
    ]
    assert not any(line.endswith(" line 1") for line in lines)


def test_a_failure_is_followed_by_the_failing_steps_tail_in_every_mode() -> None:
    for mode in ("auto", "plain", "quiet"):
        lines = printed(mode)
        failed = next(i for i, line in enumerate(lines) if " failed " in line)
        assert "shop/app: build failed at [2/2] RUN ./make.sh" in lines[failed], mode
        assert lines[failed + 1 :] == [f"    | line {n}" for n in range(11, 31)], mode


def test_plain_prints_every_line_of_the_steps_output() -> None:
    lines = printed("plain")
    logged = [line.split(" log ", 1)[1].strip() for line in lines if " log " in line]
    assert logged == [f"line {n}" for n in range(1, 31)]


def test_quiet_prints_only_failures() -> None:
    lines = printed("quiet")
    assert len(lines) == 1 + len(TAIL)
    assert " failed " in lines[0]
    assert printed("quiet", EVENTS[:-1]) == []


def test_printed_times_never_go_back() -> None:
    # Another image's thread stamped its event before this one but printed after it.
    events = [Event("shop/app", "build", "[2/2] RUN x", 2.25), Event("shop/worker", "build", "[2/2] RUN y", 2.0)]
    times = [float(line[1:].split("s]", 1)[0]) for line in printed("auto", events)]
    assert times == [2.2, 2.2] or times == [2.3, 2.3], times  # rounding of 2.25 aside: equal, not backwards


def test_the_report_has_the_failing_steps_tail_beside_the_error(tmp_path: Path) -> None:
    config = load_config(
        write_project(
            tmp_path,
            shop_config("127.0.0.1:5000/local", ("base", "app"), network=None),
            {"base": "FROM scratch\n", "app": "FROM scratch\n"},
        )
    )
    plan = make_plan(config.spec, config.base_dir, [], RunContext())
    failed = ImageResult("shop/app", "127.0.0.1:5000/local/app", Status.FAILED, error="shop/app: build failed")
    failed.log_tail = TAIL
    result = RunResult({"shop/base": ImageResult("shop/base", "127.0.0.1:5000/local/base"), "shop/app": failed})

    images = {image["image"]: image for image in report_data(plan, result).data()["images"]}

    assert images["shop/app"]["error"] == "shop/app: build failed"
    assert images["shop/app"]["log_tail"] == list(TAIL)
    assert images["shop/base"]["log_tail"] == []


def test_the_summary_prints_an_error_naming_a_step_in_brackets() -> None:
    # BuildKit names steps "[2/2] RUN ..." and the engine quotes "[/bin/sh -c ...]": text, not markup.
    error = "shop/app: build failed at [2/2] RUN x: executor failed running [/bin/sh -c x]: exit code: 3"
    result = RunResult({"shop/app": ImageResult("shop/app", "r/app", Status.FAILED, error=error)})
    stream = io.StringIO()

    print_summary(result, stream)

    assert "executor failed running [/bin/sh -c x]: exit code: 3" in " ".join(stream.getvalue().split())


def test_in_ci_each_images_lines_are_one_group_printed_when_it_finishes() -> None:
    from pipeline.ci.commands import GROUPS

    events = [
        Event("shop/base", "start", "building r/shop/base", 0.0),
        Event("shop/app", "start", "building r/shop/app", 0.1),
        Event("shop/base", "build", "[1/1] COPY . /", 0.2),
        Event("shop/app", "build", "[1/1] RUN make", 0.3),
        Event("shop/base", "done", "r/shop/base@sha256:1", 0.4),
        Event("shop/app", "failed", "shop/app: build failed", 0.5, ("make: Error 3",)),
        Event("shop/worker", "skipped", "shop/app failed", 0.6),
    ]
    stream = io.StringIO()
    printer = ProgressPrinter("auto", stream, groups=GROUPS["github"])
    for event in events:
        printer(event)
    assert [line[10:].split()[:2] if line.startswith("[") else line for line in stream.getvalue().splitlines()] == [
        ["shop/base", "start"],
        ["shop/app", "start"],
        "::group::shop/base done",
        ["shop/base", "build"],
        ["shop/base", "done"],
        "::endgroup::",
        "::group::shop/app failed",
        ["shop/app", "build"],
        "::endgroup::",
        ["shop/app", "failed"],
        "    | make: Error 3",
        ["shop/worker", "skipped"],
    ]


def test_in_ci_lines_held_long_are_printed_by_the_ticker_without_a_new_event() -> None:
    """A hung build sends no more events: the printer's own thread prints what its group holds."""
    import time

    from pipeline.ci.commands import GROUPS
    from pipeline.ci.groups import GroupedLines

    stream = io.StringIO()
    grouped = GroupedLines(GROUPS["github"], flush_after=0.2)
    printer = ProgressPrinter("auto", stream, grouped=grouped, tick=0.05)
    printer(Event("shop/app", "start", "building r/shop/app", 0.0))
    printer(Event("shop/app", "build", "[1/1] RUN sleep 3600", 0.1))
    deadline = time.monotonic() + 10
    while "::endgroup::" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = stream.getvalue().splitlines()
    assert lines[1:] == [
        "::group::shop/app running",
        lines[2],
        "::endgroup::",
    ] and lines[2].endswith("build   [1/1] RUN sleep 3600")
