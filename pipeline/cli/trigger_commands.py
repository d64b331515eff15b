"""Commands that turn git changes into builds: changed, trigger, hooks, hook-run, watch."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from pipeline.cache.lastbuild import narrow_plan
from pipeline.cli.common import build_plan, check_result, config_option, execute, registry_client
from pipeline.config import load_config
from pipeline.errors import PipelineError, UsageError
from pipeline.run.executor import RunOptions
from pipeline.run.report import write_report
from pipeline.triggers import hooks as git_hooks
from pipeline.triggers.changed import Affected, affected_for_paths
from pipeline.triggers.rules import match_ref, ref_name
from pipeline.triggers.source import ZERO_SHA, GitSource
from pipeline.triggers.watch import Watcher, WatchState, parse_interval


def repos_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pipeline" / "repos"


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@click.argument("pipelines", nargs=-1)
@config_option
@click.option("--since", required=True, metavar="REF", help="Compare the working tree with this commit.")
@click.option("--json", "as_json", is_flag=True, help="Print the affected images as JSON.")
def changed(pipelines: tuple[str, ...], config_file: Path, since: str, as_json: bool) -> None:
    """List the images a change affects (context files not .dockerignored, the Dockerfile, extra
    `paths:` globs, the pipelines file), each with the reason, plus everything depending on them.

    \b
    Example:
      pipeline changed --since origin/main --json
    """
    config = load_config(config_file)
    source = GitSource(str(config.base_dir), repos_cache_dir())
    plan = build_plan(config, pipelines, None)
    found = affected_for_paths(config, plan, source.root, source.working_tree_changes(since))
    if as_json:
        click.echo(json.dumps({"since": since, "images": [{"image": a.key, "reason": a.reason} for a in found]}))
        return
    if not found:
        click.echo(f"nothing changed since {since} affects an image")
    for item in found:
        click.echo(f"{item.key:<30} {item.reason}")


def trigger_push(
    repo: str,
    ref: str,
    before: str,
    after: str,
    config_path: str,
    report_file: Path | None,
    jobs: int,
    keep_going: bool = False,
) -> bool:
    """Build what a push of `ref` from `before` to `after` calls for, in a clean checkout of `after`."""
    source = GitSource(repo, repos_cache_dir())
    source.fetch()
    commit = source.resolve(after)
    if commit is None:
        raise UsageError(f"{repo}: no commit {after}")
    kind, name = ref_name(ref)
    with source.checkout(commit) as tree:
        config = load_config(tree / config_path)
        matches = match_ref(config.spec, ref)
        trigger: dict[str, Any] = {"ref": ref, "before": before, "after": commit, "affected": []}
        if not matches:
            _say(f"{ref}: no trigger rule matches; nothing to build")
            if report_file:
                write_report(report_file, {"ok": True, "images": [], "trigger": trigger})
            return True
        ok = True
        for version in sorted({m.release_version for m in matches}, key=lambda v: v or ""):
            group = [m for m in matches if m.release_version == version]
            tags = {m.pipeline: m.extra_tags for m in group}
            plan = build_plan(
                config,
                tuple(m.pipeline for m in group),
                version,
                branch=name if kind == "branch" else None,
                trigger_tags=tags,
            )
            if version is None:
                paths = source.changed_paths(before, commit) if before != ZERO_SHA else None
                affected: list[Affected] = affected_for_paths(config, plan, tree, paths)
            else:
                affected = [Affected(key, f"release {version} from {ref}") for key in plan.images]
            trigger["affected"] += [{"image": a.key, "reason": a.reason} for a in affected]
            for item in affected:
                _say(f"{item.key}: {item.reason}")
            if not affected:
                _say(f"{ref} {commit[:12]}: no image affected")
                if report_file:
                    write_report(report_file, {"ok": True, "images": [], "trigger": trigger})
                continue
            with registry_client(config) as registry:
                fallback = next((t for m in group for t in m.extra_tags if "{{" not in t), None)
                plan = narrow_plan(plan, {a.key for a in affected}, registry, source.history(commit), fallback)
            result = execute(
                config, plan, RunOptions(jobs=jobs, keep_going=keep_going), report_file, False, {"trigger": trigger}
            )
            ok = ok and result.ok
            try:
                check_result(result)
            except PipelineError as exc:
                _say(f"error: {exc}")
        return ok


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
@click.option("--after", required=True, help="The pushed commit.")
@repo_config_option
@jobs_option
@click.option("--report", "report_file", type=click.Path(path_type=Path, dir_okay=False), help="JSON report.")
def trigger(
    repo: str, ref: str, before: str, after: str, config_path: str, jobs: int, report_file: Path | None
) -> None:
    """Build what one push calls for: the pipelines whose trigger rules match REF, limited to the
    images the commits from BEFORE to AFTER affect (a release rule builds everything at its version).
    What hooks, `watch` and `serve` run for each push.

    \b
    Example:
      pipeline trigger --repo . --ref refs/heads/main --before HEAD~1 --after HEAD
    """
    source_before = GitSource(repo, repos_cache_dir()).resolve(before) if before != ZERO_SHA else ZERO_SHA
    if not trigger_push(repo, ref, source_before or before, after, config_path, report_file, jobs):
        sys.exit(1)


@click.group()
def hooks() -> None:
    """Install or remove git hooks that build what each commit or push changed."""


@hooks.command("install")
@click.option(
    "--repo", "repo_path", type=click.Path(path_type=Path, file_okay=False), default=Path("."), show_default=True
)
@click.option(
    "--hook",
    "hook_names",
    multiple=True,
    type=click.Choice(git_hooks.HOOKS),
    default=("post-commit",),
    show_default=True,
    help="Repeatable. post-receive works in a bare (server) repository.",
)
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
@click.option(
    "--repo", "repo_path", type=click.Path(path_type=Path, file_okay=False), default=Path("."), show_default=True
)
@click.option(
    "--hook",
    "hook_names",
    multiple=True,
    type=click.Choice(git_hooks.HOOKS),
    default=git_hooks.HOOKS,
    show_default=True,
)
def hooks_uninstall(repo_path: Path, hook_names: tuple[str, ...]) -> None:
    """Remove pipeline's hooks, restoring any hook they had chained to.

    \b
    Example:
      pipeline hooks uninstall --repo .
    """
    for hook in hook_names:
        click.echo(git_hooks.uninstall(repo_path, hook))


@click.command("hook-run", hidden=True)
@click.argument("hook", type=click.Choice(git_hooks.HOOKS))
@click.argument("hook_args", nargs=-1)
@click.option("--git-dir", required=True)
@click.option("-f", "--file", "config_path", default="pipelines.yaml")
def hook_run(hook: str, hook_args: tuple[str, ...], git_dir: str, config_path: str) -> None:
    """What installed hooks call; reads the pushed ranges the way each hook receives them."""
    source = GitSource(git_dir, repos_cache_dir())
    jobs = os.cpu_count() or 1
    pushes: list[tuple[str, str, str]] = []  # (ref, before, after)
    if hook in ("post-commit", "post-merge"):
        head = source.resolve("HEAD")
        if head is None:
            return
        branch = str(source.repo.git.symbolic_ref("-q", "HEAD")) if not source.repo.head.is_detached else "HEAD"
        before = source.resolve("ORIG_HEAD") if hook == "post-merge" else source.first_parent(head)
        pushes.append((branch, before or ZERO_SHA, head))
    else:
        for line in sys.stdin.read().splitlines():
            parts = line.split()
            if hook == "pre-push" and len(parts) == 4:
                _local_ref, local_sha, remote_ref, remote_sha = parts
                pushes.append((remote_ref, remote_sha, local_sha))
            elif hook == "post-receive" and len(parts) == 3:
                old, new, ref = parts
                pushes.append((ref, old, new))
    ok = True
    for ref, before, after in pushes:
        if after == ZERO_SHA:
            continue  # a deleted ref builds nothing
        _say(f"pipeline: {hook} {ref} {before[:12]}..{after[:12]}")
        try:
            ok = trigger_push(git_dir, ref, before, after, config_path, None, jobs) and ok
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
    help="Where the last handled commit is kept (default: .pipeline-watch-<branch>.json).",
)
@repo_config_option
@jobs_option
@click.option("--once", is_flag=True, help="Poll once and exit.")
def watch(
    repo: str, branch: str, interval: str, state_file: Path | None, config_path: str, jobs: int, once: bool
) -> None:
    """Poll a branch and build each new commit in order (only what it changed). The last handled
    commit survives restarts; a failed build is recorded and the next commit still runs; SIGTERM
    stops after the current step.

    \b
    Example:
      pipeline watch --repo https://git.example.com/shop.git --branch main --interval 1m
    """
    seconds = parse_interval(interval)
    source = GitSource(repo, repos_cache_dir())
    state = WatchState.load(state_file or Path(f".pipeline-watch-{branch.replace('/', '-')}.json"))

    def handle(before: str, after: str) -> bool:
        return trigger_push(repo, f"refs/heads/{branch}", before, after, config_path, None, jobs)

    watcher = Watcher(source, branch, state, handle, _say)
    watcher.install_signal_handlers()
    _say(f"watching {repo} branch {branch} every {seconds:g}s (SIGTERM or Ctrl-C stops it)")
    watcher.run(seconds, once=once)
