"""`watch --bases`: poll the digests of the base images a branch's pipelines use and hand each reference
that moved since the last poll to the base trigger. The digests last handled are kept under the state
directory (one file per repository and branch, beside the commit watcher's), so a restart neither
rebuilds nor misses a move; a reference whose builds failed is tried again at the next poll."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.common.reporting import Reporter
from pipeline.common.retry import retry_after_in_text
from pipeline.errors import PipelineError, UsageError
from pipeline.files import write_text
from pipeline.triggers.watch import state_path, stop_on_signals

CurrentDigests = Callable[[], dict[str, str]]  # reference -> the digest it points at now
HandleMoves = Callable[[list[str]], bool]  # the references that moved -> every build succeeded


def bases_state_path(state_dir: Path, repo: str, branch: str) -> Path:
    """`<state dir>/watch/bases-<branch>-<key>.json`: apart from the commit watcher's state of the branch."""
    return state_path(state_dir, repo, f"bases-{branch}")


@dataclass
class BaseWatchState:
    path: Path
    digests: dict[str, str] = field(default_factory=dict)  # reference -> the digest last handled

    @classmethod
    def load(cls, path: Path) -> BaseWatchState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: unreadable watch state ({exc}); move it away to start over") from None
        digests = data.get("bases") if isinstance(data, dict) else None
        if not isinstance(digests, dict):
            raise UsageError(f"{path}: not a base watch state (key 'bases'); move it away to start over")
        return cls(path, {str(k): str(v) for k, v in digests.items()})

    def save(self) -> None:
        write_text(self.path, json.dumps({"bases": dict(sorted(self.digests.items()))}, indent=2) + "\n", "watch state")


class BaseWatcher:
    def __init__(self, current: CurrentDigests, handle: HandleMoves, state: BaseWatchState, reporter: Reporter) -> None:
        self.current = current
        self.handle = handle
        self.state = state
        self.reporter = reporter
        self.stopping = threading.Event()

    def install_signal_handlers(self) -> None:
        stop_on_signals(self.stopping, self.reporter)

    def poll(self) -> list[str]:
        """One round: the digests now, and the references that moved handed on. Returns those references."""
        now = self.current()
        moved = [reference for reference, digest in sorted(now.items()) if self.state.digests.get(reference) != digest]
        if not moved:
            self.reporter.say(f"no base moved ({len(now)} watched)")
            return []
        for reference in moved:
            before = self.state.digests.get(reference)
            self.reporter.say(f"{reference}: {before or '(first poll)'} → {now[reference]}")
        try:
            ok = self.handle(moved)
        except PipelineError as exc:
            self.reporter.say(f"base update: {exc}")
            ok = False
        if ok:
            self.state.digests.update({reference: now[reference] for reference in moved})
            self.state.save()
        else:
            self.reporter.say("base update: a build failed; the moved bases are tried again at the next poll")
        return moved

    def run(self, interval: float, once: bool = False) -> None:
        """Poll until stopped; a failed poll is logged and retried (after the registry's Retry-After when its
        error names one and that is longer). With `once`, a failed poll is raised."""
        known = len(self.state.digests)
        self.reporter.say(f"state file {self.state.path}: {known} base digest(s) known" if known else "starting fresh")
        while not self.stopping.is_set():
            wait = interval
            try:
                self.poll()
            except PipelineError as exc:
                if once:
                    raise
                wait = max(interval, retry_after_in_text(str(exc)) or 0.0)
                self.reporter.say(f"poll failed: {exc}; retrying in {wait:g}s")
            if once:
                return
            self.stopping.wait(wait)
