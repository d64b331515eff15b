"""A run's outcome turned into notices for its pipelines' `notify:` blocks and sent once the result is
known (after the locks are released and the tags published): the one place run, release and trigger notify.

    with notifying(session, plan, "run") as outcome:
        outcome.result = session.execute(plan, options, secrets)
        check_result(outcome.result)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline.notify.deliver import Message, deliver
from pipeline.notify.message import Event, ImageNotice, Notice
from pipeline.notify.runurl import run_url
from pipeline.plan import Plan
from pipeline.redaction import Redactor
from pipeline.run.executor import RunResult, Status
from pipeline.run.redacting import run_redactor
from pipeline.run.session import Session

# "shop/app: build failed at [3/3] RUN make: ..." names the failing Dockerfile step.
_STEP = re.compile(r"build failed at (\[\d+/\d+\] .+?)(?:: |$)")


@dataclass
class Outcome:
    """What the block ran to: set `result` as soon as there is one (a failure raised after it, such as
    check_result's, still reports the images)."""

    result: RunResult | None = None
    git_tag: str | None = None  # a release's git tag
    reason: str | None = None  # why a trigger ran it (`base update: <ref> <old> → <new>`)


@contextmanager
def notifying(session: Session, plan: Plan, command: str) -> Iterator[Outcome]:
    """Notify on leaving the block: a failure if it raised or its result failed, a release if it published
    a version; nothing for a pipeline without `notify:`. A notification never raises: its failures are
    warnings on stderr (session.reporter), so the exit code stays the run's own."""
    outcome = Outcome()
    try:
        yield outcome
    except Exception as exc:
        _send(session, plan, command, outcome, exc)
        raise
    _send(session, plan, command, outcome, None)


def _send(session: Session, plan: Plan, command: str, outcome: Outcome, error: Exception | None) -> None:
    redactor: Redactor | None = None
    try:
        redactor = run_redactor(session.settings, plan)
        messages: list[Message] = []
        for pipeline, block in plan.notifications().items():
            notice = _notice(session, plan, pipeline, command, outcome, error)
            if notice:
                messages.append((block, notice, block.owner))
        if not messages:
            return
        for warning in deliver(messages, session.settings.environment, redactor):
            session.reporter.warn(f"warning: {warning}")
    except Exception as exc:  # noqa: BLE001 - a notification must never change the run's outcome
        # Without a redactor nothing can hide a secret in the exception's text: only its kind is shown.
        said = redactor.text(f"{type(exc).__name__}: {exc}") if redactor is not None else type(exc).__name__
        session.reporter.warn(f"warning: notify: not sent: {said}")


def _notice(
    session: Session, plan: Plan, pipeline: str, command: str, outcome: Outcome, error: Exception | None
) -> Notice | None:
    result = outcome.result
    keys = [key for key, image in plan.images.items() if image.pipeline == pipeline]
    images = tuple(
        ImageNotice(key, r.status.value, r.digest, tuple(r.tags), r.error)
        for key in keys
        if result is not None and (r := result.images.get(key)) is not None
    )
    unfinished = [i for i in images if i.status != Status.SUCCEEDED.value]
    context = plan.context
    failed = error is not None or result is None or bool(result.error) or (not result.ok and bool(unfinished))
    event: Event
    if failed:
        event = "failure"
    elif context.version is not None and result is not None and result.published:
        event = "release"
    else:
        return None
    first = next((i for i in unfinished if i.status == Status.FAILED.value), unfinished[0] if unfinished else None)
    if event == "failure" and first is not None:
        message = first.error
    elif event == "failure":
        message = (result.error if result is not None else None) or str(error)
    else:
        message = None
    found = _STEP.search(message or "") if first is not None else None
    tail = result.images[first.image].log_tail if first is not None and result is not None else ()
    return Notice(
        event=event,
        pipeline=pipeline,
        command=command,
        commit=context.git_sha,
        branch=context.git_branch,
        version=str(context.version) if context.version else None,
        image=first.image if first is not None and event == "failure" else None,
        step=found.group(1) if found else None,
        error=message,
        log_tail=tuple(tail),
        run_url=run_url(session.settings.environment),
        images=images,
        git_tag=outcome.git_tag,
        reason=outcome.reason,
    )
