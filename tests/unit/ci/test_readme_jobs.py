"""The paste-able CI jobs (docs/ci.md, moved from README) stay true: each is valid YAML for its service's
shape, every `pipeline` command in it is one the CLI accepts, every output it reads is one a run of the
bundled pipelines.yaml writes, and the files it hands to the service are the ones the command writes."""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from pipeline.ci.outputs import Output, outputs
from pipeline.cli import cli
from pipeline.cli.workflow import report_sink
from pipeline.common.reporting import SILENT
from pipeline.config import load_config
from pipeline.config.names import declared_images
from pipeline.plan import RunContext, make_plan
from pipeline.report import RunReport
from pipeline.run.executor import ImageResult, RunResult, Status
from pipeline.run.report import check_report_file, emit_report
from pipeline.run.session import Session
from pipeline.run.settings import Settings
from tests.helpers import docs_text, write_project

ROOT = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "ab" * 32
ONE_IMAGE = """\
registry: 127.0.0.1:9/readme
pipelines:
  shop:
    images:
      app: {context: images/app}
"""


def _jobs_section() -> str:
    text = docs_text("ci.md")
    start = text.index("## Paste-able jobs")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _blocks() -> dict[str, str]:
    blocks = re.findall(r"```yaml\n(.*?)```", _jobs_section(), re.S)
    assert len(blocks) == 3, "three jobs: GitHub Actions, GitLab CI, Azure Pipelines"
    return dict(zip(("github", "gitlab", "azure"), blocks, strict=True))


def _written_outputs() -> list[Output]:
    """What a run of the bundled pipelines.yaml writes: every image pushed, with a version."""
    # The names alone: the whole config would also want the example's key, which only setup makes.
    declared = declared_images(ROOT / "pipelines.yaml")
    keys = [f"{pipeline}/{image}" for pipeline, images in declared.items() for image in images]
    assert keys
    images = [
        {"image": key, "digest": f"sha256:{'0' * 64}", "reference": f"r@sha256:{'0' * 64}", "tags": ["1.0.0"]}
        for key in keys
    ]
    return outputs(RunReport.model_validate({"ok": True, "images": images, "version": "1.0.0"}))


def _pipeline_commands(lines: list[str]) -> list[list[str]]:
    return [shlex.split(line) for line in lines if line.strip().startswith("pipeline ")]


def _parses(argv: list[str]) -> click.Context:
    """The command and its options as the CLI parses them (an unknown option or command raises)."""
    assert argv[0] == "pipeline"
    group_ctx = click.Context(cli, info_name="pipeline")
    name, command, rest = cli.resolve_command(group_ctx, argv[1:])
    assert command is not None and name is not None
    return command.make_context(name, rest, parent=group_ctx)


def _option(ctx: click.Context, name: str) -> Any:
    return ctx.params[name]


def test_github_workflow_reads_outputs_the_run_writes() -> None:
    block = _blocks()["github"]
    workflow = yaml.safe_load(block)
    steps = workflow["jobs"]["build"]["steps"]
    run_step = next(step for step in steps if step.get("id") == "images")
    (argv,) = _pipeline_commands([run_step["run"]])
    ctx = _parses(argv)
    assert ctx.command.name == "run" and _option(ctx, "junit_file") is not None
    upload = next(step for step in steps if str(step.get("uses", "")).startswith("actions/upload-artifact"))
    assert str(_option(ctx, "junit_file")).startswith(upload["with"]["path"].rstrip("/"))
    read = set(re.findall(r"steps\.images\.outputs\.([A-Za-z0-9_-]+)", block))
    assert read >= {"shop-app-ref", "images"}
    assert read <= {output.github_name for output in _written_outputs()}
    # The later job reads the build job's outputs, which name the step's.
    assert workflow["jobs"]["deploy"]["needs"] == "build"
    assert "needs.build.outputs.app" in block and "app" in workflow["jobs"]["build"]["outputs"]


def test_gitlab_job_hands_the_dotenv_and_junit_files_it_writes() -> None:
    block = _blocks()["gitlab"]
    pipeline = yaml.safe_load(block)
    job = pipeline["images"]
    (argv,) = _pipeline_commands(job["script"])
    ctx = _parses(argv)
    assert ctx.command.name == "run"
    assert str(_option(ctx, "dotenv")) == job["artifacts"]["reports"]["dotenv"]
    assert str(_option(ctx, "junit_file")) == job["artifacts"]["reports"]["junit"]
    assert str(_option(ctx, "report_file")) in job["artifacts"]["paths"]
    read = set(re.findall(r"\bPIPELINE_[A-Z0-9_]+", block))
    assert "PIPELINE_SHOP_APP_REF" in read
    assert read <= {output.env_name for output in _written_outputs()}
    assert pipeline["deploy"]["needs"] == ["images"]


def test_azure_pipeline_reads_the_output_variables_of_the_named_step() -> None:
    block = _blocks()["azure"]
    definition = yaml.safe_load(block)
    build, deploy = definition["stages"]
    job = build["jobs"][0]
    run_step = next(step for step in job["steps"] if "pipeline run" in str(step.get("script", "")))
    (argv,) = _pipeline_commands([run_step["script"]])
    ctx = _parses(argv)
    assert ctx.command.name == "run"
    publish = next(step for step in job["steps"] if step.get("task") == "PublishTestResults@2")
    assert publish["inputs"]["testResultsFiles"] == str(_option(ctx, "junit_file"))
    reference = deploy["jobs"][0]["variables"]["app"]
    # stageDependencies.<stage>.<job>.outputs['<step name>.<variable>']
    match = re.fullmatch(r"\$\[ stageDependencies\.(\w+)\.(\w+)\.outputs\['(\w+)\.(\w+)'\] \]", reference)
    assert match is not None, reference
    assert match.groups()[:3] == (build["stage"], job["job"], run_step["name"])
    read = set(re.findall(r"\bPIPELINE_[A-Z0-9_]+", block))
    assert match.group(4) in read
    assert read <= {output.env_name for output in _written_outputs()}


@pytest.mark.parametrize("argv", [["pipeline", "run", "--no-such-option"], ["pipeline", "nope"]])
def test_the_parse_check_refuses_what_the_cli_refuses(argv: list[str]) -> None:
    with pytest.raises(click.UsageError):
        _parses(argv)


@pytest.mark.parametrize("service", ["github", "gitlab", "azure"])
def test_the_files_each_job_names_are_written_in_a_fresh_checkout(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`reports/` is in no checkout: the run makes missing directories (as pytest does for --junitxml),
    through the same checks before building and writers after it as `pipeline run`."""
    config = load_config(write_project(tmp_path, ONE_IMAGE, {"app": "FROM scratch\n"}))
    monkeypatch.chdir(tmp_path)
    # Azure fills in its staging directory; a path that does not exist yet, two levels deep, stands for it.
    command = _blocks()[service].replace("$(Build.ArtifactStagingDirectory)", "staging/drop")
    (line,) = re.findall(r"pipeline run [^\n]*", command)
    ctx = _parses(shlex.split(line))
    report, junit, dotenv = (ctx.params[name] for name in ("report_file", "junit_file", "dotenv"))
    named = [path for path in (report, junit, dotenv) if path is not None]
    assert named and not any(path.parent.exists() for path in named)
    check_report_file(report)
    check_report_file(junit, "--junit")
    session = Session(config, Settings.from_environment({}), SILENT)
    plan = make_plan(config.spec, config.base_dir, [], RunContext(git_sha="f" * 40))
    app = ImageResult("shop/app", "127.0.0.1:9/readme/app", Status.SUCCEEDED, digest=DIGEST, tags=["sha-fff"])
    emit_report(
        plan,
        RunResult({"shop/app": app}),
        report,
        False,
        junit_file=junit,
        also=report_sink(session, dotenv, "pipeline run"),
    )
    assert json.loads(report.read_text(encoding="utf-8"))["images"][0]["digest"] == DIGEST
    assert ET.fromstring(junit.read_text(encoding="utf-8")).find(".//testcase").get("name") == "app"
    if dotenv is not None:
        assert f"PIPELINE_SHOP_APP_DIGEST={DIGEST}" in dotenv.read_text(encoding="utf-8").splitlines()
