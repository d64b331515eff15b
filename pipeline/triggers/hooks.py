"""Git hooks that hand pushed ranges to `pipeline`: installed idempotently, chained to whatever hook
was there before (kept as `<hook>.pre-pipeline` and run first), removed cleanly."""

from __future__ import annotations

import shlex
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import UsageError

HOOKS = ("post-commit", "post-merge", "pre-push", "post-receive")


def hooks_dir(repo_path: Path) -> Path:
    """The repository's hooks directory (vcs.info: GitPython loads here, not for `pipeline hooks --help`)."""
    from pipeline.vcs.info import hooks_dir as of_repository

    return of_repository(repo_path)


READS_STDIN = {"pre-push", "post-receive"}
MARKER = "# installed by `pipeline hooks install`"
LEGACY_SUFFIX = ".pre-pipeline"


def _script(hook: str, config: str | None) -> str:
    python = shlex.quote(sys.executable)
    config_args = f" -f {shlex.quote(config)}" if config else ""
    legacy = f'"$hook_dir/{hook}{LEGACY_SUFFIX}"'
    if hook in READS_STDIN:
        chain = f'input=$(cat)\nif [ -x {legacy} ]; then printf "%s\\n" "$input" | {legacy} "$@" || exit $?; fi\n'
        feed = 'printf "%s\\n" "$input" | '
    else:
        chain = f'if [ -x {legacy} ]; then {legacy} "$@" || exit $?; fi\n'
        feed = ""
    return (
        "#!/bin/sh\n"
        f"{MARKER}\n"
        "# The hook that was here before (if any) runs first, as it did; then pipeline builds what changed.\n"
        'hook_dir=$(cd "$(dirname "$0")" && pwd)\n'
        f"{chain}"
        "git_dir=$(git rev-parse --absolute-git-dir) || exit 1\n"
        "# Git exports these for the hook's own repository; pipeline opens repositories itself.\n"
        "unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX GIT_OBJECT_DIRECTORY GIT_QUARANTINE_PATH\n"
        f'{feed}exec {python} -m pipeline hook-run {hook} --git-dir "$git_dir"{config_args} "$@"\n'
    )


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def install(repo_path: Path, hook: str, config: str | None = None) -> str:
    """Install (or refresh) our hook; an existing foreign hook is kept and chained. Returns what happened."""
    if hook not in HOOKS:
        raise UsageError(f"unknown hook '{hook}' (one of {', '.join(HOOKS)})")
    directory = hooks_dir(repo_path)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / hook
    legacy = directory / f"{hook}{LEGACY_SUFFIX}"
    note = "installed"
    if target.exists() and not is_ours(target):
        if legacy.exists():
            raise UsageError(f"{target} and {legacy} both exist; refusing to overwrite either")
        target.rename(legacy)
        note = f"installed; the existing hook now runs first as {legacy.name}"
    elif target.exists():
        note = "already installed (refreshed)"
    target.write_text(_script(hook, config), encoding="utf-8")
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return f"{target}: {note}"


def uninstall(repo_path: Path, hook: str) -> str | None:
    """Remove our hook (restoring the one it chained to). Returns what happened; None when there is no
    such hook at all: uninstalling every hook name should not list the ones that never existed."""
    directory = hooks_dir(repo_path)
    target = directory / hook
    legacy = directory / f"{hook}{LEGACY_SUFFIX}"
    if not target.exists():
        return None
    if not is_ours(target):
        return f"{target}: not installed by pipeline; left alone"
    target.unlink()
    if legacy.exists():
        legacy.rename(target)
        return f"{target}: removed; the previous hook is restored"
    return f"{target}: removed"


def uninstall_hooks(repo_path: Path, hooks: Sequence[str]) -> list[str]:
    """`uninstall` for each hook: what happened to those that exist, or one line saying none does."""
    done = [line for hook in hooks if (line := uninstall(repo_path, hook)) is not None]
    return done or [f"{hooks_dir(repo_path)}: no hook is installed ({', '.join(hooks)}); nothing to remove"]
