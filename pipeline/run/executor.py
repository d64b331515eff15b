"""Runs a plan: the start-of-run checks (bases, the release claim, this commit's release tags), then the
scheduler (run.scheduler) hands each image to its build (run.image_build), and publishing comes last
(run.publishing), for every image at once, and only if every image succeeded."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

from pipeline.bases.resolve import BaseResolver, plan_builds
from pipeline.builders import Backend, Interruptible
from pipeline.cache.inputs import GitBlobs
from pipeline.cache.predict import Prediction, predict
from pipeline.cache.scope import Vouch
from pipeline.common.reporting import Forward
from pipeline.errors import PipelineError, interrupt_of
from pipeline.plan import Plan, PlannedImage
from pipeline.registry.client import RegistryClient
from pipeline.registry.credentials import CredentialLookup
from pipeline.registry.index import push_index
from pipeline.release.claims import ReleaseClaims
from pipeline.release.publish import Target, check_release_tags
from pipeline.run.image_build import ImageBuild
from pipeline.run.publishing import publish
from pipeline.run.results import (
    BaseGate,
    Built,
    DigestAttester,
    DigestSigner,
    Event,
    EventSink,
    ImageOutcome,
    ImageResult,
    RunOptions,
    RunResult,
    Status,
)
from pipeline.run.scheduler import IO_CONCURRENCY, RunInterrupted, Scheduler, interrupted_result, stopped_result
from pipeline.run.slots import REMOTE, EngineSlots, NoEngineLeft, urgencies

__all__ = [
    "BaseGate",
    "Built",
    "DigestAttester",
    "DigestSigner",
    "EngineSlots",
    "Event",
    "EventSink",
    "Executor",
    "ImageOutcome",
    "ImageResult",
    "NoEngineLeft",
    "RunInterrupted",
    "RunOptions",
    "RunResult",
    "Status",
    "interrupted_result",
    "urgencies",
]


class Executor:
    def __init__(
        self,
        plan: Plan,
        backends: Mapping[str, Backend],
        registry: RegistryClient,
        credentials: CredentialLookup,
        options: RunOptions,
        on_event: EventSink = lambda event: None,
        clock: Callable[[], float] = time.monotonic,
        sign: DigestSigner | None = None,
        attest: DigestAttester | None = None,
        gate: BaseGate | None = None,
        blobs: GitBlobs | None = None,
        journals: Callable[[str], Path] | None = None,
        vouch: Vouch | None = None,
        claims: ReleaseClaims | None = None,
        bases: BaseResolver | None = None,
    ) -> None:
        """`journals`: a pipeline's name -> the directory of its publish journal (None: no journal).
        `vouch`: checks a candidate for reuse, or a cache source, of a `reuse: trusted` pipeline (its signer).
        `claims`: the version's claims on the git remote, shared with other runners (None: no remote).
        `bases`: the run's resolver of external base images (None: bases are not inputs, builds pull tags)."""
        self.plan, self.backends, self.registry, self.credentials = plan, backends, registry, credentials
        self.options, self.on_event, self.clock = options, on_event, clock
        self.sign, self.attest, self.gate, self.blobs = sign, attest, gate, blobs
        self.journals, self.vouch, self.claims, self.bases = journals, vouch, claims, bases
        self._predictions: dict[str, Prediction] | None = None
        limits = {name: engine.jobs or max(1, options.jobs) for name, engine in plan.engines.items()}
        self._slots = EngineSlots({**limits, REMOTE: max(1, options.jobs)})
        urgency = urgencies(plan)
        # Registry-bound work (input checks, reuse, tagging) runs wider than builds, which take a slot.
        self.concurrency = max(sum(limits.values()), options.jobs, IO_CONCURRENCY)
        self.scheduler = Scheduler(plan, self._build, self._emit, self.concurrency, options.keep_going, urgency)
        self.results = self.scheduler.rows
        self.reusable: dict[str, str] = {}  # image key -> digest of this commit's release, already pushed
        self._image_build = ImageBuild(
            plan,
            backends,
            registry,
            partial(push_index, registry),
            credentials,
            options,
            self._emit,
            self._slots,
            urgency,
            self.scheduler.outcomes,
            self.reusable,
            sign=sign,
            attest=attest,
            gate=gate,
            blobs=blobs,
            vouch=vouch,
            bases=bases,
            clock=clock,
        )

    def _build(self, image: PlannedImage, row: ImageResult) -> ImageOutcome:
        return self._image_build(image, row)

    def run(self) -> RunResult:
        """Build, push and publish the plan. A signal (KeyboardInterrupt, Interrupted) raises RunInterrupted
        with what was known when it came."""
        start = self._run_started = self.clock()
        result = RunResult(images=self.results)
        pool: ThreadPoolExecutor | None = None
        try:
            if not self._started(result, start):
                return result
            pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="image")
            self.scheduler.run(pool)
            pool.shutdown(wait=True)
            if result.ok and self.options.push:
                publish(
                    self.plan,
                    self.registry,
                    self.scheduler.outcomes,
                    result,
                    self.options.force,
                    self._emit,
                    self.journals,
                    self.claims,
                )
        except BaseException as exc:
            self._stop(exc, result, start, pool)
            raise
        finally:
            if self.claims is not None and not result.published:
                self.claims.abandon()  # published nothing: the version is free again (registry tags still checked)
        result.duration = self.clock() - start
        return result

    def _started(self, result: RunResult, start: float) -> bool:
        """The start-of-run checks; False (with `result` saying why) when the run stops before building.
        The bases are looked up while the claim and the release tags are (all read-only); nothing is
        reused, built or pushed before every one is resolved."""
        resolving = self._resolving_bases()
        try:
            if self.options.push and self.claims is not None:
                self.claims.claim()  # before any registry write: another runner's claim stops this run here
        except BaseException:
            if resolving is not None:
                resolving.cancel()
            raise
        try:
            if self.options.push:
                targets = [Target(k, i.repository, i.tags) for k, i in self.plan.images.items()]
                ctx = self.plan.context
                self.reusable.update(
                    check_release_tags(
                        targets,
                        ctx.git_sha,
                        ctx.dirty,
                        self.registry,
                        self.options.force,
                        Forward(step=self._emit),
                        self._predicted_digest,
                    )
                )
        except PipelineError:
            # A refused base (which the prediction may have met first) is said as without the overlap.
            if not self._bases_resolved(resolving):
                result.duration = self.clock() - start
                return False
            raise
        if not self._bases_resolved(resolving):
            result.duration = self.clock() - start
            return False
        return True

    def _stop(self, exc: BaseException, result: RunResult, start: float, pool: ThreadPoolExecutor | None) -> None:
        """Anything raised: start nothing new and don't wait for builds in flight; a signal raises
        RunInterrupted with the rows as they were when it came. Nothing floating has moved (unless it
        came while publishing: the publish journal completes that on the next run)."""
        # Taken before the builds in flight are stopped: stopping them makes them fail.
        stopped = None
        if isinstance(exc, KeyboardInterrupt):
            stopped = stopped_result(self.results, result, start, self.clock(), interrupt_of(exc))
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        for backend in self.backends.values():
            if isinstance(backend, Interruptible):
                backend.interrupt()  # remote runs would go on after we exit
        if stopped is not None:
            raise RunInterrupted(interrupt_of(exc).signum, stopped) from exc

    def _emit(self, key: str, step: str, message: str, log_tail: tuple[str, ...] = ()) -> None:
        started = getattr(self, "_run_started", None)
        elapsed = self.clock() - started if started is not None else 0.0
        self.on_event(Event(image=key, step=step, message=message, elapsed=elapsed, log_tail=log_tail))

    def _predicted_digest(self, key: str) -> str | None:
        """The digest the input cache will reuse for `key`, if any (computed once, on demand)."""
        if not self.options.cache:
            return None
        if self._predictions is None:
            lookup = self.bases.digests if self.bases is not None else None
            self._predictions = predict(self.plan, self.registry, self.blobs, vouch=self.vouch, bases=lookup)
        return self._predictions[key].digest

    def _resolving_bases(self) -> Future[dict[str, PipelineError]] | None:
        """Every external base of every image and variant being resolved at once (one lookup per distinct
        reference, in parallel), in the background: `_bases_resolved` waits for it."""
        if self.bases is None:
            return None
        builds = plan_builds(self.plan)
        resolving = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bases")
        try:
            return resolving.submit(self.bases.resolve_all, builds, self.concurrency)
        finally:
            resolving.shutdown(wait=False)

    def _bases_resolved(self, resolving: Future[dict[str, PipelineError]] | None) -> bool:
        """Before anything is built or reused: a base that is missing, or has no image for a variant's
        platform or Windows build, fails its image and the run stops here (nothing is built or pushed).
        False when it stopped."""
        if resolving is None:
            return True
        refused = resolving.result()
        if not refused:
            return True
        failed: dict[str, str] = {}
        for view, _ in plan_builds(self.plan):
            if view.label in refused and view.key not in failed:
                shown = str(refused[view.label])
                failed[view.key] = (
                    shown if shown.startswith((f"{view.key}:", f"{view.key}[")) else f"{view.key}: {shown}"
                )
        first = next(iter(failed))
        for key in self.results:
            if key in failed:
                self.scheduler.fail(key, failed[key])
            else:
                self.scheduler.skip(
                    key, f"not built: the run stopped before building anything (a base image of {first})"
                )
        return False
