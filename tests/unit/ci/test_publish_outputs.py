"""The report handed to the CI service: GitHub's step outputs and job summary appended to the files it
names, a dotenv file written, nothing outside CI; warnings through the reporter."""

from __future__ import annotations

from pathlib import Path

from pipeline.ci.environment import CiEnvironment
from pipeline.ci.publish import publish_outputs
from pipeline.common.reporting import Forward
from pipeline.report import RunReport

REPORT = RunReport.model_validate(
    {
        "ok": True,
        "images": [
            {
                "image": "shop/app",
                "pipeline": "shop",
                "name": "app",
                "repository": "127.0.0.1:5000/t/app",
                "digest": "sha256:" + "a" * 64,
                "reference": "127.0.0.1:5000/t/app@sha256:" + "a" * 64,
                "status": "succeeded",
            }
        ],
    }
)


def test_github_outputs_and_summary_are_appended(tmp_path: Path) -> None:
    output, summary = tmp_path / "output", tmp_path / "summary"
    output.write_text("earlier=1\n")
    ci = CiEnvironment("github", "main", None, tmp_path, output_file=output, summary_file=summary)
    said: list[str] = []
    publish_outputs(REPORT, ci, None, "pipeline run", Forward(said.append))
    assert output.read_text().startswith("earlier=1\n")
    assert "shop-app-digest=sha256:" + "a" * 64 in output.read_text()
    assert summary.read_text().startswith("## pipeline run: succeeded\n")
    assert said == []


def test_outside_ci_only_the_dotenv_file_is_written(tmp_path: Path) -> None:
    dotenv = tmp_path / "out" / "build.env"
    publish_outputs(REPORT, None, dotenv, "pipeline run", Forward(lambda _: None))
    assert "SHOP_APP_DIGEST=sha256:" + "a" * 64 in dotenv.read_text()


def test_a_dotenv_gitlab_would_refuse_is_written_and_warned_about(tmp_path: Path) -> None:
    many = RunReport.model_validate(
        {"ok": True, "images": [dict(REPORT.images[0].model_dump(), image=f"shop/app{i}") for i in range(40)]}
    )
    warned: list[str] = []
    dotenv = tmp_path / "build.env"
    publish_outputs(many, None, dotenv, "pipeline run", Forward(lambda _: None, warn=warned.append))
    assert dotenv.exists()
    assert [w.split(": ")[2].split(",")[0].split(" ")[1] for w in warned] == ["bytes", "variables"]
    for warning in warned:
        assert warning.startswith(f"warning: --dotenv {dotenv}: ") and warning.endswith("; GitLab refuses the report")
