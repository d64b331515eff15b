"""Which images a set of changed paths affects, and why; then everything that depends on them.

An image is affected by a change to a file in its context (unless the ignore file its builder reads
excludes it: on BuildKit `<Dockerfile>.dockerignore` when there is one, else the context's .dockerignore),
to its Dockerfile, to a file matching its extra `paths:` globs, or to the pipelines file itself or the
lock beside it (`pipelines.lock`: every image is then a candidate, and the input digests reuse what did
not move); a changed file is one that differs from the commit compared with, or an untracked one
.gitignore lets through.
Everything here runs in `pipeline changed`, which commit hooks call: it imports no engine client, no
GitPython and no registry client, and with its cache (triggers/changed_cache.py) not even the config
(tests/unit/cli/test_startup.py keeps it so).
"""

from __future__ import annotations

import fnmatch
import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pipeline.bases.lock_file import lock_path
from pipeline.ci.environment import CiEnvironment, checkout_of
from pipeline.common.checkout import Checkout
from pipeline.dockerfile.ignore import IgnoreMatcher, ignore_file, ignore_patterns
from pipeline.errors import UsageError
from pipeline.graph import dependants_closure
from pipeline.triggers import changed_cache
from pipeline.triggers.inputs import ImageInputs, image_inputs, inputs_from_rows, row_of
from pipeline.vcs import probes
from pipeline.vcs.worktree import Baseline, PendingChanges, WorkTree

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
    ignore_file: str  # the ignore file its builder reads (whether or not it exists)
    globs: tuple[str, ...]


def _relative(path: Path, root: Path) -> str:
    """`path` (already resolved) relative to `root` (already resolved), "" for the root itself. On the
    text: both are normalized, and Path.relative_to was a fifth of `changed`'s work at 200 images."""
    text, top = str(path), str(root)
    if text == top:
        return ""
    prefix = top if top.endswith("/") else top + "/"
    if not text.startswith(prefix):
        raise ValueError(f"{text!r} is not inside {top!r}")
    return text[len(prefix) :]


def _real_dockerfile(context: Path, dockerfile: Path) -> Path:
    """The Dockerfile's real path; one lstat for the usual plain file right in the (resolved) context
    instead of one per directory of the path (200 images: 1,200 system calls fewer). On the text, with
    os.path: pathlib's comparison and is_symlink were most of this for 400 paths, on every run."""
    text = str(dockerfile)
    if os.path.dirname(text) == str(context) and not os.path.islink(text):
        return dockerfile
    return dockerfile.resolve()


def read_dockerignore(path: Path) -> IgnoreMatcher | None:
    patterns = ignore_patterns(path)
    return _matcher(tuple(patterns)) if patterns else None


@functools.lru_cache(maxsize=64)
def _matcher(patterns: tuple[str, ...]) -> IgnoreMatcher:
    # Images of one repository tend to share their .dockerignore: parse each text once.
    return IgnoreMatcher(patterns)


def scopes(inputs: list[ImageInputs], repo_root: Path, config_dir: Path) -> list[ImageScope]:
    root = repo_root.resolve()
    prefix = _relative(config_dir.resolve(), root)
    # Ignore files are looked up and read each time, never cached: editing or adding one changes the
    # answer at once. The lookup is the builds' own (dockerfile.ignore), so the same files count.
    found = []
    for image in inputs:
        # The plan's contexts are resolved already; a Dockerfile path may still hold `..` or a link.
        dockerfile = _real_dockerfile(image.context, image.dockerfile)
        ignore = ignore_file(image.context, image.dockerfile, buildkit=image.buildkit)
        found.append(
            ImageScope(
                key=image.key,
                context=_relative(image.context, root),
                dockerfile=_relative(dockerfile, root),
                ignore=read_dockerignore(ignore),
                ignore_file=_relative(_real_dockerfile(image.context, ignore), root),
                globs=tuple(f"{prefix}/{g}" if prefix else g for g in image.paths),
            )
        )
    return found


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
    image_scopes: list[ImageScope], paths: Iterable[str], config_file: str, lock_file: str | None = None
) -> dict[str, list[FileChange]]:
    """Images whose own inputs changed, each with every path that did it, in the order of `paths`. The
    pipelines file (`config_file`) and its lock (`lock_file`) touch every image."""
    by_context: dict[str, list[ImageScope]] = {}
    for scope in image_scopes:
        by_context.setdefault(scope.context, []).append(scope)
    by_dockerfile = {scope.dockerfile: scope for scope in image_scopes}
    by_ignore_file: dict[str, list[str]] = {}
    for scope in image_scopes:
        by_ignore_file.setdefault(scope.ignore_file, []).append(scope.key)
    with_globs = [scope for scope in image_scopes if scope.globs]
    changes: dict[str, list[FileChange]] = {}
    for path in paths:
        if path in (config_file, lock_file):
            owners = [scope.key for scope in image_scopes]
        else:
            owner = by_dockerfile.get(path)
            owners = [owner.key] if owner is not None else []
            # The ignore file in use decides what is sent, even where its own patterns exclude it.
            owners += by_ignore_file.get(path, [])
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


def affected_images(inputs: list[ImageInputs], direct: dict[str, list[FileChange]]) -> list[Affected]:
    """Direct changes plus their transitive dependants, in build order; each with all its reasons."""
    graph = {image.key: image.depends_on for image in inputs}
    closure = dependants_closure(graph, set(direct))
    return [
        Affected(
            image.key,
            files=tuple(direct.get(image.key, ())),
            depends_on=tuple(dep for dep in image.depends_on if dep in closure),
        )
        for image in inputs
        if image.key in closure
    ]


def affected_for_inputs(
    inputs: list[ImageInputs], repo_root: Path, config_file: Path, paths: list[str] | None
) -> list[Affected]:
    """Affected images among `inputs` for changed `paths` (relative to `repo_root`); None = all of them."""
    if paths is None:
        return [Affected(image.key, "no earlier commit to compare with: everything is built") for image in inputs]
    image_scopes = scopes(inputs, repo_root, config_file.parent)
    root = repo_root.resolve()
    relative_file = _relative(config_file.resolve(), root)
    # The lock as git names it: beside the pipelines file, never followed (a link to it is what changes).
    relative_lock = _relative(lock_path(config_file.parent.resolve() / config_file.name), root)
    return affected_images(inputs, direct_changes(image_scopes, paths, relative_file, relative_lock))


def affected_for_paths(config: LoadedConfig, plan: Plan, repo_root: Path, paths: list[str] | None) -> list[Affected]:
    """Affected images of `plan` for changed `paths` (relative to `repo_root`); None = all of them."""
    return affected_for_inputs(image_inputs(plan), repo_root, config.file, paths)


def affected_since(config: LoadedConfig, plan: Plan, since: str) -> list[Affected]:
    """The images the working tree's changes since `since` affect (committed or not), with every reason,
    plus their dependants (`changed`, `run --since`)."""
    tree = WorkTree.find(config.base_dir)
    if tree is None:
        raise UsageError(f"{config.base_dir}: not a git repository")
    return affected_for_paths(config, plan, tree.root, tree.changes_since(since, str(config.base_dir)))


def inputs_and_affected_since(
    config_file: Path, pipelines: Iterable[str], since: str | None, ci: CiEnvironment | None = None
) -> tuple[list[ImageInputs], list[Affected], Baseline]:
    """`pipeline changed`: the inputs of the images of `pipelines`, which of them the changes since
    `since` affect, and what they were compared with (`since`, or without one the default baseline:
    vcs.worktree); `ci` is the CI service the command runs in (its branch and pull request, as a run's).

    git is asked first and answers while the rest runs. The inputs come from the cache when it holds
    them for these exact bytes of the pipelines file (and the files its checks looked at are as they
    were); else from the config, loaded and planned as every command does, which the cache then keeps.
    The config (pydantic and the models) is imported only then, after the git processes started, so on
    two cores the diff costs no time of its own. The plan knows HEAD's commit, the branch and pull
    request as a run does (ci.checkout_of) but not the tree's state, the remote or the commit time (a
    run's Session.plan reads those through GitPython, a working-tree scan among them): they name tags
    and labels, never which images a change touches, and a commit hook calling this has no time for them.
    """
    selected = list(pipelines)
    pending = PendingChanges(config_file.parent, since) if config_file.parent.is_dir() else None
    tree = pending.tree() if pending else None
    checkout = checkout_of(tree.head, tree.branch, tree.root, ci) if tree else checkout_of(None, None, None, ci)
    git_dir = tree.git_dir if tree and tree.head else None  # no cache before the first commit
    key = changed_cache.key_for(config_file, selected, checkout) if git_dir else None
    inputs = inputs_from_rows(changed_cache.read(git_dir, key)) if git_dir and key else None
    if inputs is None:
        inputs, facts = _inputs_from_config(config_file, selected, checkout)
        if git_dir and key and changed_cache.key_for(config_file, selected, checkout) == key:
            # Only when the file did not change while it loaded: the entry is the answer for these bytes.
            changed_cache.write(git_dir, key, facts, [row_of(image) for image in inputs])
    if pending is None or tree is None:
        raise UsageError(f"{config_file.parent}: not a git repository")
    paths = pending.paths(str(config_file.parent))
    return inputs, affected_for_inputs(inputs, tree.root, config_file, paths), pending.baseline


def _inputs_from_config(
    config_file: Path, pipelines: list[str], checkout: Checkout
) -> tuple[list[ImageInputs], list[probes.Fact]]:
    """The images' inputs as the loaded, checked and planned config gives them, and every look at the
    disk the checks took (what the cache must find unchanged to be used)."""
    from pipeline.config import load_config
    from pipeline.plan import RunContext, make_plan

    with probes.recording() as facts:
        config = load_config(config_file)
        context = RunContext.of(checkout)
        plan = make_plan(config.spec, config.base_dir, pipelines, context, config.positions, resolved=config.images)
    return image_inputs(plan), facts
