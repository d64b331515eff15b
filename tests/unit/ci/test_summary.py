"""The job summary's Markdown: the images table, tag changes and failures, with cells escaped."""

from __future__ import annotations

from pipeline.ci.summary import cell, fenced, summary_markdown
from pipeline.report import RunReport

DIGEST = "sha256:" + "b" * 64


def test_cells_escape_pipes_backticks_and_line_breaks() -> None:
    assert cell("a|b `c`\nd") == "a\\|b \\`c\\` d"
    assert cell("") == "-"


def test_cells_show_html_and_markdown_links_as_text() -> None:
    """GitHub renders HTML and Markdown images in a summary: a build's text must not load an image."""
    assert cell('<img src="https://x/p.png"> & ![a](https://x/p.png) [b](https://x)') == (
        '&lt;img src="https://x/p.png"&gt; &amp; !\\[a\\](https://x/p.png) \\[b\\](https://x)'
    )


def test_a_failure_names_its_image_once_and_its_text_is_escaped() -> None:
    report = {
        "ok": False,
        "images": [
            {"image": "shop/app", "status": "failed", "error": "shop/app: failed: <img src=x> ![i](u)"},
        ],
    }
    lines = summary_markdown(RunReport.model_validate(report), "pipeline run").splitlines()
    assert "**shop/app**: failed: &lt;img src=x&gt; !\\[i\\](u)" in lines


def test_a_fence_is_longer_than_any_backtick_run_inside() -> None:
    assert fenced(["plain"]) == ["```", "plain", "```"]
    assert fenced(["has ```` four"]) == ["`````", "has ```` four", "`````"]


def test_summary_of_a_failed_run() -> None:
    report = {
        "ok": False,
        "version": "2.0.0",
        "git_sha": "0123456789abcdef0123",
        "error": None,
        "images": [
            {
                "image": "shop/base",
                "status": "succeeded",
                "digest": DIGEST,
                "tags": ["sha-1", "2.0.0"],
                "duration_seconds": 1.24,
            },
            {
                "image": "shop/app",
                "status": "failed",
                "digest": None,
                "tags": [],
                "duration_seconds": 0.5,
                "error": "shop/app: build failed at RUN a | b",
                "log_tail": ["make: *** [all] Error 3", "```"],
            },
        ],
        "tag_changes": [
            {"image": "shop/base", "tag": "latest", "action": "move", "reason": "2.0.0 is the highest | newest"}
        ],
    }
    assert summary_markdown(RunReport.model_validate(report), "pipeline run").splitlines() == [
        "## pipeline run: failed",
        "",
        "2 image(s), version 2.0.0, commit 0123456789ab",
        "",
        "| image | status | digest | tags | time |",
        "| --- | --- | --- | --- | --- |",
        f"| shop/base | succeeded | {DIGEST} | sha-1, 2.0.0 | 1.2s |",
        "| shop/app | failed | - | - | 0.5s |",
        "",
        "### Tag changes",
        "",
        "| image | tag | action | reason |",
        "| --- | --- | --- | --- |",
        "| shop/base | latest | move | 2.0.0 is the highest \\| newest |",
        "",
        "### Failures",
        "",
        "**shop/app**: build failed at RUN a \\| b",
        "",
        "````",
        "make: *** [all] Error 3",
        "```",
        "````",
        "",
    ]
