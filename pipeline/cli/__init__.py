"""The command line: the only place that parses argv, prints results and maps errors to exit codes."""

from __future__ import annotations

import os
import sys

# Pydantic looks for plugins in every installed distribution's entry points when the config models are
# built (~10 ms of a `pipeline changed` that git hooks run on each commit); the CLI's models use none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import click  # noqa: E402

from pipeline.cli.common import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_OK, cli  # noqa: E402
from pipeline.cli.completion import COMPLETE_VAR  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402

# Each command's module is imported only when the command runs (common.LazyGroup): start-up is most of
# a no-op run's time, and most commands' modules pull in what `run` never uses.
COMMANDS = {
    "run": "build_commands:run",
    "plan": "build_commands:plan",
    "graph": "build_commands:graph",
    "validate": "build_commands:validate",
    "explain": "build_commands:explain",
    "release": "release_commands:release",
    "promote": "release_commands:promote",
    "tags": "release_commands:tags",
    "keys": "sign_commands:keys",
    "sign": "sign_commands:sign",
    "verify": "sign_commands:verify",
    "attest": "sign_commands:attest",
    "tree": "tree_command:tree",
    "schema": "schema_command:schema",
    "changed": "changed_command:changed",
    "trigger": "trigger_commands:trigger",
    "hooks": "trigger_commands:hooks",
    "hook-run": "trigger_commands:hook_run",
    "watch": "trigger_commands:watch",
    "serve": "serve_command:serve",
    "acr": "acr_commands:acr",
    "completion": "completion:completion",
}
for name, where in COMMANDS.items():
    cli.add_lazy_command(name, f"pipeline.cli.{where}")


def main() -> None:
    try:
        cli.main(standalone_mode=False, complete_var=COMPLETE_VAR)
    except PipelineError as exc:
        click.echo(f"error: {exc}", err=True)
        _annotate(str(exc))
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


def _annotate(message: str) -> None:
    """The error as a CI annotation too (GitHub, Azure): config errors land on their file's line."""
    from pipeline.cli.workflow import annotate  # only on an error: start-up stays light

    annotate(message)
