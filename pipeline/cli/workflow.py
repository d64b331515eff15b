"""What `run` and `release` tell the CI service they run in (pipeline.ci): log groups for the progress,
outputs, a dotenv file and the job summary from the report; error annotations (for main)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click
from click.core import ParameterSource

from pipeline.ci import detect
from pipeline.ci.commands import GROUPS, error_annotations, write_command
from pipeline.ci.outputs import check_names
from pipeline.ci.publish import publish_outputs
from pipeline.cli.common import STDERR, progress_mode, redacted, say, settings
from pipeline.config import LoadedConfig
from pipeline.errors import ConfigError, PipelineError
from pipeline.run.report import check_report_file
from pipeline.run.session import Session

if TYPE_CHECKING:
    from pipeline.report import RunReport

ReportSink = Callable[["RunReport"], None]


def run_session(config: LoadedConfig, progress: str, quiet: bool) -> Session:
    """The session of `run` and `release`: in GitHub Actions or Azure Pipelines each image's progress is
    one log group, unless --progress was given (then its lines print live, as outside CI)."""
    the_settings = settings()
    mode = progress_mode(progress, quiet)
    given = click.get_current_context().get_parameter_source("progress") != ParameterSource.DEFAULT
    ci = the_settings.ci
    groups = GROUPS.get(ci.provider) if ci is not None and not given and not quiet else None
    return Session(config, the_settings, STDERR, mode, groups)


def report_sink(session: Session, dotenv: Path | None, title: str, images: Iterable[str] = ()) -> ReportSink | None:
    """What receives the run's report: GitHub's $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY, Azure's output
    variables (stdout), and --dotenv FILE. Output names of `images` are checked for clashes now, before any
    build, where outputs are written (outside CI without --dotenv, none are: None, so the report is not even
    made when nothing else asks for it)."""
    check_report_file(dotenv, "--dotenv")
    ci = session.settings.ci
    if dotenv is None and (ci is None or ci.provider == "gitlab"):
        return None  # nothing reads outputs: no names to keep apart
    check_names(images)

    def write(report: RunReport) -> None:
        check_names(image.image for image in report.images)
        try:
            publish_outputs(report, ci, dotenv, title, STDERR)
        except PipelineError as exc:
            # Tags that are published stay so: failing now would report (and notify) a published release as
            # failed. A failed run has its own error. Only a run that succeeded without publishing anything
            # (--no-push) fails for it, as its outputs are then all it made.
            if not report.published and report.ok:
                raise
            why = "its tags are published" if report.published else "it failed already"
            say(f"warning: {exc}; the run's exit code and notification stay its own ({why})")

    return write


def annotate(message: str, stream: TextIO) -> None:
    """An error as the CI service's annotation (on stdout, where Azure reads logging commands, unless
    stdout holds a command's JSON), beside the `error: ...` line; nothing outside CI."""
    ci = detect(os.environ)
    if ci is None:
        return
    for line in error_annotations(ci.provider, redacted(message), Path.cwd(), ci.workspace):
        write_command(line, stream)


def show_error(exc: PipelineError, annotations: TextIO | None = None) -> None:
    """An error as main shows it: `error: ...` on stderr, one line per mistake of a config error, each
    also a CI annotation (on `annotations`, stdout by default, where Azure reads logging commands)."""
    problems = exc.problems if isinstance(exc, ConfigError) else ()
    lines = [redacted(str(problem)) for problem in problems] or [redacted(str(exc))]
    for line in lines:
        click.echo(f"error: {line}", err=True)
    for line in lines:
        annotate(line, annotations or sys.stdout)
