"""The scheduler alone, with a build function in memory: dependency order, fail-fast or keep-going,
dependants of a failure skipped, and dependants reading the immutable outcome of what they build on."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.plan import Plan, PlannedImage
from pipeline.run.results import ImageOutcome, ImageResult, Status
from pipeline.run.scheduler import Scheduler
from pipeline.run.slots import urgencies
from tests.unit.run.fakes import plan_of

# a fails; b stands alone; c builds on a; d on b.
IMAGES = (
    "      a: {context: images/a}\n"
    "      b: {context: images/b}\n"
    "      c: {context: images/c, depends_on: [a]}\n"
    "      d: {context: images/d, depends_on: [b]}\n"
)


class Builds:
    """A build function: `fails` fail, the rest succeed with a digest; records the order and what each
    image saw of its dependencies (their outcomes, as the scheduler holds them)."""

    def __init__(self, fails: set[str]) -> None:
        self.fails = fails
        self.order: list[str] = []
        self.saw: dict[str, dict[str, str | None]] = {}
        self.scheduler: Scheduler | None = None
        self._lock = threading.Lock()

    def __call__(self, image: PlannedImage, row: ImageResult) -> ImageOutcome:
        assert self.scheduler is not None
        with self._lock:
            self.order.append(image.name)
            self.saw[image.name] = {d: self.scheduler.outcomes[d].digest for d in image.depends_on}
        row.status = Status.FAILED if image.name in self.fails else Status.SUCCEEDED
        row.digest = None if image.name in self.fails else "sha256:" + image.name * 64
        return ImageOutcome.of(row)


def schedule(plan: Plan, builds: Builds, keep_going: bool, concurrency: int = 1) -> Scheduler:
    said: list[tuple[str, str, str]] = []
    scheduler = Scheduler(
        plan, builds, lambda key, step, message, log_tail=(): said.append((key, step, message)), concurrency,
        keep_going, urgencies(plan),
    )  # fmt: skip
    builds.scheduler = scheduler
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        scheduler.run(pool)
    return scheduler


def rows(scheduler: Scheduler) -> dict[str, tuple[str, str | None]]:
    return {key.removeprefix("shop/"): (row.status.value, row.error) for key, row in scheduler.rows.items()}


def test_dependencies_first_and_each_dependant_sees_its_dependency_s_outcome(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, IMAGES, "abcd")
    builds = Builds(fails=set())
    scheduler = schedule(plan, builds, keep_going=False)
    assert builds.order.index("a") < builds.order.index("c") and builds.order.index("b") < builds.order.index("d")
    assert builds.saw == {
        "a": {},
        "b": {},
        "c": {"shop/a": "sha256:" + "a" * 64},
        "d": {"shop/b": "sha256:" + "b" * 64},
    }
    assert all(row.status == Status.SUCCEEDED for row in scheduler.rows.values())
    # What dependants read is immutable: a build can't change a finished image's digest under them.
    with pytest.raises(AttributeError):
        scheduler.outcomes["shop/a"].digest = "sha256:changed"  # type: ignore[misc]


def test_the_first_failure_stops_the_run_and_everything_not_started_is_skipped(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, IMAGES, "abcd")
    builds = Builds(fails={"a"})
    scheduler = schedule(plan, builds, keep_going=False)
    assert builds.order == ["a"]  # the most urgent first (a has a dependant, like b; a comes first in the plan)
    stopped = "not built: the run stopped at the first failure (use --keep-going)"
    assert rows(scheduler) == {
        "a": ("failed", None),
        "b": ("skipped", stopped),
        "c": ("skipped", stopped),
        "d": ("skipped", stopped),
    }


def test_keep_going_builds_the_rest_and_skips_only_what_depends_on_the_failure(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, IMAGES, "abcd")
    builds = Builds(fails={"a"})
    scheduler = schedule(plan, builds, keep_going=True)
    assert sorted(builds.order) == ["a", "b", "d"]
    assert rows(scheduler) == {
        "a": ("failed", None),
        "b": ("succeeded", None),
        "c": ("skipped", "not built: depends on shop/a, which failed"),
        "d": ("succeeded", None),
    }
    assert set(scheduler.outcomes) == {"shop/a", "shop/b", "shop/d"}


class CountedUrgency(dict[str, int]):
    """The scheduler's urgencies, each lookup counted: what it costs to choose the next image."""

    lookups = 0

    def __getitem__(self, key: str) -> int:
        self.lookups += 1
        return super().__getitem__(key)


def test_a_finished_image_costs_its_dependants_not_a_scan_of_everything_pending(tmp_path: Path) -> None:
    """300 images (chains of ten, as bench/noop_floor.py's), one at a time: each image's urgency is looked
    up once, when it becomes ready, not once per image finished (a 1,000-image run's main thread)."""
    images = "".join(
        f"      i{n:03d}: {{context: images/base{'' if n % 10 == 0 else f', depends_on: [i{n - n % 10:03d}]'}}}\n"
        for n in range(300)
    )
    plan = plan_of(tmp_path, images, ["base"])
    urgency = CountedUrgency(urgencies(plan))
    builds = Builds(fails=set())
    scheduler = Scheduler(plan, builds, lambda *_: None, 1, False, urgency)
    builds.scheduler = scheduler
    with ThreadPoolExecutor(max_workers=1) as pool:
        scheduler.run(pool)
    assert [row.status for row in scheduler.rows.values()] == [Status.SUCCEEDED] * 300
    assert builds.order[:2] == ["i000", "i010"]  # the chains' heads first: each has nine dependants
    assert urgency.lookups <= 300
