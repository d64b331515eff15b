"""Runs a plan: dependency order, N images at a time, fail-fast or keep-going, progress events.

Per image: render build args, build, push under the build's own tag, read the digest back from the
registry. Release, floating and extra tags are published last (publish.py), for every image at once,
and only if every image succeeded.
"""

from __future__ import annotations

import enum
import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from pipeline.bases.resolve import BaseResolver, ResolvedBase, plan_builds
from pipeline.builders import Backend, BuildOutcome, BuildRequest, Interruptible
from pipeline.cache.inputs import GitBlobs, InputDigest, image_inputs, variant_references
from pipeline.cache.lastbuild import last_build
from pipeline.cache.predict import Prediction, Reusable, cached_digest, child_lookup, predict
from pipeline.cache.scope import Vouch, scope_of
from pipeline.common.reporting import Forward
from pipeline.errors import (
    BuildError,
    EngineUnavailable,
    Interrupted,
    PipelineError,
    RegistryError,
    UsageError,
    interrupt_of,
)
from pipeline.graph import dependants_closure
from pipeline.plan import (
    CREATED_LABEL,
    REVISION_LABEL,
    SOURCE_LABEL,
    TITLE_LABEL,
    VERSION_LABEL,
    Engine,
    Plan,
    PlannedImage,
    base_variant,
    render_build_args,
)
from pipeline.registry.client import RegistryClient
from pipeline.registry.credentials import CredentialLookup
from pipeline.registry.index import push_index
from pipeline.registry.platforms import check_platform, platform_text
from pipeline.registry.reference import ImageRef
from pipeline.release.claims import ReleaseClaims
from pipeline.release.publish import (
    Action,
    TagChange,
    Target,
    apply_changes,
    check_release_tags,
    decide_changes,
    revision_of,
    verify_published,
)


class Status(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"  # was being built, checked or pushed when a signal stopped the run


@dataclass
class ImageResult:
    key: str
    repository: str
    status: Status = Status.PENDING
    digest: str | None = None
    image_id: str | None = None
    tags: list[str] = field(default_factory=list)
    started: float | None = None  # monotonic clock, for elapsed times
    started_at: float | None = None  # wall clock (epoch seconds), for the report
    finished_at: float | None = None
    duration: float = 0.0
    error: str | None = None
    build_started_at: float | None = None  # wall clock while it held a build slot (None: not built)
    build_finished_at: float | None = None
    inputs: str | None = None  # the input digest (see inputs.py)
    cached: bool = False  # reused an earlier build with the same inputs instead of building
    engine: str | None = None  # where it was built, or its last build failed (None: not built, or remotely)
    log_tail: tuple[str, ...] = ()  # a failed build: the failing step's last output lines
    failed_step: str | None = None  # a failed build: the Dockerfile step that failed, when the builder says
    variants: dict[str, ImageResult] = field(default_factory=dict)  # by variant name (an image index's children)
    platform: str | None = None  # a variant: what it was built for (`windows/amd64 10.0.17763`)
    # A reused image: the version and commit its labels name (those of the earlier build that made it).
    built_from: dict[str, str | None] | None = None
    # Images under this run's input tags that were not reused, and why (README "Reuse and trust").
    not_reused: list[str] = field(default_factory=list)
    # The external base images it stands on, as this run resolved them (an index: its variants', together).
    bases: list[ResolvedBase] = field(default_factory=list)

    @property
    def reference(self) -> str | None:
        return f"{self.repository}@{self.digest}" if self.digest else None


@dataclass
class RunResult:
    images: dict[str, ImageResult]
    duration: float = 0.0
    published: bool = False
    tag_changes: list[TagChange] = field(default_factory=list)
    error: str | None = None  # a run-level failure (publishing), beside per-image errors
    interrupted: str | None = None  # the signal that stopped the run (SIGINT, SIGTERM)

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.interrupted is None
            and all(r.status == Status.SUCCEEDED for r in self.images.values())
        )


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


@dataclass(frozen=True)
class Event:
    image: str
    step: str
    message: str
    elapsed: float  # seconds since the run started (one clock for every image)
    log_tail: tuple[str, ...] = ()  # a "failed" event: the failing step's last output lines


@dataclass(frozen=True)
class RunOptions:
    jobs: int = 1
    keep_going: bool = False
    push: bool = True
    force: bool = False  # overwrite existing release tags
    cache: bool = True  # reuse an image already pushed with the same input digest
    locked: bool = False  # --locked: every external base must be in pipelines.lock


IO_CONCURRENCY = 8
REMOTE = "remote"  # the slots of builds that need no engine (ACR Tasks)


def _shown_platform(image: PlannedImage) -> str:
    return platform_text(image.platform or "", image.os_version)


class NoEngineLeft(BuildError):
    pass


class EngineSlots:
    """Build slots per engine. A waiting image takes a free slot on one of the engines it may use
    (the one with the most free slots); when images compete, the most urgent (longest chain of
    dependants) goes first. An engine marked down gives no more slots."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        self._free = dict(limits)
        self._down: set[str] = set()
        self._cond = threading.Condition()
        self._waiting: dict[tuple[int, int], tuple[str, ...]] = {}
        self._tickets = itertools.count()

    def acquire(self, candidates: tuple[str, ...], urgency: int) -> str:
        with self._cond:
            ticket = (-urgency, next(self._tickets))
            self._waiting[ticket] = candidates
            try:
                while True:
                    live = [c for c in candidates if c not in self._down]
                    if not live:
                        raise NoEngineLeft(f"no engine left to build on ({', '.join(candidates)} stopped answering)")
                    free = [c for c in live if self._free[c] > 0]
                    if free and not self._outranked(ticket, set(free)):
                        chosen = max(free, key=lambda c: self._free[c])
                        self._free[chosen] -= 1
                        return chosen
                    self._cond.wait()
            finally:
                del self._waiting[ticket]
                self._cond.notify_all()

    def _outranked(self, ticket: tuple[int, int], free: set[str]) -> bool:
        return any(other < ticket and free.intersection(c) for other, c in self._waiting.items())

    def release(self, engine: str) -> None:
        with self._cond:
            self._free[engine] += 1
            self._cond.notify_all()

    def mark_down(self, engine: str) -> None:
        with self._cond:
            self._down.add(engine)
            self._cond.notify_all()

    def is_down(self, engine: str) -> bool:
        with self._cond:
            return engine in self._down


def urgencies(plan: Plan) -> dict[str, int]:
    """Each image's longest chain of dependants (itself included): the critical path runs through the
    highest numbers, so they are built first when slots are short."""
    dependants: dict[str, list[str]] = {key: [] for key in plan.images}
    for key, image in plan.images.items():
        for dep in image.depends_on:
            dependants[dep].append(key)
    result: dict[str, int] = {}
    for key in reversed(list(plan.images)):  # plan order is a build order: dependants come later
        result[key] = 1 + max((result[d] for d in dependants[key]), default=0)
    return result


@dataclass(frozen=True)
class Built:
    """What the executor knows of one build it pushed (an image, or one variant of one): what its
    provenance says (run.attesting)."""

    view: PlannedImage  # the image, or the variant's view of it
    digest: str
    build_args: Mapping[str, str]
    input_digest: str | None
    engine: str | None
    started_at: float | None  # wall clock, epoch seconds
    finished_at: float | None
    remote_run: str | None = None  # ACR Tasks' run id
    bases: tuple[ResolvedBase, ...] = ()  # the external bases it stood on, as the run resolved them


EventSink = Callable[[Event], None]
# Signs a pushed digest as the image's pipeline says; returns a progress line (None: not signed).
DigestSigner = Callable[[PlannedImage, str], str | None]
# Attests a pushed digest (and an index's children) from what this run built; returns a progress line.
DigestAttester = Callable[[PlannedImage, str, Sequence[Built]], str | None]
# Checks an image's base images against the trust policy before it is built; returns what it verified.
BaseGate = Callable[[PlannedImage, Mapping[str, str]], list[str]]


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
        self.bases = bases
        self._base_lookup = bases.digests if bases is not None else None
        self.vouch = vouch
        self.scope = scope_of(plan.context)
        self.journals = journals
        self.claims = claims
        self.sign = sign
        self.attest = attest
        self._builds: dict[str, list[Built]] = {}  # image key -> what was built and pushed for it this run
        self.gate = gate
        self.blobs = blobs
        self._predictions: dict[str, Prediction] | None = None
        self.engines: dict[str, Engine] = dict(plan.engines)
        limits = {name: engine.jobs or max(1, options.jobs) for name, engine in self.engines.items()}
        self._slots = EngineSlots({**limits, REMOTE: max(1, options.jobs)})
        self._urgency = urgencies(plan)
        # Registry-bound work (input checks, reuse, tagging) runs wider than builds, which take a slot.
        self.concurrency = max(sum(limits.values()), options.jobs, IO_CONCURRENCY)
        self.plan = plan
        self.backends = backends
        self.registry = registry
        self.credentials = credentials
        self.options = options
        self.on_event = on_event
        self.clock = clock
        self.results = {
            key: ImageResult(key=key, repository=str(image.repository)) for key, image in plan.images.items()
        }
        self._lock = threading.Lock()
        self.reusable: dict[str, str] = {}  # image key -> digest of this commit's release, already pushed

    # --- scheduling -------------------------------------------------------------

    def run(self) -> RunResult:
        """Build, push and publish the plan. A signal (KeyboardInterrupt, Interrupted) raises RunInterrupted
        with what was known when it came."""
        start = self._run_started = self.clock()
        result = RunResult(images=self.results)
        pool: ThreadPoolExecutor | None = None
        try:
            # The bases are looked up while the claim and the release tags are (all read-only); nothing is
            # reused, built or pushed before every one is resolved.
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
                    self.reusable = check_release_tags(
                        targets,
                        ctx.git_sha,
                        ctx.dirty,
                        self.registry,
                        self.options.force,
                        Forward(step=self._emit),
                        self._predicted_digest,
                    )
            except PipelineError:
                # A refused base (which the prediction may have met first) is said as without the overlap.
                if not self._bases_resolved(resolving):
                    result.duration = self.clock() - start
                    return result
                raise
            if not self._bases_resolved(resolving):
                result.duration = self.clock() - start
                return result
            pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="image")
            self._schedule(pool)
            pool.shutdown(wait=True)
            if result.ok and self.options.push:
                self._publish(result)
        except BaseException as exc:
            # Taken before the builds in flight are stopped: stopping them makes them fail.
            stopped = self._stopped(result, start, interrupt_of(exc)) if isinstance(exc, KeyboardInterrupt) else None
            # Ctrl-C: start nothing new and don't wait for builds in flight; nothing floating has moved
            # (unless it came while publishing: the publish journal completes that on the next run).
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            for backend in self.backends.values():
                if isinstance(backend, Interruptible):
                    backend.interrupt()  # remote runs would go on after we exit
            if stopped is not None:
                raise RunInterrupted(interrupt_of(exc).signum, stopped) from exc
            raise
        finally:
            if self.claims is not None and not result.published:
                self.claims.abandon()  # published nothing: the version is free again (registry tags still checked)
        result.duration = self.clock() - start
        return result

    def _stopped(self, result: RunResult, start: float, signal: Interrupted) -> RunResult:
        """A copy of the run's results as they are when `signal` came; build threads go on changing theirs."""
        now, wall = self.clock(), time.time()
        images: dict[str, ImageResult] = {}
        for key, found in list(self.results.items()):
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
            published=False,
            tag_changes=list(result.tag_changes),
            error=result.error,
            interrupted=signal.signal_name,
        )

    def _predicted_digest(self, key: str) -> str | None:
        """The digest the input cache will reuse for `key`, if any (computed once, on demand)."""
        if not self.options.cache:
            return None
        if self._predictions is None:
            self._predictions = predict(self.plan, self.registry, self.blobs, vouch=self.vouch, bases=self._base_lookup)
        return self._predictions[key].digest

    def _resolving_bases(self) -> Future[dict[str, PipelineError]] | None:
        """Every external base of every image and variant being resolved at once (one lookup per distinct
        reference, in parallel), in the background: `_bases_resolved` waits for it."""
        if self.bases is None:
            return None
        bases = self.bases
        builds = plan_builds(self.plan)
        resolving = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bases")
        try:
            return resolving.submit(bases.resolve_all, builds, self.concurrency)
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
        builds = plan_builds(self.plan)
        failed: dict[str, str] = {}
        for view, _ in builds:
            if view.label in refused and view.key not in failed:
                shown = str(refused[view.label])
                failed[view.key] = (
                    shown if shown.startswith((f"{view.key}:", f"{view.key}[")) else f"{view.key}: {shown}"
                )
        first = next(iter(failed))
        for key, result in self.results.items():
            if key in failed:
                result.status, result.error = Status.FAILED, failed[key]
                self._emit(key, "failed", failed[key])
            else:
                self._skip(key, f"not built: the run stopped before building anything (a base image of {first})")
        return False

    def _schedule(self, pool: ThreadPoolExecutor) -> None:
        graph = {key: image.depends_on for key, image in self.plan.images.items()}
        pending = list(self.plan.images)
        running: dict[Future[None], str] = {}
        stopped = False
        while pending or running:
            if not stopped:
                ready = sorted((k for k in pending if self._ready(k)), key=lambda k: -self._urgency[k])
                for key in ready:
                    if len(running) >= self.concurrency:
                        break
                    pending.remove(key)
                    self.results[key].status = Status.RUNNING
                    running[pool.submit(self._run_image, self.plan.images[key])] = key
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                if self.results[key].status != Status.FAILED:
                    continue
                if self.options.keep_going:
                    blocked = dependants_closure(graph, {key}) - {key}
                    for other in [k for k in pending if k in blocked]:
                        pending.remove(other)
                        self._skip(other, f"not built: depends on {key}, which failed")
                else:
                    stopped = True
        for key in pending:
            self._skip(key, "not built: the run stopped at the first failure (use --keep-going)")

    def _ready(self, key: str) -> bool:
        return all(self.results[d].status == Status.SUCCEEDED for d in self.plan.images[key].depends_on)

    def _skip(self, key: str, reason: str) -> None:
        self.results[key].status = Status.SKIPPED
        self.results[key].error = reason
        self._emit(key, "skipped", reason)

    # --- one image ----------------------------------------------------------------

    def _emit(self, key: str, step: str, message: str, log_tail: tuple[str, ...] = ()) -> None:
        started = getattr(self, "_run_started", None)
        elapsed = self.clock() - started if started is not None else 0.0
        self.on_event(Event(image=key, step=step, message=message, elapsed=elapsed, log_tail=log_tail))

    def _run_image(self, image: PlannedImage) -> None:
        result = self.results[image.key]
        result.started = self.clock()
        result.started_at = time.time()
        self._emit(image.key, "start", f"building {image.repository}")
        try:
            self._build_and_tag(image, result)
            result.status = Status.SUCCEEDED
            self._emit(image.key, "done", result.reference or f"{image.repository}:{image.tags.primary}")
        except PipelineError as exc:
            result.status = Status.FAILED
            # A variant's error already names it (`shop/base[linux-arm64]: ...`).
            named = str(exc).startswith((f"{image.key}:", f"{image.key}["))
            result.error = str(exc) if named else f"{image.key}: {exc}"
            if isinstance(exc, BuildError):
                result.log_tail = exc.log_tail
                result.failed_step = exc.step
            self._emit(image.key, "failed", result.error, result.log_tail)
        except Exception as exc:  # a bug or an unexpected library error: report it, don't lose the run
            result.status = Status.FAILED
            result.error = f"{image.key}: unexpected error: {type(exc).__name__}: {exc}"
            self._emit(image.key, "failed", result.error)
        finally:
            result.duration = self.clock() - (result.started or self.clock())
            result.finished_at = time.time()

    def _reuse(self, image: PlannedImage, result: ImageResult, digest: str, why: str, build_tag: str) -> None:
        """An earlier build is this build: point the build tag at it (and sign it), build nothing."""
        self._emit(image.key, "reuse", why)
        result.engine = None
        if self.registry.resolve_digest(image.repository.with_tag(build_tag)) != digest:
            self.registry.tag(image.repository, digest, build_tag)
        result.digest = digest
        result.tags = [build_tag]
        labels = self.registry.manifest_labels(  # read by the reuse check already: from the content cache
            image.repository, self.registry.manifest_by_digest(image.repository, digest)
        )
        result.built_from = {"version": labels.get(VERSION_LABEL), "revision": labels.get(REVISION_LABEL)}
        self._sign(image, digest)

    def _sign(self, image: PlannedImage, digest: str) -> None:
        """Right after the push, by digest, before any release or floating tag can move. A variant is
        signed with its index (the index and every child, as `cosign sign --recursive`), not twice."""
        if self.sign is not None and image.variant is None:
            done = self.sign(image, digest)
            if done:
                self._emit(image.key, "sign", self._of(image) + done)
        if self.attest is not None and image.variant is None:
            with self._lock:
                builds = list(self._builds.get(image.key, ()))
            # Reused (not built now): the build args it would have been built with; no digest, no times.
            done_views = {b.view.variant for b in builds}
            views = [image.variant_view(v) for v in image.variants] or [image]
            for view in views:
                if view.variant not in done_views:
                    args = self._render_build_args(view)
                    bases = self.bases.bases_of(view, args) if self.bases is not None else ()
                    builds.append(Built(view, "", args, None, None, None, None, bases=bases))
            done = self.attest(image, digest, builds)
            if done:
                self._emit(image.key, "attest", self._of(image) + done)

    def _build_and_tag(self, image: PlannedImage, result: ImageResult) -> None:
        if image.key in self.reusable:
            release = self.reusable[image.key]
            problem = self._vouch_release(image, release)
            if problem is not None:
                raise PipelineError(
                    f"{image.key}: {image.repository}:{image.tags.release} is not reused: {problem}; nothing is "
                    "signed or published (its labels name this commit, but labels are plain text; --force "
                    "rebuilds it and overwrites the tag)"
                )
            self._reuse(
                image,
                result,
                release,
                f"{image.repository}:{image.tags.release} is this commit's build ({release})",
                image.tags.primary,
            )
            self._variants_of_index(image, result, release)
            for view in [image.variant_view(v) for v in image.variants] or [image]:
                self._record_bases(view, self._render_build_args(view))
            return
        if image.variants:
            self._build_variants(image, result)
            return
        build_args = self._render_build_args(image)
        inputs = None
        build_tag = image.tags.primary  # without a push, only a local name
        if self.options.push:
            built = {dep: self.results[dep].digest for dep in image.depends_on}
            inputs = image_inputs(self.plan, image, build_args, built, self.blobs, bases=self._base_lookup)
            result.inputs = inputs.digest
            # The engine pushes under a tag that names this build only: the commit's, else (outside git)
            # the input digest's. Release, floating and extra tags move later, after every image succeeded.
            build_tag = image.tags.build[0] if image.tags.build else self.scope.write_tag(inputs)
        self._gate(image, build_args)
        self._build_one(image, result, build_args, inputs, build_tag)

    def _build_one(
        self,
        image: PlannedImage,
        result: ImageResult,
        build_args: dict[str, str],
        inputs: InputDigest | None,
        build_tag: str,
    ) -> None:
        """Build one image (or one variant of one) and push it under `build_tag`, unless an image with
        the same inputs is already pushed; then sign it by digest."""
        bases = self._record_bases(image, build_args)
        if inputs is not None and self.options.cache:
            found = self._reusable(image, result, inputs)
            if found.digest is not None:
                cached = found.digest
                why = f"{self._of(image)}inputs unchanged ({found.tag}): {image.repository}@{cached}"
                self._reuse(image, result, cached, why, build_tag)
                result.cached = True
                return
        pushed = image.repository.with_tag(build_tag)
        request = BuildRequest(
            image=image.label,
            context=image.context,
            dockerfile=image.dockerfile,
            tag=pushed,
            build_args=build_args,
            labels={**self._labels(image), **(inputs.labels() if inputs else {})},
            target=image.target,
            platform=image.platform,
            os_version=image.os_version,
            push=self.options.push,
            credentials=self.credentials(image.repository.registry) if self.options.push else None,
            network=image.network,
            secrets=image.secrets,
            cache_from=self._cache_sources(image, build_tag),
            bases={base.reference: base.pinned for base in bases},
            own=frozenset(self.bases.own) if self.bases is not None else frozenset(),
        )
        outcome = self._build_on_an_engine(image, result, request)
        result.image_id = outcome.image_id
        result.tags = [build_tag]
        if not self.options.push:
            return
        self._emit(image.key, "verify", f"{self._of(image)}reading {pushed} back from the registry")
        digest = self.registry.resolve_digest(pushed)
        if digest is None or digest != outcome.pushed_digest:
            raise PipelineError(
                f"{image.label}: {pushed} points at {digest} in the registry, but the push wrote "
                f"{outcome.pushed_digest} (another push to the same tag?)"
            )
        if image.platform is not None:
            self._check_platform(image, digest)
        result.digest = digest
        if inputs is not None and self.scope.write_tag(inputs) != build_tag:
            self.registry.tag(image.repository, digest, self.scope.write_tag(inputs))
        built = Built(
            image,
            digest,
            dict(build_args),
            inputs.digest if inputs is not None else None,
            result.engine,
            result.build_started_at,
            result.build_finished_at,
            outcome.remote_run,
            bases,
        )
        with self._lock:
            self._builds.setdefault(image.key, []).append(built)
        self._sign(image, digest)

    def _vouch_release(self, image: PlannedImage, digest: str) -> str | None:
        """A release tag of this commit found in the registry is re-published (and signed) as this run's
        build only if the pipeline's signer signed it, whatever its `reuse:` (a signing pipeline never
        signs what it did not verify); with `attest: [provenance]` its provenance must also name the
        input digest this run computes. A pipeline that does not sign re-publishes it as before."""
        if image.sign is None:
            return None
        if self.vouch is None:
            return f"{digest} cannot be verified (no signer)"
        return self.vouch(image, digest, self._release_inputs(image) if "provenance" in image.sign.attest else None)

    def _release_inputs(self, image: PlannedImage) -> InputDigest:
        """The input digest this run would build `image` from (what a release's provenance must name)."""
        built = {dep: self.results[dep].digest for dep in image.depends_on}
        if image.variants:
            return image_inputs(self.plan, image, {}, built, self.blobs, self._child_of, self._base_lookup)
        return image_inputs(
            self.plan, image, self._render_build_args(image), built, self.blobs, bases=self._base_lookup
        )

    def _record_bases(self, view: PlannedImage, build_args: Mapping[str, str]) -> tuple[ResolvedBase, ...]:
        """The external bases `view` (an image or a variant) stands on, resolved once per run (no lookup
        here), kept for the report: on the image's result and, for a variant, on the variant's too."""
        if self.bases is None:
            return ()
        found = self.bases.bases_of(view, build_args)
        with self._lock:
            image = self.results[view.key]
            child = image.variants.get(view.variant) if view.variant is not None else None
            for target in [image] if child is None else [image, child]:
                target.bases += [b for b in found if b not in target.bases]
        return found

    def _reusable(self, image: PlannedImage, result: ImageResult, inputs: InputDigest) -> Reusable:
        """The earlier build with these inputs this run may reuse (cache.predict.cached_digest, the image's
        `reuse:` rule); each candidate refused is said (progress) and kept for the report."""
        found = cached_digest(self.registry, self.plan, image.key, inputs, self.vouch)
        if found.unverified:  # `reuse: trusted` and nothing to verify with: never reused unchecked
            found = Reusable(None, found.tag, (f"not reused: {found.digest} cannot be verified (no signer)",))
        for refused in found.refused:
            shown = f"{self._of(image)}{refused}; building it"
            self._emit(image.key, "reuse", shown)
            with self._lock:
                result.not_reused.append(shown)
        return found

    def _gate(self, image: PlannedImage, build_args: dict[str, str]) -> None:
        """The trust policy's base-image check, before anything is built or reused."""
        if self.gate is not None:
            for verified in self.gate(image, build_args):
                self._emit(
                    image.key, "trust", f"{self._of(image)}base image {verified} is signed as the policy requires"
                )

    @staticmethod
    def _of(image: PlannedImage) -> str:
        """A progress line's prefix naming the variant it is about (nothing for a whole image)."""
        return f"[{image.variant}] " if image.variant else ""

    def _check_platform(self, image: PlannedImage, digest: str) -> None:
        """Fail closed, whatever the builder: an image of another platform than asked for (an engine
        ignoring --platform, a remote runner on another Windows version) is never published as it."""
        manifest = self.registry.manifest_by_digest(image.repository, digest)
        if manifest.is_index:
            problem: str | None = "it is an image index, not one image"
        else:
            config = self.registry.image_config(image.repository, manifest)
            problem = check_platform(config, image.platform or "", image.os_version)
        if problem is not None:
            asked = _shown_platform(image)
            raise BuildError(
                f"{image.label}: the build pushed {image.repository}@{digest} for {asked}, but {problem}; "
                "not published as that variant"
            )

    def _build_variants(self, image: PlannedImage, result: ImageResult) -> None:
        """Build every variant (at once, each on an engine or builder that can build it), push each by
        digest, then push the image index listing them: the index is the image from then on. One failing
        variant fails the image, so nothing is tagged."""
        views = [image.variant_view(v) for v in image.variants]
        for view in views:
            result.variants[view.variant or ""] = ImageResult(
                key=view.label, repository=str(image.repository), platform=_shown_platform(view)
            )
        # Every variant's base images pass the trust policy before anything is built or reused.
        build_args = {view.variant or "": self._render_build_args(view) for view in views}
        for view in views:
            self._gate(view, build_args[view.variant or ""])
        inputs = None
        build_tag = image.tags.primary
        if self.options.push:
            built = {dep: self.results[dep].digest for dep in image.depends_on}
            inputs = image_inputs(self.plan, image, {}, built, self.blobs, self._child_of, self._base_lookup)
            result.inputs = inputs.digest
            build_tag = image.tags.build[0] if image.tags.build else self.scope.write_tag(inputs)
            found = self._reusable(image, result, inputs) if self.options.cache else None
            if found is not None and found.digest is not None:
                cached = found.digest
                why = f"inputs unchanged ({found.tag}): every variant of {image.repository}@{cached}"
                self._reuse(image, result, cached, why, build_tag)
                self._variants_of_index(image, result, cached)
                for view in views:
                    self._record_bases(view, build_args[view.variant or ""])
                result.cached = True
                return
        with ThreadPoolExecutor(max_workers=len(views), thread_name_prefix="variant") as pool:
            futures = [
                pool.submit(
                    self._build_one,
                    view,
                    result.variants[view.variant or ""],
                    build_args[view.variant or ""],
                    inputs.variants[view.variant or ""] if inputs is not None else None,
                    f"{build_tag}-{view.variant}",
                )
                for view in views
            ]
            wait(futures)
        errors = [f.exception() for f in futures if f.exception() is not None]
        for view, future in zip(views, futures, strict=True):
            child = result.variants[view.variant or ""]
            failure = future.exception()
            child.status = Status.FAILED if failure is not None else Status.SUCCEEDED
            if failure is not None:
                child.error = str(failure)
                child.log_tail = failure.log_tail if isinstance(failure, BuildError) else ()
        if errors:
            failed = errors[0]
            if isinstance(failed, BuildError):
                result.engine = next((c.engine for c in result.variants.values() if c.status == Status.FAILED), None)
            raise failed  # type: ignore[misc]
        result.tags = [build_tag]
        result.engine = ", ".join(dict.fromkeys(c.engine for c in result.variants.values() if c.engine)) or None
        result.build_started_at = min(
            (c.build_started_at for c in result.variants.values() if c.build_started_at), default=None
        )
        result.build_finished_at = max(
            (c.build_finished_at for c in result.variants.values() if c.build_finished_at), default=None
        )
        if not self.options.push:
            return
        children = [result.variants[v.name].digest or "" for v in image.variants]
        self._emit(image.key, "index", f"pushing the image index of {len(children)} variants")
        index = push_index(self.registry, image.repository, children)
        result.digest = index.digest
        for tag in dict.fromkeys([build_tag, *([self.scope.write_tag(inputs)] if inputs is not None else [])]):
            self.registry.put_manifest(image.repository, tag, index)
        result.cached = all(c.cached for c in result.variants.values())
        self._sign(image, index.digest)

    def _variants_of_index(self, image: PlannedImage, result: ImageResult, digest: str) -> None:
        """A reused index: each declared variant's child digest, matched by platform (for dependants'
        variants and the report). An index that lacks a declared variant is not this image."""
        if not image.variants:
            return
        index = self.registry.manifest_by_digest(image.repository, digest)
        children = [(str(d["digest"]), d.get("platform") or {}) for d in index.json().get("manifests") or []]
        for variant in image.variants:
            view = image.variant_view(variant)
            # A descriptor's `platform` has the config's keys (os, architecture, variant, os.version).
            found = next(
                (
                    d
                    for d, platform in children
                    if check_platform(platform, variant.platform, variant.os_version) is None
                ),
                None,
            )
            if found is None:
                raise PipelineError(
                    f"{image.key}: {image.repository}@{digest} has no {_shown_platform(view)} image for variant "
                    f"'{variant.name}'"
                )
            child = ImageResult(key=view.label, repository=str(image.repository), platform=_shown_platform(view))
            child.digest, child.status, child.cached = found, Status.SUCCEEDED, True
            result.variants[variant.name] = child

    def _build_on_an_engine(self, image: PlannedImage, result: ImageResult, request: BuildRequest) -> BuildOutcome:
        """Wait for a slot on an engine the image may use and build there. An engine that stops
        answering is marked down for the rest of the run, and an image not pinned to it moves to
        another engine (the build is repeatable: it pushes under the same build tag)."""
        backend = self.backends[image.builder]
        if not backend.uses_engines:
            candidates: tuple[str, ...] = (REMOTE,)
        elif image.engine is not None:
            candidates = (image.engine,)
        else:
            candidates = tuple(
                name
                for name, engine in self.engines.items()
                if backend.serves(engine) and engine.builds(image.platform, image.os_version)
            )
        progress = Forward(step=lambda _key, step, msg: self._emit(image.key, step, self._of(image) + msg))
        while True:
            slot = self._slots.acquire(candidates, self._urgency[image.key])
            engine = self.engines.get(slot) if backend.uses_engines else None
            if engine is not None and len(self.engines) > 1:
                self._emit(image.key, "engine", f"{self._of(image)}building on engine {slot}")
            result.build_started_at = time.time()
            result.engine = engine.name if engine is not None else None  # a failed build's report names it too
            try:
                return backend.builder_for(image, engine).build(request, progress)
            except EngineUnavailable as exc:
                self._slots.mark_down(exc.engine)
                others = [c for c in candidates if not self._slots.is_down(c)]
                if not others:
                    raise
                self._emit(image.key, "engine", f"engine {exc.engine} stopped answering; moving to another engine")
            finally:
                result.build_finished_at = time.time()
                self._slots.release(slot)

    def _cache_sources(self, image: PlannedImage, build_tag: str) -> tuple[str, ...]:
        """Images whose inline layer cache an engine that never built this image may reuse: this
        build's own tag (the same commit built elsewhere before), the last build on this line of
        history (a new commit: usually most layers are unchanged) and the newest release (latest). None
        under `reuse: never`: no earlier image is used, not even for its layer cache."""
        if not self.options.push or not self.options.cache or image.reuse == "never":
            return ()
        refs = [image.repository.with_tag(build_tag)]
        try:
            earlier = last_build(self.registry, image, list(self.plan.context.earlier_commits))
        except RegistryError:
            earlier = None  # only a cache hint: the build itself will meet a registry that is really down
        if earlier is not None:
            refs.append(image.repository.with_tag(earlier.tag))
        refs.append(image.repository.with_tag(f"latest{image.tags.suffix}"))
        if image.reuse != "trusted":
            return tuple(dict.fromkeys(str(ref) for ref in refs))
        return self._trusted_sources(image, list(dict.fromkeys(refs)))

    def _trusted_sources(self, image: PlannedImage, refs: list[ImageRef]) -> tuple[str, ...]:
        """A `reuse: trusted` pipeline's cache sources: only those signed by its signer, by digest (a tag
        may move between the check and the build). An image's inline cache maps cache keys to its layers,
        so a planted one would hand its layers to our build steps."""
        kept: list[str] = []
        for ref in refs:
            try:
                digest = self.registry.resolve_digest(ref)
            except RegistryError:
                digest = None  # only a cache hint
            if digest is None:
                continue
            problem = self.vouch(image, digest, None) if self.vouch is not None else f"{digest} cannot be verified"
            if problem is None:
                kept.append(f"{ref.repository}@{digest}")
            else:
                self._emit(image.key, "cache", f"{self._of(image)}cache source {ref} dropped: {problem}")
        return tuple(dict.fromkeys(kept))

    def _render_build_args(self, image: PlannedImage) -> dict[str, str]:
        """Build args with `{{ images.X }}` as X's pushed digest; a variant builds on X's child of its own
        platform and Windows build (a Windows ltsc2019 app on the Windows ltsc2019 base), not X's index."""
        if image.variant is not None and self.options.push:
            built = {dep: self.results[dep].digest for dep in image.depends_on}
            return render_build_args(self.plan, image, variant_references(self.plan, image, built, self._child_of))
        references = {}
        for dep_key in image.depends_on:
            dep = self.results[dep_key]
            planned = self.plan.images[dep_key]
            if dep.reference is not None:
                references[dep_key] = dep.reference
                continue
            # Without a push each variant is only a local image: `<tag>-<variant>`; there is no index.
            matching = base_variant(planned, image)
            if planned.variants and matching is None:
                raise UsageError(
                    f"{image.label}: builds on {dep_key}, which has variants; without a push there is no "
                    f"image index of them to build on (give {image.name} the same variants, or push)"
                )
            tag = f"{planned.tags.primary}-{matching.name}" if matching is not None else planned.tags.primary
            references[dep_key] = str(ImageRef(planned.repository, tag=tag))
        return render_build_args(self.plan, image, references)

    def _child_of(self, reference: str, view: PlannedImage) -> str:
        """What a variant builds on in `reference` (see cache.predict.child_lookup)."""
        return child_lookup(self.registry)(reference, view)

    def _labels(self, image: PlannedImage) -> dict[str, str]:
        ctx = self.plan.context
        # `created` is the commit's time, not the wall clock: the same commit and version then build
        # the same image (layer cache hit, same digest), so re-running a release is a no-op.
        created = ctx.created or datetime.now(UTC)
        labels = {
            TITLE_LABEL: image.name,
            CREATED_LABEL: created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            VERSION_LABEL: ctx.template_values()["version"],
        }
        if ctx.git_sha:
            labels[REVISION_LABEL] = ctx.git_sha
        if ctx.source_url:
            labels[SOURCE_LABEL] = ctx.source_url
        labels.update(image.labels)
        return labels

    def _publish(self, result: RunResult) -> None:
        targets = [Target(k, i.repository, i.tags, self.results[k].digest) for k, i in self.plan.images.items()]
        # Per-variant tags (2.1.5-ltsc2019) follow the same rules, pointing at the variant's own image.
        owners: dict[str, tuple[str, str]] = {}
        for key, image in self.plan.images.items():
            for name, variant_tags in image.variant_tags.items():
                label = f"{key}[{name}]"
                owners[label] = (key, name)
                targets.append(Target(label, image.repository, variant_tags, self.results[key].variants[name].digest))
        # With a git remote, the read-decide-write below is this runner's alone per repository (a lease).
        guard = self.claims.publishing() if self.claims is not None else nullcontext()
        try:
            with guard:
                result.tag_changes = decide_changes(targets, self.registry, self.options.force)
                journals = self.journals
                journal_dir = (
                    (lambda c: journals(self.plan.images[owners.get(c.image, (c.image, ""))[0]].pipeline))
                    if journals is not None
                    else None
                )
                ctx = self.plan.context
                what = f"version {ctx.template_values()['version']}" + (
                    f" of commit {ctx.git_sha[:12]}" if ctx.git_sha else ""
                )
                claims = self.claims
                if claims is not None:
                    claims.check("writing any tag")  # a lost lease: another runner may be writing these tags
                    claims.started_writing()  # from here the claims stay (some tags may be in the registry)
                apply_changes(result.tag_changes, self.registry, Forward(step=self._emit), journal_dir, what)
                # Another runner (or one without the remote) may have written meanwhile: floating tags end on the
                # highest version present, and every tag this run reports is read back.
                result.tag_changes = verify_published(
                    result.tag_changes,
                    targets,
                    self.registry,
                    Forward(step=self._emit),
                    revision_of(self.registry),
                    guard=claims.check if claims is not None else None,
                    released=claims.released if claims is not None else None,
                )
        except PipelineError as exc:
            result.error = str(exc)
            return
        result.published = True
        for change in result.tag_changes:
            if change.image in owners:
                key, name = owners[change.image]
                tags = self.results[key].variants[name].tags
            else:
                tags = self.results[change.image].tags
            if change.action != Action.STAYS and change.tag not in tags:
                tags.append(change.tag)
