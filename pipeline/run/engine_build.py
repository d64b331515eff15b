"""One image (or variant) built on an engine slot, pushed under its build tag and read back: unless an
image with the same inputs is already pushed; an engine that stops answering hands the build to another."""

from __future__ import annotations

import time

from pipeline.bases.resolve import ResolvedBase
from pipeline.builders import Backend, BuildOutcome, BuildRequest
from pipeline.cache.inputs import InputDigest, platform_set_labels
from pipeline.common.reporting import Forward
from pipeline.errors import EngineUnavailable, PipelineError
from pipeline.plan import PlannedImage
from pipeline.registry.reference import ImageRef
from pipeline.run import build_parts as parts
from pipeline.run.build_parts import of
from pipeline.run.image_steps import ImageSteps
from pipeline.run.results import Built, ImageResult
from pipeline.run.slots import REMOTE


class EngineBuild(ImageSteps):
    """Builds one image or variant (`_build_one`); ImageBuild adds the whole image's flow."""

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
            labels={**parts.labels(self.plan, image), **(self._input_labels(inputs) if inputs else {})},
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

    @staticmethod
    def _input_labels(inputs: InputDigest) -> dict[str, str]:
        """An image's (or variant's) input labels; a whole image's variants built at once: platform_set_labels."""
        return platform_set_labels(inputs) if inputs.variants else inputs.labels()

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

    def _build_on_an_engine(
        self, image: PlannedImage, row: ImageResult, request: BuildRequest, candidates: tuple[str, ...] = ()
    ) -> BuildOutcome:
        """Wait for a slot on an engine the image may use (`candidates`, else those that can build it)
        and build there. An engine that stops answering is marked down for the rest of the run, and an
        image not pinned to it moves to another engine (the build is repeatable: it pushes under the same
        build tag)."""
        backend = self.backends[image.builder]
        candidates = candidates or self._candidates(image, backend)
        progress = Forward(step=lambda _key, step, msg: self.emit(image.key, step, of(image) + msg))
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
