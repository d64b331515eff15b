"""What `pipeline serve` shows of its runs: the status page's HTML and the API's JSON. Pure.

Self-contained HTML (inline CSS, no scripts, no external assets): build machines often have no
internet, and the page must render there too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

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
.queued{background:#9a6700}.superseded,.skipped,.pending{background:#818b98}
.images{width:auto}.images td,.images th{border:0;padding:.1rem .8rem .1rem 0;font-size:12px}
.muted{color:#59636e}
"""


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def report_of(run: Run) -> dict[str, Any] | None:
    if not run.report:
        return None
    try:
        data = json.loads(run.report)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def images_of(run: Run) -> list[dict[str, Any]]:
    report = report_of(run)
    images = report.get("images") if report else None
    return [i for i in images if isinstance(i, dict)] if isinstance(images, list) else []


def run_json(run: Run, now: float | None = None) -> dict[str, Any]:
    data = run.as_dict()
    data["report"] = report_of(run)
    for key in ("created_at", "started_at", "finished_at"):
        data[key] = _iso(data[key])
    duration = run.duration(now)
    data["duration_seconds"] = round(duration, 3) if duration is not None else None
    return data


def _status(status: str) -> str:
    return f'<span class="st {escape(status)}">{escape(status)}</span>'


def _short_digest(digest: object) -> str:
    if not isinstance(digest, str) or not digest:
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


def _images_table(run: Run) -> str:
    images = images_of(run)
    if not images:
        if run.status == "superseded" and run.superseded_by is not None:
            return f'<span class="muted">covered by <a href="/runs/{run.superseded_by}">#{run.superseded_by}</a></span>'
        return '<span class="muted">-</span>'
    rows = []
    for image in images:
        tags = image.get("tags") if isinstance(image.get("tags"), list) else []
        rows.append(
            "<tr>"
            f"<td>{escape(str(image.get('image', '?')))}</td>"
            f"<td>{_status(str(image.get('status', '?')))}</td>"
            f'<td><code title="{escape(str(image.get("digest") or ""))}">{escape(_short_digest(image.get("digest")))}'
            "</code></td>"
            f"<td>{escape(', '.join(str(t) for t in tags or []) or '-')}</td>"
            "</tr>"
        )
    return f'<table class="images">{"".join(rows)}</table>'


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
            f"<td>{escape(run.source)}</td>"
            f"<td>{escape(_ref(run.ref))}</td>"
            f'<td><code title="{escape(run.before)}..{escape(run.after)}">{escape(run.after[:12])}</code></td>'
            f"<td>{_status(run.status)}</td>"
            f"<td>{_images_table(run)}</td>"
            f'<td class="muted">{escape(_iso(run.created_at) or "-")}</td>'
            f"<td>{_duration(run, now)}</td>"
            "</tr>"
        )
    table = (
        "<table><thead><tr><th>run</th><th>trigger</th><th>ref</th><th>commit</th><th>status</th>"
        "<th>images (status, digest, tags)</th><th>received</th><th>duration</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="muted">No runs yet: push to the repository with this server as its webhook.</p>'
    )
    body = (
        f'<h1>pipeline serve</h1><div class="sub">{escape(repo)} &middot; {escape(summary)}'
        f"{' &middot; refreshing' if active else ''}</div>{table}"
    )
    return _page("pipeline serve", body, refresh=active)


def run_page(run: Run, log_text: str | None, now: float | None = None) -> str:
    report = report_of(run)
    facts = [
        ("status", _status(run.status)),
        ("trigger", escape(f"{run.source} ({run.delivery_id or '-'})")),
        ("ref", escape(run.ref)),
        ("commits", f"<code>{escape(run.before)}</code> .. <code>{escape(run.after)}</code>"),
        ("coalesced", f"covers {run.coalesced} earlier queued push(es)" if run.coalesced else "-"),
        ("received", escape(_iso(run.created_at) or "-")),
        ("started", escape(_iso(run.started_at) or "-")),
        ("finished", escape(_iso(run.finished_at) or "-")),
        ("duration", _duration(run, now)),
        ("exit code", escape(str(run.exit_code)) if run.exit_code is not None else "-"),
    ]
    if run.superseded_by is not None:
        facts.append(("superseded by", f'<a href="/runs/{run.superseded_by}">#{run.superseded_by}</a>'))
    if report and report.get("error"):
        facts.append(("error", escape(str(report["error"]))))
    rows = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts)
    log = f"<pre>{escape(log_text)}</pre>" if log_text is not None else '<p class="muted">No log.</p>'
    body = (
        f'<p><a href="/">&larr; all runs</a></p><h1>run #{run.id}</h1>'
        f'<table style="width:auto">{rows}</table>'
        f"<h2>images</h2>{_images_table(run)}<h2>log</h2>{log}"
    )
    return _page(f"run #{run.id} {run.status}", body, refresh=run.active)
