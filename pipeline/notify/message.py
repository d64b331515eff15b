"""A notice (what happened to one pipeline in one run) and the bodies it is posted as: the generic JSON
webhook body and a Slack-compatible incoming-webhook payload (`text` plus `blocks`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Event = Literal["failure", "release"]
SCHEMA_VERSION = 1  # the generic body's shape; bumped when a field changes meaning
LOG_TAIL_LINES = 20
# Slack refuses a section's text over 3000 characters; the log tail is cut to fit.
_SLACK_TEXT_LIMIT = 2900


@dataclass(frozen=True)
class ImageNotice:
    image: str  # pipeline/name
    status: str  # succeeded, failed, skipped
    digest: str | None = None
    tags: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Notice:
    """One pipeline's outcome: `image`, `step`, `error` and `log_tail` name the first failure (a run-level
    failure has no image); `images` lists every image of the pipeline the run got to."""

    event: Event
    pipeline: str
    command: str  # run, release, trigger
    commit: str | None = None
    branch: str | None = None
    version: str | None = None
    image: str | None = None
    step: str | None = None
    error: str | None = None
    log_tail: tuple[str, ...] = ()
    run_url: str | None = None
    images: tuple[ImageNotice, ...] = ()
    git_tag: str | None = None
    reason: str | None = None  # why a trigger ran it (`base update: <ref> <old> → <new>`)
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def summary(self) -> str:
        if self.event == "release":
            return f"{self.pipeline} {self.version or ''} released".replace("  ", " ")
        named = bool(self.error and self.image and self.error.startswith(f"{self.image}"))
        what = f"{self.pipeline} failed" + (f" at {self.image}" if self.image and not named else "")
        return f"{what}: {self.error}" if self.error else what


def generic_body(notice: Notice) -> dict[str, Any]:
    """The generic webhook's JSON body (docs/triggers.md: Notifications lists every field)."""
    return {
        "schema": SCHEMA_VERSION,
        "event": notice.event,
        "pipeline": notice.pipeline,
        "command": notice.command,
        "image": notice.image,
        "step": notice.step,
        "commit": notice.commit,
        "branch": notice.branch,
        "version": notice.version,
        "git_tag": notice.git_tag,
        "reason": notice.reason,
        "error": notice.error,
        "log_tail": list(notice.log_tail[-LOG_TAIL_LINES:]),
        "run_url": notice.run_url,
        "summary": notice.summary,
        "images": [
            {"image": i.image, "status": i.status, "digest": i.digest, "tags": list(i.tags), "error": i.error}
            for i in notice.images
        ],
        "sent_at": notice.sent_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def slack_body(notice: Notice) -> dict[str, Any]:
    """An incoming-webhook payload: `text` (the notification's fallback) and Block Kit `blocks`."""
    icon = ":rocket:" if notice.event == "release" else ":x:"
    text = f"{icon} {notice.summary}"
    facts = [
        f"*{label}:* {_code(value)}"
        for label, value in (
            ("pipeline", notice.pipeline),
            ("image", notice.image),
            ("step", notice.step),
            ("version", notice.version),
            ("branch", notice.branch),
            ("commit", (notice.commit or "")[:12] or None),
            ("reason", notice.reason),
        )
        if value
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(_escape(text))}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(" | ".join(facts))}]},
    ]
    if notice.event == "release" and notice.images:
        lines = [f"{i.image} {i.digest or ''} {', '.join(i.tags)}".strip() for i in notice.images]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _block("\n".join(lines))}})
    if notice.log_tail:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _block("\n".join(notice.log_tail))}})
    if notice.run_url:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{_escape(notice.run_url)}|View the run>"}]}
        )
    return {"text": text, "blocks": blocks}


def _escape(text: str) -> str:
    """Slack's three control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(value: str) -> str:
    return "`" + value.replace("`", "'") + "`"


def _cut(text: str) -> str:
    return text if len(text) <= _SLACK_TEXT_LIMIT else "…" + text[-(_SLACK_TEXT_LIMIT - 1) :]


def _block(text: str) -> str:
    """A code block whose tail (the end of a log is what matters) fits in a section."""
    body = _escape(text.replace("```", "'''"))
    return "```" + _cut(body)[-(_SLACK_TEXT_LIMIT - 6) :] + "```"
