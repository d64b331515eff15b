"""`pipeline bases`: the external base images of the pipelines, the registry's digest against the lock's,
and `--update` to bring pipelines.lock up to date (pipeline.bases.status)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline.cli.common import config_option, echo_json, session
from pipeline.cli.completion import complete_pipelines

# --help and completion import this module: the registry client and the config models load in the command.
if TYPE_CHECKING:
    from pipeline.bases.lock import BaseLock
    from pipeline.bases.status import BaseStatus, LockUpdate


@click.command()
@click.argument("pipelines", nargs=-1, shell_complete=complete_pipelines)
@config_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"bases": [{"reference", "platform", "os_version", "current", "index", "locked", "images", '
    '"stage_platform"}, ...]} '
    '(with --update also "moved", "rebuilds", "lock" and "written").',
)
@click.option(
    "--update",
    is_flag=True,
    help="Write pipelines.lock (beside the pipelines file) with the registry's current digests, and say what "
    "moved and which images that rebuilds.",
)
def bases(pipelines: tuple[str, ...], config_file: Path, as_json: bool, update: bool) -> None:
    """List every external base image PIPELINES (default: all) build on: the reference as the Dockerfile
    names it, per platform the digest the registry has now (an index's child, and the index), the
    digest pipelines.lock holds (if any), and the images using it.

    With --update, pipelines.lock is rewritten with the current digests (one entry per reference and
    platform, sorted; entries no base uses any more are dropped; with PIPELINES, other pipelines'
    entries are kept as they are). Nothing is written when nothing changed, nor when a base is not in
    the registry. Commit the file: while it exists, runs build on its digests (`run --locked` refuses a
    base it does not name).

    \b
    Example:
      pipeline bases                      # what is out of date, and which images it affects
      pipeline bases --json | jq -r '.bases[] | select(.current != .locked) | .reference'
      pipeline bases --update && git commit -m "Update base images" pipelines.lock
    """
    from pipeline.bases.lock import BaseLock, lock_path
    from pipeline.bases.status import base_status, lock_update
    from pipeline.bases.usage import base_uses
    from pipeline.config import load_config

    config = load_config(config_file)
    the_session = session(config)
    plan = the_session.plan(pipelines, None)
    path = lock_path(config.file)
    lock = BaseLock.load(path)
    with the_session.registry() as registry:
        found = base_status(plan, registry, lock)
    if not update:
        if as_json:
            echo_json({"bases": [status.data() for status in found]})
            return
        _echo_bases(found, lock)
        return
    # The lock is shared: a base moved here rebuilds its images in every pipeline, not only in PIPELINES.
    whole = the_session.plan((), None) if pipelines else plan
    result = lock_update(found, lock, base_uses(whole), whole, path)
    if result.changed:
        result.lock.save(path)
    if as_json:
        rows = [status.data() | {"locked": status.current} for status in found]
        echo_json(
            {
                "bases": rows,
                "moved": [move.data() for move in result.moves],
                "rebuilds": {"images": list(result.rebuild.images), "dependants": list(result.rebuild.dependants)},
                "lock": str(path),
                "written": result.changed,
            }
        )
        return
    _echo_update(result, path)


def _echo_bases(found: list[BaseStatus], lock: BaseLock | None) -> None:
    from pipeline.registry.platforms import platform_text

    if not found:
        click.echo("no external base images (only scratch and the pipelines' own images)")
    for status in found:
        click.echo(f"{status.reference}  {platform_text(status.platform, status.os_version)}")
        index = f"  (index {status.index})" if status.index and not status.whole else ""
        if status.whole:  # what its images stand on: FROM --platform takes that platform from the index
            index = "  (the whole index: a stage names its own platform)" if status.index else ""
        click.echo(f"  current: {status.current}{index}")
        if lock is None:
            state = "(no pipelines.lock: builds use the current digest)"
        elif status.locked is None:
            state = "(not locked: builds use the current digest; run `pipeline bases --update`)"
        else:
            state = status.locked + ("  (moved: run `pipeline bases --update`)" if status.moved else "")
        click.echo(f"  locked:  {state}")
        click.echo(f"  images:  {', '.join(status.images)}")


def _echo_update(result: LockUpdate, path: Path) -> None:
    if not result.changed:
        click.echo(f"{path}: up to date ({len(result.lock.entries)} base(s)); left untouched")
        return
    for move in result.moves:
        click.echo(move.line())
    rebuild = result.rebuild
    if rebuild.images:
        after = f" (then their dependants: {', '.join(rebuild.dependants)})" if rebuild.dependants else ""
        click.echo(f"rebuilds: {', '.join(rebuild.images)}{after}")
    elif result.moves:
        click.echo("rebuilds: nothing (no locked base moved)")
    else:
        click.echo("no base moved (only the lock's layout or the indexes changed)")
    click.echo(f"wrote {path} ({len(result.lock.entries)} base(s))")
