"""Input digests: a hash of everything an image build depends on, so an unchanged image is reused.

Inputs: the Dockerfile, the context files `.dockerignore` lets through (git's blob ids for tracked,
unmodified files, so they are not read; a content hash otherwise), the resolved build args, target,
platform, the digests of the images it depends on and (component `bases`) the digests of the external
base images it stands on, as the run resolved them (pipeline.bases).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.dockerfile.ignore import context_paths, ignore_file, ignore_patterns, reads_own_ignore_file
from pipeline.plan import Plan, PlannedImage, render_build_args
from pipeline.vcs.blobs import unmodified_blobs

INPUTS_LABEL = "org.pipeline.inputs"
# Each dependency's digest the build used (JSON, image key -> digest): the `dependencies` component is
# only their hash, and `explain` names which dependency moved, from which digest to which.
DEPENDENCIES_LABEL = "org.pipeline.dependencies"
# Each external base the build stood on (JSON, reference -> digest): `explain` names the base that moved.
BASES_LABEL = "org.pipeline.bases"
# One build of several variants (run.platform_set) gives every platform one label set: each variant's own
# labels go under `org.pipeline.variant.<name>.` (read back by `variant_labels`).
VARIANT_LABEL_PREFIX = "org.pipeline.variant."
INPUTS_TAG_PREFIX = "inputs-"
TAG_DIGEST_LENGTH = 24


@dataclass(frozen=True)
class InputDigest:
    digest: str  # sha256:<hex> over the components
    components: Mapping[str, str]  # component -> its own hash, for `pipeline explain`
    # An image with variants: each variant's own input digest (the image's is over these).
    variants: Mapping[str, InputDigest] = field(default_factory=dict)
    dependencies: Mapping[str, str] = field(default_factory=dict)  # image key -> the digest it builds on
    bases: Mapping[str, str] = field(default_factory=dict)  # external base reference -> the digest it builds on

    @property
    def tag(self) -> str:
        return INPUTS_TAG_PREFIX + self.digest.split(":", 1)[1][:TAG_DIGEST_LENGTH]

    def labels(self) -> dict[str, str]:
        labels = {INPUTS_LABEL: self.digest}
        labels.update({f"{INPUTS_LABEL}.{name}": value for name, value in self.components.items()})
        if self.dependencies:
            labels[DEPENDENCIES_LABEL] = json.dumps(dict(self.dependencies), sort_keys=True, separators=(",", ":"))
        if self.bases:
            labels[BASES_LABEL] = json.dumps(dict(self.bases), sort_keys=True, separators=(",", ":"))
        return labels


def platform_set_labels(inputs: InputDigest) -> dict[str, str]:
    """The labels of one build of every variant of an image: the index's input labels (what the index's
    reuse reads on each child) and each variant's own under `org.pipeline.variant.<name>.`."""
    labels = inputs.labels()
    for name, variant in inputs.variants.items():
        labels.update({f"{VARIANT_LABEL_PREFIX}{name}.{key}": value for key, value in variant.labels().items()})
    return labels


def variant_labels(labels: Mapping[str, str], name: str | None) -> dict[str, str]:
    """A child's labels as variant `name`'s own build writes them: for a child of one build of several
    variants, that variant's input labels in place of the index's; any other child's unchanged."""
    prefix = f"{VARIANT_LABEL_PREFIX}{name}."
    own = {key[len(prefix) :]: value for key, value in labels.items() if name and key.startswith(prefix)}
    if not own:
        return dict(labels)
    ours = (INPUTS_LABEL, DEPENDENCIES_LABEL, BASES_LABEL, VARIANT_LABEL_PREFIX)
    return {**{key: value for key, value in labels.items() if not key.startswith(ours)}, **own}


def labelled_inputs(labels: Mapping[str, str]) -> set[str]:
    """The input digests an image's labels say it was built from: its own; for a child of one build of
    several variants, the index's and every variant's."""
    found = {labels[INPUTS_LABEL]} if INPUTS_LABEL in labels else set()
    suffix = "." + INPUTS_LABEL
    return found | {v for k, v in labels.items() if k.startswith(VARIANT_LABEL_PREFIX) and k.endswith(suffix)}


class GitBlobs:
    """Blob ids of tracked files whose working copy is unmodified, for one repository."""

    def __init__(self, root: Path, blobs: dict[str, str]) -> None:
        self.root = root
        self.blobs = blobs

    @classmethod
    def read(cls, path: Path) -> GitBlobs | None:
        found = unmodified_blobs(path)
        if found is None:
            return None
        root, blobs = found
        return cls(root.resolve(), blobs)

    def lookup(self, path: Path) -> str | None:
        try:
            relative = path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return None
        return self.blobs.get(relative)


def _git_blob_id(header_size: int, chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha1(f"blob {header_size}\0".encode(), usedforsecurity=False)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _file_id(path: Path, blobs: GitBlobs | None) -> str:
    """The file's git identity (mode + blob id): read from the index for tracked, unmodified files,
    computed the way `git hash-object` does for the rest, so the same content always has one id."""
    known = blobs.lookup(path) if blobs else None
    if known:
        return known
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path).encode()
        return f"git:120000:{_git_blob_id(len(target), [target])}"
    mode = "100755" if info.st_mode & stat.S_IXUSR else "100644"
    with path.open("rb") as handle:
        blob = _git_blob_id(info.st_size, iter(lambda: handle.read(1 << 20), b""))
    return f"git:{mode}:{blob}"


def _hash(value: object) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def context_hash(listing: Mapping[str, str]) -> str:
    """The `context` component of an input digest, over a context_listing."""
    return _hash(dict(listing))


def context_listing(
    context: Path, dockerfile: Path, blobs: GitBlobs | None, *, buildkit: bool = False
) -> dict[str, str]:
    """Every file the build context sends (by the ignore file that builder reads), with an identity
    for its content."""
    patterns = ignore_patterns(ignore_file(context, dockerfile, buildkit=buildkit))
    dockerfile_rel = os.path.relpath(dockerfile, context)
    included = context_paths(context, patterns, dockerfile_rel)
    listing = {}
    for name in sorted(included):
        path = context / name
        if path.is_file() or path.is_symlink():
            listing[name] = _file_id(path, blobs)
    return listing


def dependency_digests(plan: Plan, image: PlannedImage, built: Mapping[str, str | None]) -> dict[str, str]:
    """Every dependency's digest, built in this run (`built`: key -> digest) or pinned to its last pushed
    digest (a run of affected images only): the same dependencies give the same input digest on every
    path (`run`, `run --since`, `trigger`, `watch`, hooks), so none of them rebuilds what another built."""
    digests = {dep: built.get(dep) or "" for dep in image.depends_on}
    for dep in image.pinned_dependencies:
        digests[dep] = plan.pinned[dep].rpartition("@")[2]
    return digests


def input_digest(
    image: PlannedImage,
    build_args: Mapping[str, str],
    dependency_digests: Mapping[str, str],
    blobs: GitBlobs | None,
    bases: Mapping[str, str] | None = None,
) -> InputDigest:
    """`bases`: each external base reference -> the digest the build stands on (None or empty: no
    `bases` component, so an image on `scratch` or on the run's own images keeps its digest)."""
    components = {
        "dockerfile": "sha256:" + hashlib.sha256(image.dockerfile.read_bytes()).hexdigest(),
        "context": context_hash(
            context_listing(image.context, image.dockerfile, blobs, buildkit=reads_own_ignore_file(image.builder))
        ),
        "build_args": _hash(dict(build_args)),
        "target": _hash(image.target),
        "platform": _hash(image.platform),
        "labels": _hash(dict(image.labels)),
        "dependencies": _hash(dict(dependency_digests)),
    }
    if image.network is not None:  # what RUN steps could reach; unset keeps older digests valid
        components["network"] = _hash(image.network)
    if image.os_version is not None:
        components["os_version"] = _hash(image.os_version)
    if bases:
        components["bases"] = _hash(dict(bases))
    return InputDigest(_hash(components), components, dependencies=dict(dependency_digests), bases=dict(bases or {}))


# A dependency's reference (`repo@digest`) and a variant's view -> the reference that variant builds on
# (for an index, its child of the variant's platform: registry/index.child_for).
ChildOf = Callable[[str, PlannedImage], str]
# An image's (or variant's) view and its rendered build args -> each external base reference -> the digest
# it stands on (pipeline.bases.BaseResolver, as bases_mapping).
BaseLookup = Callable[[PlannedImage, Mapping[str, str]], Mapping[str, str]]


def image_inputs(
    plan: Plan,
    image: PlannedImage,
    build_args: Mapping[str, str],
    built: Mapping[str, str | None],
    blobs: GitBlobs | None,
    child_of: ChildOf | None = None,
    bases: BaseLookup | None = None,
) -> InputDigest:
    """The input digest of `image` in `plan`: the one function every path (run, predict, explain,
    partial runs) computes it with; `bases`: the run's base lookup (None: no `bases` component). An
    image with variants: over each variant's, each computed with
    the dependencies' images that variant builds on (`child_of`: an index's child of its platform), so a
    change to one variant of a base rebuilds only the dependants' variants on it."""
    if not image.variants:
        found = bases(image, build_args) if bases is not None else None
        return input_digest(image, build_args, dependency_digests(plan, image, built), blobs, found)
    variants = {}
    for variant in image.variants:
        view = image.variant_view(variant)
        references = variant_references(plan, view, built, child_of)
        digests = {dep: ref.rpartition("@")[2] for dep, ref in references.items()}
        args = render_build_args(plan, view, references)
        found = bases(view, args) if bases is not None else None
        variants[variant.name] = input_digest(view, args, digests, blobs, found)
    return index_inputs(variants)


def variant_references(
    plan: Plan, view: PlannedImage, built: Mapping[str, str | None], child_of: ChildOf | None
) -> dict[str, str]:
    """Each dependency of a variant's view as the `repo@digest` it builds on: built in this run or pinned,
    then (with `child_of`) the child of that index for the variant's platform."""
    digests = dependency_digests(plan, view, built)
    references = {
        dep: plan.pinned[dep] if dep in view.pinned_dependencies else f"{plan.images[dep].repository}@{digest}"
        for dep, digest in digests.items()
    }
    if child_of is not None:
        references = {dep: child_of(ref, view) for dep, ref in references.items()}
    return references


def index_inputs(variants: Mapping[str, InputDigest]) -> InputDigest:
    """An image index's input digest: over its variants' input digests, by variant name."""
    components = {name: digest.digest for name, digest in sorted(variants.items())}
    return InputDigest(_hash({"variants": components}), components, dict(variants))
