"""Attesting a run's pushed digests as each pipeline's `sign: {attest: [...]}` says: SLSA v1 provenance
from what the run knows of the build, a CycloneDX SBOM from what the registry holds, each signed by the
pipeline's signer (key or keyless) and stored where its signatures go.

An image index is attested with every child: each child's provenance and SBOM describe that platform's
build; the index's provenance is the image's, and its SBOM lists the platform images as components.
A reused image (nothing built now) keeps the attestations of the build that made it; where it has none
from this signer, it is attested with this run's facts and no build times."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import cast

from pipeline.attest.provenance import BaseImage, BuilderKind, BuildFacts, provenance_predicate
from pipeline.bases.resolve import BaseResolver
from pipeline.builders import Backend
from pipeline.dockerfile.bases import base_images, dockerfile_text
from pipeline.errors import PipelineError, SigningError
from pipeline.plan import Plan, PlannedImage
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import index_platforms
from pipeline.registry.platforms import platform_text
from pipeline.registry.reference import parse_reference
from pipeline.run.results import Built
from pipeline.sbom import LayerCache, bom_document, read_packages, sbom_document
from pipeline.signing.payloads import CYCLONEDX_BOM, SLSA_PROVENANCE_V1
from pipeline.signing.runsigner import RunSigner
from pipeline.signing.signer import Attestation


def _moment(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.name


class RunAttester:
    def __init__(
        self,
        registry: RegistryClient,
        signer: RunSigner,
        plan: Plan,
        config_file: Path,
        invocation_id: str,
        backends: Mapping[str, Backend] | None = None,
        bases: BaseResolver | None = None,
    ) -> None:
        """`backends`: the run's, by `builder:` name: each says what really builds (`docker` falls back to
        the classic builder where buildx is missing) and the versions to record for an engine. `bases`: the
        run's resolution of external base images, which an image reused rather than built stood on."""
        self.registry = registry
        self.signer = signer
        self.plan = plan
        self.config_file = config_file
        self.invocation_id = invocation_id
        self.backends = backends or {}
        self.bases = bases
        self._bases_of: dict[tuple[str, str | None], tuple[BaseImage, ...]] = {}
        self._resolved: dict[str, str | None] = {}
        self._lock = threading.Lock()
        # The run's images mostly share their bases' layers: each is downloaded and read for SBOMs once.
        self._layers = LayerCache()

    def __call__(self, image: PlannedImage, digest: str, builds: Sequence[Built]) -> str | None:
        """Attest `digest` (and an index's children) as the image's pipeline asks; a progress line."""
        kinds = list(image.sign.attest) if image.sign is not None else []
        signer = self.signer.signer_for(image) if kinds else None
        if signer is None:
            return None
        by_digest = {b.digest: b for b in builds if b.digest}
        by_variant = {b.view.variant: b for b in builds}
        children = index_platforms(self.registry, image.repository, digest)
        subjects: list[tuple[str, PlannedImage, Built | None]] = []
        for child, platform in children:
            built = by_digest.get(child)
            view = built.view if built is not None else self._variant_view(image, platform)
            subjects.append((child, view, built or by_variant.get(view.variant)))
        subjects.append((digest, image, None if children else by_digest.get(digest) or by_variant.get(None)))
        written = already = 0
        for subject, view, built in subjects:
            for kind in kinds:
                request = Attestation(
                    SLSA_PROVENANCE_V1 if kind == "provenance" else CYCLONEDX_BOM,
                    partial(self._provenance if kind == "provenance" else self._sbom, view, subject, built, children),
                )
                outcome = signer.attest(self.registry, image.repository, subject, request)
                written += bool(outcome.written)
                already += not outcome.written and bool(outcome.already)
        shown = " and ".join(kinds)
        platforms = f" and its {len(children)} platform images" if children else ""
        kept = f" ({already} already attested)" if already else ""
        return f"attested {shown} of {digest[:19]}{platforms} as {signer.identity}{kept}"

    def _variant_view(self, image: PlannedImage, platform: str) -> PlannedImage:
        for variant in image.variants:
            view = image.variant_view(variant)
            if platform_text(view.platform or "", view.os_version) == platform:
                return view
        return image

    def _bases(self, view: PlannedImage, built: Built | None) -> tuple[BaseImage, ...]:
        """Once per image or variant: its provenance and its SBOM both name them."""
        key = (view.key, view.variant)
        with self._lock:
            if key in self._bases_of:
                return self._bases_of[key]
        found = self._read_bases(view, built)
        with self._lock:
            self._bases_of[key] = found
        return found

    def _read_bases(self, view: PlannedImage, built: Built | None) -> tuple[BaseImage, ...]:
        """The Dockerfile's base images by digest: pinned ones as written, external ones as the run resolved
        them (the digest the build stood on, `Built.bases`; for an image reused rather than built, the
        run's resolution that its input digest used: never the tag read again), others as the registry
        resolves them now. One that cannot be resolved is a refusal: provenance that leaves out a base would
        say less than it claims."""
        build_args = dict(built.build_args) if built is not None else dict(view.build_args)
        if built is not None:
            stood_on = {base.reference: base.digest for base in built.bases}
        elif self.bases is not None:
            try:
                stood_on = self.bases.digests(view, build_args)
            except PipelineError as exc:
                raise SigningError(f"{view.key}: attesting: {exc}") from None
        else:
            stood_on = {}
        try:
            text = dockerfile_text(view.dockerfile)
        except OSError as exc:
            raise SigningError(f"{view.key}: attesting: cannot read {view.dockerfile}: {exc.strerror}") from None
        found = []
        for base in base_images(
            text, build_args, platform=view.platform, target=view.target, source=view.dockerfile.name
        ):
            digest = base.ref.digest or stood_on.get(str(base.ref)) or self._resolve(str(base.ref))
            if digest is None:
                raise SigningError(f"{view.key}: attesting: base image {base.ref} not found in the registry")
            found.append(BaseImage(str(base.ref), digest))
        return tuple(dict.fromkeys(found))

    def _resolve(self, reference: str) -> str | None:
        with self._lock:
            if reference in self._resolved:
                return self._resolved[reference]
        digest = self.registry.resolve_digest(parse_reference(reference))
        with self._lock:
            self._resolved[reference] = digest
        return digest

    def _kind(self, view: PlannedImage) -> BuilderKind:
        backend = self.backends.get(view.builder)
        kind = backend.kind if backend is not None else {"acr": "acr", "classic": "classic"}.get(view.builder, "buildx")
        return cast(BuilderKind, kind)

    def _versions(self, view: PlannedImage, built: Built | None) -> Mapping[str, str]:
        backend = self.backends.get(view.builder)
        if backend is None or built is None or built.engine is None:
            return {}  # not built now (reused), or remotely
        return backend.versions(self.plan.engines.get(built.engine))

    def _provenance(
        self, view: PlannedImage, digest: str, built: Built | None, children: list[tuple[str, str]]
    ) -> dict[str, object]:
        ctx = self.plan.context
        root = ctx.source_root
        kind = self._kind(view)
        versions = self._versions(view, built)
        facts = BuildFacts(
            config_path=_relative(self.config_file, root),
            pipeline=view.pipeline,
            image=view.name,
            repository=str(view.repository),
            digest=digest,
            builder=kind,
            variant=view.variant,
            version=str(ctx.version) if ctx.version else None,
            target=view.target,
            platform=view.platform,
            os_version=view.os_version,
            build_args=dict(built.build_args) if built is not None else {},
            source_repository=ctx.source_url,
            # A pull request's build is of a merge commit on no branch: no ref is claimed for it.
            source_ref=f"refs/heads/{ctx.git_branch}" if ctx.git_branch and not ctx.git_pr else None,
            commit=ctx.git_sha,
            dirty=ctx.dirty,
            dockerfile=_relative(view.dockerfile, root),
            dockerfile_digest=_file_digest(view.dockerfile),
            context=_relative(view.context, root),
            base_images=() if children and digest not in {c for c, _ in children} else self._bases(view, built),
            input_digest=built.input_digest if built is not None else None,
            engine=built.engine if built is not None else None,
            engine_version=versions.get("engine"),
            buildx_version=versions.get("buildx"),
            acr_registry=view.acr.registry if view.acr is not None and kind == "acr" else None,
            acr_run_id=built.remote_run if built is not None and kind == "acr" else None,
            reason=ctx.reason,
            invocation_id=self.invocation_id,
            started_on=_moment(built.started_at) if built is not None else None,
            finished_on=_moment(built.finished_at) if built is not None else None,
        )
        return provenance_predicate(facts)

    def _sbom(
        self, view: PlannedImage, digest: str, built: Built | None, children: list[tuple[str, str]]
    ) -> dict[str, object]:
        if digest not in {child for child, _ in children} and children:
            # An index has no layers: its SBOM names the platform images it serves.
            platforms = [(str(view.repository), child) for child, _platform in children]
            return bom_document(str(view.repository), digest, read_packages({}), platforms)
        # The SBOM names each base by repository and digest (its purl: pkg:oci/<name>@<digest>).
        bases = [(str(parse_reference(base.reference).repository), base.digest) for base in self._bases(view, built)]
        return sbom_document(self.registry, view.repository, digest, bases, layers=self._layers)


def _file_digest(path: Path) -> str:
    import hashlib

    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise SigningError(f"attesting: cannot read {path}: {exc.strerror}") from None
