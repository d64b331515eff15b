"""A CI output file that cannot be written: a warning after a run that published or failed, an error only
after one that succeeded without publishing (its outputs are then all it made)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli.workflow import report_sink
from pipeline.errors import PipelineError
from pipeline.report import RunReport
from pipeline.run.session import Session
from pipeline.run.settings import Settings


def _sink(tmp_path: Path) -> tuple[Path, Session]:
    missing = tmp_path / "missing" / "out"
    settings = Settings.from_environment({"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(missing)})
    return missing, Session(None, settings)


@pytest.mark.parametrize(
    ("published", "ok", "why"),
    [(True, True, "its tags are published"), (False, False, "it failed already"), (True, False, "its tags")],
)
def test_a_published_or_failed_run_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], published: bool, ok: bool, why: str
) -> None:
    missing, session = _sink(tmp_path)
    report_sink(session, None, "pipeline run")(RunReport(ok=ok, published=published, images=[]))
    [warning] = capsys.readouterr().err.splitlines()
    assert warning.startswith(f"warning: {missing}: cannot write the step outputs: No such file or directory; ")
    assert why in warning


def test_a_run_that_published_nothing_fails_for_its_outputs(tmp_path: Path) -> None:
    missing, session = _sink(tmp_path)
    with pytest.raises(PipelineError, match="cannot write the step outputs"):
        report_sink(session, None, "pipeline run")(RunReport(ok=True, published=False, images=[]))
