"""A run's one Redactor and where it is applied: the progress events as they happen and the result once
it is known, so the report, JUnit, the job summary, CI outputs, the printed table and notifications all
carry the same redacted texts (a build step that prints a build secret leaks it nowhere)."""

from __future__ import annotations

import threading
from dataclasses import replace

from pipeline.plan import Plan
from pipeline.redaction import RedactedStream, Redactor
from pipeline.run.executor import Event, EventSink, ImageResult, RunResult
from pipeline.run.settings import Settings


def run_redactor(settings: Settings, plan: Plan) -> Redactor:
    """Every secret this run could know: its build secrets (variables and files), the variables of the
    notify targets of its pipelines, the docker config, and every variable named like a secret."""
    variables = [s.env for image in plan.images.values() for s in image.secrets if s.env]
    files = [s.file for image in plan.images.values() for s in image.secrets if s.file]
    for block in plan.notifications().values():
        variables += [v for t in block.targets for v in (t.secret_env, t.url_env) if v]
    return Redactor.for_run(settings.environment, variables, files, settings.docker_config)


def redacting(sink: EventSink, redactor: Redactor) -> EventSink:
    """`sink` given each event with its message and log tail redacted (a step's output lines are events,
    each image's, or variant's, one output: a base64 encoding wrapped over its lines is hidden)."""
    streams: dict[tuple[str, str], RedactedStream] = {}
    lock = threading.Lock()

    def send(event: Event) -> None:
        if event.step == "log":
            variant = event.message.partition("] ")[0] if event.message.startswith("[") else ""
            with lock:
                stream = streams.setdefault((event.image, variant), redactor.stream())
            message = stream.text(event.message)
        else:
            message = redactor.text(event.message)
        sink(replace(event, message=message, log_tail=_lines(event.log_tail, redactor)))

    return send


def redact_result(result: RunResult, redactor: Redactor) -> RunResult:
    """The result with its texts redacted: errors, log tails and failed steps (of images and variants)."""
    for image in result.images.values():
        _redact_image(image, redactor)
    if result.error:
        result.error = redactor.text(result.error)
    return result


def _redact_image(image: ImageResult, redactor: Redactor) -> None:
    if image.error:
        image.error = redactor.text(image.error)
    if image.failed_step:
        image.failed_step = redactor.text(image.failed_step)
    image.log_tail = _lines(image.log_tail, redactor)
    for variant in image.variants.values():
        _redact_image(variant, redactor)


def _lines(lines: tuple[str, ...], redactor: Redactor) -> tuple[str, ...]:
    stream = redactor.stream()  # one step's successive output lines
    return tuple(stream.text(line) for line in lines)
