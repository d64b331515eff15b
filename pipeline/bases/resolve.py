"""The run's base images by digest: each external base a build pulls, resolved once per run per
reference (one HEAD), then per platform to the image the build stands on (an index's child of the
variant's platform and Windows build). From `pipelines.lock` where it names the base; with `locked`,
a base it does not name is refused. Fail closed: a base that is not in the registry, or has no image
for the platform (a Windows base without the variant's build), is refused before anything builds."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.bases.lock import BaseLock, LockEntry, lock_path
from pipeline.common.reporting import SILENT, Reporter
from pipeline.dockerfile.bases import BaseImage, base_images, default_platform, dockerfile_text, shown_path
from pipeline.errors import ConfigError, PipelineError, VerificationFailed
from pipeline.plan import Plan, PlannedImage, render_build_args
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import image_descriptors, platforms_in
from pipeline.registry.platforms import check_platform, platform_text
from pipeline.registry.reference import ImageRef, Repository, parse_reference


class BaseNotResolved(VerificationFailed):
    """An external base image is not in the registry, or has no image for the platform a build asks for."""


class BaseNotLocked(ConfigError):
    """`--locked`: a base image the lock file does not name (or names for another platform)."""


@dataclass(frozen=True)
class ResolvedBase:
    reference: str  # as the Dockerfile names it, after ARGs (`:latest` written out when it names no tag)
    platform: str
    os_version: str | None
    digest: str  # the image the build stands on (the whole index where a stage names its own platform)
    index: str | None = None  # the index the reference pointed at, when it is one
    locked: bool = False  # taken from pipelines.lock
    not_in_lock: bool = False  # a lock exists but does not name it: the registry's current digest (warned)

    @property
    def ref(self) -> ImageRef:
        return parse_reference(self.reference)

    @property
    def repository(self) -> Repository:
        return self.ref.repository

    @property
    def pinned(self) -> str:
        """`repository@digest`: what the build is given in place of the reference."""
        return f"{self.repository}@{self.digest}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lock_entry(self) -> LockEntry:
        return LockEntry(self.reference, self.platform, self.os_version, self.digest, self.index)


def own_repositories(plan: Plan) -> set[str]:
    """The repositories the plan's images are pushed to: `{{ images.X }}` and earlier builds of the run's
    own images (and those a partial run pins) are dependencies, not external bases."""
    own = {str(image.repository) for image in plan.images.values()}
    return own | {str(parse_reference(reference).repository) for reference in plan.pinned.values()}


def plan_builds(plan: Plan) -> list[tuple[PlannedImage, dict[str, str]]]:
    """Every build of the plan (each image, or each variant's view of one) with its build args rendered
    for finding its bases: the run's own images (never external) stand in for `{{ images.X }}`."""
    builds = []
    for image in plan.images.values():
        for view in [image.variant_view(v) for v in image.variants] or [image]:
            own = {dep: str(plan.images[dep].repository.with_tag("latest")) for dep in view.depends_on}
            builds.append((view, render_build_args(plan, view, own)))
    return builds


def open_resolver(
    registry: RegistryClient, plan: Plan, config_file: Path, *, locked: bool = False, reporter: Reporter = SILENT
) -> BaseResolver:
    """The run's resolver: with the lock beside `config_file` when there is one. `locked` (`--locked`):
    a base of the plan the lock does not name (or any, without a lock) is refused here, before anything
    is looked up or built. `reporter`: where a base a lock does not name is warned about (it floats)."""
    path = lock_path(config_file)
    lock = BaseLock.load(path)
    resolver = BaseResolver(
        registry, lock=lock, locked=locked, own=own_repositories(plan), lock_file=path, reporter=reporter
    )
    if locked:
        resolver.check_locked(plan_builds(plan))
    return resolver


def read_dockerfile(view: PlannedImage) -> str:
    try:
        return dockerfile_text(view.dockerfile)
    except OSError as exc:
        raise BaseNotResolved(f"{view.label}: cannot read {view.dockerfile}: {exc.strerror}") from None


def external_bases(view: PlannedImage, build_args: Mapping[str, str], own: Collection[str]) -> list[BaseImage]:
    """The external bases `view` pulls (its Dockerfile after BuildKit's ARG rules for its platform and
    target), without the run's own images (`own`: their repositories) and stages. Nothing is resolved."""
    found = base_images(
        read_dockerfile(view),
        build_args,
        platform=view.platform or default_platform(),
        target=view.target,
        source=shown_path(view.dockerfile),
    )
    return [base for base in found if str(base.ref.repository) not in own]


class BaseResolver:
    """Thread-safe; every lookup is made once per run (builds, the reuse check, the gate, provenance and
    the report all read the same answer)."""

    def __init__(
        self,
        registry: RegistryClient,
        *,
        lock: BaseLock | None = None,
        locked: bool = False,
        own: Collection[str] = (),
        lock_file: Path | None = None,
        reporter: Reporter = SILENT,
    ) -> None:
        self.registry = registry
        self.lock = lock
        self.locked = locked
        self.own = set(own)
        self.lock_file = lock_file or (lock.path if lock is not None else None)
        self.reporter = reporter
        self._guard = threading.Lock()
        self._pending: dict[object, threading.Lock] = {}
        self._tops: dict[str, str] = {}  # reference -> the digest it points at now
        self._resolved: dict[tuple[str, str, str | None, bool], ResolvedBase] = {}
        self._read: dict[tuple[Path, str | None, str | None, tuple[tuple[str, str], ...]], list[BaseImage]] = {}

    def bases_of(
        self, view: PlannedImage, build_args: Mapping[str, str], only: Callable[[ImageRef], bool] | None = None
    ) -> tuple[ResolvedBase, ...]:
        """Each external base `view` (an image, or one variant of one) pulls, resolved; its own images and
        stages left out; with `only`, just the bases it accepts (the others not looked up: a base update's
        trigger). Raises UnresolvedBaseImage (the Dockerfile's line) or BaseNotResolved."""
        platform = view.platform or default_platform()
        resolved = []
        for base in self._external(view, build_args):
            if only is not None and not only(base.ref):
                continue
            try:
                resolved.append(self.resolve(base.ref, platform, view.os_version, whole=base.stage_platform))
            except (BaseNotResolved, BaseNotLocked) as exc:
                raise type(exc)(f"{view.label}: {shown_path(view.dockerfile)}:{base.line}: {exc}") from None
        return tuple(resolved)

    def digests(self, view: PlannedImage, build_args: Mapping[str, str]) -> dict[str, str]:
        """reference -> digest of each external base of `view`: the input digest's lookup
        (cache.inputs.BaseLookup), so every path that computes one agrees with the build."""
        return bases_mapping(self.bases_of(view, build_args))

    def subjects(self, view: PlannedImage, build_args: Mapping[str, str]) -> dict[str, str]:
        """reference -> what a signature check of each external base of `view` verifies: the index the
        reference pointed at (so its every child, among them the one built on) or the image itself; the
        run's resolution, never the tag read again."""
        return {base.reference: base.index or base.digest for base in self.bases_of(view, build_args)}

    def _external(self, view: PlannedImage, build_args: Mapping[str, str]) -> list[BaseImage]:
        """external_bases, read once per run for each Dockerfile, platform, target and build args: the
        start-of-run resolution, the input digest and the report each ask (a no-op run's parse, thrice)."""
        key = (view.dockerfile, view.platform, view.target, tuple(sorted(build_args.items())))
        found = self._read.get(key)
        if found is None:
            found = self._read[key] = external_bases(view, build_args, self.own)
        return list(found)

    def resolve_all(
        self, builds: Sequence[tuple[PlannedImage, Mapping[str, str]]], jobs: int = 8
    ) -> dict[str, PipelineError]:
        """Resolve every base of every build (an image or a variant's view, with its build args) at once,
        before anything builds: one lookup per distinct reference and platform, `jobs` at a time. Returns
        each build (by label) whose bases cannot be resolved, with the refusal `bases_of` raises for it."""
        wanted: dict[tuple[str, str, str | None, bool], ImageRef] = {}
        for view, args in builds:
            try:
                for base in self._external(view, args):
                    key = (str(base.ref), view.platform or default_platform(), view.os_version, base.stage_platform)
                    wanted.setdefault(key, base.ref)
            except PipelineError:
                continue  # said below, by bases_of
        if wanted:

            def lookup(key: tuple[str, str, str | None, bool]) -> None:
                try:
                    self.resolve(wanted[key], key[1], key[2], whole=key[3])
                except PipelineError:
                    pass  # bases_of below names the build and its Dockerfile line

            with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(wanted))), thread_name_prefix="base") as pool:
                list(pool.map(lookup, wanted))
        refused: dict[str, PipelineError] = {}
        for view, args in builds:
            try:
                self.bases_of(view, args)
            except PipelineError as exc:
                refused[view.label] = exc
        return refused

    def check_locked(self, builds: Iterable[tuple[PlannedImage, Mapping[str, str]]]) -> None:
        """`--locked`: raise BaseNotLocked for the first base of `builds` the lock does not name (the build,
        its Dockerfile line, the base and the lock file). A Dockerfile whose bases cannot be worked out is
        left to the resolution, which fails its image."""
        for view, args in builds:
            try:
                found = self._external(view, args)
            except PipelineError:
                continue
            platform = view.platform or default_platform()
            for base in found:
                if self.lock is None or self.lock.get(str(base.ref), platform, view.os_version) is None:
                    where = f"{view.label}: {shown_path(view.dockerfile)}:{base.line}"
                    raise BaseNotLocked(f"{where}: {self._not_locked(str(base.ref), platform, view.os_version)}")

    def _not_locked(self, reference: str, platform: str, os_version: str | None) -> str:
        path = self.lock_file or "pipelines.lock"
        missing = " (there is no lock file)" if self.lock is None else ""
        return (
            f"base image {reference} ({platform_text(platform, os_version)}) is not in {path}{missing}; "
            "run `pipeline bases --update` and commit the lock (refused by --locked)"
        )

    def resolve(self, ref: ImageRef, platform: str, os_version: str | None, *, whole: bool = False) -> ResolvedBase:
        """`whole`: a stage names its own platform (`FROM --platform=$BUILDPLATFORM`), so the build stands on
        the whole index the reference points at (content-addressed: the builder takes that stage's platform
        from it), not on the child of the build's platform."""
        key = (str(ref), platform, os_version, whole)
        with self._once(key):
            if key not in self._resolved:
                found = self._resolve(ref, platform, os_version, whole)
                self._resolved[key] = found
            return self._resolved[key]

    @property
    def resolved(self) -> list[ResolvedBase]:
        """Every base resolved so far in this run, in a stable order."""
        with self._guard:
            found = list(self._resolved.values())
        return sorted(found, key=lambda b: (b.reference, b.platform, b.os_version or ""))

    def current(self, ref: ImageRef) -> str:
        """The digest the reference points at in the registry now (its own digest when it names one)."""
        if ref.digest is not None:
            return ref.digest
        reference = str(ref)
        with self._once(reference):
            if reference not in self._tops:
                digest = self.registry.resolve_digest(ref)
                if digest is None:
                    raise BaseNotResolved(
                        f"base image {reference} is not in the registry, so the build cannot stand on a known "
                        "digest; refusing to build"
                    )
                self._tops[reference] = digest
            return self._tops[reference]

    def _once(self, key: object) -> threading.Lock:
        with self._guard:
            return self._pending.setdefault(key, threading.Lock())

    def _resolve(self, ref: ImageRef, platform: str, os_version: str | None, whole: bool) -> ResolvedBase:
        reference = str(ref)
        entry = self.lock.get(reference, platform, os_version) if self.lock is not None else None
        if entry is not None:
            digest = (entry.index or entry.digest) if whole else entry.digest
            return ResolvedBase(reference, platform, os_version, digest, entry.index, locked=True)
        if self.locked:
            raise BaseNotLocked(self._not_locked(reference, platform, os_version))
        if whole:
            top = self.current(ref)
            index = top if self.registry.manifest_by_digest(ref.repository, top).is_index else None
            found = ResolvedBase(reference, platform, os_version, top, index)
        else:
            found = self.pick(ref, self.current(ref), platform, os_version)
        if self.lock is None:
            return found
        self.reporter.warn(
            f"warning: base image {reference} ({platform_text(platform, os_version)}) is not in "
            f"{self.lock_file}: building on the registry's {found.digest}; run `pipeline bases --update` "
            "to lock it"
        )
        return replace(found, not_in_lock=True)

    def pick(self, ref: ImageRef, digest: str, platform: str, os_version: str | None) -> ResolvedBase:
        """What a build for `platform` (and Windows build) stands on in `ref` at `digest`."""
        reference = str(ref)
        manifest = self.registry.manifest_by_digest(ref.repository, digest)
        wanted = platform_text(platform, os_version)
        if manifest.is_index:
            for child in image_descriptors(manifest.json()):
                if check_platform(child.get("platform") or {}, platform, os_version) is None:
                    return ResolvedBase(reference, platform, os_version, str(child["digest"]), digest)
            listed = ", ".join(text for _, text in platforms_in(manifest)) or "no platforms"
            raise BaseNotResolved(
                f"base image {reference} ({ref.repository}@{digest}) has no {wanted} image to build on "
                f"(it has {listed}); refusing to build"
            )
        # One image, not an index: it is for one platform (its config says which; one GET, kept in the
        # content cache), so an arm64 variant must not stand on an amd64-only base, and a Windows build runs
        # only on the Windows build it was made for. (A stage naming its own platform does not come here:
        # it stands on the reference whole, whatever platform it names.)
        problem = check_platform(self.registry.image_config(ref.repository, manifest), platform, os_version)
        if problem is not None:
            raise BaseNotResolved(
                f"base image {reference} ({ref.repository}@{digest}) is not a {wanted} image: {problem}; "
                "refusing to build"
            )
        return ResolvedBase(reference, platform, os_version, digest)


def bases_mapping(bases: Iterable[ResolvedBase]) -> dict[str, str]:
    """reference -> digest: the `bases` component of an input digest and the OCI label."""
    return {base.reference: base.digest for base in bases}
