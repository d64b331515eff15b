"""One image of a run: inputs -> reuse or build (on an engine slot) -> check the pushed digest and
platform -> its variants and their index -> signed and attested; returns an immutable `ImageOutcome`.
It writes only its own report row and reads its dependencies' outcomes, never their rows."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait

from pipeline.cache.inputs import InputDigest, image_inputs
from pipeline.errors import BuildError, PipelineError
from pipeline.plan import PlannedImage
from pipeline.run import build_parts as parts
from pipeline.run.platform_set import PlatformSetBuild
from pipeline.run.results import ImageOutcome, ImageResult, Status


class ImageBuild(PlatformSetBuild):
    """The build function the scheduler hands each image to (`__call__`)."""

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

    def _build_variants(self, image: PlannedImage, row: ImageResult) -> None:
        """Build every variant (at once, each on an engine or builder that can build it), push each by
        digest, then push the image index listing them: the index is the image from then on. One failing
        variant fails the image, so nothing is tagged. Variants that differ only in platform, on engines
        that build several platforms at once, are one build instead (platform_set)."""
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
            if self.options.cache and self._reused_index(image, row, inputs, build_tag, build_args):
                return
            group = self._platform_set(views, build_args, row)
            if group is not None:
                self._build_platform_set(image, row, group, inputs, build_tag)
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

    def _reused_index(
        self,
        image: PlannedImage,
        row: ImageResult,
        inputs: InputDigest,
        build_tag: str,
        args: dict[str, dict[str, str]],
    ) -> bool:
        """An index with every variant's inputs already pushed is this image (True): tagged, signed, reported."""
        found = self._reusable(image, row, inputs)
        if found.digest is None:
            return False
        why = f"inputs unchanged ({found.tag}): every variant of {image.repository}@{found.digest}"
        self._reuse(image, row, found.digest, why, build_tag)
        parts.variants_of_index(self.registry, image, row, found.digest)
        for view in [image.variant_view(v) for v in image.variants]:
            self._record_bases(view, args[view.variant or ""], row)
        row.cached = True
        return True

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
