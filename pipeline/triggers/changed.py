"""Which images a set of changed paths affects, and why; then everything that depends on them.

An image is affected by a change to a file in its context (unless its .dockerignore excludes it),
to its Dockerfile, to a file matching its extra `paths:` globs, or to the pipelines file itself.
Everything here runs in `pipeline changed`, which commit hooks call: it imports no engine client, no
GitPython and no registry client (tests/unit/cli/test_startup.py keeps it so).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pipeline.dockerfile.ignore import IgnoreMatcher, ignore_patterns
from pipeline.errors import UsageError
from pipeline.graph import dependants_closure
from pipeline.vcs.worktree import PendingChanges, WorkTree

if TYPE_CHECKING:
    from pipeline.config import LoadedConfig
    from pipeline.plan import Plan

# How many of an image's changed files its one-line reason names (the JSON lists up to FILES_LISTED).
FILES_SHOWN = 3
FILES_LISTED = 50


@dataclass(frozen=True)
class ImageScope:
    """One image's footprint in the repository, as paths relative to the repository root."""

    key: str
    context: str  # "" when the context is the repository root
    dockerfile: str
    ignore: IgnoreMatcher | None
    globs: tuple[str, ...]


def _relative(path: Path, root: Path) -> str:
    """`path` (already resolved) relative to `root` (already resolved), "" for the root itself."""
    text = path.relative_to(root).as_posix()
    return "" if text == "." else text


def _real_dockerfile(context: Path, dockerfile: Path) -> Path:
    """The Dockerfile's real path; one lstat for the usual plain file right in the (resolved) context
    instead of one per directory of the path (200 images: 1,200 system calls fewer)."""
    if dockerfile.parent == context and not dockerfile.is_symlink():
        return dockerfile
    return dockerfile.resolve()


def read_dockerignore(context: Path) -> IgnoreMatcher | None:
    patterns = ignore_patterns(context / ".dockerignore")
    return IgnoreMatcher(patterns) if patterns else None


def scopes(plan: Plan, repo_root: Path, config_dir: Path, extra_paths: dict[str, list[str]]) -> list[ImageScope]:
    root = repo_root.resolve()
    prefix = _relative(config_dir.resolve(), root)
    result = []
    for key, image in plan.images.items():
        result.append(
            ImageScope(
                key=key,
                # The plan's contexts are resolved already; a Dockerfile path may still hold `..` or a link.
                context=_relative(image.context, root),
                dockerfile=_relative(_real_dockerfile(image.context, image.dockerfile), root),
                ignore=read_dockerignore(image.context),
                globs=tuple(f"{prefix}/{g}" if prefix else g for g in extra_paths.get(key, [])),
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


@dataclass(frozen=True)
class FileChange:
    """A changed path that is one of an image's inputs; `by_glob` when only its `paths:` globs take it in."""

    path: str
    by_glob: bool = False

    def __str__(self) -> str:
        return f"{self.path} changed" + (" (paths: glob)" if self.by_glob else "")


def direct_changes(
    image_scopes: list[ImageScope], paths: Iterable[str], config_file: str
) -> dict[str, list[FileChange]]:
    """Images whose own inputs changed, each with every path that did it, in the order of `paths`."""
    by_context: dict[str, list[ImageScope]] = {}
    for scope in image_scopes:
        by_context.setdefault(scope.context, []).append(scope)
    by_dockerfile = {scope.dockerfile: scope for scope in image_scopes}
    with_globs = [scope for scope in image_scopes if scope.globs]
    changes: dict[str, list[FileChange]] = {}
    for path in paths:
        if path == config_file:
            owners = [scope.key for scope in image_scopes]
        else:
            owner = by_dockerfile.get(path)
            owners = [owner.key] if owner is not None else []
            for directory in _parents(path):
                for scope in by_context.get(directory, ()):
                    inside = path[len(directory) + 1 :] if directory else path
                    ignored = scope.ignore is not None and scope.ignore.matches(inside)
                    if inside == ".dockerignore" or not ignored:
                        owners.append(scope.key)
        for key in dict.fromkeys(owners):
            changes.setdefault(key, []).append(FileChange(path))
        for scope in with_globs:
            if scope.key not in owners and any(fnmatch.fnmatchcase(path, g) for g in scope.globs):
                changes.setdefault(scope.key, []).append(FileChange(path, by_glob=True))
    return changes


@dataclass(frozen=True)
class Affected:
    """An image to build and every reason: its own inputs that changed, the affected images it builds on
    (`depends on X`, each one), or a note that stands for the whole run (a release, no earlier commit)."""

    key: str
    note: str | None = None
    files: tuple[FileChange, ...] = ()
    depends_on: tuple[str, ...] = ()

    @property
    def reasons(self) -> list[str]:
        """One line each: the note, the first FILES_SHOWN files and how many more, each dependency."""
        shown = [str(change) for change in self.files[:FILES_SHOWN]]
        more = len(self.files) - FILES_SHOWN
        if more > 0:
            shown.append(f"{more} more file{'s' if more > 1 else ''} changed")
        notes = [self.note] if self.note else []
        return [*notes, *shown, *(f"depends on {dep}" for dep in self.depends_on)]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def data(self) -> dict[str, object]:
        """What --json and the trigger report say of it: the one-line reason, then its parts."""
        return {
            "image": self.key,
            "reason": self.reason,
            "files": [change.path for change in self.files[:FILES_LISTED]],
            "files_total": len(self.files),
            "depends_on": list(self.depends_on),
        }


def affected_images(plan: Plan, direct: dict[str, list[FileChange]]) -> list[Affected]:
    """Direct changes plus their transitive dependants, in build order; each with all its reasons."""
    graph = {key: image.depends_on for key, image in plan.images.items()}
    closure = dependants_closure(graph, set(direct))
    return [
        Affected(
            key,
            files=tuple(direct.get(key, ())),
            depends_on=tuple(dep for dep in plan.images[key].depends_on if dep in closure),
        )
        for key in plan.images
        if key in closure
    ]


def affected_for_paths(config: LoadedConfig, plan: Plan, repo_root: Path, paths: list[str] | None) -> list[Affected]:
    """Affected images of `plan` for changed `paths` (relative to `repo_root`); None = all of them."""
    if paths is None:
        return [Affected(key, "no earlier commit to compare with: everything is built") for key in plan.images]
    extra = {
        key: list(config.spec.pipelines[image.pipeline].images[image.name].paths) for key, image in plan.images.items()
    }
    image_scopes = scopes(plan, repo_root, config.base_dir, extra)
    config_file = _relative(config.file.resolve(), repo_root.resolve())
    return affected_images(plan, direct_changes(image_scopes, paths, config_file))


def affected_since(config: LoadedConfig, plan: Plan, since: str) -> list[Affected]:
    """The images the working tree's changes since `since` affect (committed or not), with every reason,
    plus their dependants (`changed`, `run --since`)."""
    tree = WorkTree.find(config.base_dir)
    if tree is None:
        raise UsageError(f"{config.base_dir}: not a git repository")
    return affected_for_paths(config, plan, tree.root, tree.changes_since(since, str(config.base_dir)))


def plan_and_affected_since(
    config_file: Path, pipelines: Iterable[str], since: str
) -> tuple[LoadedConfig, Plan, list[Affected]]:
    """`pipeline changed`: the config, the plan of `pipelines` and what changed since `since` affects in it.

    git is asked first and answers while the config loads: the config (pydantic and the models) is imported
    here, after the git processes started, so on two cores the diff costs no time of its own. The plan
    knows HEAD's commit and branch but not the tree's state, the remote or the commit time (a run's
    Session.plan reads those through GitPython, a working-tree scan among them): they name tags and
    labels, never which images a change touches, and a commit hook calling this has no time for them.
    """
    pending = PendingChanges(config_file.parent, since) if config_file.parent.is_dir() else None
    from pipeline.config import load_config
    from pipeline.plan import RunContext, make_plan

    config = load_config(config_file)
    tree = pending.tree() if pending else None
    context = RunContext(
        git_sha=tree.head if tree else None,
        git_branch=tree.branch if tree else None,
        source_root=tree.root if tree else None,
    )
    plan = make_plan(config.spec, config.base_dir, list(pipelines), context, config.positions)
    if pending is None or tree is None:
        raise UsageError(f"{config.base_dir}: not a git repository")
    return config, plan, affected_for_paths(config, plan, tree.root, pending.paths(str(config.base_dir)))
