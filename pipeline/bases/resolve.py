"""The run's base images by digest: each external base a build pulls, resolved once per run per
reference (one HEAD), then per platform to the image the build stands on (an index's child of the
variant's platform and Windows build). From `pipelines.lock` where it names the base; with `locked`,
a base it does not name is refused. Fail closed: a base that is not in the registry, or has no image
for the platform (a Windows base without the variant's build), is refused before anything builds."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.bases.lock import BaseLock, LockEntry, lock_path
from pipeline.dockerfile.bases import BaseImage, base_images, default_platform
from pipeline.errors import ConfigError, PipelineError, VerificationFailed
from pipeline.plan import Plan, PlannedImage, render_build_args
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import platforms_in
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
    digest: str  # the image the build stands on
    index: str | None = None  # the index the reference pointed at, when it is one
    locked: bool = False  # taken from pipelines.lock

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
        return {
            "reference": self.reference,
            "platform": self.platform,
            "os_version": self.os_version,
            "digest": self.digest,
            "index": self.index,
            "locked": self.locked,
        }

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


def open_resolver(registry: RegistryClient, plan: Plan, config_file: Path, *, locked: bool = False) -> BaseResolver:
    """The run's resolver: with the lock beside `config_file` when there is one. `locked` (`--locked`):
    a base the lock does not name is refused, and so is a missing lock."""
    path = lock_path(config_file)
    lock = BaseLock.load(path)
    if locked and lock is None:
        raise BaseNotLocked(f"{path}: no lock file, so no base image is locked; run `pipeline bases --update`")
    return BaseResolver(registry, lock=lock, locked=locked, own=own_repositories(plan))


def read_dockerfile(view: PlannedImage) -> str:
    try:
        # As the engine reads it: bytes that are not UTF-8 (a comment in Latin-1) do not stop a build.
        return view.dockerfile.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise BaseNotResolved(f"{view.label}: cannot read {view.dockerfile}: {exc.strerror}") from None


def shown_path(path: Path) -> str:
    """The Dockerfile as the user would type it from here: relative when under the working directory."""
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


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
    ) -> None:
        self.registry = registry
        self.lock = lock
        self.locked = locked
        self.own = set(own)
        self._guard = threading.Lock()
        self._pending: dict[object, threading.Lock] = {}
        self._tops: dict[str, str] = {}  # reference -> the digest it points at now
        self._resolved: dict[tuple[str, str, str | None], ResolvedBase] = {}

    def bases_of(self, view: PlannedImage, build_args: Mapping[str, str]) -> tuple[ResolvedBase, ...]:
        """Each external base `view` (an image, or one variant of one) pulls, resolved; its own images and
        stages left out. Raises UnresolvedBaseImage (the Dockerfile's line) or BaseNotResolved."""
        platform = view.platform or default_platform()
        resolved = []
        for base in self._external(view, build_args):
            try:
                resolved.append(self.resolve(base.ref, platform, view.os_version))
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
        platform = view.platform or default_platform()
        found = base_images(
            read_dockerfile(view), build_args, platform=platform, target=view.target, source=shown_path(view.dockerfile)
        )
        return [base for base in found if str(base.ref.repository) not in self.own]

    def resolve_all(
        self, builds: Sequence[tuple[PlannedImage, Mapping[str, str]]], jobs: int = 8
    ) -> dict[str, PipelineError]:
        """Resolve every base of every build (an image or a variant's view, with its build args) at once,
        before anything builds: one lookup per distinct reference and platform, `jobs` at a time. Returns
        each build (by label) whose bases cannot be resolved, with the refusal `bases_of` raises for it."""
        wanted: dict[tuple[str, str, str | None], ImageRef] = {}
        for view, args in builds:
            try:
                for base in self._external(view, args):
                    wanted.setdefault((str(base.ref), view.platform or default_platform(), view.os_version), base.ref)
            except PipelineError:
                continue  # said below, by bases_of
        if wanted:

            def lookup(key: tuple[str, str, str | None]) -> None:
                try:
                    self.resolve(wanted[key], key[1], key[2])
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

    def resolve(self, ref: ImageRef, platform: str, os_version: str | None) -> ResolvedBase:
        key = (str(ref), platform, os_version)
        with self._once(key):
            if key not in self._resolved:
                self._resolved[key] = self._resolve(ref, platform, os_version)
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

    def _resolve(self, ref: ImageRef, platform: str, os_version: str | None) -> ResolvedBase:
        reference = str(ref)
        entry = self.lock.get(reference, platform, os_version) if self.lock is not None else None
        if entry is not None:
            return ResolvedBase(reference, platform, os_version, entry.digest, entry.index, locked=True)
        if self.locked:
            where = self.lock.path if self.lock is not None and self.lock.path else "pipelines.lock"
            raise BaseNotLocked(
                f"base image {reference} ({platform_text(platform, os_version)}) is not in {where}; "
                "run `pipeline bases --update` and commit the lock (refused by --locked)"
            )
        return self.pick(ref, self.current(ref), platform, os_version)

    def pick(self, ref: ImageRef, digest: str, platform: str, os_version: str | None) -> ResolvedBase:
        """What a build for `platform` (and Windows build) stands on in `ref` at `digest`."""
        reference = str(ref)
        manifest = self.registry.manifest_by_digest(ref.repository, digest)
        wanted = platform_text(platform, os_version)
        if manifest.is_index:
            for child in manifest.json().get("manifests") or []:
                if isinstance(child, dict) and "digest" in child:
                    if check_platform(child.get("platform") or {}, platform, os_version) is None:
                        return ResolvedBase(reference, platform, os_version, str(child["digest"]), digest)
            listed = ", ".join(text for _, text in platforms_in(manifest)) or "no platforms"
            raise BaseNotResolved(
                f"base image {reference} ({ref.repository}@{digest}) has no {wanted} image to build on "
                f"(it has {listed}); refusing to build"
            )
        if os_version is not None:
            # One image, not an index: a Windows build runs only on the Windows build it was made for.
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
