"""Each image's progress lines folded into one log group. Images build in parallel and groups can neither
nest nor interleave, so an image's lines are held back and printed as one group when it finishes; lines
held for long (a slow or hung build) are printed before then, as a group of their own, and on an interrupt
or SIGTERM every open image's lines are (`close_open_groups`)."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence

from pipeline.ci.commands import Command, GroupSyntax

Line = str | Command  # text, or one of pipeline's own commands (a group's start and end)

FLUSH_AFTER_SECONDS = 60.0  # held lines this old are printed as a "running" group
FLUSH_AFTER_LINES = 500  # and so are this many (`--progress plain` is not grouped, but a step may be chatty)


class GroupedLines:
    """Which lines to print now, per event: `start` prints its line at once (the log shows the image is
    building) and opens the image's group; `add` holds lines back; `finish` prints the whole group."""

    def __init__(
        self,
        syntax: GroupSyntax,
        flush_after: float = FLUSH_AFTER_SECONDS,
        max_held: int = FLUSH_AFTER_LINES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.syntax = syntax
        self.flush_after = flush_after
        self.max_held = max_held
        self.clock = clock
        self._held: dict[str, list[str]] = {}
        self._since: dict[str, float] = {}  # when the oldest held line of an image came

    def start(self, image: str, line: str) -> list[Line]:
        self._held[image] = []
        return [line]

    def add(self, image: str, lines: Sequence[str]) -> list[Line]:
        """Held back while `image` is open; printed at once otherwise (a run's tag moves after the builds)."""
        if image not in self._held:
            return list(lines)
        held = self._held[image]
        if lines and not held:
            self._since[image] = self.clock()
        held.extend(lines)
        return self._part(image) if len(held) >= self.max_held else self.due()

    def due(self) -> list[Line]:
        """The held lines of every image whose oldest one waited `flush_after` seconds, a group per image
        titled "<image> running"; the image's group stays open for what comes next."""
        now = self.clock()
        stale = [i for i, held in self._held.items() if held and now - self._since[i] >= self.flush_after]
        return [line for image in stale for line in self._part(image)]

    def _part(self, image: str) -> list[Line]:
        held, self._held[image] = self._held[image], []
        return [self.syntax.open(f"{image} running"), *held, self.syntax.close()]

    def finish(self, image: str, title: str, lines: Sequence[str], shown: Sequence[str] = ()) -> list[Line]:
        """The group of `image` with `lines` last, then `shown` outside it (a failure stays visible when the
        group is folded). An image that never started (skipped) gets no group."""
        held = self._held.pop(image, None)
        if held is None:
            return [*lines, *shown]
        return [self.syntax.open(title), *held, *lines, self.syntax.close(), *shown]

    def close_all(self, reason: str) -> list[Line]:
        """Every open image's group, titled "<image> <reason>" (interrupted, terminated), held lines and all."""
        images, self._held = self._held, {}
        lines: list[Line] = []
        for image, held in images.items():
            lines += [self.syntax.open(f"{image} {reason}"), *held, self.syntax.close()]
        return lines


# Printers with open groups, asked to print them when the process is interrupted (the CLI's main).
_closers: list[weakref.WeakMethod[Callable[[str], None]]] = []


def on_interrupt(close: Callable[[str], None]) -> None:
    """`close(reason)` is called by `close_open_groups`; `close` is a bound method, held weakly."""
    _closers.append(weakref.WeakMethod(close))


def close_open_groups(reason: str) -> None:
    for ref in list(_closers):
        close = ref()
        if close is not None:
            close(reason)
