"""Which images a set of changed paths affects, and why; then everything that depends on them.

An image is affected by a change to a file in its context (unless its .dockerignore excludes it),
to its Dockerfile, to a file matching its extra `paths:` globs, or to the pipelines file itself.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from docker.utils.build import PatternMatcher

from pipeline.config import LoadedConfig
from pipeline.graph import dependants_closure
from pipeline.plan import Plan


@dataclass(frozen=True)
class ImageScope:
    """One image's footprint in the repository, as paths relative to the repository root."""

    key: str
    context: str  # "" when the context is the repository root
    dockerfile: str
    ignore: PatternMatcher | None
    globs: tuple[str, ...]


def _relative(path: Path, root: Path) -> str:
    text = path.resolve().relative_to(root.resolve()).as_posix()
    return "" if text == "." else text


def read_dockerignore(context: Path) -> PatternMatcher | None:
    try:
        lines = (context / ".dockerignore").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return PatternMatcher(patterns) if patterns else None


def scopes(plan: Plan, repo_root: Path, config_dir: Path, extra_paths: dict[str, list[str]]) -> list[ImageScope]:
    result = []
    for key, image in plan.images.items():
        globs = tuple(
            _relative(config_dir, repo_root) + "/" + g if _relative(config_dir, repo_root) else g
            for g in extra_paths.get(key, [])
        )
        result.append(
            ImageScope(
                key=key,
                context=_relative(image.context, repo_root),
                dockerfile=_relative(image.dockerfile, repo_root),
                ignore=read_dockerignore(image.context),
                globs=globs,
            )
        )
    return result


def _parents(path: str) -> Iterable[str]:
    parent = PurePosixPath(path).parent
    while True:
        yield "" if str(parent) == "." else str(parent)
        if str(parent) in (".", "/"):
            return
        parent = parent.parent


def direct_changes(image_scopes: list[ImageScope], paths: Iterable[str], config_file: str) -> dict[str, str]:
    """Images whose own inputs changed, each with the first path that did it."""
    by_context: dict[str, list[ImageScope]] = {}
    for scope in image_scopes:
        by_context.setdefault(scope.context, []).append(scope)
    by_dockerfile = {scope.dockerfile: scope for scope in image_scopes}
    with_globs = [scope for scope in image_scopes if scope.globs]
    reasons: dict[str, str] = {}
    for path in paths:
        if path == config_file:
            for scope in image_scopes:
                reasons.setdefault(scope.key, f"{path} changed")
            continue
        owner = by_dockerfile.get(path)
        if owner is not None:
            reasons.setdefault(owner.key, f"{path} changed")
        for directory in _parents(path):
            for scope in by_context.get(directory, ()):
                if scope.key in reasons:
                    continue
                inside = path[len(directory) + 1 :] if directory else path
                ignored = scope.ignore is not None and scope.ignore.matches(inside)  # type: ignore[arg-type]
                if inside == ".dockerignore" or not ignored:
                    reasons[scope.key] = f"{path} changed"
        for scope in with_globs:
            if scope.key not in reasons and any(fnmatch.fnmatchcase(path, g) for g in scope.globs):
                reasons[scope.key] = f"{path} changed (paths: glob)"
    return reasons


@dataclass(frozen=True)
class Affected:
    key: str
    reason: str


def affected_images(plan: Plan, direct: dict[str, str]) -> list[Affected]:
    """Direct changes plus their transitive dependants, in build order."""
    graph = {key: image.depends_on for key, image in plan.images.items()}
    closure = dependants_closure(graph, set(direct))
    result = []
    for key in plan.images:
        if key in direct:
            result.append(Affected(key, direct[key]))
        elif key in closure:
            dep = next(d for d in plan.images[key].depends_on if d in closure)
            result.append(Affected(key, f"depends on {dep}"))
    return result


def affected_for_paths(config: LoadedConfig, plan: Plan, repo_root: Path, paths: list[str] | None) -> list[Affected]:
    """Affected images of `plan` for changed `paths` (relative to `repo_root`); None = all of them."""
    if paths is None:
        return [Affected(key, "no earlier commit to compare with: everything is built") for key in plan.images]
    extra = {
        key: list(config.spec.pipelines[image.pipeline].images[image.name].paths) for key, image in plan.images.items()
    }
    image_scopes = scopes(plan, repo_root, config.base_dir, extra)
    return affected_images(plan, direct_changes(image_scopes, paths, _relative(config.file, repo_root)))
