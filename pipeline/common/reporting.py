"""Progress for people: the `Reporter` every layer takes to say what it is doing, and two adapters.
The CLI makes the reporter (its lines go to stderr); the core only calls it.

>>> lines = []
>>> reporter = Forward(lines.append, step=lambda image, step, message: lines.append(f"{image} {step}: {message}"))
>>> reporter.say("resolving bases")
>>> reporter.warn("warning: no engine answered")
>>> reporter.step("app/web", "push", "pushing")
>>> lines
['resolving bases', 'warning: no engine answered', 'app/web push: pushing']
>>> SILENT.say("nobody hears this")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Reporter(Protocol):
    """Where progress goes. Every message is a finished line as the caller words it (a warning starts
    `warning:` where it always did); the reporter decides only where it is shown and how it is framed."""

    def say(self, message: str) -> None:
        """A line about what is happening now."""
        ...

    def warn(self, message: str) -> None:
        """A line about something the user should know, which does not stop the work."""
        ...

    def step(self, image: str, step: str, message: str) -> None:
        """A step of one image's work (`image`: its plan key; "" for the run as a whole): `step` names it
        (build, push, tag, release, ...)."""
        ...


def _drop_line(message: str) -> None:
    return None


def _drop_step(image: str, step: str, message: str) -> None:
    return None


class Forward:
    """A Reporter over plain functions: lines said to `say`, warnings to `warn` (`say` when not given),
    steps to `step`; what has no function is dropped."""

    def __init__(
        self,
        say: Callable[[str], None] = _drop_line,
        *,
        warn: Callable[[str], None] | None = None,
        step: Callable[[str, str, str], None] = _drop_step,
    ) -> None:
        self._say = say
        self._warn = say if warn is None else warn
        self._step = step

    def say(self, message: str) -> None:
        self._say(message)

    def warn(self, message: str) -> None:
        self._warn(message)

    def step(self, image: str, step: str, message: str) -> None:
        self._step(image, step, message)


SILENT: Reporter = Forward()  # says nothing: for callers that want no progress
