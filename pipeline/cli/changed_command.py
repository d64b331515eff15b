"""`pipeline changed`: which images a change affects, and every reason. Git hooks call it on each commit,
so it imports only what it needs (tests/unit/cli/test_startup.py keeps it so)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from pipeline.ci.environment import detect
from pipeline.cli.common import config_option, echo_json
from pipeline.cli.completion import complete_pipelines
from pipeline.cli.variants import names_of, variant_row
from pipeline.triggers.changed import inputs_and_affected_since


@click.command()
@click.argument("pipelines", nargs=-1, shell_complete=complete_pipelines)
@config_option
@click.option(
    "--since",
    metavar="REF",
    help="Compare the working tree with this commit (default: the merge-base with the branch's upstream, "
    "else HEAD~1; on the first commit everything counts as changed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the affected images as JSON.")
def changed(pipelines: tuple[str, ...], config_file: Path, since: str | None, as_json: bool) -> None:
    """List the images a change affects (context files not .dockerignored, the Dockerfile, extra
    `paths:` globs, the pipelines file), each with every reason: its changed files (the first three,
    and how many more) and each affected image it depends on. Everything depending on them follows.

    The working tree is compared with REF, committed or not: tracked files that differ and untracked
    files neither .gitignore nor the image's ignore file excludes. Without --since: the commit the
    branch forked from its upstream (git merge-base HEAD @{upstream}), else HEAD~1; on the first
    commit every image is affected.

    \b
    Example:
      pipeline changed --since origin/main --json
      pipeline changed          # since the upstream's merge-base, else HEAD~1

    What it needs of the pipelines file is cached in the git directory (.git/pipeline/changed-cache.json)
    until the file's bytes, or a context or Dockerfile it names, change.
    """
    # The CI's branch and pull request, as a run plans with them (run/settings.py reads them the same way).
    inputs, found, baseline = inputs_and_affected_since(config_file, pipelines, since, detect(os.environ))
    variants = {image.key: image.variants for image in inputs}
    if as_json:
        # `since`: the revision compared with (the one given, or the default's; null: none, all changed).
        images = [{**a.data(), "variants": [variant_row(v) for v in variants[a.key]]} for a in found]
        echo_json({"since": baseline.revision, "compared_with": baseline.described, "images": images}, indent=None)
        return
    if since is None:
        click.echo(f"since: {baseline.described}", err=True)
    if not found:
        click.echo(f"nothing changed since {baseline.described} affects an image")
    for item in found:
        # Variants share the context, Dockerfile and paths: a change affects the image, so each of them.
        names = names_of(variants[item.key])
        click.echo(f"{item.key:<30} {item.reason}" + (f" {names}" if names else ""))
