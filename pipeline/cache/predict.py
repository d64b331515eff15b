"""Before a run: which images will be reused (an image with the same input digest is already in the
registry) and which built, and why. Used by `pipeline plan`, `explain` and the release pre-check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.cache.inputs import INPUTS_LABEL, ChildOf, GitBlobs, InputDigest, image_inputs
from pipeline.plan import Plan, PlannedImage, render_build_args
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import child_for
from pipeline.registry.reference import parse_reference


@dataclass(frozen=True)
class Prediction:
    action: str  # "reuse" or "build"
    why: str
    digest: str | None = None  # the reused image
    inputs: InputDigest | None = None


def child_lookup(registry: RegistryClient) -> ChildOf:
    """How a variant finds what it builds on in the registry: an index's child of its platform (one
    image: itself). The same rule for the run, `plan`, `explain` and partial runs, so their input digests agree."""

    def child_of(reference: str, view: PlannedImage) -> str:
        ref = parse_reference(reference)
        if ref.digest is None or view.platform is None:
            return reference
        child = child_for(registry, ref.repository, ref.digest, view.platform, view.os_version)
        return f"{ref.repository}@{child}"

    return child_of


def cached_digest(registry: RegistryClient, plan: Plan, key: str, inputs: InputDigest) -> str | None:
    """The digest of the pushed image with these inputs, if any: the input tag's image, checked by its label
    (the tag holds only a prefix of the input digest)."""
    image = plan.images[key]
    # Where the tag points (a HEAD); the manifest and config behind a digest come from the content cache
    # when an earlier run read them.
    digest = registry.resolve_digest(image.repository.with_tag(inputs.tag))
    if digest is None:
        return None
    manifest = registry.manifest_by_digest(image.repository, digest)
    if inputs.variants:
        # An index is reused only when every variant is: its children carry exactly the variants' inputs.
        if not manifest.is_index:
            return None
        children = [str(child["digest"]) for child in manifest.json().get("manifests") or []]
        found = {
            registry.manifest_labels(image.repository, registry.manifest_by_digest(image.repository, child)).get(
                INPUTS_LABEL
            )
            for child in children
        }
        wanted = {variant.digest for variant in inputs.variants.values()}
        return digest if found == wanted and len(children) == len(wanted) else None
    labels = registry.manifest_labels(image.repository, manifest)
    return digest if labels.get(INPUTS_LABEL) == inputs.digest else None


def predict(
    plan: Plan,
    registry: RegistryClient,
    blobs: GitBlobs | None,
    use_cache: bool = True,
    on_image: Callable[[str, Prediction], None] | None = None,
) -> dict[str, Prediction]:
    """In build order: an image whose dependencies are all reused, and whose inputs match a pushed
    image, is reused; anything else is built (with the reason)."""
    predictions: dict[str, Prediction] = {}
    for key, image in plan.images.items():
        rebuilt = [dep for dep in image.depends_on if predictions[dep].action == "build"]
        if rebuilt:
            prediction = Prediction("build", f"dependency {rebuilt[0]} is rebuilt")
        else:
            references = {dep: f"{plan.images[dep].repository}@{predictions[dep].digest}" for dep in image.depends_on}
            args = render_build_args(plan, image, references)
            built = {dep: predictions[dep].digest for dep in image.depends_on}
            inputs = image_inputs(plan, image, args, built, blobs, child_lookup(registry))
            found = cached_digest(registry, plan, key, inputs) if use_cache else None
            if found is not None:
                prediction = Prediction("reuse", f"inputs unchanged ({inputs.tag})", found, inputs)
            elif not use_cache:
                prediction = Prediction("build", "--no-cache", None, inputs)
            else:
                prediction = Prediction("build", "no pushed image has these inputs", None, inputs)
        predictions[key] = prediction
        if on_image is not None:
            on_image(key, prediction)
    return predictions
