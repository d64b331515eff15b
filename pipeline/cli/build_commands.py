"""Commands that build: run, plan, graph, validate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline.cli.common import (
    EXIT_CONFIG,
    RunFlags,
    config_errors_json,
    config_option,
    echo_json,
    run_options,
    secrets,
    session,
)
from pipeline.cli.completion import complete_images, complete_pipelines
from pipeline.errors import ConfigError, RegistryError, UsageError

# `--help` and completion import this module: what only a command's run needs (the config models, the
# planner, the engine and registry clients) is imported in the commands' bodies.
if TYPE_CHECKING:
    from pipeline.cache.predict import Prediction
    from pipeline.cache.scope import Scope
    from pipeline.plan import Plan, PlannedImage
    from pipeline.run.session import Session


@click.command()
@click.argument("pipelines", nargs=-1, shell_complete=complete_pipelines)
@config_option
@click.option("--version", "version", metavar="X.Y.Z", help="Release version: tags X.Y.Z, X.Y, X, latest.")
@click.option("--no-push", is_flag=True, help="Build and tag locally only.")
@click.option("--since", metavar="REF", help="Build only the images changed since REF, and their dependants.")
@run_options
def run(
    pipelines: tuple[str, ...],
    config_file: Path,
    version: str | None,
    no_push: bool,
    since: str | None,
    flags: RunFlags,
) -> None:
    """Build PIPELINES (default: all) in dependency order and push them.

    Each image is built on the Docker engine (DOCKER_HOST), pushed under sha-<commit> (in git), its
    digest read back from the registry. With --version X.Y.Z, once every image succeeded: X.Y.Z
    (immutable: a run fails if it names another image), then X.Y, X and latest where X.Y.Z is the
    highest version of their range in the registry.

    \b
    Example:
      pipeline run shop --version 2.1.5 --jobs 4 --report report.json
      pipeline run --keep-going --junit junit.xml   # for GitLab's/Jenkins' test views
      pipeline run --progress plain       # also every line the build steps print
      pipeline run --dotenv build.env     # outputs for GitLab's artifacts:reports:dotenv
      pipeline run --locked               # CI: only on the base digests pipelines.lock names
    """
    from pipeline.cli.workflow import report_sink, run_session
    from pipeline.config import load_config
    from pipeline.run.executor import interrupted_result
    from pipeline.run.notifying import notifying
    from pipeline.run.report import check_report_file, emit_report
    from pipeline.run.session import check_result

    the_session = run_session(load_config(config_file), flags.progress, flags.quiet)
    the_plan = the_session.plan(pipelines, version)
    if since is not None:
        from pipeline.triggers.push import narrow_to_changes  # git diffs and triggers: only with --since

        the_plan = narrow_to_changes(the_session, the_plan, since, secrets(flags.token))
        if not the_plan.images:
            click.echo(f"nothing changed since {since} affects an image", err=True)
            return
    options = flags.options(push=not no_push)
    check_report_file(flags.report_file)
    check_report_file(flags.junit_file, "--junit")
    to_ci = report_sink(the_session, flags.dotenv, "pipeline run", the_plan.images)
    report_file, as_json, junit_file = flags.report_file, flags.as_json, flags.junit_file
    with notifying(the_session, the_plan, "run") as outcome:
        try:
            outcome.result = the_session.execute(the_plan, options, secrets(flags.token))
        except KeyboardInterrupt as stopped:  # SIGINT, SIGTERM: report what is known, then exit 130/143
            emit_report(
                the_plan, interrupted_result(the_plan, stopped), report_file, as_json, junit_file=junit_file, also=to_ci
            )
            raise
        emit_report(the_plan, outcome.result, report_file, as_json, junit_file=junit_file, also=to_ci)
        check_result(outcome.result)


@click.command()
@click.argument("pipelines", nargs=-1, shell_complete=complete_pipelines)
@config_option
@click.option("--version", "version", metavar="X.Y.Z", help="Show the tags this version would get.")
@click.option("--offline", is_flag=True, help="Don't ask the registry which images can be reused.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(pipelines: tuple[str, ...], config_file: Path, version: str | None, offline: bool, as_json: bool) -> None:
    """Show what `run` would do, without side effects: order, references, build args, tags, and for
    each image "build (why)" or "reuse (digest)" from the registry's input-digest tags.

    \b
    Example:
      pipeline plan shop --version 2.1.5 --json
    """
    from pipeline.cache.scope import reuse_warnings, scope_of
    from pipeline.config import load_config

    the_session = session(load_config(config_file))
    the_plan = the_session.plan(pipelines, version)
    values = the_plan.context.template_values()
    predictions = {} if offline else _predictions(the_session, the_plan)
    scope = scope_of(the_plan.context)
    for warning in reuse_warnings(the_plan):
        click.echo(f"warning: {warning}", err=True)
    rows = [
        _plan_row(the_plan, values, scope, predictions, step, key, image)
        for step, (key, image) in enumerate(the_plan.images.items(), start=1)
    ]
    scope_row = _scope_row(scope)
    if as_json:
        echo_json({"version": str(the_plan.context.version or "") or None, "scope": scope_row, "images": rows})
        return
    if scope.untrusted:
        click.echo(
            f"scope: {scope.why} (untrusted): writes {scope_row['writes_input_tags']} and pr-sha-<commit>, "
            f"reads {', '.join(scope_row['reads_input_tags'])}; branch builds never read what it writes"
        )
    for row in rows:
        _echo_plan_row(row)


def _plan_row(
    the_plan: Plan,
    values: dict[str, str],
    scope: Scope,
    predictions: dict[str, Prediction],
    step: int,
    key: str,
    image: PlannedImage,
) -> dict[str, Any]:
    """One image of `plan --json`: what is built from what, its tags, and whether it is built or reused."""
    from pipeline.config.templates import render

    image_values = _values_for(the_plan, image, values)
    prediction = predictions.get(key)
    return {
        "step": step,
        "image": key,
        "repository": str(image.repository),
        "depends_on": list(image.depends_on),
        "context": str(image.context),
        "dockerfile": str(image.dockerfile),
        "build_args": {k: render(v, image_values) for k, v in image.build_args.items()},
        "target": image.target,
        "platform": image.platform,
        "builder": image.builder,
        "engine": image.engine,
        "network": image.network,
        "secrets": [secret.id for secret in image.secrets],  # ids only: values are read by buildx
        "tags": list(image.tags.all),
        "variants": _variant_rows(the_plan, image, values),  # each built alone, then published as one image index
        "action": prediction.action if prediction is not None else "unknown",
        "why": prediction.why if prediction is not None else "offline",
        "reuse_digest": prediction.digest if prediction is not None else None,
        "not_reused": list(prediction.refused) if prediction is not None else [],
        "reuse": _reuse_row(scope, image, prediction),
    }


def _variant_rows(the_plan: Plan, image: PlannedImage, values: dict[str, str]) -> list[dict[str, Any]]:
    """The image's variants, each with its rendered build args and its tags."""
    from pipeline.cli.variants import variant_row
    from pipeline.config.templates import render

    rows = []
    for variant in image.variants:
        view = image.variant_view(variant)
        view_values = _values_for(the_plan, view, values)
        tags = image.variant_tags.get(variant.name)
        rows.append(
            variant_row(variant)
            | {
                "build_args": {k: render(v, view_values) for k, v in view.build_args.items()},
                "tags": list(tags.all) if tags is not None else [],
            }
        )
    return rows


def _scope_row(scope: Scope) -> dict[str, Any]:
    """Whether the run is trusted, and the input tags it writes and reads."""
    return {
        "untrusted": scope.untrusted,
        "why": scope.why,
        "writes_input_tags": f"{scope.input_prefix}<hash>",
        "reads_input_tags": [f"{prefix}<hash>" for prefix in scope.read_prefixes],
    }


def _echo_plan_row(row: dict[str, Any]) -> None:
    """One image of the plan as text: its step, action, tags, reuse rule, builder, secrets and build args."""
    deps = f" (after {', '.join(row['depends_on'])})" if row["depends_on"] else ""
    click.echo(f"{row['step']}. {row['image']} -> {row['repository']}{deps}")
    detail = row["reuse_digest"] if row["action"] == "reuse" else row["why"]
    click.echo(f"     {row['action']} ({detail})")
    click.echo(f"     tags: {', '.join(row['tags'])}")
    reuse = row["reuse"]
    click.echo(f"     reuse: {reuse['rule']}; input tag {reuse['writes']} (reads {', '.join(reuse['reads'])})")
    for line in row["not_reused"]:
        click.echo(f"     {line}")
    network = f"network {row['network']}" if row["network"] else ""
    if not row["variants"]:
        where = f" on engine {row['engine']}" if row["engine"] else ""
        click.echo(f"     builder: {row['builder']}{where}" + (f", {network}" if network else ""))
    elif network:
        click.echo(f"     {network}")
    if row["secrets"]:
        click.echo(f"     secrets: {', '.join(row['secrets'])}")
    _echo_build_args(row)


def _reuse_row(scope: Scope, image: PlannedImage, prediction: Prediction | None) -> dict[str, Any]:
    """The image's `reuse:` rule and the input tags the run writes and reads (with the hash when known)."""
    inputs = prediction.inputs if prediction is not None else None
    if inputs is not None:
        return {"rule": image.reuse, "writes": scope.write_tag(inputs), "reads": list(scope.read_tags(inputs))}
    return {
        "rule": image.reuse,
        "writes": f"{scope.input_prefix}<hash>",
        "reads": [f"{prefix}<hash>" for prefix in scope.read_prefixes],
    }


def _values_for(the_plan: Plan, image: PlannedImage, values: dict[str, str]) -> dict[str, str]:
    """Template values with `{{ images.X }}` as the run will fill it: X's digest, or for a variant's
    view the digest of X's matching variant."""
    from pipeline.plan import base_variant

    image_values = dict(values)
    for dep in image.depends_on:
        dep_image = the_plan.images[dep]
        matching = base_variant(dep_image, image)
        built = f"{dep}[{matching.name}]" if matching is not None else dep
        image_values[f"images.{dep_image.name}"] = f"{dep_image.repository}@<digest of {built} from this run>"
    return image_values


def _echo_build_args(row: dict[str, Any]) -> None:
    """Build args every variant shares once, then each variant with the ones that are its own."""
    from pipeline.cli.variants import variant_lines_of

    if not row["variants"]:
        for name, value in row["build_args"].items():
            click.echo(f"     build arg {name}={value}")
        return
    variants: list[dict[str, Any]] = row["variants"]
    shared = {k: v for k, v in variants[0]["build_args"].items() if all(o["build_args"].get(k) == v for o in variants)}
    for name, value in shared.items():
        click.echo(f"     build arg {name}={value}")
    click.echo(f"     variants: {len(variants)}, published as one image index")
    for variant, line in zip(variants, variant_lines_of(variants), strict=True):
        click.echo(f"       {line}")
        for name, value in variant["build_args"].items():
            if name not in shared:
                click.echo(f"         build arg {name}={value}")
        if variant["tags"]:
            click.echo(f"         tags: {', '.join(variant['tags'])}")


def _predictions(the_session: Session, the_plan: Plan) -> dict[str, Prediction]:
    try:
        return the_session.predictions(the_plan)
    except RegistryError as exc:
        click.echo(f"warning: cannot tell what can be reused: {exc}", err=True)
        return {}


@click.command()
@click.argument("image_name", shell_complete=complete_images)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain(image_name: str, config_file: Path, as_json: bool) -> None:
    """Say why IMAGE (pipeline/name, or a unique name) would be rebuilt: which inputs changed since its
    last pushed build on this line of history, and which context files.

    \b
    Example:
      pipeline explain shop/app
    """
    from pipeline.config import load_config

    the_session = session(load_config(config_file))
    the_plan = the_session.plan((), None)
    matches = [k for k in the_plan.images if k == image_name or k.split("/", 1)[1] == image_name]
    if len(matches) != 1:
        raise UsageError(
            f"'{image_name}' names {len(matches)} images; use pipeline/name ({', '.join(the_plan.images)})"
        )
    key = matches[0]
    explanation = the_session.explain(the_plan, key)
    if as_json:
        echo_json(explanation.as_dict())
        return
    click.echo(f"{key}: {explanation.verdict}")
    for line in explanation.details:
        click.echo(f"  {line}")


@click.command()
@click.argument("pipelines", nargs=-1, shell_complete=complete_pipelines)
@config_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "svg"]),
    default="mermaid",
    show_default=True,
    help="Text for Mermaid or Graphviz, or an SVG drawing (needs no Graphviz).",
)
def graph(pipelines: tuple[str, ...], config_file: Path, fmt: str) -> None:
    """Draw the dependency graph: an arrow from each image to the images built on it.

    \b
    Example:
      pipeline graph --format svg > graph.svg
      pipeline graph --format dot | dot -Tpng > graph.png
    """
    from pipeline.cli.diagram import to_dot, to_mermaid, to_svg
    from pipeline.config import load_config

    the_plan = session(load_config(config_file)).plan(pipelines, None)
    drawings = {"mermaid": to_mermaid, "dot": to_dot, "svg": to_svg}
    click.echo(drawings[fmt](the_plan), nl=False)


@click.command()
@config_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"valid": ..., "file": ..., "errors": [{"file", "line", "column", "key", "message"}, ...]} on stdout.',
)
def validate(config_file: Path, as_json: bool) -> None:
    """Check the pipelines file (schema, paths, dependencies, cycles) without building. Every mistake is
    listed, each with its file:line:col; exit 2 if there is any.

    \b
    Example:
      pipeline validate -f pipelines.yaml
      pipeline validate --json | jq -r '.errors[] | "\\(.line):\\(.column) \\(.message)"'
    """
    from pipeline.cli.workflow import show_error
    from pipeline.config import load_config

    try:
        config = load_config(config_file)
    except ConfigError as exc:
        if not as_json:
            raise
        echo_json(
            {"valid": False, "file": str(config_file), "errors": config_errors_json(config_file, exc)}, indent=None
        )
        # stdout holds the JSON alone: the errors and their CI annotations go to stderr.
        show_error(exc, annotations=sys.stderr)
        raise click.exceptions.Exit(EXIT_CONFIG) from None
    counts = {name: len(p.images) for name, p in config.spec.pipelines.items()}
    if as_json:
        echo_json({"valid": True, "file": str(config_file), "errors": [], "pipelines": counts}, indent=None)
    else:
        click.echo(f"{config_file}: ok ({', '.join(f'{k}: {v} images' for k, v in counts.items())})")
