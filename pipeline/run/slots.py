"""Build slots per engine (the engines a run builds on, and the `remote` slots of builds that need no
engine, ACR Tasks): an image waiting for a slot takes one on an engine it may use, the most urgent
first; an engine that stops answering gives no more. The image build holds a slot while it builds; the
scheduler only decides the order in which images start."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping

from pipeline.errors import BuildError
from pipeline.plan import Plan

REMOTE = "remote"  # the slots of builds that need no engine (ACR Tasks)


class NoEngineLeft(BuildError):
    pass


class EngineSlots:
    """Build slots per engine. A waiting image takes a free slot on one of the engines it may use
    (the one with the most free slots); when images compete, the most urgent (longest chain of
    dependants) goes first. An engine marked down gives no more slots."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        self._free = dict(limits)
        self._down: set[str] = set()
        self._cond = threading.Condition()
        self._waiting: dict[tuple[int, int], tuple[str, ...]] = {}
        self._tickets = itertools.count()

    def acquire(self, candidates: tuple[str, ...], urgency: int) -> str:
        with self._cond:
            ticket = (-urgency, next(self._tickets))
            self._waiting[ticket] = candidates
            try:
                while True:
                    live = [c for c in candidates if c not in self._down]
                    if not live:
                        raise NoEngineLeft(f"no engine left to build on ({', '.join(candidates)} stopped answering)")
                    free = [c for c in live if self._free[c] > 0]
                    if free and not self._outranked(ticket, set(free)):
                        chosen = max(free, key=lambda c: self._free[c])
                        self._free[chosen] -= 1
                        return chosen
                    self._cond.wait()
            finally:
                del self._waiting[ticket]
                self._cond.notify_all()

    def _outranked(self, ticket: tuple[int, int], free: set[str]) -> bool:
        return any(other < ticket and free.intersection(c) for other, c in self._waiting.items())

    def release(self, engine: str) -> None:
        with self._cond:
            self._free[engine] += 1
            self._cond.notify_all()

    def mark_down(self, engine: str) -> None:
        with self._cond:
            self._down.add(engine)
            self._cond.notify_all()

    def is_down(self, engine: str) -> bool:
        with self._cond:
            return engine in self._down


def urgencies(plan: Plan) -> dict[str, int]:
    """Each image's longest chain of dependants (itself included): the critical path runs through the
    highest numbers, so they are built first when slots are short."""
    dependants: dict[str, list[str]] = {key: [] for key in plan.images}
    for key, image in plan.images.items():
        for dep in image.depends_on:
            dependants[dep].append(key)
    result: dict[str, int] = {}
    for key in reversed(list(plan.images)):  # plan order is a build order: dependants come later
        result[key] = 1 + max((result[d] for d in dependants[key]), default=0)
    return result
