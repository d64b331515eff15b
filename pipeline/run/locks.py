"""One run per pipeline at a time on a machine (a git hook and a CI job, say): advisory file locks
keyed by the pipeline's name and repositories, so two checkouts of the same repository share them.
The kernel drops a lock when its process dies, even by SIGKILL, so a crash never leaves one behind."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pipeline.common.reporting import Reporter
from pipeline.plan import Plan


def pipeline_keys(plan: Plan) -> dict[str, str]:
    """Each pipeline of the plan -> a name for it on this machine (its lock, its state directory)."""
    repositories: dict[str, set[str]] = {}
    for image in plan.images.values():
        repositories.setdefault(image.pipeline, set()).add(str(image.repository))
    return {
        name: f"{name}-{hashlib.sha256(' '.join(sorted(repos)).encode()).hexdigest()[:16]}"
        for name, repos in repositories.items()
    }


def lock_keys(plan: Plan) -> list[str]:
    return sorted(pipeline_keys(plan).values())


@contextmanager
def pipeline_locks(plan: Plan, lock_dir: Path, notify: Reporter) -> Iterator[None]:
    """Hold every pipeline's lock (in a fixed order, so two runs cannot deadlock) for the block."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        for key in lock_keys(plan):
            path = lock_dir / f"{key}.lock"
            handle = stack.enter_context(path.open("a+"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                notify.say(f"waiting for the other run of pipeline {key.rsplit('-', 1)[0]} ({holder}) to finish")
                fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}")
            handle.flush()
        yield
