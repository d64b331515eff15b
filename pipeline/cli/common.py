"""What the commands share: the group, common options, wiring a run from config to report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pipeline import __version__
from pipeline.builders.docker import DockerBuilder
from pipeline.config import LoadedConfig
from pipeline.errors import RunFailed, UsageError
from pipeline.executor import Executor, RunOptions, RunResult, Status
from pipeline.gitinfo import read_git_info
from pipeline.plan import Plan, RunContext, make_plan
from pipeline.registry.client import RegistryClient
from pipeline.registry.credentials import DockerConfigCredentials
from pipeline.report import ProgressPrinter, print_summary, report_data, write_report
from pipeline.versioning import parse_version

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pipeline")
def cli() -> None:
    """Build, tag, push and release DAGs of container images declared in pipelines.yaml.

    \b
    Example:
      pipeline plan                       # what would be built, in which order, with which tags
      pipeline run --version 2.1.5        # build, push and tag every pipeline
      pipeline release --bump auto        # next version from Conventional Commits, tag, build, publish
    """


def config_option(func: F) -> F:
    return click.option(
        "-f",
        "--file",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("pipelines.yaml"),
        show_default=True,
        help="The pipelines file.",
    )(func)


def run_options(func: F) -> F:
    """Options that `run` and `release` share."""
    options = [
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(min=1),
            default=os.cpu_count() or 1,
            show_default=True,
            help="Images built at once.",
        ),
        click.option("--keep-going", is_flag=True, help="After a failure, still build images that don't depend on it."),
        click.option(
            "--force", is_flag=True, help="Overwrite an existing release tag that names another image (loud)."
        ),
        click.option(
            "--report",
            "report_file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Write the JSON report here.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout instead of the table."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def credentials() -> DockerConfigCredentials:
    return DockerConfigCredentials(docker_config_dir())


def registry_client(insecure: list[str] | None = None) -> RegistryClient:
    return RegistryClient(credentials(), insecure or [])


def build_plan(config: LoadedConfig, pipelines: tuple[str, ...], version: str | None) -> Plan:
    git = read_git_info(config.base_dir)
    context = RunContext(
        version=parse_version(version) if version else None,
        git_sha=git.sha if git else None,
        git_branch=git.branch if git else None,
        source_url=git.remote_url if git else None,
        created=git.committed_at if git else None,
        dirty=git.dirty if git else False,
    )
    return make_plan(config.spec, config.base_dir, list(pipelines), context, config.positions)


def execute(
    config: LoadedConfig,
    plan: Plan,
    options: RunOptions,
    report_file: Path | None,
    as_json: bool,
    extra_report: dict[str, Any] | None = None,
) -> RunResult:
    """Run the plan and write/print the report (check_result tells whether it succeeded)."""
    if report_file and not report_file.parent.resolve().is_dir():
        raise UsageError(f"--report {report_file}: directory {report_file.parent} does not exist")
    builder = DockerBuilder(os.environ)
    builder.check()
    creds = credentials()
    with RegistryClient(creds, config.spec.insecure_registries) as registry:
        result = Executor(plan, builder, registry, creds, options, on_event=ProgressPrinter()).run()
    data = {**report_data(plan, result), **(extra_report or {})}
    if report_file:
        write_report(report_file, data)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        print_summary(result)
    return result


def check_result(result: RunResult) -> None:
    """Raise RunFailed (exit 1) if anything in the run failed."""
    if result.error:
        raise RunFailed(result.error)
    if not result.ok:
        failed = [k for k, r in result.images.items() if r.status == Status.FAILED]
        raise RunFailed(f"{len(failed)} image(s) failed: {', '.join(failed)}; no release or floating tag moved")
