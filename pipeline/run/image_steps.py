"""The steps around building one image: dependencies' digests (their immutable outcomes), build args,
reuse of an earlier build, signing and attesting by digest, the trust gate, the bases it stands on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from pipeline.bases.resolve import BaseResolver, ResolvedBase
from pipeline.builders import Backend
from pipeline.cache.inputs import GitBlobs, InputDigest, image_inputs
from pipeline.cache.predict import Reusable, cached_digest, child_lookup
from pipeline.cache.scope import Vouch, scope_of
from pipeline.plan import REVISION_LABEL, VERSION_LABEL, Engine, Plan, PlannedImage
from pipeline.registry.client import Manifest
from pipeline.registry.credentials import CredentialLookup
from pipeline.registry.protocol import Registry
from pipeline.registry.reference import Repository
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
)
from pipeline.run.slots import EngineSlots

# Pushes an image index of these child digests to a repository by digest (registry.index.push_index).
IndexWriter = Callable[[Repository, Sequence[str]], Manifest]


class ImageSteps:
    """What one image's build keeps and the steps around building: its dependencies' digests, build
    args, reuse, signing and attesting, the trust gate, the bases it stands on."""

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
