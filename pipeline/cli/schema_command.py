"""`pipeline schema`: the JSON Schema of pipelines.yaml, for editors and CI."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="Write the schema to FILE instead of stdout.",
)
@click.option(
    "--report",
    "of_report",
    is_flag=True,
    help="The schema of the run report (--report FILE of run, release, trigger) instead.",
)
def schema(output: Path | None, of_report: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of pipelines.yaml, made from the same models the loader
    validates with: every key with its description, example, allowed values and default.

    Editors that use the YAML language server (VS Code's YAML extension; Neovim, Helix and others
    with yaml-language-server) read it from a first line `# yaml-language-server: $schema=PATH-OR-URL`
    in pipelines.yaml and then complete keys and flag mistakes as you type. What the schema cannot
    say (paths exist, names resolve, templates parse) `pipeline validate` still checks.

    \b
    Example:
      pipeline schema > pipelines.schema.json
      pipeline schema --output schema/pipelines.schema.json   # regenerate the committed copy
      pipeline schema | jq '."$defs".ImageSpec.properties | keys'
      pipeline schema --report --output schema/report.schema.json
    """
    from pipeline.config.json_schema import schema_text  # the models: not for --help
    from pipeline.files import write_text
    from pipeline.report.json_schema import report_schema_text

    text = report_schema_text() if of_report else schema_text()
    if output is None:
        click.echo(text, nl=False)
        return
    write_text(output, text, "schema")
    click.echo(f"wrote {output}", err=True)
