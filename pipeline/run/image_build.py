"""One image of a run: inputs -> reuse or build (on an engine slot) -> check the pushed digest and
platform -> its variants and their index -> signed and attested; returns an immutable `ImageOutcome`.
It writes only its own report row and reads its dependencies' outcomes, never their rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

from pipeline.bases.resolve import BaseResolver, ResolvedBase
from pipeline.builders import Backend, BuildOutcome, BuildRequest
from pipeline.cache.inputs import GitBlobs, InputDigest, image_inputs
from pipeline.cache.predict import Reusable, cached_digest, child_lookup
from pipeline.cache.scope import Vouch, scope_of
from pipeline.errors import BuildError, EngineUnavailable, PipelineError
from pipeline.plan import REVISION_LABEL, VERSION_LABEL, Engine, Plan, PlannedImage
from pipeline.registry.client import Manifest
from pipeline.registry.credentials import CredentialLookup
from pipeline.registry.protocol import Registry
from pipeline.registry.reference import ImageRef, Repository
from pipeline.run import build_parts as parts
from pipeline.run.build_parts import of
from pipeline.run.results import (
    BaseGate,
    Built,
    DigestAttester,
    DigestSigner,
    Emit,
    ImageOutcome,
    ImageResult,
    RunOptions,
    Status,
)
from pipeline.run.scheduler import REMOTE, EngineSlots

# Pushes an image index of these child digests to a repository by digest (registry.index.push_index).
IndexWriter = Callable[[Repository, Sequence[str]], Manifest]


class ImageBuild:
    """The build function the scheduler hands each image to (`__call__`)."""

    def __init__(
        self,
        plan: Plan,
        backends: Mapping[str, Backend],
        registry: Registry,
        write_index: IndexWriter,
        credentials: CredentialLookup,
        options: RunOptions,
        emit: Emit,
        slots: EngineSlots,
        urgency: Mapping[str, int],
        outcomes: Mapping[str, ImageOutcome],
        reusable: Mapping[str, str],
        sign: DigestSigner | None = None,
        attest: DigestAttester | None = None,
        gate: BaseGate | None = None,
        blobs: GitBlobs | None = None,
        vouch: Vouch | None = None,
        bases: BaseResolver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`outcomes`: the finished images (the scheduler's); `reusable`: image key -> digest of this
        commit's release, already pushed."""
        self.plan, self.backends, self.registry, self.write_index = plan, backends, registry, write_index
        self.credentials, self.options, self.emit = credentials, options, emit
        self.slots, self.urgency, self.outcomes, self.reusable = slots, urgency, outcomes, reusable
        self.sign, self.attest, self.gate, self.blobs, self.vouch, self.bases = sign, attest, gate, blobs, vouch, bases
        self.clock = clock
        self._base_lookup = bases.digests if bases is not None else None
        self.scope = scope_of(plan.context)
        self.engines: dict[str, Engine] = dict(plan.engines)
        self._builds: dict[str, list[Built]] = {}  # image key -> what was built and pushed for it this run
        self._lock = threading.Lock()

    def __call__(self, image: PlannedImage, row: ImageResult) -> ImageOutcome:
        row.started = self.clock()
        row.started_at = time.time()
        self.emit(image.key, "start", f"building {image.repository}")
        try:
            self._build_and_tag(image, row)
            row.status = Status.SUCCEEDED
            self.emit(image.key, "done", row.reference or f"{image.repository}:{image.tags.primary}")
        except PipelineError as exc:
            row.status = Status.FAILED
            # A variant's error already names it (`shop/base[linux-arm64]: ...`).
            named = str(exc).startswith((f"{image.key}:", f"{image.key}["))
            row.error = str(exc) if named else f"{image.key}: {exc}"
            if isinstance(exc, BuildError):
                row.log_tail = exc.log_tail
                row.failed_step = exc.step
            self.emit(image.key, "failed", row.error, row.log_tail)
        except Exception as exc:  # a bug or an unexpected library error: report it, don't lose the run
            row.status = Status.FAILED
            row.error = f"{image.key}: unexpected error: {type(exc).__name__}: {exc}"
            self.emit(image.key, "failed", row.error)
        finally:
            row.duration = self.clock() - (row.started or self.clock())
            row.finished_at = time.time()
        return ImageOutcome.of(row)

    def _build_and_tag(self, image: PlannedImage, row: ImageResult) -> None:
        if image.key in self.reusable:
            self._reuse_release(image, row, self.reusable[image.key])
            return
        if image.variants:
            self._build_variants(image, row)
            return
        build_args = self._args(image)
        inputs = None
        build_tag = image.tags.primary  # without a push, only a local name
        if self.options.push:
            inputs = image_inputs(self.plan, image, build_args, self._built(image), self.blobs, bases=self._base_lookup)
            row.inputs = inputs.digest
            # The engine pushes under a tag that names this build only: the commit's, else (outside git)
            # the input digest's. Release, floating and extra tags move later, after every image succeeded.
            build_tag = image.tags.build[0] if image.tags.build else self.scope.write_tag(inputs)
        self._gate(image, build_args)
        self._build_one(image, row, build_args, inputs, build_tag)

    def _reuse_release(self, image: PlannedImage, row: ImageResult, release: str) -> None:
        problem = self._vouch_release(image, release)
        if problem is not None:
            raise PipelineError(
                f"{image.key}: {image.repository}:{image.tags.release} is not reused: {problem}; nothing is "
                "signed or published (its labels name this commit, but labels are plain text; --force "
                "rebuilds it and overwrites the tag)"
            )
        why = f"{image.repository}:{image.tags.release} is this commit's build ({release})"
        self._reuse(image, row, release, why, image.tags.primary)
        parts.variants_of_index(self.registry, image, row, release)
        for view in [image.variant_view(v) for v in image.variants] or [image]:
            self._record_bases(view, self._args(view), row)

    def _built(self, image: PlannedImage) -> dict[str, str | None]:
        """The digests of the images `image` depends on (finished: the scheduler's outcomes)."""
        return {dep: self.outcomes[dep].digest for dep in image.depends_on}

    def _args(self, view: PlannedImage) -> dict[str, str]:
        return parts.build_args(self.plan, self.registry, self.outcomes, view, self.options.push)

    def _child_of(self, reference: str, view: PlannedImage) -> str:
        """What a variant builds on in `reference` (see cache.predict.child_lookup)."""
        return child_lookup(self.registry)(reference, view)

    def _reuse(self, image: PlannedImage, row: ImageResult, digest: str, why: str, build_tag: str) -> None:
        """An earlier build is this build: point the build tag at it (and sign it), build nothing."""
        self.emit(image.key, "reuse", why)
        row.engine = None
        if self.registry.resolve_digest(image.repository.with_tag(build_tag)) != digest:
            self.registry.tag(image.repository, digest, build_tag)
        row.digest = digest
        row.tags = [build_tag]
        labels = self.registry.manifest_labels(  # read by the reuse check already: from the content cache
            image.repository, self.registry.manifest_by_digest(image.repository, digest)
        )
        row.built_from = {"version": labels.get(VERSION_LABEL), "revision": labels.get(REVISION_LABEL)}
        self._sign(image, digest)

    def _sign(self, image: PlannedImage, digest: str) -> None:
        """Right after the push, by digest, before any release or floating tag can move. A variant is
        signed with its index (the index and every child, as `cosign sign --recursive`), not twice."""
        if self.sign is not None and image.variant is None:
            done = self.sign(image, digest)
            if done:
                self.emit(image.key, "sign", of(image) + done)
        if self.attest is not None and image.variant is None:
            done = self.attest(image, digest, self._attested(image))
            if done:
                self.emit(image.key, "attest", of(image) + done)

    def _attested(self, image: PlannedImage) -> list[Built]:
        """What provenance says of `image`: its builds this run, and for what was reused (not built now)
        the build args it would have been built with (no digest, no times)."""
        with self._lock:
            builds = list(self._builds.get(image.key, ()))
        done_views = {b.view.variant for b in builds}
        for view in [image.variant_view(v) for v in image.variants] or [image]:
            if view.variant not in done_views:
                args = self._args(view)
                bases = self.bases.bases_of(view, args) if self.bases is not None else ()
                builds.append(Built(view, "", args, None, None, None, None, bases=bases))
        return builds

    def _build_one(
        self,
        image: PlannedImage,
        row: ImageResult,
        build_args: dict[str, str],
        inputs: InputDigest | None,
        build_tag: str,
        image_row: ImageResult | None = None,
    ) -> None:
        """Build one image (or one variant of one: `row` is the variant's, `image_row` its image's) and
        push it under `build_tag`, unless an image with the same inputs is already pushed; then sign it."""
        bases = self._record_bases(image, build_args, image_row or row)
        if inputs is not None and self.options.cache:
            found = self._reusable(image, row, inputs)
            if found.digest is not None:
                why = f"{of(image)}inputs unchanged ({found.tag}): {image.repository}@{found.digest}"
                self._reuse(image, row, found.digest, why, build_tag)
                row.cached = True
                return
        request = self._request(image, build_args, inputs, build_tag, bases)
        outcome = self._build_on_an_engine(image, row, request)
        row.image_id = outcome.image_id
        row.tags = [build_tag]
        if not self.options.push:
            return
        digest = self._pushed_digest(image, request.tag, outcome)
        row.digest = digest
        if inputs is not None and self.scope.write_tag(inputs) != build_tag:
            self.registry.tag(image.repository, digest, self.scope.write_tag(inputs))
        built = Built(
            image,
            digest,
            dict(build_args),
            inputs.digest if inputs is not None else None,
            row.engine,
            row.build_started_at,
            row.build_finished_at,
            outcome.remote_run,
            bases,
        )
        with self._lock:
            self._builds.setdefault(image.key, []).append(built)
        self._sign(image, digest)

    def _request(
        self,
        image: PlannedImage,
        build_args: dict[str, str],
        inputs: InputDigest | None,
        build_tag: str,
        bases: tuple[ResolvedBase, ...],
    ) -> BuildRequest:
        push, cache = self.options.push, self.options.cache
        return BuildRequest(
            image=image.label,
            context=image.context,
            dockerfile=image.dockerfile,
            tag=image.repository.with_tag(build_tag),
            build_args=build_args,
            labels={**parts.labels(self.plan, image), **(inputs.labels() if inputs else {})},
            target=image.target,
            platform=image.platform,
            os_version=image.os_version,
            push=push,
            credentials=self.credentials(image.repository.registry) if push else None,
            network=image.network,
            secrets=image.secrets,
            cache_from=(
                parts.cache_sources(self.plan, self.registry, self.vouch, image, build_tag, self.emit)
                if push and cache
                else ()
            ),
            bases={base.reference: base.pinned for base in bases},
            own=frozenset(self.bases.own) if self.bases is not None else frozenset(),
        )

    def _pushed_digest(self, image: PlannedImage, pushed: ImageRef, outcome: BuildOutcome) -> str:
        """The digest the registry holds under the build tag: the one the push wrote, of the platform asked."""
        self.emit(image.key, "verify", f"{of(image)}reading {pushed} back from the registry")
        digest = self.registry.resolve_digest(pushed)
        if digest is None or digest != outcome.pushed_digest:
            raise PipelineError(
                f"{image.label}: {pushed} points at {digest} in the registry, but the push wrote "
                f"{outcome.pushed_digest} (another push to the same tag?)"
            )
        if image.platform is not None:
            parts.check_pushed_platform(self.registry, image, digest)
        return digest

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
        built = self._built(image)
        if image.variants:
            return image_inputs(self.plan, image, {}, built, self.blobs, self._child_of, self._base_lookup)
        return image_inputs(self.plan, image, self._args(image), built, self.blobs, bases=self._base_lookup)

    def _record_bases(
        self, view: PlannedImage, build_args: Mapping[str, str], row: ImageResult
    ) -> tuple[ResolvedBase, ...]:
        """The external bases `view` (an image or a variant) stands on, resolved once per run (no lookup
        here), kept for the report: on the image's row and, for a variant, on the variant's too."""
        if self.bases is None:
            return ()
        found = self.bases.bases_of(view, build_args)
        with self._lock:
            child = row.variants.get(view.variant) if view.variant is not None else None
            for target in [row] if child is None else [row, child]:
                target.bases += [b for b in found if b not in target.bases]
        return found

    def _reusable(self, image: PlannedImage, row: ImageResult, inputs: InputDigest) -> Reusable:
        """The earlier build with these inputs this run may reuse (cache.predict.cached_digest, the image's
        `reuse:` rule); each candidate refused is said (progress) and kept for the report."""
        found = cached_digest(self.registry, self.plan, image.key, inputs, self.vouch)
        if found.unverified:  # `reuse: trusted` and nothing to verify with: never reused unchecked
            found = Reusable(None, found.tag, (f"not reused: {found.digest} cannot be verified (no signer)",))
        for refused in found.refused:
            shown = f"{of(image)}{refused}; building it"
            self.emit(image.key, "reuse", shown)
            with self._lock:
                row.not_reused.append(shown)
        return found

    def _gate(self, image: PlannedImage, build_args: dict[str, str]) -> None:
        """The trust policy's base-image check, before anything is built or reused."""
        if self.gate is not None:
            for verified in self.gate(image, build_args):
                self.emit(image.key, "trust", f"{of(image)}base image {verified} is signed as the policy requires")

    def _build_on_an_engine(self, image: PlannedImage, row: ImageResult, request: BuildRequest) -> BuildOutcome:
        """Wait for a slot on an engine the image may use and build there. An engine that stops
        answering is marked down for the rest of the run, and an image not pinned to it moves to
        another engine (the build is repeatable: it pushes under the same build tag)."""
        backend = self.backends[image.builder]
        candidates = self._candidates(image, backend)
        progress = lambda step, msg: self.emit(image.key, step, of(image) + msg)  # noqa: E731
        while True:
            slot = self.slots.acquire(candidates, self.urgency[image.key])
            engine = self.engines.get(slot) if backend.uses_engines else None
            if engine is not None and len(self.engines) > 1:
                self.emit(image.key, "engine", f"{of(image)}building on engine {slot}")
            row.build_started_at = time.time()
            row.engine = engine.name if engine is not None else None  # a failed build's report names it too
            try:
                return backend.builder_for(image, engine).build(request, progress)
            except EngineUnavailable as exc:
                self.slots.mark_down(exc.engine)
                if not [c for c in candidates if not self.slots.is_down(c)]:
                    raise
                self.emit(image.key, "engine", f"engine {exc.engine} stopped answering; moving to another engine")
            finally:
                row.build_finished_at = time.time()
                self.slots.release(slot)

    def _candidates(self, image: PlannedImage, backend: Backend) -> tuple[str, ...]:
        """The slots `image` may build in: its pinned engine, else every engine that can build it."""
        if not backend.uses_engines:
            return (REMOTE,)
        if image.engine is not None:
            return (image.engine,)
        return tuple(
            name
            for name, engine in self.engines.items()
            if backend.serves(engine) and engine.builds(image.platform, image.os_version)
        )

    def _build_variants(self, image: PlannedImage, row: ImageResult) -> None:
        """Build every variant (at once, each on an engine or builder that can build it), push each by
        digest, then push the image index listing them: the index is the image from then on. One failing
        variant fails the image, so nothing is tagged."""
        views = [image.variant_view(v) for v in image.variants]
        for view in views:
            row.variants[view.variant or ""] = ImageResult(
                key=view.label, repository=str(image.repository), platform=parts.shown_platform(view)
            )
        # Every variant's base images pass the trust policy before anything is built or reused.
        build_args = {view.variant or "": self._args(view) for view in views}
        for view in views:
            self._gate(view, build_args[view.variant or ""])
        inputs = None
        build_tag = image.tags.primary
        if self.options.push:
            inputs = image_inputs(
                self.plan, image, {}, self._built(image), self.blobs, self._child_of, self._base_lookup
            )
            row.inputs = inputs.digest
            build_tag = image.tags.build[0] if image.tags.build else self.scope.write_tag(inputs)
            found = self._reusable(image, row, inputs) if self.options.cache else None
            if found is not None and found.digest is not None:
                why = f"inputs unchanged ({found.tag}): every variant of {image.repository}@{found.digest}"
                self._reuse(image, row, found.digest, why, build_tag)
                parts.variants_of_index(self.registry, image, row, found.digest)
                for view in views:
                    self._record_bases(view, build_args[view.variant or ""], row)
                row.cached = True
                return
        with ThreadPoolExecutor(max_workers=len(views), thread_name_prefix="variant") as pool:
            futures = [
                pool.submit(
                    self._build_one,
                    view,
                    row.variants[view.variant or ""],
                    build_args[view.variant or ""],
                    inputs.variants[view.variant or ""] if inputs is not None else None,
                    f"{build_tag}-{view.variant}",
                    row,
                )
                for view in views
            ]
            wait(futures)
        self._variants_done(row, views, [f.exception() for f in futures])
        row.tags = [build_tag]
        if self.options.push:
            self._push_index(image, row, build_tag, inputs)

    @staticmethod
    def _variants_done(row: ImageResult, views: list[PlannedImage], failures: list[BaseException | None]) -> None:
        """Each variant's row ended; the image's: its engines and build window (the first failure raised)."""
        for view, failure in zip(views, failures, strict=True):
            child = row.variants[view.variant or ""]
            child.status = Status.FAILED if failure is not None else Status.SUCCEEDED
            if failure is not None:
                child.error = str(failure)
                child.log_tail = failure.log_tail if isinstance(failure, BuildError) else ()
        errors = [f for f in failures if f is not None]
        if errors:
            failed = errors[0]
            if isinstance(failed, BuildError):
                row.engine = next((c.engine for c in row.variants.values() if c.status == Status.FAILED), None)
            raise failed
        children = row.variants.values()
        row.engine = ", ".join(dict.fromkeys(c.engine for c in children if c.engine)) or None
        row.build_started_at = min((c.build_started_at for c in children if c.build_started_at), default=None)
        row.build_finished_at = max((c.build_finished_at for c in children if c.build_finished_at), default=None)

    def _push_index(self, image: PlannedImage, row: ImageResult, build_tag: str, inputs: InputDigest | None) -> None:
        children = [row.variants[v.name].digest or "" for v in image.variants]
        self.emit(image.key, "index", f"pushing the image index of {len(children)} variants")
        index = self.write_index(image.repository, children)
        row.digest = index.digest
        for tag in dict.fromkeys([build_tag, *([self.scope.write_tag(inputs)] if inputs is not None else [])]):
            self.registry.put_manifest(image.repository, tag, index)
        row.cached = all(c.cached for c in row.variants.values())
        self._sign(image, index.digest)
