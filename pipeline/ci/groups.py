"""Each image's progress lines folded into one log group. Images build in parallel and groups can neither
nest nor interleave, so an image's lines are held back and printed as one group when it finishes."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.ci.commands import GroupSyntax


class GroupedLines:
    """Which lines to print now, per event: `start` prints its line at once (the log shows the image is
    building) and opens the image's group; `add` holds lines back; `finish` prints the whole group."""

    def __init__(self, syntax: GroupSyntax) -> None:
        self.syntax = syntax
        self._held: dict[str, list[str]] = {}

    def start(self, image: str, line: str) -> list[str]:
        self._held[image] = [line]
        return [line]

    def add(self, image: str, lines: Sequence[str]) -> list[str]:
        """Held back while `image` is open; printed at once otherwise (a run's tag moves after the builds)."""
        if image in self._held:
            self._held[image].extend(lines)
            return []
        return list(lines)

    def finish(self, image: str, title: str, lines: Sequence[str], shown: Sequence[str] = ()) -> list[str]:
        """The group of `image` with `lines` last, then `shown` outside it (a failure stays visible when the
        group is folded). An image that never started (skipped) gets no group."""
        held = self._held.pop(image, None)
        if held is None:
            return [*lines, *shown]
        return [self.syntax.open(title), *held, *lines, self.syntax.end, *shown]
