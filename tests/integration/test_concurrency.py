"""Two runs of one pipeline at once, and a burst of webhook deliveries.

Order is decided by observable state (the lock file, the kernel's table of locks in /proc/locks, the
commands a fake run recorded, the queue's counts) and enforced with SIGSTOP/SIGCONT or the fake command's
hold file, never by sleeping; helper threads only collect, every assertion runs in the test's own thread.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from tests.helpers import init_git, shop_project
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_serve import FAKE_TRIGGER, serve_factory  # noqa: F401 - the fixture

BURST_BRANCHES, PUSHES_PER_BRANCH = 20, 10
_POLL = 0.01  # how often a wait re-reads the state it waits for (the state decides, not this)


class Cli:
    """`python -m pipeline ARGS` in the background, its output in files the test can read meanwhile."""

    def __init__(self, name: str, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.out_path, self.err_path = cwd / f"{name}.stdout", cwd / f"{name}.stderr"
        self._files: list[IO[str]] = [self.out_path.open("w"), self.err_path.open("w")]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env, stdout=self._files[0], stderr=self._files[1]
        )

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        """Exit code, stdout and stderr."""
        code = self.proc.wait(timeout=timeout)
        for f in self._files:
            f.close()
        return code, self.out_path.read_text(), self.stderr

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in self._files:
            f.close()


def wait_until(condition: Callable[[], bool], what: str, *alive: Cli, timeout: float = 120) -> None:
    """Poll until `condition` holds; fail at once if one of `alive` exits first (it cannot come true then)."""
    deadline = time.monotonic() + timeout
    while not condition():
        for cli in alive:
            assert cli.proc.poll() is None, f"waiting for {what}: pid {cli.proc.pid} exited:\n{cli.stderr}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(_POLL)


def lock_is_held(path: Path) -> bool:
    """The kernel's answer: does a process hold the flock on `path`? (Taken and released at once if free.)"""
    with path.open("r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def lock_file(lock_dir: Path) -> Path | None:
    files = list(lock_dir.glob("shop-*.lock")) if lock_dir.is_dir() else []
    assert len(files) <= 1, files
    return files[0] if files else None


def holds_lock(lock_dir: Path, pid: int) -> bool:
    """The holder writes `pid N` into the lock file only after it got the lock, and the lock is still taken."""
    path = lock_file(lock_dir)
    return path is not None and path.read_text().strip() == f"pid {pid}" and lock_is_held(path)


def queued_for_lock(lock_dir: Path, pid: int) -> bool:
    """The kernel's table of locks shows `pid` blocked (`->`) behind the holder of the lock file's flock."""
    path = lock_file(lock_dir)
    if path is None:
        return False
    inode = str(path.stat().st_ino)
    for line in Path("/proc/locks").read_text().splitlines():
        # "3: -> FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF"
        fields = line.split()
        if fields[1:3] == ["->", "FLOCK"] and fields[5] == str(pid) and fields[6].rsplit(":", 1)[-1] == inode:
            return True
    return False


def registry_snapshot(peek: RegistryPeek, repositories: list[str]) -> dict[str, dict[str, str | None]]:
    """Every tag (the input cache's too) of each repository, with the digest it names."""
    tags = [(repo, tag) for repo in repositories for tag in sorted(peek.all_tags(repo))]
    with ThreadPoolExecutor(max_workers=8) as pool:  # the threads only read; the caller compares
        digests = list(pool.map(lambda rt: peek.digest(*rt), tags))
    snapshot: dict[str, dict[str, str | None]] = {repo: {} for repo in repositories}
    for (repo, tag), digest in zip(tags, digests, strict=True):
        snapshot[repo][tag] = digest
    return snapshot


@contextmanager
def stopped(cli: Cli) -> Iterator[None]:
    """SIGSTOP for the block: the process keeps its locks and does nothing until SIGCONT."""
    cli.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        cli.proc.send_signal(signal.SIGCONT)


def _when(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def test_two_runs_at_once_end_as_one_run_would(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop_project(
        tmp_path,
        f"{services.plain_registry}/{namespace}",
        sign=False,
        images=("base", "app"),
        # Its labels name this commit and repository, so the first run really builds (for seconds)
        # while it holds the lock: time for the test to see that and stop it there.
        app_dockerfile="ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo app > /app\n",
    )
    init_git(tmp_path)
    # A lock directory of its own, so the only lock file in it is this pipeline's.
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path / "runtime")}
    lock_dir = tmp_path / "runtime" / "pipeline" / "locks"
    args = ["run", "--version", "1.0.0", "--json"]
    repositories = [f"{namespace}/base", f"{namespace}/app"]

    first = Cli("first", args, tmp_path, env)
    second: Cli | None = None
    try:
        wait_until(lambda: holds_lock(lock_dir, first.proc.pid), "the first run to hold the pipeline lock", first)
        with stopped(first):
            # Stopped, it keeps the lock for as long as the second needs to reach it: no race on timing.
            assert holds_lock(lock_dir, first.proc.pid), "the first run finished before it could be stopped"
            second = late = Cli("second", args, tmp_path, env)
            # Blocked in the kernel on the first's lock (or gone, which the assertions below report).
            wait_until(
                lambda: queued_for_lock(lock_dir, late.proc.pid) or late.proc.poll() is not None,
                "the second run to queue for the lock",
            )
            still_running = late.proc.poll() is None
            if still_running:
                late.proc.send_signal(signal.SIGSTOP)  # out of the lock's queue until SIGCONT: the registry can be read
        code1, out1, err1 = first.finish()
        before_second = registry_snapshot(plain_peek, repositories)
        if still_running:
            late.proc.send_signal(signal.SIGCONT)
        code2, out2, err2 = late.finish()
        after_second = registry_snapshot(plain_peek, repositories)
    finally:
        for cli in (first, second):
            if cli is not None:
                cli.stop()

    assert still_running, f"the second run ended while the first held the lock:\n{err2}"
    assert code1 == 0, err1
    assert code2 == 0, err2
    one, two = json.loads(out1), json.loads(out2)
    assert "waiting for the other run" not in err1
    # It found the lock taken, and said who holds it.
    assert f"waiting for the other run of pipeline shop (pid {first.proc.pid})" in err2, err2
    # It waited: its first image started only after the first run's last image had finished.
    first_done = max(_when(image["finished_at"]) for image in one["images"])
    second_started = min(_when(image["started_at"]) for image in two["images"])
    assert second_started >= first_done, f"second started {second_started}, first finished {first_done}"
    # It found the first's images and built nothing.
    assert [(i["name"], i["reused"], i["build_started_at"]) for i in two["images"]] == [
        (i["name"], True, None) for i in one["images"]
    ]
    assert [i["digest"] for i in two["images"]] == [i["digest"] for i in one["images"]]
    assert {c["action"] for c in two["tag_changes"]} == {"unchanged"}
    # The registry as the first left it, and the second changed nothing in it.
    for image in one["images"]:
        tags = before_second[f"{namespace}/{image['name']}"]
        assert {"1.0.0", "1.0", "1", "latest"} <= tags.keys()
        assert set(tags.values()) == {image["digest"]}, tags
    assert after_second == before_second


def test_webhook_burst_while_the_worker_is_busy_runs_each_branch_once(
    tmp_path: Path,
    serve_factory: Any,  # noqa: F811
) -> None:
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    (fake_dir / "trigger.py").write_text(FAKE_TRIGGER)
    (fake_dir / "hold").touch()  # the fake command stays in its run while this file exists
    calls = fake_dir / "calls.jsonl"
    server = serve_factory(tmp_path, ["--command", f"{sys.executable} {fake_dir / 'trigger.py'}"])

    def commit(branch: int, n: int) -> str:
        return f"{branch:02x}{n:038x}"

    def commands_run() -> list[dict[str, str]]:
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    # The worker is busy before the burst: a run that is inside the command and held there.
    blocker = server.github_push("refs/heads/blocker", commit(0xFF, 0), commit(0xFF, 1), delivery="blocker")
    assert blocker.status_code == 202, blocker.text
    wait_until(lambda: len(commands_run()) == 1, "the blocking run to start its command")

    deliveries = [
        (f"refs/heads/b{branch}", commit(branch, n), commit(branch, n + 1), f"burst-{branch}-{n}")
        for n in range(PUSHES_PER_BRANCH)
        for branch in range(BURST_BRANCHES)
    ]
    probes: list[tuple[int | str, float]] = []  # (status code or error, seconds); only the prober appends
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                outcome: int | str = server.http.get("/healthz").status_code
            except Exception as exc:  # noqa: BLE001 - recorded, judged by the test's thread
                outcome = repr(exc)
            probes.append((outcome, time.monotonic() - started))
            stop.wait(0.05)  # pacing only

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda d: server.github_push(d[0], d[1], d[2], delivery=d[3]), deliveries))
        while_busy = server.http.get("/healthz").json()
        (fake_dir / "hold").unlink()
        deadline = time.monotonic() + 300
        while (health := server.http.get("/healthz").json())["queued"] or health["running"]:
            assert time.monotonic() < deadline, health
            time.sleep(0.1)
    finally:
        stop.set()
        prober.join()

    assert [a.status_code for a in answers] == [202] * len(deliveries)
    # Every delivery of the burst was queued while the blocking run held the worker.
    assert while_busy == {"ok": True, "queued": len(deliveries), "running": 1}
    runs = server.http.get("/api/runs", params={"limit": 1000}).json()["runs"]
    assert len(runs) == len(deliveries) + 1  # none lost
    assert {r["delivery_id"] for r in runs} == {"github:blocker"} | {f"github:{d[3]}" for d in deliveries}
    executed = [r for r in runs if r["status"] != "superseded"]
    assert {r["status"] for r in executed} == {"succeeded"}
    by_ref = {r["ref"]: r for r in executed}
    assert (
        sorted(r["ref"] for r in executed)
        == sorted(by_ref)
        == sorted(["refs/heads/blocker"] + [f"refs/heads/b{branch}" for branch in range(BURST_BRANCHES)])
    ), "one run per branch"
    for branch in range(BURST_BRANCHES):
        run = by_ref[f"refs/heads/b{branch}"]
        # The newest commit, over the whole pushed range, covering every other push of the branch.
        expected = (commit(branch, 0), commit(branch, PUSHES_PER_BRANCH), PUSHES_PER_BRANCH - 1)
        assert (run["before"], run["after"], run["coalesced"]) == expected, run
        covered = [r for r in runs if r["ref"] == run["ref"] and r["status"] == "superseded"]
        assert {r["superseded_by"] for r in covered} == {run["id"]} and len(covered) == PUSHES_PER_BRANCH - 1
    # And the command ran exactly that: the blocker, then once per branch for its newest commit.
    ran = [(c["--ref"], c["--before"], c["--after"]) for c in commands_run()]
    assert ran[0] == ("refs/heads/blocker", commit(0xFF, 0), commit(0xFF, 1))
    assert sorted(ran[1:]) == sorted(
        (f"refs/heads/b{b}", commit(b, 0), commit(b, PUSHES_PER_BRANCH)) for b in range(BURST_BRANCHES)
    )

    failed = [outcome for outcome, _ in probes if outcome != 200]
    assert probes and not failed, f"/healthz failed during the burst: {failed[:5]}"
    slowest = max(seconds for _, seconds in probes)
    assert slowest < 5.0, f"/healthz took up to {slowest:.2f} s during the burst"
    print(
        f"\nburst: {len(deliveries)} deliveries, {len(executed)} runs executed, "
        f"/healthz max {slowest * 1000:.0f} ms over {len(probes)} probes"
    )
