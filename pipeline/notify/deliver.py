"""Posting a notice to a `notify:` block's targets: signed generic JSON or Slack payloads, retried with the
registry's policy (pipeline.common.retry) within one deadline for the whole block, in parallel."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tenacity import RetryCallState, stop_after_attempt
from tenacity.stop import stop_base

from pipeline import __version__
from pipeline.common.http import httpx
from pipeline.common.retry import POLICY, Transient, parse_retry_after
from pipeline.config.checks import notify_url_problem
from pipeline.config.resolved import Notification, NotifyDestination
from pipeline.notify.message import Notice, generic_body, slack_body
from pipeline.redaction import Redactor

SIGNATURE_HEADER = "X-Pipeline-Signature-256"  # GitHub's convention: sha256=<hex HMAC-SHA256 of the raw body>
EVENT_HEADER = "X-Pipeline-Event"
BODIES: dict[str, Callable[[Notice], dict[str, Any]]] = {"generic": generic_body, "slack": slack_body}


def signature(secret: bytes, body: bytes) -> str:
    """The X-Pipeline-Signature-256 value a receiver recomputes over the raw body it got."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Target:
    label: str  # what warnings name: never the URL's path or userinfo (a Slack URL's path is its secret)
    url: str
    body: bytes
    headers: dict[str, str]


_NO_TIME = "out of time"


class _Failed(Transient):
    """An attempt that may succeed later (5xx, 429, no answer); the message never holds the URL."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Refused(Exception):
    """The receiver said no for good (4xx): not retried."""


Message = tuple[Notification, Notice, str]  # a notify block, the notice, and what names the block in warnings


def deliver(messages: list[Message], environment: Mapping[str, str], redactor: Redactor) -> list[str]:
    """Post each notice to every target of its block that wants its event, all at once, each block within
    its `timeout`; returns one warning per target not delivered (never raises for a delivery)."""
    warnings: list[str] = []
    targets: list[tuple[_Target, float]] = []
    start = time.monotonic()
    for spec, notice, owner in messages:
        for number, target in enumerate(spec.targets, start=1):
            # `events: []` switches a target off; only a target without `events:` takes the block's.
            if notice.event not in (target.events if target.events is not None else spec.events):
                continue
            made = _prepare(target, f"{owner} target {number}", notice, environment, redactor)
            if isinstance(made, str):
                warnings.append(made)
            else:
                targets.append((made, start + spec.timeout))
    outcomes: dict[int, str | None] = {}

    def post(index: int, target: _Target, deadline: float) -> None:
        outcomes[index] = _post(target, deadline, deadline - start)

    # Daemon threads: a receiver that never answers cannot keep the process alive past the deadline.
    threads = [
        threading.Thread(target=post, args=(i, t, d), name="pipeline-notify", daemon=True)
        for i, (t, d) in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread, (_, deadline) in zip(threads, targets, strict=True):
        thread.join(max(0.0, deadline - time.monotonic()) + 0.5)
    for index, (request, deadline) in enumerate(targets):
        if index not in outcomes:
            warnings.append(f"{request.label}: not delivered: no answer within {deadline - start:g}s")
        elif outcomes[index] is not None:
            warnings.append(f"{request.label}: not delivered: {outcomes[index]}")
    # Made of numbers, kinds, hosts and status codes; redacted all the same, as everything a run prints is.
    return [redactor.text(warning) for warning in warnings]


def _prepare(
    target: NotifyDestination, label: str, notice: Notice, environment: Mapping[str, str], redactor: Redactor
) -> _Target | str:
    """The request for one target, or why it cannot be sent (a warning)."""
    url = target.url if target.url is not None else environment.get(target.url_env or "", "")
    if not url:
        return f"{label}: not sent: environment variable {target.url_env} is not set"
    problem = notify_url_problem(url, from_environment=target.url is None)
    if problem:
        return f"{label}: not sent: {target.url_env or 'url'}: {problem}"
    label = f"{label} ({target.kind}, {urlsplit(url).hostname})"
    body = json.dumps(redactor.data(BODIES[target.kind](notice)), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"pipeline/{__version__}",
        EVENT_HEADER: notice.event,
    }
    if target.secret_env is not None:
        secret = environment.get(target.secret_env, "")
        if not secret:
            # Unsigned, a receiver that checks signatures would drop it; one that doesn't would trust it.
            return f"{label}: not sent: environment variable {target.secret_env} (secret_env) is not set"
        headers[SIGNATURE_HEADER] = signature(secret.encode(), body)
    return _Target(label, url, body, headers)


def _post(target: _Target, deadline: float, timeout: float) -> str | None:
    """POST with retries until delivered (None), refused, out of attempts or out of time (the reason)."""

    def remaining() -> float:
        return deadline - time.monotonic()

    def wait(state: RetryCallState) -> float:
        return max(0.0, min(POLICY.wait(state), remaining()))

    class out_of_time(stop_base):  # noqa: N801 - tenacity's stop conditions are lower case
        def __call__(self, state: RetryCallState) -> bool:
            return remaining() <= 0.05

    attempts: list[str] = []  # each attempt's failure
    retrying = POLICY.retrying().copy(stop=stop_after_attempt(POLICY.attempts) | out_of_time(), wait=wait)
    try:
        with httpx.Client(follow_redirects=False) as client:
            for attempt in retrying:
                with attempt:
                    try:
                        _attempt(client, target, remaining())
                    except _Failed as exc:
                        attempts.append(str(exc))
                        raise
    except _Failed:
        # A wait cut short by the deadline ends in an attempt with no time left: the one before says more.
        said = [a for a in attempts if a != _NO_TIME] or attempts
        return f"{said[-1]} (gave up after {len(said)} attempt(s) in {timeout:g}s)"
    except _Refused as exc:
        return str(exc)
    return None


def _attempt(client: httpx.Client, target: _Target, remaining: float) -> None:
    if remaining <= 0:
        raise _Failed(_NO_TIME)
    try:
        response = client.post(target.url, content=target.body, headers=target.headers, timeout=remaining)
    except httpx.TimeoutException:
        raise _Failed("no answer in time") from None
    except httpx.HTTPError as exc:
        # The exception's text may hold the URL: only its kind is shown.
        raise _Failed(f"cannot reach the receiver ({type(exc).__name__})") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise _Failed(f"HTTP {response.status_code}", parse_retry_after(response.headers.get("Retry-After")))
    if response.status_code >= 300:
        raise _Refused(f"HTTP {response.status_code} (refused; not retried)")
