"""serve's pages read back with an HTML parser, as a browser's DOM would hold them: each run's DAG with
every image coloured by its status and linked to its own page, the tag-change table, the image page's
log lines, and hostile text from a report shown as text, never as markup."""

from __future__ import annotations

import json
from typing import Any

from pipeline.pictures import STATUS_COLOURS
from pipeline.report import ImageReport
from pipeline.triggers.queue import Run
from pipeline.triggers.statuspage import find_image, image_log, image_page, index_page, run_json, run_page
from tests.dom import Dom

HOSTILE = '<script>alert("x")</script>&'
DIGEST = "sha256:" + "ab" * 32
PREVIOUS = "sha256:" + "cd" * 32


def image(key: str, status: str, deps: list[str], **extra: Any) -> dict[str, Any]:
    return {"image": key, "status": status, "depends_on": deps, "digest": None, "tags": [], "reused": False} | extra


def a_run(report: dict[str, Any] | None, run_id: int = 7, status: str = "failed") -> Run:
    return Run(
        id=run_id,
        source="github",
        delivery_id="d1",
        ref="refs/heads/main",
        before="a" * 40,
        after="b" * 40,
        status=status,  # type: ignore[arg-type]
        created_at=1_700_000_000.0,
        started_at=1_700_000_001.0,
        finished_at=1_700_000_031.0,
        exit_code=1,
        report=json.dumps(report) if report is not None else None,
        log_path=None,
        superseded_by=None,
        coalesced=0,
    )


REPORT = {
    "ok": False,
    "error": f"run failed {HOSTILE}",
    "tag_changes": [
        {
            "image": "shop/base",
            "repository": "r/base",
            "tag": "latest-main",
            "kind": "extra",
            "action": "move",
            "digest": DIGEST,
            "previous": PREVIOUS,
            "reason": f"newer build {HOSTILE}",
        },
        {
            "image": "shop/app",
            "repository": "r/app",
            "tag": "1.2",
            "kind": "floating",
            "action": "create",
            "digest": DIGEST,
            "previous": None,
            "reason": "new",
        },
    ],
    "images": [
        image("shop/base", "succeeded", [], digest=DIGEST, tags=["sha-1"]),
        image("shop/cache", "succeeded", [], reused=True),
        image("shop/app", "failed", ["shop/base", "shop/cache"], error=f"build failed {HOSTILE}"),
        image("shop/tool", "skipped", ["shop/app"]),
        image(f"shop/{HOSTILE}", "pending", ["shop/tool"]),
    ],
}
EXPECTED = {
    "shop/base": "succeeded",
    "shop/cache": "reused",
    "shop/app": "failed",
    "shop/tool": "skipped",
    f"shop/{HOSTILE}": "pending",
}


def check_dag(dom: Dom, run_id: int) -> None:
    nodes = dom.find("g", **{"class": "node"})
    assert {a["data-image"]: a["data-status"] for a, _ in nodes} == EXPECTED
    rects = [a for a, _ in dom.find("rect")]
    links = [a["href"] for a, _ in dom.find("a") if "/images/" in a.get("href", "")]
    fills = {a["data-image"]: r["fill"] for (a, _), r in zip(nodes, rects, strict=True)}
    assert fills == {key: STATUS_COLOURS[status][0] for key, status in EXPECTED.items()}
    assert f"/runs/{run_id}/images/shop/base" in links
    assert f"/runs/{run_id}/images/shop/%3Cscript%3Ealert%28%22x%22%29%3C/script%3E%26" in links
    edges = {(a["data-from"], a["data-to"]) for a, _ in dom.find("path", **{"class": "edge"})}
    assert edges == {
        ("shop/base", "shop/app"),
        ("shop/cache", "shop/app"),
        ("shop/app", "shop/tool"),
        ("shop/tool", f"shop/{HOSTILE}"),
    }


def test_run_page_draws_the_dag_by_status_and_lists_the_tag_changes() -> None:
    page = run_page(a_run(REPORT), "log")
    dom = Dom(page)
    check_dag(dom, 7)
    assert not dom.find("script")  # every hostile string stayed text
    table = dom.find("table", **{"class": "tag-changes"})
    assert len(table) == 1
    tds = ["".join(t) for name, _, t in dom.tags if name == "td"][-12:]  # the last table: tag changes
    assert tds == [
        "shop/base",
        "latest-main",
        "move",
        "sha256:abababababab",
        "sha256:cdcdcdcdcdcd",
        f"newer build {HOSTILE}",
        "shop/app",
        "1.2",
        "create",
        "sha256:abababababab",
        "-",
        "new",
    ]
    titles = [a["title"] for a, _ in dom.find("code") if a.get("title", "").startswith("sha256:")]
    assert DIGEST in titles and PREVIOUS in titles  # the full digests, on hover


def test_index_page_draws_each_runs_dag() -> None:
    runs = [a_run(REPORT, 7), a_run(REPORT, 8, "succeeded"), a_run(None, 9, "running")]
    dom = Dom(index_page(runs, {"running": 1, "failed": 1, "succeeded": 1}, "repo"))
    assert [a["id"] for a, _ in dom.find("div", **{"class": "dag-wrap"})] == ["dag-7", "dag-8"]
    markers = [a["id"] for a, _ in dom.find("marker")]
    assert markers == ["run7-arrow", "run8-arrow"]  # ids unique on the page
    assert not dom.find("script")


def test_a_run_without_tag_changes_says_so() -> None:
    page = run_page(a_run({"images": [image("shop/base", "succeeded", [])], "tag_changes": []}), None)
    assert "No tag changes." in page and 'class="tag-changes"' not in page


LOG = """\
# run 7: refs/heads/main
shop/app: changed: images/app/app.sh
[   0.1s] shop/base                build   [1/2] FROM scratch
[   0.4s] shop/app                 build   [1/2] FROM base
[   1.9s] shop/app                 failed  shop/app: build failed at [2/2] RUN exit 3
    | step output 1
    | step output 2
[   2.0s] shop/tool                skipped not built
    | not ours
[   2.1s] shop/application          build   a longer name is another image
"""


def test_image_page_shows_its_log_lines_and_error() -> None:
    assert image_log(LOG, "shop/app") == [
        "shop/app: changed: images/app/app.sh",
        "[   0.4s] shop/app                 build   [1/2] FROM base",
        "[   1.9s] shop/app                 failed  shop/app: build failed at [2/2] RUN exit 3",
        "    | step output 1",
        "    | step output 2",
    ]
    run = a_run(REPORT)
    app = ImageReport.model_validate(REPORT["images"][2] | {"log_tail": ["step output 1", f"{HOSTILE}"]})  # type: ignore[index]
    dom = Dom(image_page(run, app, LOG))
    assert not dom.find("script")
    (log,) = dom.find("pre", id="log")
    assert log[1].splitlines() == image_log(LOG, "shop/app")
    assert any(f"build failed {HOSTILE}" in text for _, text in dom.find("td"))
    assert any(HOSTILE in text for _, text in dom.find("pre"))  # the failing step's output
    assert dom.find("a", href="/runs/7")


def test_pages_read_the_report_with_its_model() -> None:
    """A report of an older version (no `report_version`, no durations) is read with the model's defaults;
    one the model refuses (a key no version wrote) shows as a run without a report, as unreadable JSON does,
    while the API passes on what was stored."""
    run = a_run(REPORT)
    app = find_image(run, "shop/app")
    assert isinstance(app, ImageReport) and app.depends_on == ["shop/base", "shop/cache"]
    dom = Dom(image_page(run, app, LOG))
    assert ["".join(t) for name, _, t in dom.tags if name in ("th", "td")][:12] == [
        "status", "failed", "repository", "-", "digest", "-", "tags", "-",
        "depends on", "shop/base, shop/cache", "duration", "-",
    ]  # fmt: skip
    timed = a_run(REPORT | {"images": [image("shop/base", "succeeded", [], duration_seconds=2.5)]})
    base = find_image(timed, "shop/base")
    assert base is not None and "<th>duration</th><td>2.5s</td>" in image_page(timed, base, None)

    unknown = REPORT | {"no_such_key": 1}
    odd = a_run(unknown)
    assert find_image(odd, "shop/app") is None
    page = run_page(odd, None)
    assert 'class="dag-wrap"' not in page and "No tag changes." in page and "run failed" not in page
    assert page == run_page(a_run(None), None)  # as a run without a report
    assert run_json(odd)["report"] == unknown
