"""The command line: the only place that parses argv, prints results and maps errors to exit codes."""

from __future__ import annotations

import os
import sys

import click

from pipeline.cli.acr_commands import acr
from pipeline.cli.build_commands import explain, graph, plan, run, validate
from pipeline.cli.common import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_OK, cli
from pipeline.cli.release_commands import promote, release, tags
from pipeline.cli.serve_command import serve
from pipeline.cli.sign_commands import keys, sign, verify
from pipeline.cli.trigger_commands import changed, hook_run, hooks, trigger, watch
from pipeline.errors import PipelineError

for command in (
    run,
    plan,
    graph,
    validate,
    explain,
    release,
    promote,
    tags,
    keys,
    sign,
    verify,
    changed,
    trigger,
    hooks,
    hook_run,
    watch,
    serve,
    acr,
):
    cli.add_command(command)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except PipelineError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted: no release or floating tag was moved by the unfinished run", err=True)
        sys.stderr.flush()
        # Build threads may be blocked on the engine for a long time; don't wait for them at exit.
        os._exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_CONFIG if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(EXIT_OK)
