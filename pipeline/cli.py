"""The command line: the only place that parses argv, prints results and maps errors to exit codes."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pipeline import __version__
from pipeline.builders.docker import DockerBuilder
from pipeline.config import LoadedConfig, load_config
from pipeline.config.templates import render
from pipeline.diagram import to_dot, to_mermaid
from pipeline.errors import PipelineError, RunFailed
from pipeline.executor import Executor, RunOptions
from pipeline.gitinfo import read_git_info
from pipeline.plan import Plan, RunContext, make_plan
from pipeline.registry.client import RegistryClient
from pipeline.registry.credentials import DockerConfigCredentials
from pipeline.report import ProgressPrinter, print_summary, report_data, write_report
from pipeline.versioning import parse_version

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_ENVIRONMENT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

F = TypeVar("F", bound=Callable[..., Any])


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


def _docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _build_plan(config: LoadedConfig, pipelines: tuple[str, ...], version: str | None) -> Plan:
    git = read_git_info(config.base_dir)
    context = RunContext(
        version=parse_version(version) if version else None,
        git_sha=git.sha if git else None,
        git_branch=git.branch if git else None,
        source_url=git.remote_url if git else None,
        created=git.committed_at if git else None,
    )
    return make_plan(config.spec, config.base_dir, list(pipelines), context)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pipeline")
def cli() -> None:
    """Build, tag, push and release DAGs of container images declared in pipelines.yaml.

    \b
    Example:
      pipeline plan                       # what would be built, in which order, with which tags
      pipeline run --version 2.1.5        # build, push and tag every pipeline
    """


@cli.command()
@click.argument("pipelines", nargs=-1)
@config_option
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default=True,
    help="Images built at once.",
)
@click.option("--version", "version", metavar="X.Y.Z", help="Release version: tags X.Y.Z, X.Y, X, latest.")
@click.option("--keep-going", is_flag=True, help="After a failure, still build images that don't depend on it.")
@click.option("--no-push", is_flag=True, help="Build and tag locally only.")
@click.option(
    "--report",
    "report_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the JSON report here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout instead of the table.")
def run(
    pipelines: tuple[str, ...],
    config_file: Path,
    jobs: int,
    version: str | None,
    keep_going: bool,
    no_push: bool,
    report_file: Path | None,
    as_json: bool,
) -> None:
    """Build PIPELINES (default: all) in dependency order and push them.

    Each image is built on the Docker engine (DOCKER_HOST), pushed, its digest read back from the
    registry, and tagged in the registry: sha-<commit> always in git, and with --version X.Y.Z also
    X.Y.Z, X.Y, X and latest (the floating ones only once every image succeeded).

    \b
    Example:
      pipeline run shop --version 2.1.5 --jobs 4 --report report.json
    """
    config = load_config(config_file)
    plan = _build_plan(config, pipelines, version)
    builder = DockerBuilder(os.environ)
    builder.check()
    credentials = DockerConfigCredentials(_docker_config_dir())
    with RegistryClient(credentials, config.spec.insecure_registries) as registry:
        executor = Executor(
            plan,
            builder,
            registry,
            credentials,
            RunOptions(jobs=jobs, keep_going=keep_going, push=not no_push),
            on_event=ProgressPrinter(),
        )
        result = executor.run()
    data = report_data(plan, result)
    if report_file:
        write_report(report_file, data)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        print_summary(result)
    if result.error:
        raise RunFailed(result.error)
    if not result.ok:
        failed = [k for k, r in result.images.items() if r.status.value == "failed"]
        raise RunFailed(f"{len(failed)} image(s) failed: {', '.join(failed)}; no release or floating tag moved")


@cli.command()
@click.argument("pipelines", nargs=-1)
@config_option
@click.option("--version", "version", metavar="X.Y.Z", help="Show the tags this version would get.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(pipelines: tuple[str, ...], config_file: Path, version: str | None, as_json: bool) -> None:
    """Show what `run` would do, without side effects: order, references, build args, tags.

    \b
    Example:
      pipeline plan shop --version 2.1.5 --json
    """
    config = load_config(config_file)
    the_plan = _build_plan(config, pipelines, version)
    values = the_plan.context.template_values()
    rows: list[dict[str, Any]] = []
    for step, (key, image) in enumerate(the_plan.images.items(), start=1):
        image_values = dict(values)
        for dep in image.depends_on:
            dep_image = the_plan.images[dep]
            image_values[f"images.{dep_image.name}"] = f"{dep_image.repository}@<digest of {dep} from this run>"
        rows.append(
            {
                "step": step,
                "image": key,
                "repository": str(image.repository),
                "depends_on": list(image.depends_on),
                "context": str(image.context),
                "dockerfile": str(image.dockerfile),
                "build_args": {k: render(v, image_values) for k, v in image.build_args.items()},
                "target": image.target,
                "platform": image.platform,
                "tags": list(image.tags.all),
            }
        )
    if as_json:
        click.echo(json.dumps({"version": str(the_plan.context.version or "") or None, "images": rows}, indent=2))
        return
    for row in rows:
        deps = f" (after {', '.join(row['depends_on'])})" if row["depends_on"] else ""
        click.echo(f"{row['step']}. {row['image']} -> {row['repository']}{deps}")
        click.echo(f"     tags: {', '.join(row['tags'])}")
        for name, value in row["build_args"].items():
            click.echo(f"     build arg {name}={value}")


@cli.command()
@click.argument("pipelines", nargs=-1)
@config_option
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
def graph(pipelines: tuple[str, ...], config_file: Path, fmt: str) -> None:
    """Draw the dependency graph.

    \b
    Example:
      pipeline graph --format dot | dot -Tsvg > graph.svg
    """
    config = load_config(config_file)
    the_plan = _build_plan(config, pipelines, None)
    click.echo(to_mermaid(the_plan) if fmt == "mermaid" else to_dot(the_plan), nl=False)


@cli.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print {'ok': true, ...} as JSON.")
def validate(config_file: Path, as_json: bool) -> None:
    """Check the pipelines file (schema, paths, dependencies, cycles) without building.

    \b
    Example:
      pipeline validate -f pipelines.yaml
    """
    config = load_config(config_file)
    counts = {name: len(p.images) for name, p in config.spec.pipelines.items()}
    if as_json:
        click.echo(json.dumps({"ok": True, "file": str(config_file), "pipelines": counts}))
    else:
        click.echo(f"{config_file}: ok ({', '.join(f'{k}: {v} images' for k, v in counts.items())})")


def _handle_errors(func: Callable[[], Any]) -> Callable[[], None]:
    @functools.wraps(func)
    def wrapper() -> None:
        try:
            cli.main(standalone_mode=False)
        except PipelineError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.ClickException as exc:
            exc.show()
            sys.exit(EXIT_CONFIG if exc.exit_code == 2 else exc.exit_code)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        sys.exit(EXIT_OK)

    return wrapper


main = _handle_errors(cli)
