"""What the schema leaves to resolution: an image's builder (nearest setting, then the defaults) and its
dependencies (explicit and implied by `{{ images.X }}`). Pure."""

from __future__ import annotations

from pipeline.config.schema import ConfigSpec, PipelineSpec
from pipeline.config.templates import image_references


def builder_for(spec: ConfigSpec, pipeline: str, image: str) -> str:
    """The image's builder, else the pipeline's; Windows images default to ACR unless the local
    engine builds Windows; then the top-level default."""
    image_spec = spec.pipelines[pipeline].images[image]
    chosen = image_spec.builder or spec.pipelines[pipeline].builder
    if chosen:
        return chosen
    if (image_spec.platform or "").startswith("windows/") and not spec.windows_engine:
        return "acr"
    return spec.builder


def engine_for(spec: ConfigSpec, pipeline: str, image: str) -> str | None:
    """The engine the image is pinned to: its own `engine:`, else its pipeline's (None: any)."""
    return spec.pipelines[pipeline].images[image].engine or spec.pipelines[pipeline].engine


def dependencies_of(pipeline: PipelineSpec) -> dict[str, tuple[str, ...]]:
    """Each image's direct dependencies, explicit and implied by `{{ images.X }}`, in a stable order."""
    graph: dict[str, tuple[str, ...]] = {}
    for name, image in pipeline.images.items():
        deps = list(image.depends_on)
        for value in image.build_args.values():
            deps.extend(image_references(value))
        graph[name] = tuple(dict.fromkeys(d for d in deps if d in pipeline.images))
    return graph
