"""Walks a plan's images in dependency order and hands each to a build function: N at a time, the most
urgent first (run.slots: the engine slots the build itself then waits for), fail-fast or keep-going, and
what a signal leaves behind. It never sees a builder or a registry (skaffold's scheduler apart from its
builders)."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from pipeline.errors import Interrupted, interrupt_of
from pipeline.graph import dependants_closure
from pipeline.plan import Plan, PlannedImage
from pipeline.run.results import Emit, ImageOutcome, ImageResult, RunResult, Status

IO_CONCURRENCY = 8

# Builds one image on a pool thread, writing only its own report row; returns how it ended.
BuildFn = Callable[[PlannedImage, ImageResult], ImageOutcome]


class RunInterrupted(Interrupted):
    """A run stopped by a signal, with what it knew at that moment: images done stay as they were (pushed,
    with their digests), those under way are `interrupted`, those not started `skipped`."""

    def __init__(self, signum: int, result: RunResult) -> None:
        super().__init__(signum)
        self.result = result


def interrupted_result(plan: Plan, exc: KeyboardInterrupt) -> RunResult:
    """What a run stopped by `exc` knew: the executor's (RunInterrupted), or (stopped before it started
    building: checking engines, registries, keys) every image not built."""
    if isinstance(exc, RunInterrupted):
        return exc.result
    name = interrupt_of(exc).signal_name
    why = f"not built: the run was interrupted by {name} before building began"
    return RunResult(
        images={
            key: ImageResult(key=key, repository=str(image.repository), status=Status.SKIPPED, error=why)
            for key, image in plan.images.items()
        },
        interrupted=name,
    )


@dataclass(eq=False)  # identity: one run's walk
class Scheduler:
    """Owns the run's report rows and the outcomes of finished images. A row is written by its image's
    build alone while it runs; dependants read only `outcomes` (immutable), filled here once a build is
    over and before any dependant starts."""

    plan: Plan
    build: BuildFn
    emit: Emit
    concurrency: int
    keep_going: bool
    urgency: Mapping[str, int]
    rows: dict[str, ImageResult] = field(init=False)
    _outcomes: dict[str, ImageOutcome] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.rows = {
            key: ImageResult(key=key, repository=str(image.repository)) for key, image in self.plan.images.items()
        }

    @property
    def outcomes(self) -> Mapping[str, ImageOutcome]:
        return self._outcomes

    def run(self, pool: ThreadPoolExecutor) -> None:
        """Every image built or skipped: in dependency order, at most `concurrency` at once. Each image
        waits for a count of dependencies, ready ones in a heap by urgency (then plan order): a finished
        image costs its dependants, not a scan of everything pending (a 1,000-image run's main thread)."""
        images = self.plan.images
        pending = dict.fromkeys(images)  # in plan order
        order = {key: n for n, key in enumerate(images)}
        waiting = {key: len(set(image.depends_on)) for key, image in images.items()}
        dependants: dict[str, list[str]] = {}
        for key, image in images.items():
            for dep in set(image.depends_on):
                dependants.setdefault(dep, []).append(key)
        ready = [(-self.urgency[key], order[key], key) for key, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        running: dict[Future[ImageOutcome], str] = {}
        stopped = False
        while pending or running:
            while not stopped and ready and len(running) < self.concurrency:
                key = heapq.heappop(ready)[2]
                if key not in pending:
                    continue  # skipped: it depends on a failure
                del pending[key]
                self.rows[key].status = Status.RUNNING
                running[pool.submit(self.build, images[key], self.rows[key])] = key
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                key = running.pop(future)
                self._outcomes[key] = outcome
                if outcome.status == Status.FAILED:
                    stopped = stopped or not self._failed(key, pending)
                elif outcome.status == Status.SUCCEEDED:
                    for dependant in dependants.get(key, ()):
                        waiting[dependant] -= 1
                        if waiting[dependant] == 0:
                            heapq.heappush(ready, (-self.urgency[dependant], order[dependant], dependant))
        for key in pending:
            self.skip(key, "not built: the run stopped at the first failure (use --keep-going)")

    def _failed(self, key: str, pending: dict[str, None]) -> bool:
        """After `key` failed: with keep-going, skip what depends on it and go on (True); else stop."""
        if not self.keep_going:
            return False
        graph = {k: image.depends_on for k, image in self.plan.images.items()}
        blocked = dependants_closure(graph, {key}) - {key}
        for other in [k for k in pending if k in blocked]:
            del pending[other]
            self.skip(other, f"not built: depends on {key}, which failed")
        return True

    def skip(self, key: str, reason: str) -> None:
        self.rows[key].status = Status.SKIPPED
        self.rows[key].error = reason
        self.emit(key, "skipped", reason)

    def fail(self, key: str, error: str) -> None:
        self.rows[key].status, self.rows[key].error = Status.FAILED, error
        self.emit(key, "failed", error)


def stopped_result(
    rows: Mapping[str, ImageResult], result: RunResult, start: float, now: float, signal: Interrupted
) -> RunResult:
    """A copy of the run's rows as they are when `signal` came (build threads go on changing theirs):
    images under way are `interrupted`, those not started `skipped`. `start`, `now`: on the run's clock."""
    wall = time.time()
    images: dict[str, ImageResult] = {}
    for key, found in list(rows.items()):
        image = replace(found, tags=list(found.tags), variants={n: replace(v) for n, v in found.variants.items()})
        if image.status in (Status.RUNNING, Status.PENDING) and image.started is not None:
            image.status = Status.INTERRUPTED
            image.error = f"{key}: interrupted by {signal.signal_name} before it finished"
            image.finished_at = wall
            image.duration = now - image.started
            for variant in image.variants.values():
                if variant.status in (Status.RUNNING, Status.PENDING):
                    variant.status = Status.INTERRUPTED
        elif image.status in (Status.RUNNING, Status.PENDING):
            image.status = Status.SKIPPED
            image.error = f"not built: the run was interrupted by {signal.signal_name}"
        images[key] = image
    return RunResult(
        images=images,
        duration=now - start,
        tag_changes=list(result.tag_changes),
        error=result.error,
        interrupted=signal.signal_name,
    )
