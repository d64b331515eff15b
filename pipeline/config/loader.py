"""Load pipelines.yaml: parse with positions, validate the schema, then check what the schema can't."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pipeline.config.checks import check_config
from pipeline.config.positions import KeyPath, PositionIndex, format_path, parse_yaml
from pipeline.config.schema import (
    ConfigSpec,
    ImageSpec,
    PipelineSpec,
    RegistrySpec,
    SignSpec,
    SigstoreSpec,
    TagPolicy,
    TriggerRule,
    TrustRule,
)
from pipeline.errors import ConfigError

DEFAULT_CONFIG_FILE = "pipelines.yaml"


@dataclass(frozen=True)
class LoadedConfig:
    spec: ConfigSpec
    file: Path
    positions: PositionIndex

    @property
    def base_dir(self) -> Path:
        return self.file.parent


def load_config(file: Path | str = DEFAULT_CONFIG_FILE) -> LoadedConfig:
    path = Path(file)
    data, positions = parse_yaml(path)
    if data is None:
        raise ConfigError(f"{path}:1:1: the file is empty (expected 'registry:' and 'pipelines:')")
    if not isinstance(data, dict):
        raise positions.error((), f"the top level must be a mapping, not {type(data).__name__}")
    try:
        spec = ConfigSpec.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, positions) from None
    loaded = LoadedConfig(spec=spec, file=path, positions=positions)
    check_config(spec, path.parent, positions)
    return loaded


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    """The model whose fields live at `path` (for 'did you mean' on unknown keys)."""
    if len(path) == 0:
        return ConfigSpec
    if len(path) == 2 and path[0] == "pipelines":
        return PipelineSpec
    if len(path) == 4 and path[0] == "pipelines" and path[2] == "images":
        return ImageSpec
    if path in (("tags",),) or (path[:1] == ("pipelines",) and path[-1] == "tags" and len(path) in (3, 5)):
        return TagPolicy
    if path == ("sign",) or (len(path) == 3 and path[0] == "pipelines" and path[2] == "sign"):
        return SignSpec
    if len(path) == 2 and path[0] == "trust":
        return TrustRule
    if len(path) == 2 and path[0] == "registries":
        return RegistrySpec
    if path == ("sigstore",):
        return SigstoreSpec
    if len(path) == 4 and path[0] == "pipelines" and path[2] == "triggers":
        return TriggerRule
    return None


def _describe(error: Any, path: KeyPath) -> tuple[str, bool]:
    """A message for one pydantic error, and whether it should point at the key rather than the value."""
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(path[-1])
        model = _model_at(path[:-1])
        hint = ""
        if model is not None:
            close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
            valid = ", ".join(model.model_fields)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {valid})"
        return f"unknown key '{key}'{hint}", True
    if kind == "missing":
        return f"missing required key '{path[-1]}'", False
    if kind == "string_pattern_mismatch" and path and path[-1] == "suffix":
        return f"'{error['input']}' is not a valid tag suffix (ASCII letters, digits, _ . -)", False
    if kind == "string_pattern_mismatch":
        return (
            f"'{error['input']}' is not a valid name (lowercase letters and digits, separated by single . _ or -)",
            True,
        )
    if kind == "too_short" and isinstance(error.get("input"), dict):
        return "must not be empty", False
    return str(error["msg"]), False


def _first_error(exc: ValidationError, positions: PositionIndex) -> ConfigError:
    located = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path: KeyPath = tuple(p for p in loc if p != "[key]")
        message, at_key = _describe(error, path)
        if error["type"] == "missing":
            where_path: KeyPath = path[:-1]
        else:
            where_path = path
        located.append((positions.locate(where_path, at_key=at_key or "[key]" in loc), path, message))

    def order(item: tuple[str, KeyPath, str]) -> tuple[int, int]:
        _, line, col = item[0].rsplit(":", 2)
        return int(line), int(col)

    located.sort(key=order)
    where, path, message = located[0]
    more = f" (+{len(located) - 1} more)" if len(located) > 1 else ""
    return ConfigError(f"{where}: {format_path(path)}: {message}{more}")
