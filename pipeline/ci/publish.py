"""A run's report handed to the CI service it ran in: GitHub's step outputs and job summary, Azure's
output variables (logging commands on stdout), and a dotenv file (GitLab's `artifacts:reports:dotenv`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.ci.commands import write_command
from pipeline.ci.environment import CiEnvironment
from pipeline.ci.outputs import azure_variable_lines, dotenv_text, dotenv_warnings, github_output_text, outputs
from pipeline.ci.summary import summary_markdown
from pipeline.common.reporting import Reporter
from pipeline.files import append_text, write_text

if TYPE_CHECKING:
    from pipeline.report import RunReport


def publish_outputs(
    report: RunReport, ci: CiEnvironment | None, dotenv: Path | None, title: str, reporter: Reporter
) -> None:
    """Write every output the CI service reads (none outside CI), and `dotenv` when given; a dotenv that
    GitLab would refuse is written and warned about."""
    found = outputs(report)
    if ci is not None and ci.provider == "github":
        if ci.output_file is not None:
            append_text(ci.output_file, github_output_text(found), "step outputs")
        if ci.summary_file is not None:
            append_text(ci.summary_file, summary_markdown(report, title), "job summary")
    if ci is not None and ci.provider == "azure":
        for line in azure_variable_lines(found):
            write_command(line, sys.stdout)
    if dotenv is not None:
        text = dotenv_text(found)
        write_text(dotenv, text, "dotenv file")
        for warning in dotenv_warnings(text):
            reporter.warn(f"warning: --dotenv {dotenv}: {warning}; GitLab refuses the report")
