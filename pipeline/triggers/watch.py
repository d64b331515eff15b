"""The polling watcher: fetch, hand each new commit of a branch to the trigger in order, remember the
last one handled (so a restart neither rebuilds nor skips), keep going after failures, stop on SIGTERM.
The state lives under the state directory (not the working tree), one file per repository and branch."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.common.reporting import Reporter
from pipeline.common.urls import strip_credentials
from pipeline.errors import PipelineError, SourceUnavailable, UsageError
from pipeline.triggers.rules import ZERO_SHA
from pipeline.vcs.source import GitSource

HandleCommit = Callable[[str, str], bool]  # (before, after) -> succeeded


def parse_interval(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise UsageError(f"--interval '{text}': expected a duration like 30s, 5m, 1h")
    value = float(match.group(1))
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    if value * factor <= 0:
        raise UsageError("--interval must be positive")
    return value * factor


def state_path(state_dir: Path, repo: str, branch: str) -> Path:
    """Where the watcher of `branch` in `repo` keeps its state: `<state dir>/watch/<branch>-<key>.json`,
    the key a digest of the repository (a local path resolved; a URL without its credentials, so a
    rotated token keeps the state) and the branch, so two watchers never share a file."""
    local = Path(repo).expanduser()
    where = str(local.resolve()) if local.exists() else strip_credentials(repo)
    key = hashlib.sha256(f"{where}\0{branch}".encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9._-]", "-", branch)[:60]
    return state_dir / "watch" / f"{readable}-{key}.json"


def legacy_state_path(cwd: Path, branch: str) -> Path:
    """Where watchers before the state directory kept their state: the current directory."""
    return cwd / f".pipeline-watch-{branch.replace('/', '-')}.json"


@dataclass
class WatchState:
    path: Path
    last: str | None = None
    history: list[dict[str, Any]] | None = None

    @classmethod
    def load(cls, path: Path) -> WatchState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, None, [])
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: unreadable watch state ({exc}); move it away to start over") from None
        return cls(path, data.get("last"), list(data.get("history") or []))

    @classmethod
    def load_or_migrate(cls, path: Path, legacy: Path, reporter: Reporter) -> WatchState:
        """The state at `path`; when there is none yet but a state file in the old place (`legacy`, in the
        working tree, where it made `release` see a dirty tree), that one is moved to `path`, once."""
        if path.exists() or not legacy.is_file():
            return cls.load(path)
        old = cls.load(legacy)
        state = cls(path, old.last, old.history)
        state.save()
        legacy.unlink()
        reporter.say(f"moved the watch state {legacy} to {path} (state now lives under the state directory)")
        return state

    def describe(self, branch: str) -> str:
        """Where a (re)started watcher begins, so a restart is visibly a resumption, not a fresh start."""
        if self.last is not None:
            return f"resuming after {self.last[:12]} (state file {self.path})"
        return f"starting fresh (state file {self.path}): the first poll builds the head of {branch}"

    def record(self, sha: str, ok: bool) -> None:
        """Durably: write a temporary file, then rename over the old state."""
        self.last = sha
        self.history = ([*(self.history or []), {"commit": sha, "ok": ok, "at": time.time()}])[-100:]
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"last": self.last, "history": self.history}, indent=2), encoding="utf-8")
        tmp.replace(self.path)


def stop_on_signals(stopping: threading.Event, log: Reporter) -> None:
    """SIGTERM and SIGINT set `stopping` (said in the log): a watch loop stops after its current step."""

    def stop(signum: int, _frame: object) -> None:
        log.say(f"received {signal.Signals(signum).name}: stopping after the current step")
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


@dataclass(eq=False)
class Watcher:
    source: GitSource
    branch: str
    state: WatchState
    handle: HandleCommit
    reporter: Reporter
    stopping: threading.Event = field(default_factory=threading.Event, init=False)

    @classmethod
    def for_repository(
        cls, repo: str, cache_dir: Path, branch: str, state: WatchState, handle: HandleCommit, reporter: Reporter
    ) -> Watcher:
        """Watch `repo` (a path, or a URL mirrored under `cache_dir`)."""
        return cls(GitSource(repo, cache_dir), branch, state, handle, reporter)

    def install_signal_handlers(self) -> None:
        stop_on_signals(self.stopping, self.reporter)

    def poll(self) -> int:
        """One round: fetch and handle every new commit, oldest first. Returns how many were handled."""
        self.source.fetch()
        head = self.source.resolve(f"refs/heads/{self.branch}")
        if head is None:
            raise SourceUnavailable(f"{self.source.name}: no branch '{self.branch}'")
        if self.state.last is None:
            pending = [head]  # first start: the branch's current commit, compared with its parent
        elif self.source.resolve(self.state.last) is None:
            raise SourceUnavailable(
                f"{self.source.name}: the last handled commit {self.state.last[:12]} is gone (history rewritten?); "
                f"move {self.state.path} away to start over"
            )
        else:
            pending = self.source.commits_between(self.state.last, head)
        handled = 0
        for sha in pending:
            if self.stopping.is_set():
                break
            before = self.state.last if self.state.last else self.source.first_parent(sha)
            since = before[:12] if before != ZERO_SHA else "the start"
            self.reporter.say(f"{self.branch}: building {sha[:12]} (changes since {since})")
            try:
                ok = self.handle(before, sha)
            except PipelineError as exc:
                self.reporter.say(f"{sha[:12]}: {exc}")
                ok = False
            self.state.record(sha, ok)
            self.reporter.say(f"{sha[:12]}: {'succeeded' if ok else 'failed; continuing with the next commit'}")
            handled += 1
        return handled

    def run(self, interval: float, once: bool = False) -> None:
        """Poll until stopped; a failed poll is logged and retried. With `once`, a failed poll is the
        result: raised, so `watch --once` (a cron job's) fails visibly instead of exiting 0."""
        self.reporter.say(self.state.describe(self.branch))
        while not self.stopping.is_set():
            try:
                self.poll()
            except PipelineError as exc:
                if once:
                    raise
                self.reporter.say(f"poll failed: {exc}; retrying in {interval:g}s")
            if once:
                return
            self.stopping.wait(interval)
