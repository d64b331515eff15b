"""The worker of `pipeline serve`: one thread that executes queued runs one at a time.

Each run is a subprocess (by default `pipeline trigger` for the run's range) whose output is copied,
secrets redacted, into `<state-dir>/runs/<id>/log.txt`; its JSON report is kept in the queue.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline.common.reporting import Reporter
from pipeline.errors import PipelineError
from pipeline.notify.runurl import RUN_URL_VARIABLE
from pipeline.redaction import Redactor
from pipeline.triggers.queue import Run, RunQueue
from pipeline.vcs.source import GitSource

DEFAULT_COMMAND = (sys.executable, "-m", "pipeline", "trigger")
_KILL_GRACE = 10.0


def log_redactor(
    environment: Mapping[str, str],
    webhook_secret: str | None,
    docker_config: Path,
    registry_secrets: Collection[str] = (),
) -> Redactor:
    """What serve hides in its own log and the runs' logs, reports and pages: the webhook secret, the
    registry notifications' secrets (Docker Hub's is in the URLs it posts to), every variable named like
    a secret and the docker config's credentials (and their base64 forms); a run hides its own build
    secrets before it prints them (pipeline.run.redacting), as serve does not read the runs' config."""
    values = [secret for secret in (webhook_secret, *registry_secrets) if secret]
    return Redactor.for_run(environment, docker_config=docker_config, values=values)


@dataclass(frozen=True)
class WorkerSettings:
    repo: str
    runs_dir: Path
    config: str | None = None  # -f, a path inside the repository
    command: tuple[str, ...] = DEFAULT_COMMAND
    env: Mapping[str, str] | None = None  # the runs' environment (default: ours)
    stop_timeout: float = 60.0  # on shutdown, how long the current run may still take
    cache_dir: Path | None = None  # where a URL repository is mirrored to judge ancestry (None: not judged)
    public_url: str | None = None  # the status page's address for people (--public-url; None: where it listens)


class RepoAncestry:
    """The queue's `Ancestry` from the repository the runs build, opened on first use.

    Anything git cannot answer (no repository, a commit not fetched) is "not known", so the queue
    falls back on the deliveries' own before -> after links; a failed fetch is logged, never fatal.
    """

    def __init__(self, repo: str, cache_dir: Path | None, log: Reporter) -> None:
        self.repo = repo
        self.cache_dir = cache_dir
        self.log = log
        self._source: GitSource | None = None
        self._warned = False
        self._fresh = False
        # Answers for one claim, which asks the same questions several times; dropped at each refresh
        # so that a server running for months does not keep every question it ever asked.
        self._known: dict[tuple[frozenset[str], str], bool] = {}
        self._heads: dict[str, str | None] = {}

    def refresh(self) -> None:
        """Fetch a mirrored repository, so the refs are at least as new as any delivery received."""
        self._fresh = False
        self._known.clear()
        self._heads.clear()
        try:
            if self._source is None:
                if self.cache_dir is None and not Path(self.repo).exists():
                    raise PipelineError(f"{self.repo}: no mirror directory")
                self._source = GitSource(self.repo, self.cache_dir or Path("."))  # a local path is read in place
            self._source.fetch()
            self._fresh = True
        except PipelineError as exc:
            if not self._warned:  # tried again before each claim (a clone may fail for a while)
                self._warned = True
                judged = "by their before/after links only" if self._source is None else "without the branch's head"
                self.log.warn(f"warning: {exc}; late deliveries are judged {judged} until git answers")

    def contains(self, tips: Collection[str], commit: str) -> bool:
        return self._answer(tips, commit) is True

    def _answer(self, tips: Collection[str], commit: str) -> bool | None:
        if self._source is None:
            return None
        key = (frozenset(tips), commit)
        if key not in self._known:
            answer = self._source.contains(tips, commit)
            if answer is None:  # not fetched (yet): ask again next time
                return None
            self._known[key] = answer
        return self._known[key]

    def left_behind(self, ref: str, commit: str) -> bool:
        # Only right after a fetch: a stale mirror's head would leave the newest push behind.
        if self._source is None or not self._fresh:
            return False
        if ref not in self._heads:
            self._heads[ref] = self._source.resolve(ref)
        head = self._heads[ref]
        if head is None:
            return False
        return self._answer([head], commit) is False


def run_argv(settings: WorkerSettings, run: Run, report: Path) -> list[str]:
    """A push's range, or a base update's reference on the branch's tip (`pipeline trigger --base`)."""
    argv = [*settings.command, "--repo", settings.repo, "--ref", run.ref]
    if run.kind == "base":
        argv += ["--base", run.reference or "", "--report", str(report)]
    else:
        argv += ["--before", run.before, "--after", run.after, "--report", str(report)]
    if settings.config:
        argv += ["-f", settings.config]
    return argv


def describe(run: Run, short: bool = False) -> str:
    """What a run builds, for the log: `ref before..after`, or `base update REFERENCE (digest) on ref`."""
    if run.kind == "base":
        digest = (run.digest or "digest not given")[: 19 if short else None]
        return f"base update {run.reference} ({digest}) on {run.ref}"
    if short:
        return f"{run.ref} {run.before[:12]}..{run.after[:12]}"
    return f"{run.ref} {run.before}..{run.after}"


class Worker(threading.Thread):
    def __init__(self, queue: RunQueue, settings: WorkerSettings, redactor: Redactor, log: Reporter) -> None:
        super().__init__(name="pipeline-serve-worker", daemon=True)
        self.queue = queue
        self.ancestry = RepoAncestry(settings.repo, settings.cache_dir, log)
        self.settings = settings
        self.redactor = redactor
        self.log = log
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stop_deadline = 0.0
        self._log_lock = threading.Lock()  # the output copier and the stop path both write the log
        self.page_url: str | None = settings.public_url  # the service sets where it listens, once it does

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Take no new run; the current one may finish within stop_timeout, then it is terminated."""
        self._stop_deadline = time.monotonic() + self.settings.stop_timeout
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            if self.queue.counts()["queued"]:
                self.ancestry.refresh()  # outside the queue's lock: a fetch may take a while
            run = self.queue.claim_next(self.ancestry)
            if run is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            self._execute(run)

    def _execute(self, run: Run) -> None:
        run_dir = self.settings.runs_dir / str(run.id)
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path, report_path = run_dir / "log.txt", run_dir / "report.json"
        report_path.unlink(missing_ok=True)  # a run requeued after a crash starts afresh
        self.queue.set_log_path(run.id, log_path)
        argv = run_argv(self.settings, run, report_path)
        covers = f", covering {run.coalesced} superseded push(es)" if run.coalesced else ""
        self.log.say(f"run {run.id} started: {describe(run, short=True)}{covers}")
        with log_path.open("w", encoding="utf-8") as log:
            log.write(self.redactor.text(f"# run {run.id}: {describe(run)}{covers}\n"))
            log.write(self.redactor.text(f"$ {shlex.join(argv)}\n"))
            log.flush()
            code, stopped = self._spawn_and_wait(argv, log, run.id)
            if stopped:
                log.write(f"\n# exit code {code}: stopped with the server; queued again for its next start\n")
            else:
                log.write(f"\n# exit code {code}\n" if code is not None else "\n# the command did not run\n")
        if stopped:
            # Not the commit's failure: the delivery must still be built. Queued again, as a run left
            # `running` by a crash is on the next start (a redelivery is a duplicate of this run).
            self.queue.requeue(run.id)
            self.log.say(f"run {run.id} stopped with the server (exit {code}): queued again for the next start")
            return
        finished = self.queue.finish(run.id, code, self._read_report(report_path))
        self.log.say(f"run {run.id} {finished.status} (exit {code}) in {finished.duration() or 0:.1f}s")

    def _spawn_and_wait(self, argv: list[str], log: IO[str], run_id: int) -> tuple[int | None, bool]:
        """The run's exit code (None: it did not start), and whether it was stopped because the server is."""
        env = dict(self.settings.env if self.settings.env is not None else os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # so the log fills while the run goes on
        if self.page_url:  # the run's notifications link to its page here
            env[RUN_URL_VARIABLE] = f"{self.page_url.rstrip('/')}/runs/{run_id}"
        try:
            # A session of its own: a Ctrl-C at the server's terminal reaches the server, which decides.
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            log.write(f"cannot start {argv[0]}: {exc.strerror or exc}\n")
            return None, False
        assert proc.stdout is not None
        copier = threading.Thread(target=self._copy, args=(proc.stdout, log), daemon=True)
        copier.start()
        code, stopped = self._wait(proc, log)
        copier.join(timeout=10)
        return code, stopped

    def _copy(self, source: IO[str], log: IO[str]) -> None:
        stream = self.redactor.stream()  # the run's output, a line at a time
        for line in source:
            with self._log_lock:
                log.write(stream.text(line))
                log.flush()

    def _wait(self, proc: subprocess.Popen[str], log: IO[str]) -> tuple[int, bool]:
        """The exit code, and True when the run was terminated because the server is stopping."""
        while True:
            try:
                return proc.wait(timeout=0.5), False
            except subprocess.TimeoutExpired:
                pass
            if self._stopping.is_set() and time.monotonic() >= self._stop_deadline:
                break
        self.log.say(f"terminating pid {proc.pid}: the server is stopping and the run did not finish in time")
        with self._log_lock:
            log.write("\n# terminated: the server stopped before this run finished\n")
        for sig, grace in ((signal.SIGTERM, _KILL_GRACE), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                return proc.wait(timeout=grace), True
            except subprocess.TimeoutExpired:
                continue
        return proc.wait(), True

    def _read_report(self, path: Path) -> str | None:
        try:
            text = self.redactor.text(path.read_text(encoding="utf-8"))
        except OSError:
            return None
        try:
            json.loads(text)
        except json.JSONDecodeError:
            return None
        path.write_text(text, encoding="utf-8")
        return text
