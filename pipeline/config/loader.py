"""Load pipelines.yaml: parse with positions, validate the schema, then check what the schema can't."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pipeline.config.checks import check_config
from pipeline.config.paths import escape_problem, repository_root
from pipeline.config.positions import KeyPath, PositionIndex, one_line, ordered, parse_yaml
from pipeline.config.resolved import ResolvedImage
from pipeline.config.schema import ConfigSpec
from pipeline.errors import ConfigError
from pipeline.vcs import probes

DEFAULT_CONFIG_FILE = "pipelines.yaml"


@dataclass(frozen=True)
class LoadedConfig:
    spec: ConfigSpec
    file: Path
    positions: PositionIndex
    # Every image resolved (inherited settings taken from the nearest level), as the checks resolved them:
    # the plan starts from these instead of resolving the whole config a second time.
    images: Mapping[str, ResolvedImage] | None = None

    @property
    def base_dir(self) -> Path:
        return self.file.parent


def load_config(file: Path | str = DEFAULT_CONFIG_FILE, *, checkout: Path | None = None) -> LoadedConfig:
    """Read, validate and check a pipelines file. It must lead to a file inside its repository (the git
    work tree around it, else its directory): a symlink out of it is refused before anything is read.
    `checkout` is the repository when the tool did not choose its content (a trigger's checkout of a
    pushed commit): then the file, and every file it names, must stay inside that checkout."""
    path = Path(file)
    root = Path(probes.realpath(checkout)) if checkout is not None else repository_root(path.parent)
    problem = escape_problem(root, path, str(path), "pipelines file")
    if problem:
        raise ConfigError(one_line(problem))
    data, positions = parse_yaml(path)
    if data is None:
        raise ConfigError(f"{path}:1:1: the file is empty (expected 'registry:' and 'pipelines:')")
    if not isinstance(data, dict):
        raise positions.error((), f"the top level must be a mapping, not {type(data).__name__}")
    try:
        spec = ConfigSpec.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(exc, positions) from None
    images = check_config(spec, path.parent, positions, checkout=root if checkout is not None else None)
    return LoadedConfig(spec=spec, file=path, positions=positions, images=images)


def _model_at(path: KeyPath) -> type[BaseModel] | None:
    """The model whose fields live at `path` (for 'did you mean' on unknown keys), found by walking the
    schema's annotations: models by field name, lists by index, dicts by any key."""
    annotation: Any = ConfigSpec
    for part in path:
        annotation = _unwrap(annotation)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            annotation = field.annotation
        elif origin is list and isinstance(part, int):
            annotation = get_args(annotation)[0]
        elif origin is dict:
            annotation = get_args(annotation)[1]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` to X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _shown(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _grammar(path: KeyPath, is_key: bool) -> str | None:
    """What a value that reaches a command line must look like (schema.py's patterns), for its error."""
    parent = path[-2] if len(path) >= 2 else None
    if is_key and parent == "build_args":
        return "is not a build arg name (ASCII letters, digits and _, not starting with a digit; at most 128)"
    if is_key and parent == "labels":
        return "is not a label key (ASCII letters, digits and . _ / -, starting with a letter or digit; at most 256)"
    if is_key or not path:
        return None
    if path[-1] == "target" and "images" in path:
        return (
            "is not a build target: name a stage of the Dockerfile (ASCII letters, digits and _ . -, starting "
            "with a letter; at most 128)"
        )
    if len(path) >= 3 and path[-3] == "secrets" and path[-1] == "env":
        return "is not an environment variable name: give the NAME of the variable that holds the secret"
    if len(path) >= 3 and path[-3] == "secrets" and path[-1] == "file":
        return "is not a secret file path for buildx: no ',', '\"' or control characters, at most 4096 characters"
    if path[0] == "engines" and path[-1] == "context" and len(path) == 3:
        return "is not a docker context name (ASCII letters, digits and _ . + -, starting with a letter or digit)"
    if path[0] == "engines" and path[-2:] == ("buildx", "builder"):
        return "is not a buildx builder name (ASCII letters, digits and _ . -, starting with a letter)"
    return None


def _describe(error: Any, path: KeyPath) -> tuple[str, bool]:
    """A message for one pydantic error, and whether it should point at the key rather than the value."""
    kind = error["type"]
    if kind == "extra_forbidden":
        key = _shown(path[-1])
        model = _model_at(path[:-1])
        hint = ""
        if model is not None:
            close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
            valid = ", ".join(model.model_fields)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {valid})"
        return f"unknown key '{key}'{hint}", True
    if kind == "missing":
        return f"missing required key '{path[-1]}'", False
    if kind == "invalid_key" and error.get("input") is True and "notify" in path:
        # YAML 1.1 reads the key `on` as the boolean true (GitHub's workflows have the same trap).
        return "'on' reads as the boolean true in YAML: write 'events: [failure, release]'", True
    if kind in ("string_pattern_mismatch", "string_type") and path and path[-1] in ("secret_env", "url_env"):
        return (
            f"'{_shown(error['input'], 24)}' is not an environment variable name: give the NAME of the variable "
            "that holds the value (e.g. PIPELINE_NOTIFY_SECRET), never the value itself",
            False,
        )
    grammar = _grammar(path, "[key]" in error["loc"])
    # A secret file's length is a max_length beside its pattern (schema.py), where a `{1,4096}` in the pattern
    # was: too long reads as its grammar, as before. Every other field's max_length keeps pydantic's words.
    secret_file = len(path) >= 3 and path[-3] == "secrets" and path[-1] == "file"
    if grammar is not None and (kind == "string_pattern_mismatch" or (kind == "string_too_long" and secret_file)):
        return f"'{_shown(error['input'])}' {grammar}", "[key]" in error["loc"]
    if kind == "string_pattern_mismatch" and path and path[-1] == "suffix":
        return f"'{_shown(error['input'])}' is not a valid tag suffix (ASCII letters, digits, _ . -)", False
    if kind == "model_type" and len(path) >= 2 and path[-2] == "secrets":
        return "a secret is {env: VARIABLE} or {file: PATH}, naming where its value is read", False
    if kind == "string_pattern_mismatch" and len(path) >= 2 and path[-2] == "secrets":
        return f"'{_shown(error['input'])}' is not a valid secret id (ASCII letters, digits, _ . -)", True
    if kind in ("string_pattern_mismatch", "string_type") and path and path[-1] == "os_version":
        return (
            f"'{_shown(error['input'])}' is not a Windows version: write it as Windows reports it, "
            "major.minor.build (10.0.17763 is ltsc2019, 10.0.20348 ltsc2022)",
            False,
        )
    if kind == "string_pattern_mismatch":
        return (
            f"'{_shown(error['input'])}' is not a valid name "
            "(lowercase letters and digits, separated by single . _ or -)",
            True,
        )
    if kind == "too_short" and isinstance(error.get("input"), dict):
        return "must not be empty", False
    return str(error["msg"]), False


def _schema_error(exc: ValidationError, positions: PositionIndex) -> ConfigError:
    """Every mistake pydantic found, in the file's order."""
    errors = exc.errors()
    # 'registy: x' reads better as an unknown key (did you mean 'registry'?) than as 'registry' missing.
    misspelt = {tuple(e["loc"][:-1]) for e in errors if e["type"] == "extra_forbidden"}
    shown = [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"][:-1]) in misspelt)]
    problems = []
    for error in shown:
        loc = tuple(error["loc"])
        path: KeyPath = tuple(p for p in loc if p != "[key]")
        message, at_key = _describe(error, path)
        where_path: KeyPath = path[:-1] if error["type"] == "missing" else path
        if error["type"] == "invalid_key" and error.get("input") is True:
            path = (*path[:-1], "on")  # named as written (YAML 1.1 read `on` as true), located as parsed
        problems.append(positions.problem(where_path, message, at_key=at_key or "[key]" in loc, shown=path))
    return ConfigError(problems=ordered(problems))
