"""Commands that turn git changes into builds: trigger, hooks, hook-run, watch (`changed` is changed_command)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.cli.common import F, locked_option, progress_mode, progress_options, secrets, settings
from pipeline.common.checkout import ZERO_SHA
from pipeline.common.reporting import Forward
from pipeline.errors import PipelineError
from pipeline.triggers import hooks as git_hooks

# --help and completion import this module: the run stack, the config models and GitPython load in the
# commands' bodies.
if TYPE_CHECKING:
    from pipeline.run.report import ProgressMode
    from pipeline.triggers.push import RefUpdate


def _say(message: str) -> None:
    click.echo(message, err=True)


_SAY = Forward(_say)  # triggers' and watchers' progress, on stderr


def _trigger(
    repo: str,
    push: RefUpdate,
    config_path: str,
    report_file: Path | None,
    jobs: int,
    progress: ProgressMode = "auto",
    locked: bool = False,
) -> bool:
    from pipeline.triggers.push import trigger_push

    return trigger_push(
        settings(), secrets(), repo, push, config_path, report_file, jobs, _SAY, progress=progress, locked=locked
    )


# Shared by the commands that read pipelines.yaml from inside a repository checkout (trigger, watch).
repo_config_option = click.option(
    "-f",
    "--file",
    "config_path",
    default="pipelines.yaml",
    show_default=True,
    help="The pipelines file, relative to the repository root.",
)
jobs_option = click.option("-j", "--jobs", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default=True)


@click.command()
@click.option("--repo", required=True, help="Repository path or URL.")
@click.option("--ref", required=True, help="The pushed ref (refs/heads/main, refs/tags/v1.2.3).")
@click.option("--before", default=ZERO_SHA, show_default="0000… (new ref)", help="The ref's previous commit.")
@click.option("--after", help="The pushed commit (required without --base; with it, default: the tip of --ref).")
@click.option(
    "--base",
    "bases",
    multiple=True,
    metavar="REFERENCE",
    help="Repeatable. A base image that moved (127.0.0.1:5000/up/base:1, or repo@sha256:…): build the images "
    "of --ref's tip that stand on it, where its digest differs from their last build's, and their dependants.",
)
@repo_config_option
@jobs_option
@click.option("--report", "report_file", type=click.Path(path_type=Path, dir_okay=False), help="JSON report.")
@progress_options
@locked_option
def trigger(
    repo: str,
    ref: str,
    before: str,
    after: str | None,
    bases: tuple[str, ...],
    config_path: str,
    jobs: int,
    report_file: Path | None,
    progress: str,
    quiet: bool,
    locked: bool,
) -> None:
    """Build what one push calls for: the pipelines whose trigger rules match REF, limited to the
    images the commits from BEFORE to AFTER affect (a release rule builds everything at its version).
    What hooks, `watch` and `serve` run for each push. With --base: what an upstream base image's
    update calls for on REF's tip (a pipeline's `on_base_update` says whether it cuts a patch release).

    \b
    Examples:
      pipeline trigger --repo . --ref refs/heads/main --before HEAD~1 --after HEAD
      pipeline trigger --repo . --ref refs/heads/main --base 127.0.0.1:5000/up/base:1
    """
    from pipeline.triggers.bases import trigger_bases
    from pipeline.triggers.push import RefUpdate, resolve_before

    if bases:
        mode = progress_mode(progress, quiet)
        ok = trigger_bases(
            settings(), secrets(), repo, ref, bases, after, config_path, report_file, jobs, _SAY, mode, locked=locked
        )
        if not ok:
            sys.exit(1)
        return
    if after is None:
        raise click.UsageError("--after is required (unless --base names base images that moved)")
    push = RefUpdate(ref, resolve_before(settings(), repo, before), after)
    if not _trigger(repo, push, config_path, report_file, jobs, progress_mode(progress, quiet), locked):
        sys.exit(1)


_hook_repo_option = click.option(
    "--repo", "repo_path", type=click.Path(path_type=Path, file_okay=False), default=Path("."), show_default=True
)


def _hook_names_option(default: tuple[str, ...], help: str | None = None) -> Callable[[F], F]:
    return click.option(
        "--hook",
        "hook_names",
        multiple=True,
        type=click.Choice(git_hooks.HOOKS),
        default=default,
        show_default=True,
        help=help,
    )


@click.group()
def hooks() -> None:
    """Install or remove git hooks that build what each commit or push changed."""


@hooks.command("install")
@_hook_repo_option
@_hook_names_option(("post-commit",), "Repeatable. post-receive works in a bare (server) repository.")
@click.option("-f", "--file", "config_path", help="The pipelines file, relative to the repository root.")
def hooks_install(repo_path: Path, hook_names: tuple[str, ...], config_path: str | None) -> None:
    """Install hooks (idempotent; an existing hook is kept and runs first).

    \b
    Example:
      pipeline hooks install --repo /srv/git/shop.git --hook post-receive
    """
    for hook in hook_names:
        click.echo(git_hooks.install(repo_path, hook, config_path))


@hooks.command("uninstall")
@_hook_repo_option
@_hook_names_option(git_hooks.HOOKS)
def hooks_uninstall(repo_path: Path, hook_names: tuple[str, ...]) -> None:
    """Remove pipeline's hooks, restoring any hook they had chained to.

    \b
    Example:
      pipeline hooks uninstall --repo .
    """
    for line in git_hooks.uninstall_hooks(repo_path, hook_names):
        click.echo(line)


@click.command("hook-run", hidden=True)
@click.argument("hook", type=click.Choice(git_hooks.HOOKS))
@click.argument("hook_args", nargs=-1)
@click.option("--git-dir", required=True)
@click.option("-f", "--file", "config_path", default="pipelines.yaml")
def hook_run(hook: str, hook_args: tuple[str, ...], git_dir: str, config_path: str) -> None:
    """What installed hooks call; reads the pushed ranges the way each hook receives them."""
    from pipeline.triggers.push import hook_pushes

    jobs = os.cpu_count() or 1
    stdin = [] if hook in ("post-commit", "post-merge") else sys.stdin.read().splitlines()
    pushes = hook_pushes(settings(), hook, git_dir, stdin)
    ok = True
    for push in pushes:
        if push.after == ZERO_SHA:
            continue  # a deleted ref builds nothing
        _say(f"pipeline: {hook} {push.ref} {push.before[:12]}..{push.after[:12]}")
        try:
            ok = _trigger(git_dir, push, config_path, None, jobs) and ok
        except PipelineError as exc:
            _say(f"pipeline: {exc}")
            ok = False
    # pre-push may stop a push whose build fails; the post-* hooks cannot undo anything.
    if not ok and hook == "pre-push":
        sys.exit(1)


@click.command()
@click.option("--repo", required=True, help="Repository path or URL (a URL is mirrored into ~/.cache/pipeline).")
@click.option("--branch", default="main", show_default=True)
@click.option("--interval", default="30s", show_default=True, help="Time between polls (30s, 5m, 1h).")
@click.option(
    "--state",
    "state_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where the last handled commit is kept (default: one file per repository and branch under "
    "$XDG_STATE_HOME/pipeline/watch/, ~/.local/state/pipeline/watch/ without it).",
)
@repo_config_option
@jobs_option
@click.option("--once", is_flag=True, help="Poll once and exit.")
@click.option(
    "--bases",
    "watch_bases",
    is_flag=True,
    help="Poll the digests of the base images the branch's pipelines use (HEAD requests) instead of commits, "
    "and build what each move calls for (as trigger --base).",
)
@progress_options
@locked_option
def watch(
    repo: str,
    branch: str,
    interval: str,
    state_file: Path | None,
    config_path: str,
    jobs: int,
    once: bool,
    watch_bases: bool,
    progress: str,
    quiet: bool,
    locked: bool,
) -> None:
    """Poll a branch and build each new commit in order (only what it changed). The last handled
    commit survives restarts; a failed build is recorded and the next commit still runs; SIGTERM
    stops after the current step. With --once, a poll that fails (no such repository or branch)
    exits 4.

    \b
    With --bases, the base images' digests are polled instead (state under
    $XDG_STATE_HOME/pipeline/watch/bases-*); run a second watcher for commits.

    \b
    Examples:
      pipeline watch --repo https://git.example.com/shop.git --branch main --interval 1m
      pipeline watch --repo https://git.example.com/shop.git --branch main --bases --interval 15m
    """
    from pipeline.triggers.push import RefUpdate
    from pipeline.triggers.watch import Watcher, WatchState, legacy_state_path, parse_interval, state_path

    seconds = parse_interval(interval)
    mode = progress_mode(progress, quiet)
    if watch_bases:
        _watch_bases(repo, branch, seconds, state_file, config_path, jobs, once, mode, locked)
        return
    if state_file is not None:
        state = WatchState.load(state_file)
    else:
        default = state_path(settings().state_dir, repo, branch)
        state = WatchState.load_or_migrate(default, legacy_state_path(Path.cwd(), branch), _SAY)

    def handle(before: str, after: str) -> bool:
        push = RefUpdate(f"refs/heads/{branch}", before, after)
        return _trigger(repo, push, config_path, None, jobs, mode, locked)

    watcher = Watcher.for_repository(repo, settings().repos_dir, branch, state, handle, _SAY)
    watcher.install_signal_handlers()
    _say(f"watching {repo} branch {branch} every {seconds:g}s (SIGTERM or Ctrl-C stops it)")
    watcher.run(seconds, once=once)


def _watch_bases(
    repo: str,
    branch: str,
    seconds: float,
    state_file: Path | None,
    config_path: str,
    jobs: int,
    once: bool,
    mode: ProgressMode,
    locked: bool,
) -> None:
    from pipeline.triggers.bases import current_bases, trigger_bases
    from pipeline.triggers.basewatch import BaseWatcher, BaseWatchState, bases_state_path

    ref = f"refs/heads/{branch}"
    state = BaseWatchState.load(state_file or bases_state_path(settings().state_dir, repo, branch))

    def handle(moved: list[str]) -> bool:
        return trigger_bases(
            settings(), secrets(), repo, ref, moved, None, config_path, None, jobs, _SAY, mode, locked=locked
        )

    watcher = BaseWatcher(lambda: current_bases(settings(), repo, ref, config_path), handle, state, _SAY)
    watcher.install_signal_handlers()
    _say(f"watching the base images of {repo} branch {branch} every {seconds:g}s (SIGTERM or Ctrl-C stops it)")
    watcher.run(seconds, once=once)
