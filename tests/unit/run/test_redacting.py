"""The run's one redactor: made from the plan's build secrets, its notify targets' variables and the
environment, and applied to each progress event and to the result every report is made from."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_config
from pipeline.plan import RunContext, make_plan
from pipeline.run.executor import Event, ImageResult, RunResult, Status
from pipeline.run.redacting import redact_result, redacting, run_redactor
from pipeline.run.report import report_data
from pipeline.run.settings import Settings
from tests.helpers import write_project

BUILD_SECRET = "build-token-SECRETSCAN-c4"
FILE_LINES = ("file-line-one-SECRETSCAN-d5", "file-line-two-SECRETSCAN-e6")
HOOK_URL = "https://hooks.example.com/T0/B0/slack-path-SECRETSCAN-f7"


def test_the_plans_build_secrets_and_notify_variables_are_hidden_in_events_and_in_the_result(tmp_path: Path) -> None:
    (tmp_path / "creds.txt").write_text("\n".join(FILE_LINES) + "\n")
    config = load_config(
        write_project(
            tmp_path / "repo",
            f"""\
            registry: 127.0.0.1:5000/local
            notify: {{targets: [{{url_env: HOOK_URL, kind: slack}}]}}
            pipelines:
              shop:
                images:
                  app:
                    context: images/app
                    secrets: {{tok: {{env: NPM_AUTH}}, creds: {{file: {tmp_path / "creds.txt"}}}}}
            """,
            {"app": "FROM scratch\n"},
        )
    )
    plan = make_plan(config.spec, config.base_dir, [], RunContext())
    # NPM_AUTH is named like no secret: only the plan (its build secret) says it is one.
    environment = {"NPM_AUTH": BUILD_SECRET, "HOOK_URL": HOOK_URL, "HOME": "/root"}
    settings = Settings.from_environment({**environment, "DOCKER_CONFIG": str(tmp_path / "no-docker-config")})
    redactor = run_redactor(settings, plan)
    leaked = [BUILD_SECRET, *FILE_LINES, HOOK_URL]

    seen: list[Event] = []
    sink = redacting(seen.append, redactor)
    sink(Event("shop/app", "log", f"#7 0.2 {BUILD_SECRET}", 1.0))
    sink(Event("shop/app", "failed", f"shop/app: build failed posting to {HOOK_URL}", 2.0, tuple(leaked)))
    assert [e.message for e in seen] == ["#7 0.2 ***", "shop/app: build failed posting to ***"]
    assert seen[1].log_tail == ("***",) * 4

    variant = ImageResult("shop/app", "r", Status.FAILED, error=f"amd64: {FILE_LINES[1]}", log_tail=(FILE_LINES[0],))
    failed = ImageResult("shop/app", "r", Status.FAILED, error=f"shop/app: {BUILD_SECRET}", log_tail=tuple(leaked))
    failed.failed_step = f"[2/2] RUN echo {BUILD_SECRET}"
    failed.variants = {"amd64": variant}
    result = redact_result(RunResult({"shop/app": failed}, error=f"publish: {FILE_LINES[0]}"), redactor)
    report = str(report_data(plan, result).data())
    assert "SECRETSCAN" not in report and "***" in report
    assert (failed.error, failed.failed_step, variant.error) == ("shop/app: ***", "[2/2] RUN echo ***", "amd64: ***")
    assert redactor.text("/root HOME 1 of 1") == "/root HOME 1 of 1"
