"""The command line: the only place that parses argv, prints results and maps errors to exit codes."""

from __future__ import annotations

import io
import os
import signal
import sys
from types import FrameType

# Pydantic looks for plugins in every installed distribution's entry points when the config models are
# built (~10 ms of a `pipeline changed` that git hooks run on each commit); the CLI's models use none.
# Its loader would still import importlib.metadata to answer "none": config/no_pydantic_plugins.py answers.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import click  # noqa: E402

from pipeline.cli.common import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_OK, cli, redacted  # noqa: E402
from pipeline.cli.completion import COMPLETE_VAR  # noqa: E402
from pipeline.errors import Interrupted, PipelineError  # noqa: E402

# Each command's module is imported only when the command runs or completes (common.LazyGroup): start-up
# is most of a no-op run's time, and most commands' modules pull in what `run` never uses. Each command's
# summary (its help's first sentence, as click shortens it) is kept here so that `pipeline --help` and
# completing a command name import none of them; tests/unit/cli/test_startup.py checks they match.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("build_commands:run", "Build PIPELINES (default: all) in dependency order and push them."),
    "plan": (
        "build_commands:plan",
        "Show what `run` would do, without side effects: order, references, build args, tags, and for each "
        'image "build (why)" or "reuse (digest)" from the registry\'s input-digest tags.',
    ),
    "graph": ("build_commands:graph", "Draw the dependency graph: an arrow from each image to the images built on it."),
    "validate": (
        "build_commands:validate",
        "Check the pipelines file (schema, paths, dependencies, cycles) without building.",
    ),
    "explain": (
        "build_commands:explain",
        "Say why IMAGE (pipeline/name, or a unique name) would be rebuilt: which inputs changed since its "
        "last pushed build on this line of history, and which context files.",
    ),
    "bases": (
        "bases_command:bases",
        "List every external base image PIPELINES (default: all) build on: the reference as the Dockerfile "
        "names it, per platform the digest the registry has now (an index's child, and the index), the digest"
        " pipelines.lock holds (if any), and the images using it.",
    ),
    "release": (
        "release_commands:release",
        "Cut a release: choose the version, tag HEAD (annotated vX.Y.Z), build and publish it.",
    ),
    "promote": (
        "release_commands:promote",
        "Copy a tested image SOURCE (repo:tag or repo@digest) to DESTINATION (a repository) and tag it.",
    ),
    "tags": (
        "release_commands:tags",
        "Show REPOSITORY's tags as versions: one row per digest with every version on it, its platforms (an "
        "image index), the tags that share it, and the version whose build made it when that is another (a "
        "reused image keeps the labels of its build).",
    ),
    "keys": ("sign_commands:keys", "Manage cosign-compatible signing keys."),
    "sign": (
        "sign_commands:sign",
        "Sign REFERENCE's digest (a tag is resolved to its digest first; the tag itself is never signed).",
    ),
    "verify": (
        "sign_commands:verify",
        "Verify REFERENCE's signatures: exit 0 verified, 1 not (no signature, bad signature or wrong "
        "identity), with the reason.",
    ),
    "attest": (
        "sign_commands:attest",
        "Attest a predicate about REFERENCE's digest by hand, as `cosign attest` does: an in-toto statement "
        "signed with the key (or keyless) and stored as cosign's `.att` layer and/or an OCI 1.1 referrer.",
    ),
    "tree": (
        "tree_command:tree",
        "Show what is attached to REFERENCE's digest, like `cosign tree`: the tags naming it, its signatures,"
        " attestations (predicate type, signer, storage form), SBOMs and other OCI referrers, and for an "
        "image index each platform's manifest with its own attachments.",
    ),
    "schema": (
        "schema_command:schema",
        "Print the JSON Schema (draft 2020-12) of pipelines.yaml, made from the same models the loader "
        "validates with: every key with its description, example, allowed values and default.",
    ),
    "changed": (
        "changed_command:changed",
        "List the images a change affects (context files not .dockerignored, the Dockerfile, extra `paths:` "
        "globs, the pipelines file), each with every reason: its changed files (the first three, and how many"
        " more) and each affected image it depends on.",
    ),
    "trigger": (
        "trigger_commands:trigger",
        "Build what one push calls for: the pipelines whose trigger rules match REF, limited to the images "
        "the commits from BEFORE to AFTER affect (a release rule builds everything at its version).",
    ),
    "hooks": ("trigger_commands:hooks", "Install or remove git hooks that build what each commit or push changed."),
    "hook-run": (
        "trigger_commands:hook_run",
        "What installed hooks call; reads the pushed ranges the way each hook receives them.",
    ),
    "watch": ("trigger_commands:watch", "Poll a branch and build each new commit in order (only what it changed)."),
    "serve": (
        "serve_command:serve",
        "Receive push webhooks (GitHub, GitLab, generic JSON), run `pipeline trigger` for each pushed range "
        "one at a time, and show the runs on a status page.",
    ),
    "acr": ("acr_commands:acr", "Azure Container Registry: tasks that build on commits without a running `pipeline`."),
    "completion": (
        "completion:completion",
        "Print the completion script for SHELL; pipeline and image names complete from the pipelines file.",
    ),
}
HIDDEN = {"hook-run"}
for name, (where, summary) in COMMANDS.items():
    cli.add_lazy_command(name, f"pipeline.cli.{where}", summary, hidden=name in HIDDEN)


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
