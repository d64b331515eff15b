"""`pipeline explain`: why an image would be rebuilt — which of its inputs differ from its last
pushed build on this line of history, down to the context files git says changed since then. An image
with variants is predicted as a whole (its index is reused only when every variant is); each variant's
input digest is listed, and compared with the child of the last build's index for the same platform."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cache.changes import FileChange, context_changes
from pipeline.cache.inputs import (
    BASES_LABEL,
    DEPENDENCIES_LABEL,
    INPUTS_LABEL,
    BaseLookup,
    GitBlobs,
    InputDigest,
    variant_labels,
)
from pipeline.cache.lastbuild import last_build
from pipeline.cache.predict import predict
from pipeline.plan import REVISION_LABEL, Plan, PlannedImage, Variant
from pipeline.registry.client import Manifest, RegistryClient, image_descriptors
from pipeline.registry.platforms import check_platform
from pipeline.vcs.history import History, first_parent_history

# How many changed context files the text names (--json lists every one).
FILES_LISTED = 50


@dataclass(frozen=True)
class DependencyChange:
    """A dependency whose digest differs from the one the last build used (None: not known)."""

    image: str
    old: str | None
    new: str | None

    @property
    def line(self) -> str:
        if self.old is None:
            # Built before its dependencies' digests were recorded (or the dependency is new).
            return f"{self.image}: now {_short(self.new)} (the last build recorded no digest for it)"
        return f"{self.image}: {_short(self.old)} → {_short(self.new)}"

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.image, "old": self.old, "new": self.new}


def _short(digest: str | None) -> str:
    return digest[:19] if digest else "none"


@dataclass(frozen=True)
class BaseChange:
    """An external base image whose digest differs from the one the last build stood on (None: it did not
    record one, or the base is no longer used)."""

    reference: str
    old: str | None
    new: str | None

    @property
    def line(self) -> str:
        return f"changed: base {self.reference} {_elided(self.old)} → {_elided(self.new)}"

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "old": self.old, "new": self.new}


def _elided(digest: str | None) -> str:
    return f"{digest[:19]}…" if digest else "none"


@dataclass
class VariantExplanation:
    name: str
    platform: str
    os_version: str | None
    inputs: str | None  # the variant's input digest; None while a dependency is rebuilt
    changed_inputs: list[str] = field(default_factory=list)
    last_build: str | None = None  # its child in the last build's index
    changed_dependencies: list[DependencyChange] = field(default_factory=list)
    changed_bases: list[BaseChange] = field(default_factory=list)

    @property
    def line(self) -> str:
        where = self.platform + (f" {self.os_version}" if self.os_version else "")
        inputs = f"inputs {self.inputs[:19]}" if self.inputs else "inputs unknown until its dependencies are built"
        changed = f"; changed: {', '.join(self.changed_inputs)}" if self.changed_inputs else ""
        return f"variant {self.name} ({where}): {inputs}{changed}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "platform": self.platform,
            "os_version": self.os_version,
            "inputs": self.inputs,
            "changed_inputs": self.changed_inputs,
            "changed_dependencies": [change.as_dict() for change in self.changed_dependencies],
            "changed_bases": [change.as_dict() for change in self.changed_bases],
            "last_build": self.last_build,
        }


@dataclass
class Explanation:
    verdict: str
    details: list[str] = field(default_factory=list)
    changed_inputs: list[str] = field(default_factory=list)
    last_build: str | None = None
    variants: list[VariantExplanation] = field(default_factory=list)
    changed_dependencies: list[DependencyChange] = field(default_factory=list)
    # The context files that changed its input digest since the last build's commit.
    changed_files: list[FileChange] = field(default_factory=list)
    changed_bases: list[BaseChange] = field(default_factory=list)  # its variants' too

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "details": self.details,
            "changed_inputs": self.changed_inputs,
            "changed_dependencies": [change.as_dict() for change in self.changed_dependencies],
            "changed_files": [{"path": f.path, "change": f.change} for f in self.changed_files],
            "changed_bases": [change.as_dict() for change in self.changed_bases],
            "last_build": self.last_build,
            "variants": [variant.as_dict() for variant in self.variants],
        }


def match_children(variants: Sequence[Variant], descriptors: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Variant name -> digest of the index entry built for it, by the rule a run uses (check_platform: the
    same platform as containerd spells it, and for a Windows variant the same Windows build)."""
    found: dict[str, str] = {}
    for variant in variants:
        for descriptor in descriptors:
            if check_platform(descriptor.get("platform") or {}, variant.platform, variant.os_version) is None:
                found[variant.name] = str(descriptor["digest"])
                break
    return found


def changed_components(inputs: InputDigest, labels: Mapping[str, str]) -> list[str]:
    """The input components whose hash differs from the one a build's labels recorded."""
    return [name for name, value in inputs.components.items() if labels.get(f"{INPUTS_LABEL}.{name}") != value]


def changed_dependencies(inputs: InputDigest, labels: Mapping[str, str]) -> list[DependencyChange]:
    """Each dependency whose digest differs from the one a build's labels recorded; every dependency
    (old unknown) when the build recorded none, and nothing when the dependencies' hash is unchanged."""
    if labels.get(f"{INPUTS_LABEL}.dependencies") == inputs.components.get("dependencies"):
        return []
    try:
        recorded = json.loads(labels[DEPENDENCIES_LABEL])
    except (KeyError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        return [DependencyChange(key, None, digest or None) for key, digest in sorted(inputs.dependencies.items())]
    keys = sorted({*recorded, *inputs.dependencies})
    return [
        DependencyChange(key, recorded.get(key) or None, inputs.dependencies.get(key) or None)
        for key in keys
        if recorded.get(key) != inputs.dependencies.get(key)
    ]


def changed_bases(inputs: InputDigest, labels: Mapping[str, str]) -> list[BaseChange]:
    """Each external base whose digest differs from the one a build's label recorded (org.pipeline.bases);
    nothing when the `bases` component is unchanged."""
    if labels.get(f"{INPUTS_LABEL}.bases") == inputs.components.get("bases"):
        return []
    try:
        recorded = json.loads(labels.get(BASES_LABEL) or "{}")
    except ValueError:
        recorded = {}
    if not isinstance(recorded, dict):
        recorded = {}
    references = sorted({*recorded, *inputs.bases})
    return [
        BaseChange(reference, recorded.get(reference) or None, inputs.bases.get(reference) or None)
        for reference in references
        if recorded.get(reference) != inputs.bases.get(reference)
    ]


def _variant_explanations(image: PlannedImage, inputs: InputDigest | None) -> list[VariantExplanation]:
    digests = inputs.variants if inputs is not None else {}
    return [
        VariantExplanation(v.name, v.platform, v.os_version, digests[v.name].digest if v.name in digests else None)
        for v in image.variants
    ]


def explain_image(
    plan: Plan,
    key: str,
    registry: RegistryClient,
    blobs: GitBlobs | None,
    base_dir: Path,
    bases: BaseLookup | None = None,
) -> Explanation:
    """`bases`: the base lookup a run would use (its input digests have a `bases` component)."""
    predictions = predict(plan, registry, blobs, bases=bases)
    prediction = predictions[key]
    image = plan.images[key]
    variants = _variant_explanations(image, prediction.inputs)
    if prediction.action == "reuse":
        verdict = f"reuse {prediction.digest}: its inputs match that pushed image ({prediction.why})"
        return Explanation(verdict, [v.line for v in variants], variants=variants)
    explanation = _explain_build(plan, key, registry, blobs, base_dir, prediction.why, prediction.inputs, variants)
    explanation.variants = variants
    return explanation


def _explain_build(
    plan: Plan,
    key: str,
    registry: RegistryClient,
    blobs: GitBlobs | None,
    base_dir: Path,
    why: str,
    inputs: InputDigest | None,
    variants: list[VariantExplanation],
) -> Explanation:
    image = plan.images[key]
    repo, history = first_parent_history(base_dir, 500)
    found = last_build(registry, image, history)
    if found is None:
        lines = [v.line for v in variants]
        return Explanation(f"build: {why}; no earlier build of it is tagged on this line of history", lines)
    digest = found.digest
    manifest = registry.manifest_by_digest(image.repository, digest)
    labels = registry.manifest_labels(image.repository, manifest)
    explanation = Explanation(f"build: {why}", last_build=f"{image.repository}@{digest}")
    if INPUTS_LABEL not in labels:
        explanation.details.append(f"the last build {digest[:19]} records no inputs (built without the input cache)")
        explanation.details += [v.line for v in variants]
        return explanation
    if inputs is None:  # a dependency is rebuilt, so this image's own inputs can't be final yet
        explanation.details.append(why)
        explanation.details += [v.line for v in variants]
        return explanation
    explanation.details.append(
        f"last build: {image.repository}@{digest[:19]} from commit {labels.get(REVISION_LABEL, 'unknown')[:12]}"
    )
    recorded = {labels.get(f"{INPUTS_LABEL}.context", "")}
    if variants:
        recorded = _compare_variants(registry, image, manifest, inputs, variants, explanation)
    else:
        explanation.changed_inputs = changed_components(inputs, labels)
        for name in explanation.changed_inputs:
            if name == "bases":
                explanation.changed_bases = changed_bases(inputs, labels)
                explanation.details += [change.line for change in explanation.changed_bases]
                continue
            explanation.details.append(f"changed: {name}")
            if name == "dependencies":
                explanation.changed_dependencies = changed_dependencies(inputs, labels)
                explanation.details += [f"  {change.line}" for change in explanation.changed_dependencies]
            elif name == "context":
                _context_files(explanation, image, repo, blobs, labels.get(REVISION_LABEL), recorded)
    if variants and "context" in explanation.changed_inputs:  # once for all variants, below their lines
        _context_files(explanation, image, repo, blobs, labels.get(REVISION_LABEL), recorded)
    return explanation


def _context_files(
    explanation: Explanation,
    image: PlannedImage,
    repo: History | None,
    blobs: GitBlobs | None,
    revision: str | None,
    recorded: set[str],
) -> None:
    """The context files that changed the input digest since the last build's commit, indented under
    `changed: context` (the first FILES_LISTED; --json lists them all)."""
    if repo is None or not revision:
        return
    found = context_changes(repo, image, revision, blobs, recorded)
    if found is None:
        return
    explanation.changed_files = found.files
    if not found.exact:
        explanation.details.append(
            f"  (the last build hashed files its commit {revision[:12]} does not hold; compared with that commit)"
        )
    explanation.details += [f"  {change.line}" for change in found.files[:FILES_LISTED]]
    if len(found.files) > FILES_LISTED:
        explanation.details.append(f"  … and {len(found.files) - FILES_LISTED} more files")


def _compare_variants(
    registry: RegistryClient,
    image: PlannedImage,
    manifest: Manifest,
    inputs: InputDigest,
    variants: list[VariantExplanation],
    explanation: Explanation,
) -> set[str]:
    """Each variant against the last index's child for its platform; the image's changed inputs are
    every component some variant changed (its context's files are listed once, below). Returns the
    context hashes the children recorded."""
    recorded = set()
    children = match_children(image.variants, image_descriptors(manifest.json())) if manifest.is_index else {}
    for variant in variants:
        child = children.get(variant.name)
        if child is None:
            variant.changed_inputs = ["variant"]  # new, or the last build was one image, not an index
        else:
            variant.last_build = child
            labels = variant_labels(
                registry.manifest_labels(image.repository, registry.manifest_by_digest(image.repository, child)),
                variant.name,
            )
            variant.changed_inputs = changed_components(inputs.variants[variant.name], labels)
            recorded.add(labels.get(f"{INPUTS_LABEL}.context", ""))
            if "dependencies" in variant.changed_inputs:
                variant.changed_dependencies = changed_dependencies(inputs.variants[variant.name], labels)
            if "bases" in variant.changed_inputs:
                variant.changed_bases = changed_bases(inputs.variants[variant.name], labels)
        explanation.details.append(variant.line)
        explanation.details += [f"  {change.line}" for change in variant.changed_dependencies]
        explanation.details += [f"  {change.line}" for change in variant.changed_bases]
        explanation.changed_bases += [c for c in variant.changed_bases if c not in explanation.changed_bases]
    every = [name for v in variants for name in v.changed_inputs]
    explanation.changed_inputs = list(dict.fromkeys(every))
    return recorded
