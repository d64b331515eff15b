"""The run report: its published schema is current, every report the run writes matches it, and its JSON is
written key for key as before the typed model (plus `report_version`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

from jsonschema import Draft202012Validator

from pipeline.bases.resolve import ResolvedBase
from pipeline.release.publish import Action as TagAction
from pipeline.report import REPORT_VERSION, RunReport
from pipeline.report.json_schema import REPORT_SCHEMA_FILE, REPORT_SCHEMA_ID, report_schema_text
from pipeline.report.model import Action, Status
from pipeline.run.executor import ImageResult, RunResult
from pipeline.run.executor import Status as RunStatus
from pipeline.run.report import report_data, with_extra
from tests.helpers import assert_valid_report
from tests.unit.run.test_junit import DIGEST, fixture_plan, fixture_report

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((ROOT / REPORT_SCHEMA_FILE).read_text(encoding="utf-8"))
IMAGE_KEYS = [
    "image", "pipeline", "name", "depends_on", "repository", "reference", "digest", "image_id", "tags", "status",
    "duration_seconds", "started_at", "finished_at", "build_started_at", "build_finished_at", "engine", "inputs",
    "reused", "built_from", "not_reused", "error", "log_tail", "failed_step", "bases", "variants",
]  # fmt: skip
RUN_KEYS = ["ok", "duration_seconds", "version", "git_sha", "published", "error", "interrupted", "tag_changes"]


def _valid(data: dict[str, Any]) -> None:
    assert_valid_report(json.dumps(data))


def test_the_committed_schema_is_the_generated_one() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert REPORT_SCHEMA_ID.endswith("/" + REPORT_SCHEMA_FILE)
    committed = (ROOT / REPORT_SCHEMA_FILE).read_text(encoding="utf-8")
    stale = f"{REPORT_SCHEMA_FILE} is stale: pipeline schema --report --output {REPORT_SCHEMA_FILE}"
    assert committed == report_schema_text(), stale


def test_a_run_report_is_written_key_for_key_with_its_version_first(tmp_path: Path) -> None:
    data = fixture_report(tmp_path).data()

    _valid(data)
    assert list(data) == ["report_version", *RUN_KEYS, "images"]
    assert data["report_version"] == REPORT_VERSION == 1
    assert [list(image) for image in data["images"]] == [IMAGE_KEYS] * 4
    assert [image["status"] for image in data["images"]] == ["succeeded", "failed", "skipped", "succeeded"]


def test_a_release_and_a_trigger_report_hold_their_sections_after_the_run(tmp_path: Path) -> None:
    report = fixture_report(tmp_path)
    release = {"version": "1.2.0", "git_tag": "v1.2.0", "reason": "feat: x"}
    pushed = {"ref": "refs/heads/main", "before": "a" * 40, "after": "b" * 40, "affected": []}
    moved = {"image": "shop/app", "reference": "busybox:latest", "old": None, "new": DIGEST}
    base = {"kind": "base", "ref": "refs/heads/main", "after": "b" * 40, "bases": ["busybox"], "moves": [moved]}

    update = {"reason": "base update", "trigger": {**base, "affected": []}, "release": release}
    for extra, keys in [
        ({"release": release}, ["release"]),
        ({"trigger": pushed}, ["trigger"]),
        (update, ["reason", "trigger", "release"]),
    ]:
        data = with_extra(report, extra).data()
        _valid(data)
        assert list(data) == ["report_version", *RUN_KEYS, "images", *keys]
        assert {key: data[key] for key in keys} == extra


def test_a_trigger_that_builds_nothing_writes_a_short_report() -> None:
    trigger = {"ref": "refs/heads/main", "before": "a" * 40, "after": "b" * 40, "affected": []}
    data = RunReport.model_validate({"ok": True, "images": [], "reason": None, "trigger": trigger}).data()

    _valid(data)
    assert data == {"report_version": 1, "ok": True, "images": [], "reason": None, "trigger": trigger}
    assert list(data) == ["report_version", "ok", "images", "reason", "trigger"]


def test_variants_bases_and_a_reused_build_are_in_the_schema(tmp_path: Path) -> None:
    plain = fixture_report(tmp_path)
    base = ResolvedBase("busybox:latest", "linux/amd64", None, DIGEST, index=DIGEST, locked=True)
    result = ImageResult("shop/base", "127.0.0.1:5000/local/base", RunStatus.SUCCEEDED, digest=DIGEST, cached=True)
    result.built_from, result.bases = {"version": "1.1.0", "revision": "e" * 40}, [base]
    variant = ImageResult("shop/base", "127.0.0.1:5000/local/base", RunStatus.SUCCEEDED, digest=DIGEST)
    variant.platform, variant.bases, variant.not_reused = "linux/arm64", [base], ["not reused: sha256:… unsigned"]
    result.variants = {"arm64": variant}

    data = report_data(fixture_plan(tmp_path / "v"), RunResult({"shop/base": result})).data()

    _valid(data)
    image = data["images"][0]
    assert image["built_from"] == {"version": "1.1.0", "revision": "e" * 40}
    assert image["bases"] == [base.as_dict()]
    assert image["not_reused"] == ["not reused: sha256:… unsigned"]
    assert list(image["variants"][0]) == [
        "variant", "platform", "digest", "reference", "tags", "status", "engine", "reused", "bases",
        "build_started_at", "build_finished_at",
    ]  # fmt: skip
    assert plain.images  # the fixture's report is read back by attribute


def test_the_report_names_every_status_and_tag_action_the_run_has() -> None:
    assert set(get_args(Status)) == {s.value for s in RunStatus}
    assert set(get_args(Action)) == {a.value for a in TagAction}


def test_a_report_with_a_key_the_schema_does_not_name_is_refused() -> None:
    validator = Draft202012Validator(SCHEMA)
    assert not validator.is_valid({"report_version": 1, "ok": True, "images": [], "surprise": 1})
    assert not validator.is_valid({"ok": True, "images": []})  # no report_version: written before it existed
