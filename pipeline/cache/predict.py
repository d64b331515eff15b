"""Before a run: which images will be reused (an image with the same input digest is already in the
registry) and which built, and why. Used by `pipeline plan`, `explain` and the release pre-check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.cache.inputs import (
    INPUTS_LABEL,
    BaseLookup,
    ChildOf,
    GitBlobs,
    InputDigest,
    image_inputs,
    labelled_inputs,
)
from pipeline.cache.scope import Vouch, scope_of
from pipeline.plan import Plan, PlannedImage, render_build_args
from pipeline.registry.client import RegistryClient, image_descriptors
from pipeline.registry.index import child_for, children_for
from pipeline.registry.protocol import Registry
from pipeline.registry.reference import parse_reference


@dataclass(frozen=True)
class Prediction:
    action: str  # "reuse" or "build"
    why: str
    digest: str | None = None  # the reused image
    inputs: InputDigest | None = None
    refused: tuple[str, ...] = ()  # candidates not reused, and why


def child_lookup(registry: Registry) -> ChildOf:
    """How a variant finds what it builds on in the registry: an index's child of its platform (one
    image: itself). The same rule for the run, `plan`, `explain` and partial runs, so their input digests agree."""

    def child_of(reference: str, view: PlannedImage) -> str:
        ref = parse_reference(reference)
        if ref.digest is None or view.platform is None:
            return reference
        child = child_for(registry, ref.repository, ref.digest, view.platform, view.os_version)
        return f"{ref.repository}@{child}"

    return child_of


def _labelled(registry: Registry, plan: Plan, key: str, inputs: InputDigest, tag: str) -> str | None:
    """The digest `tag` holds if its labels say these inputs (the tag holds only a prefix of the input
    digest). Labels are plain text: a signing pipeline also vouches for it (`Vouch`)."""
    image = plan.images[key]
    # Where the tag points (a HEAD); the manifest and config behind a digest come from the content cache
    # when an earlier run read them.
    digest = registry.resolve_digest(image.repository.with_tag(tag))
    if digest is None:
        return None
    manifest = registry.manifest_by_digest(image.repository, digest)
    if inputs.variants:
        # An index is reused only when every variant is: its children carry exactly the variants' inputs.
        if not manifest.is_index:
            return None
        descriptors = image_descriptors(manifest.json())
        children = [str(child["digest"]) for child in descriptors]
        found = {
            registry.manifest_labels(image.repository, registry.manifest_by_digest(image.repository, child)).get(
                INPUTS_LABEL
            )
            for child in children
        }
        wanted = {variant.digest for variant in inputs.variants.values()}
        # Built per variant, each child names its variant's inputs; built in one invocation (one label set
        # for every platform: run.platform_set), each names the index's (and, apart, every variant's).
        together = found == {inputs.digest} and _one_each(image, descriptors)
        return digest if (found == wanted or together) and len(children) == len(wanted) else None
    labels = registry.manifest_labels(image.repository, manifest)
    return digest if inputs.digest in labelled_inputs(labels) else None


def _one_each(image: PlannedImage, descriptors: list[dict[str, Any]]) -> bool:
    """Whether an index built in one invocation has one child of each variant's platform (a build that
    failed its check after pushing left it under the build tag, which may be an input tag)."""
    return all(len(children_for(descriptors, v.platform, v.os_version)) == 1 for v in image.variants)


@dataclass(frozen=True)
class Reusable:
    """What the input tags this run may read hold for these inputs."""

    digest: str | None  # the image to reuse (None: build)
    tag: str  # the input tag it came from (or the first one looked at)
    refused: tuple[str, ...] = ()  # `not reused: sha256:… is not signed by this pipeline's key (…)`
    unverified: bool = False  # `reuse: trusted` with nothing to verify with (`plan`): its signature unchecked


def cached_digest(
    registry: Registry,
    plan: Plan,
    key: str,
    inputs: InputDigest,
    vouch: Vouch | None = None,
) -> Reusable:
    """The pushed image with these inputs the image's `reuse:` lets this run reuse, if any: from the input
    tags the run's scope reads (a pull request's also `inputs-pr-`), first one that passes. With `reuse:
    trusted` a candidate must pass `vouch` (the pipeline's signer); without one (`plan`, which holds no
    keys) the candidate is reported `unverified`."""
    image = plan.images[key]
    tags = scope_of(plan.context).read_tags(inputs)
    if image.reuse == "never":
        return Reusable(None, tags[0])
    refused: list[str] = []
    for tag in tags:
        digest = _labelled(registry, plan, key, inputs, tag)
        if digest is None:
            continue
        if image.reuse == "trusted":
            if vouch is None:
                return Reusable(digest, tag, tuple(refused), unverified=True)
            problem = vouch(image, digest, inputs)
            if problem is not None:
                refused.append(f"not reused: {problem}")
                continue
        return Reusable(digest, tag, tuple(refused))
    return Reusable(None, tags[0], tuple(refused))


def predict(
    plan: Plan,
    registry: RegistryClient,
    blobs: GitBlobs | None,
    use_cache: bool = True,
    on_image: Callable[[str, Prediction], None] | None = None,
    vouch: Vouch | None = None,
    bases: BaseLookup | None = None,
) -> dict[str, Prediction]:
    """In build order: an image whose dependencies are all reused, and whose inputs match a pushed
    image, is reused; anything else is built (with the reason). `bases`: the run's base lookup, as the
    run computes input digests with it."""
    predictions: dict[str, Prediction] = {}
    for key, image in plan.images.items():
        rebuilt = [dep for dep in image.depends_on if predictions[dep].action == "build"]
        if rebuilt:
            prediction = Prediction("build", f"dependency {rebuilt[0]} is rebuilt")
        else:
            references = {dep: f"{plan.images[dep].repository}@{predictions[dep].digest}" for dep in image.depends_on}
            args = render_build_args(plan, image, references)
            built = {dep: predictions[dep].digest for dep in image.depends_on}
            inputs = image_inputs(plan, image, args, built, blobs, child_lookup(registry), bases)
            found = cached_digest(registry, plan, key, inputs, vouch) if use_cache else None
            if found is not None and found.digest is not None:
                checked = "; reused if it is signed by this pipeline's signer" if found.unverified else ""
                prediction = Prediction(
                    "reuse", f"inputs unchanged ({found.tag}){checked}", found.digest, inputs, found.refused
                )
            elif not use_cache:
                prediction = Prediction("build", "--no-cache", None, inputs)
            elif image.reuse == "never":
                prediction = Prediction("build", "reuse: never", None, inputs)
            elif found is not None and found.refused:
                prediction = Prediction("build", found.refused[-1], None, inputs, found.refused)
            else:
                prediction = Prediction("build", "no pushed image has these inputs", None, inputs)
        predictions[key] = prediction
        if on_image is not None:
            on_image(key, prediction)
    return predictions
