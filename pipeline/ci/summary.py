"""A run's report as Markdown for GitHub's job summary ($GITHUB_STEP_SUMMARY): a table of the images, the
tag changes with their reasons, and each failure with its log tail."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.report import RunReport


# GitHub renders HTML in a summary (`<img src=...>`, `<details>`) and Markdown links and images: a build's
# error text gets none of them (translate is one pass: the `&` of an entity made here is not escaped again).
MARKUP = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "\\[", "]": "\\]"})


def cell(value: object) -> str:
    """Text safe in a table cell, shown as it is: `|` would end the cell, a backtick open a code span, HTML
    render and `[...](...)` link."""
    text = " ".join(str(value).split())
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return text.translate(MARKUP) or "-"


def fenced(lines: list[str]) -> list[str]:
    """A code block that no backtick run inside it can close."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *lines, fence]


def summary_markdown(report: RunReport, title: str) -> str:
    images = report.images
    failed = [image for image in images if image.status == "failed"]
    outcome = "succeeded" if report.ok else "failed"
    if report.interrupted:
        outcome = f"interrupted by {report.interrupted}"
    facts = [f"{len(images)} image(s)"]
    if report.version:
        facts.append(f"version {report.version}")
    if report.git_sha:
        facts.append(f"commit {report.git_sha[:12]}")
    lines = [f"## {title}: {outcome}", "", ", ".join(facts), ""]
    lines += ["| image | status | digest | tags | time |", "| --- | --- | --- | --- | --- |"]
    for image in images:
        row = [
            image.image,
            image.status,
            image.digest or "-",
            ", ".join(image.tags) or "-",
            f"{image.duration_seconds:.1f}s",
        ]
        lines.append("| " + " | ".join(cell(value) for value in row) + " |")
    if report.tag_changes:
        lines += ["", "### Tag changes", "", "| image | tag | action | reason |", "| --- | --- | --- | --- |"]
        for change in report.tag_changes:
            row = [change.image, change.tag, change.action, change.reason]
            lines.append("| " + " | ".join(cell(value) for value in row) + " |")
    if failed or report.error:
        lines += ["", "### Failures"]
    for image in failed:
        key, error = image.image, image.error or "failed"
        error = error.removeprefix(f"{key}: ")  # the error names its image: "shop/app: build failed at ..."
        lines += ["", f"**{cell(key)}**: {cell(error)}"]
        if image.log_tail:
            lines += ["", *fenced(image.log_tail)]
    if report.error:
        lines += ["", f"**run**: {cell(report.error)}"]
    return "\n".join(lines) + "\n\n"
