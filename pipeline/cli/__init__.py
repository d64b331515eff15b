"""The command line: the only place that parses argv, prints results and maps errors to exit codes."""

from __future__ import annotations

import io
import os
import signal
import sys
from types import FrameType

# Pydantic looks for plugins in every installed distribution's entry points when the config models are
# built (~10 ms of a `pipeline changed` that git hooks run on each commit); the CLI's models use none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import click  # noqa: E402

from pipeline.cli.common import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_OK, cli, redacted  # noqa: E402
from pipeline.cli.completion import COMPLETE_VAR  # noqa: E402
from pipeline.errors import Interrupted, PipelineError  # noqa: E402

# Each command's module is imported only when the command runs (common.LazyGroup): start-up is most of
# a no-op run's time, and most commands' modules pull in what `run` never uses.
COMMANDS = {
    "run": "build_commands:run",
    "plan": "build_commands:plan",
    "graph": "build_commands:graph",
    "validate": "build_commands:validate",
    "explain": "build_commands:explain",
    "bases": "bases_command:bases",
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
    _guard_ci_output()
    _stop_on_sigterm()
    try:
        # A command that has shown its own error (validate --json) ends with click's Exit, whose code
        # click returns here instead of raising it; commands return nothing else.
        code = cli.main(standalone_mode=False, complete_var=COMPLETE_VAR)
    except PipelineError as exc:
        # An error's text can hold anything it was raised about (DOCKER_HOST's password, a variable's value).
        from pipeline.cli.workflow import show_error  # only on an error: start-up stays light

        show_error(exc)
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        # SIGINT (Ctrl-C) exits 130, SIGTERM 143; a run has written its report and outputs by now.
        stopped = exc.__cause__ if isinstance(exc, click.exceptions.Abort) else exc  # click wraps an interrupt
        signum = stopped.signum if isinstance(stopped, Interrupted) else signal.SIGINT
        reason = "terminated" if signum == signal.SIGTERM else "interrupted"
        _close_groups(reason)
        click.echo(f"{reason}: no release or floating tag was moved by the unfinished run", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Build threads may be blocked on the engine for a long time; don't wait for them at exit.
        os._exit(EXIT_INTERRUPTED if signum == signal.SIGINT else 128 + signum)
    except click.ClickException as exc:
        shown = io.StringIO()  # a bad argument's value may be a URL with credentials
        exc.show(shown)
        sys.stderr.write(redacted(shown.getvalue()))
        sys.exit(EXIT_CONFIG if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _guard_ci_output() -> None:
    """Inside GitHub Actions or Azure Pipelines (their markers as in pipeline.ci.environment, for any
    provider detected: an Azure agent parses `##vso[` whatever else is set), stdout and stderr defuse the
    logging commands in everything printed, as build logs and error messages are the builds' text; pipeline's
    own commands are written past the filter (ci.commands.write_command)."""
    if not any(os.environ.get(marker, "").lower() == "true" for marker in ("GITHUB_ACTIONS", "TF_BUILD")):
        return
    from pipeline.ci.commands import CommandFilter

    sys.stdout = CommandFilter(sys.stdout)
    sys.stderr = CommandFilter(sys.stderr)


def _stop_on_sigterm() -> None:
    """SIGTERM (a cancelled CI job, `docker stop`, systemd) stops the process as Ctrl-C does: a run writes
    its report and outputs for what it knew, open CI log groups are printed, and it exits 143. Commands
    with their own stop (serve, watch) set their own handler."""
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)  # in the main thread, wherever it is: handled as Ctrl-C is (main)


def _close_groups(reason: str) -> None:
    """Print the progress lines a CI log group still holds (only a run in CI has any)."""
    groups = sys.modules.get("pipeline.ci.groups")
    if groups is not None:
        groups.close_open_groups(reason)
