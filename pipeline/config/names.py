"""The pipeline and image names a pipelines file declares, read without validating the rest: shell
completion wants them fast, and also while the file is still being written."""

from __future__ import annotations

from pathlib import Path

from pipeline.config.positions import parse_yaml


def declared_images(file: Path) -> dict[str, list[str]]:
    """Each pipeline's image names, in the file's order ({} when the file declares none); raises
    ConfigError for a file that cannot be read or is not YAML."""
    data, _ = parse_yaml(file)
    pipelines = data.get("pipelines") if isinstance(data, dict) else None
    if not isinstance(pipelines, dict):
        return {}
    found: dict[str, list[str]] = {}
    for name, spec in pipelines.items():
        images = spec.get("images") if isinstance(spec, dict) else None
        found[str(name)] = [str(image) for image in images] if isinstance(images, dict) else []
    return found
