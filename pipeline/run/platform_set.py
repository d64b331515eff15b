"""The variants of one image that differ only in platform, built by ONE build on an engine that can make
several platforms at once (`buildx build --platform a,b`: a containerd image store, or a buildx builder of
the docker-container, remote or kubernetes driver); the index that build pushes checked child by child and
its children taken as the variants. Anything else builds one variant per build (image_build)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline.bases.resolve import ResolvedBase
from pipeline.cache.inputs import InputDigest, variant_references
from pipeline.errors import BuildError
from pipeline.plan import PlannedImage, render_build_args
from pipeline.registry.client import image_descriptors
from pipeline.registry.index import children_for
from pipeline.run import build_parts as parts
from pipeline.run.engine_build import EngineBuild
from pipeline.run.results import Built, ImageResult, Status


@dataclass(frozen=True)
class PlatformSet:
    """What one build of several platforms is given: the build args and bases every variant shares, and
    the engines that may build it (each able to build every platform at once)."""

    views: tuple[PlannedImage, ...]
    build_args: dict[str, str]
    bases: dict[str, str]  # reference -> `repository@digest` (the index where the platforms' children differ)
    resolved: dict[str, tuple[ResolvedBase, ...]]  # variant name -> its bases as resolved for its platform
    candidates: tuple[str, ...]

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(view.platform or "" for view in self.views)


class PlatformSetBuild(EngineBuild):
    """Adds to EngineBuild the build of a whole platform set at once (ImageBuild decides when)."""

    def _platform_set(
        self, views: list[PlannedImage], args: dict[str, dict[str, str]], row: ImageResult
    ) -> PlatformSet | None:
        """The variants as one platform set, or None (built per variant, as ever): only with a push (the
        variants' per-variant local tags are what an unpushed dependant builds on), no Windows platform (each
        Windows version stands on its own base, on an engine of that version), one builder, the same
        engines, each able to build several platforms at once, and, once each dependency's child of the
        variant's platform is set back to its index, the same build args and bases."""
        windows = any(v.os_version is not None or (v.platform or "").startswith("windows/") for v in views)
        if not self.options.push or len(views) < 2 or windows:
            return None
        if len({v.builder for v in views}) != 1 or len({v.platform for v in views}) != len(views):
            return None
        backend = self.backends[views[0].builder]
        candidates = {self._candidates(view, backend) for view in views}
        if len(candidates) != 1 or not backend.uses_engines:
            return None
        shared = candidates.pop()
        if not shared or not all(backend.multi_platform(self.engines[name]) for name in shared):
            return None
        built = self._built(views[0])
        together = [render_build_args(self.plan, v, variant_references(self.plan, v, built, None)) for v in views]
        if any(found != together[0] for found in together):
            return None
        resolved = {v.variant or "": self._record_bases(v, args[v.variant or ""], row) for v in views}
        bases = _shared_bases(list(resolved.values()))
        if bases is None:
            return None
        return PlatformSet(tuple(views), together[0], bases, resolved, shared)

    def _build_platform_set(
        self, image: PlannedImage, row: ImageResult, group: PlatformSet, inputs: InputDigest, build_tag: str
    ) -> None:
        """One build of every platform, pushed as one index under the build tag; each child checked and
        tagged as its variant (`<build tag>-<variant>`, its inputs tag), the index signed as one built per
        variant is. A failure names the image and the platform; nothing is tagged then."""
        views = group.views
        self.emit(image.key, "build", f"building {', '.join(group.platforms)} in one buildx invocation")
        whole = replace(image, builder=views[0].builder, engine=views[0].engine, variants=(), platform=None)
        first = self._request(whole, group.build_args, inputs, build_tag, ())
        request = replace(first, platforms=group.platforms, bases=group.bases)
        try:
            outcome = self._build_on_an_engine(whole, row, request, group.candidates)
            index = self._pushed_digest(whole, request.tag, outcome)
            children = self._children(image, index, views)
        except Exception as exc:
            for view in views:
                child = row.variants[view.variant or ""]
                child.status, child.error, child.engine = Status.FAILED, str(exc), row.engine
                child.log_tail = exc.log_tail if isinstance(exc, BuildError) else ()
            raise
        row.image_id, row.digest, row.tags = outcome.image_id, index, [build_tag]
        for view in views:
            name = view.variant or ""
            child = row.variants[name]
            child.digest, child.status, child.engine = children[name], Status.SUCCEEDED, row.engine
            child.build_started_at, child.build_finished_at = row.build_started_at, row.build_finished_at
            child.tags = [f"{build_tag}-{name}"]
            for tag in dict.fromkeys([f"{build_tag}-{name}", self.scope.write_tag(inputs.variants[name])]):
                self.registry.tag(image.repository, children[name], tag)
            built = Built(
                view,
                children[name],
                dict(group.build_args),
                inputs.variants[name].digest,
                row.engine,
                row.build_started_at,
                row.build_finished_at,
                outcome.remote_run,
                group.resolved[name],
            )
            with self._lock:
                self._builds.setdefault(image.key, []).append(built)
        if self.scope.write_tag(inputs) != build_tag:
            self.registry.tag(image.repository, index, self.scope.write_tag(inputs))
        self._sign(image, index)

    def _children(self, image: PlannedImage, index: str, views: tuple[PlannedImage, ...]) -> dict[str, str]:
        """Variant name -> its child in the index the build pushed: exactly one image per variant's
        platform (buildx's attestation manifests aside), each image's own config of that platform."""
        found = self.registry.manifest_by_digest(image.repository, index)
        where = f"{image.repository}@{index}"
        if not found.is_index:
            raise BuildError(f"{image.key}: the build of {len(views)} platforms pushed {where}, which is no index")
        descriptors = image_descriptors(found.json())
        children: dict[str, str] = {}
        for view in views:
            matching = children_for(descriptors, view.platform or "")
            if len(matching) != 1:
                problem = "no image" if not matching else f"{len(matching)} images"
                raise BuildError(
                    f"{view.label}: the build pushed {where} with {problem} for {view.platform}; not published"
                )
            parts.check_pushed_platform(self.registry, view, matching[0])
            children[view.variant or ""] = matching[0]
        extra = [d for d in descriptors if str(d["digest"]) not in children.values()]
        if extra:
            platform = extra[0].get("platform") or {}
            shown = "/".join(str(platform.get(k)) for k in ("os", "architecture") if platform.get(k)) or "unknown"
            raise BuildError(
                f"{image.key}: the build pushed {where} with an image for {shown}, not asked; not published"
            )
        return children


def _shared_bases(per_variant: list[tuple[ResolvedBase, ...]]) -> dict[str, str] | None:
    """reference -> what one build of every platform stands on: the image every variant resolved, or the
    index their children came from (BuildKit takes each platform's child of it); None when neither holds."""
    references = [{b.reference: b for b in bases} for bases in per_variant]
    if any(set(found) != set(references[0]) for found in references):
        return None
    shared: dict[str, str] = {}
    for reference, first in references[0].items():
        resolved = [found[reference] for found in references]
        if all(b.digest == first.digest for b in resolved):
            shared[reference] = first.pinned
        elif first.index is not None and all(b.index == first.index for b in resolved):
            shared[reference] = f"{first.repository}@{first.index}"
        else:
            return None
    return shared
