"""The one retry policy for every registry operation: pipeline's own HTTP requests, the ACR token
exchange and the engine's pushes. docs/registries.md and docs/guarantees.md states these
numbers; tests/unit/registry/test_retry_policy.py holds the two to each other.

    for attempt in POLICY.retrying(lambda exc: isinstance(exc, Transient)):
        with attempt:
            do_the_request()
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

ATTEMPTS = 5  # in all, the first included
RETRY_AFTER_CAP = 30.0  # seconds: a server asking for longer gets this much, then the next attempt
BACKOFF_INITIAL = 0.25  # seconds before the 2nd attempt, doubling after (plus jitter), up to BACKOFF_MAX
BACKOFF_MAX = 8.0
BACKOFF_JITTER = 0.25


class Transient(Exception):
    """A failure worth another attempt (5xx, 429, a dropped connection); `retry_after` is the server's
    hint in seconds, when it gave one."""

    retry_after: float | None = None


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds to wait, capped; None if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, RETRY_AFTER_CAP))


# Engines do not forward the registry's header, but an error text may carry the hint ("retry after 2s").
_HINT_IN_TEXT = re.compile(r"retry[- ]after[\s:=]*(\d+(?:\.\d+)?)", re.IGNORECASE)


def retry_after_in_text(message: str) -> float | None:
    match = _HINT_IN_TEXT.search(message)
    return parse_retry_after(match.group(1)) if match else None


class RetryPolicy:
    """Attempts, backoff and the Retry-After rule, declared once. `sleep` is the seam tests replace to
    record the waits (tenacity's sleep hook) instead of sleeping."""

    def __init__(self) -> None:
        self.attempts = ATTEMPTS
        self.retry_after_cap = RETRY_AFTER_CAP
        self.sleep: Callable[[float], None] = time.sleep
        self._backoff = wait_exponential_jitter(multiplier=BACKOFF_INITIAL, max=BACKOFF_MAX, jitter=BACKOFF_JITTER)

    def wait(self, state: RetryCallState) -> float:
        """The server's hint when it gave one, else exponential backoff with jitter."""
        exc = state.outcome.exception() if state.outcome else None
        hinted = exc.retry_after if isinstance(exc, Transient) else None
        return hinted if hinted is not None else float(self._backoff(state))

    def retrying(
        self,
        worth_retrying: Callable[[BaseException], bool] = lambda exc: isinstance(exc, Transient),
        before_sleep: Callable[[RetryCallState], None] | None = None,
    ) -> Retrying:
        """A fresh tenacity controller (usable as a decorator or an attempt loop); re-raises the last error."""
        return Retrying(
            retry=retry_if_exception(worth_retrying),
            wait=self.wait,
            stop=stop_after_attempt(self.attempts),
            sleep=lambda seconds: self.sleep(seconds),  # looked up per wait, so a replaced hook takes effect
            before_sleep=before_sleep,
            reraise=True,
        )


POLICY = RetryPolicy()
