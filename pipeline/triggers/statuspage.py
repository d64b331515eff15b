"""What `pipeline serve` shows of its runs: the status page's HTML (each run's DAG drawn inline, coloured
by status), a run's page (with its tag changes), an image's page (its part of the log) and the API's JSON.
Pure.

Self-contained HTML (inline CSS and SVG, no scripts, no external assets): build machines often have no
internet, and the page must render there too. Everything a run reports is escaped.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from pipeline.pictures import STATUS_COLOURS, layout, render_svg
from pipeline.report import ImageReport, RunReport, TagChangeReport
from pipeline.triggers.queue import Run

REFRESH_SECONDS = 2

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem;color:#1f2328;background:#fff}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.sub{color:#59636e;margin-bottom:1rem}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre{background:#0d1117;color:#e6edf3;padding:1rem;overflow:auto;max-height:70vh;white-space:pre-wrap}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
.st{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:12px;font-weight:600;color:#fff}
.succeeded{background:#1a7f37}.failed{background:#cf222e}.running{background:#0969da}
.queued{background:#9a6700}.superseded,.skipped,.pending{background:#818b98}.reused{background:#0f766e}
.images{width:auto}.images td,.images th{border:0;padding:.1rem .8rem .1rem 0;font-size:12px}
.muted{color:#59636e}
.dag-wrap{overflow-x:auto;margin:.2rem 0 .4rem}.dag a:hover rect{stroke-width:3}
.legend{font-size:12px;color:#59636e;margin:.3rem 0}
.legend i{display:inline-block;width:.8rem;height:.8rem;border:2px solid;border-radius:3px;
margin:0 .25rem -.15rem .6rem}
"""
# A progress line of a run's log, `[  12.3s] shop/app   build   ...`, names its image in the second column.
_PROGRESS_LINE = re.compile(r"^\[\s*[\d.]+s\] (\S+)\s")
_TAIL_LINE = "    | "  # a failing step's output lines, printed under its progress line


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def stored_report(run: Run) -> dict[str, Any] | None:
    """The run's report as stored, for the API to pass on as it is (None: none, or not a JSON object)."""
    if not run.report:
        return None
    try:
        data = json.loads(run.report)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def report_of(run: Run) -> RunReport | None:
    """The run's report for the pages, read with the report's model; one that does not validate (written
    by a version that wrote other keys, or not a report) is shown as a run without a report."""
    data = stored_report(run)
    if data is None:
        return None
    try:
        return RunReport.model_validate(data)
    except ValidationError:
        return None


def run_reason(run: Run) -> str | None:
    """Why the run built what it did, when its report says (`base update: <ref> <old> → <new>`)."""
    report = report_of(run)
    return report.reason if report and report.reason else None


def _reason(run: Run) -> str:
    reason = run_reason(run)
    return f'<div class="muted reason">{escape(reason)}</div>' if reason else ""


def images_of(run: Run) -> list[ImageReport]:
    report = report_of(run)
    return report.images if report else []


def run_json(run: Run, now: float | None = None) -> dict[str, Any]:
    data = run.as_dict()
    data["report"] = stored_report(run)
    for key in ("created_at", "started_at", "finished_at"):
        data[key] = _iso(data[key])
    duration = run.duration(now)
    data["duration_seconds"] = round(duration, 3) if duration is not None else None
    return data


def image_status(image: ImageReport) -> str:
    """The report's status, with `reused` for an image taken from the registry instead of built."""
    return "reused" if image.status == "succeeded" and image.reused else image.status


def image_href(run_id: int, key: str) -> str:
    return f"/runs/{run_id}/images/{quote(key, safe='/')}"


def find_image(run: Run, key: str) -> ImageReport | None:
    return next((image for image in images_of(run) if image.image == key), None)


def image_log(log_text: str, key: str) -> list[str]:
    """The lines of a run's log about one image: its progress lines, the output lines under them, and the
    trigger's own `key: reason` lines."""
    lines: list[str] = []
    ours = False
    for line in log_text.splitlines():
        if line.startswith(_TAIL_LINE):
            if ours:
                lines.append(line)
            continue
        match = _PROGRESS_LINE.match(line)
        ours = (match is not None and match.group(1) == key) or line.startswith(f"{key}: ")
        if ours:
            lines.append(line)
    return lines


def _status(status: str) -> str:
    return f'<span class="st {escape(status)}">{escape(status)}</span>'


def _short_digest(digest: str | None) -> str:
    if not digest:
        return "-"
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}"


def _duration(run: Run, now: float | None) -> str:
    seconds = run.duration(now)
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 120 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _ref(ref: str) -> str:
    return ref.removeprefix("refs/heads/").removeprefix("refs/")


def _change(run: Run) -> str:
    """What set the run off: a push's commit, or the base image a registry said was pushed."""
    if run.kind == "base":
        return (
            f'base update <code class="base" title="{escape(run.digest or "")}">{escape(run.reference or "?")}</code>'
            f" <code>{escape(_short_digest(run.digest))}</code>"
        )
    return f'<code title="{escape(run.before)}..{escape(run.after)}">{escape(run.after[:12])}</code>'


def _images_table(run: Run) -> str:
    images = images_of(run)
    if not images:
        if run.status == "superseded" and run.superseded_by is not None:
            return f'<span class="muted">covered by <a href="/runs/{run.superseded_by}">#{run.superseded_by}</a></span>'
        return '<span class="muted">-</span>'
    rows = []
    for image in images:
        rows.append(
            "<tr>"
            f'<td><a href="{escape(image_href(run.id, image.image))}">{escape(image.image)}</a></td>'
            f"<td>{_status(image_status(image))}</td>"
            f'<td><code title="{escape(image.digest or "")}">{escape(_short_digest(image.digest))}</code></td>'
            f"<td>{escape(', '.join(image.tags) or '-')}</td>"
            "</tr>"
        )
    return f'{_dag(run, images)}<table class="images">{"".join(rows)}</table>'


def _dag(run: Run, images: list[ImageReport]) -> str:
    """The run's images as a DAG, each box coloured by its status and linked to its page. Reports made
    before they named dependencies draw the boxes alone."""
    graph: dict[str, tuple[str, ...]] = {}
    statuses: dict[str, str] = {}
    for image in images:
        graph[image.image] = tuple(image.depends_on)
        statuses[image.image] = image_status(image)
    links = {key: image_href(run.id, key) for key in graph}
    svg = render_svg(layout(graph), statuses, links, title=f"run #{run.id}: images by status", ident=f"run{run.id}")
    return f'<div class="dag-wrap" id="dag-{run.id}">{svg}</div>'


def _legend() -> str:
    keys = "".join(
        f'<i style="background:{fill};border-color:{stroke}"></i>{escape(status)}'
        for status, (fill, stroke) in STATUS_COLOURS.items()
    )
    return f'<div class="legend">images:{keys}</div>'


_TAG_CHANGE_COLUMNS = ("image", "tag", "action", "digest", "previous", "reason")


def _digest_cell(digest: str | None) -> str:
    return f'<td><code title="{escape(digest or "")}">{escape(_short_digest(digest))}</code></td>'


def _tag_change_row(change: TagChangeReport) -> str:
    cells = (
        f"<td>{escape(change.image)}</td><td>{escape(change.tag)}</td><td>{escape(change.action)}</td>"
        f"{_digest_cell(change.digest)}{_digest_cell(change.previous)}<td>{escape(change.reason)}</td>"
    )
    return f"<tr>{cells}</tr>"


def _tag_changes(report: RunReport | None) -> str:
    """The report's tag changes as a table: which tag was created, moved, kept or left, and why."""
    rows = report.tag_changes if report else []
    if not rows:
        return '<p class="muted">No tag changes.</p>'
    body = [_tag_change_row(change) for change in rows]
    head = "".join(f"<th>{column}</th>" for column in _TAG_CHANGE_COLUMNS)
    return f'<table class="tag-changes"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _page(title: str, body: str, refresh: bool) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{meta}'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )


def index_page(runs: list[Run], counts: dict[str, int], repo: str, now: float | None = None) -> str:
    active = counts.get("queued", 0) + counts.get("running", 0) > 0
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no runs yet"
    rows = []
    for run in runs:
        rows.append(
            "<tr>"
            f'<td><a href="/runs/{run.id}">#{run.id}</a></td>'
            f"<td>{escape(run.source)}{_reason(run)}</td>"
            f"<td>{escape(_ref(run.ref))}</td>"
            f"<td>{_change(run)}</td>"
            f"<td>{_status(run.status)}</td>"
            f"<td>{_images_table(run)}</td>"
            f'<td class="muted">{escape(_iso(run.created_at) or "-")}</td>'
            f"<td>{_duration(run, now)}</td>"
            "</tr>"
        )
    table = (
        "<table><thead><tr><th>run</th><th>trigger</th><th>ref</th><th>commit / base</th><th>status</th>"
        "<th>images (status, digest, tags)</th><th>received</th><th>duration</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="muted">No runs yet: push to the repository with this server as its webhook.</p>'
    )
    body = (
        f'<h1>pipeline serve</h1><div class="sub">{escape(repo)} &middot; {escape(summary)}'
        f"{' &middot; refreshing' if active else ''}</div>{_legend() if rows else ''}{table}"
    )
    return _page("pipeline serve", body, refresh=active)


def run_page(run: Run, log_text: str | None, now: float | None = None) -> str:
    report = report_of(run)
    facts = [
        ("status", _status(run.status)),
        ("trigger", escape(f"{run.source} ({run.delivery_id or '-'})")),
        ("ref", escape(run.ref)),
        *(
            [
                ("base update", f'<code class="base">{escape(run.reference or "?")}</code>'),
                ("digest", f"<code>{escape(run.digest or '-')}</code>"),
            ]
            if run.kind == "base"
            else [("commits", f"<code>{escape(run.before)}</code> .. <code>{escape(run.after)}</code>")]
        ),
        ("coalesced", f"covers {run.coalesced} earlier queued push(es)" if run.coalesced else "-"),
        ("received", escape(_iso(run.created_at) or "-")),
        ("started", escape(_iso(run.started_at) or "-")),
        ("finished", escape(_iso(run.finished_at) or "-")),
        ("duration", _duration(run, now)),
        ("exit code", escape(str(run.exit_code)) if run.exit_code is not None else "-"),
    ]
    if run.superseded_by is not None:
        facts.append(("superseded by", f'<a href="/runs/{run.superseded_by}">#{run.superseded_by}</a>'))
    if report and report.error:
        facts.append(("error", escape(report.error)))
    if run_reason(run):
        facts.append(("reason", escape(run_reason(run) or "")))
    rows = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts)
    log = f"<pre>{escape(log_text)}</pre>" if log_text is not None else '<p class="muted">No log.</p>'
    body = (
        f'<p><a href="/">&larr; all runs</a></p><h1>run #{run.id}</h1>'
        f'<table style="width:auto">{rows}</table>'
        f"<h2>images</h2>{_legend()}{_images_table(run)}"
        f"<h2>tag changes</h2>{_tag_changes(report)}<h2>log</h2>{log}"
    )
    return _page(f"run #{run.id} {run.status}", body, refresh=run.active)


def image_page(run: Run, image: ImageReport, log_text: str | None) -> str:
    """One image of a run: what the report says of it, its failing step's output and its lines of the log."""
    key = image.image
    # A report written before images had a duration shows none (the model's default is not a duration).
    duration = f"{image.duration_seconds}s" if "duration_seconds" in image.model_fields_set else "-"
    facts = [
        ("status", _status(image_status(image))),
        ("repository", escape(image.repository or "-")),
        ("digest", f"<code>{escape(image.digest or '-')}</code>"),
        ("tags", escape(", ".join(image.tags) or "-")),
        ("depends on", escape(", ".join(image.depends_on) or "-")),
        ("duration", escape(duration)),
    ]
    if image.error:
        facts.append(("error", escape(image.error)))
    rows = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts)
    tail_html = (
        f"<h2>failing step's output</h2><pre>{escape(chr(10).join(image.log_tail))}</pre>" if image.log_tail else ""
    )
    lines = image_log(log_text, key) if log_text is not None else []
    log = (
        f'<pre id="log">{escape(chr(10).join(lines))}</pre>'
        if lines
        else f'<p class="muted" id="log">No line of the run\'s log names {escape(key)}.</p>'
    )
    body = (
        f'<p><a href="/runs/{run.id}">&larr; run #{run.id}</a></p><h1>{escape(key)} in run #{run.id}</h1>'
        f'<table style="width:auto">{rows}</table>{tail_html}<h2>log</h2>{log}'
    )
    return _page(f"{key} in run #{run.id}", body, refresh=run.active)
