"""The run queue and run history of `pipeline serve`, in one SQLite file.

Deliveries are remembered by id (a redelivery runs nothing). Runs go queued → running →
succeeded|failed; a burst of pushes to one ref is coalesced when the worker claims the next run.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import PipelineError
from pipeline.triggers.webhooks import Ignored, Push

RunStatus = Literal["queued", "running", "succeeded", "failed", "superseded"]
ACTIVE: tuple[RunStatus, ...] = ("queued", "running")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    received_at REAL NOT NULL,
    run_id      INTEGER REFERENCES runs(id),
    ignored     TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT NOT NULL,
    delivery_id   TEXT,
    ref           TEXT NOT NULL,
    before        TEXT NOT NULL,
    after         TEXT NOT NULL,
    status        TEXT NOT NULL
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'superseded')),
    created_at    REAL NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    exit_code     INTEGER,
    report        TEXT,
    log_path      TEXT,
    superseded_by INTEGER REFERENCES runs(id),
    coalesced     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, ref, id);
"""


@dataclass(frozen=True)
class Run:
    id: int
    source: str
    delivery_id: str | None
    ref: str
    before: str
    after: str
    status: RunStatus
    created_at: float
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    report: str | None  # the JSON report's text, as the run wrote it (secrets scrubbed)
    log_path: str | None
    superseded_by: int | None
    coalesced: int  # how many superseded runs this one also covers

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def duration(self, now: float | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else (now or time.time())
        return max(0.0, end - self.started_at)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Queued:
    run_id: int


@dataclass(frozen=True)
class Duplicate:
    """The delivery id was seen before; `run_id` is the run it queued then (None if it was ignored)."""

    run_id: int | None


class QueueError(PipelineError):
    """The state database cannot be opened or used."""


class RunQueue:
    """Thread-safe: one connection, one lock (the server's request threads and its worker share it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise QueueError(f"{path}: cannot open the state database: {exc}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def enqueue(self, push: Push) -> Queued | Duplicate:
        now = time.time()
        with self._transaction() as db:
            seen = db.execute("SELECT run_id FROM deliveries WHERE id = ?", (push.delivery_id,)).fetchone()
            if seen is not None:
                return Duplicate(seen["run_id"])
            cursor = db.execute(
                "INSERT INTO runs (source, delivery_id, ref, before, after, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                (push.source, push.delivery_id, push.ref, push.before, push.after, now),
            )
            run_id = int(cursor.lastrowid or 0)
            db.execute(
                "INSERT INTO deliveries (id, source, received_at, run_id) VALUES (?, ?, ?, ?)",
                (push.delivery_id, push.source, now, run_id),
            )
            return Queued(run_id)

    def record_ignored(self, ignored: Ignored) -> Duplicate | None:
        """Remember an ignored delivery too, so its redelivery is reported as a duplicate."""
        with self._transaction() as db:
            seen = db.execute("SELECT run_id FROM deliveries WHERE id = ?", (ignored.delivery_id,)).fetchone()
            if seen is not None:
                return Duplicate(seen["run_id"])
            db.execute(
                "INSERT INTO deliveries (id, source, received_at, ignored) VALUES (?, ?, ?, ?)",
                (ignored.delivery_id, ignored.source, time.time(), ignored.reason),
            )
            return None

    def claim_next(self) -> Run | None:
        """Take the oldest queued run's ref; run only the tip of its queued pushes, covering the others.

        Deliveries may arrive out of order, so the queued pushes of a ref are read as a chain
        (before -> after): the run to execute is the one whose `after` no other queued push builds on,
        and its `before` becomes the chain's first `before`, so the changed range spans every coalesced
        push. Pushes that a run already started from (a late, older delivery) are superseded by it.
        """
        now = time.time()
        with self._transaction() as db:
            while True:
                first = db.execute("SELECT ref FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
                if first is None:
                    return None
                ref = first["ref"]
                queued = db.execute(
                    "SELECT id, before, after FROM runs WHERE status = 'queued' AND ref = ? ORDER BY id", (ref,)
                ).fetchall()
                rows = []
                for row in queued:
                    started = db.execute(
                        "SELECT id FROM runs WHERE ref = ? AND status IN ('running', 'succeeded', 'failed') "
                        "AND before = ? ORDER BY id DESC LIMIT 1",
                        (ref, row["after"]),
                    ).fetchone()
                    if started:  # a late, older delivery: a run already started from its commit
                        db.execute(
                            "UPDATE runs SET status = 'superseded', superseded_by = ?, finished_at = ? WHERE id = ?",
                            (started["id"], now, row["id"]),
                        )
                    else:
                        rows.append(row)
                if not rows:
                    continue
                befores = {row["before"] for row in rows}
                afters = {row["after"] for row in rows}
                tips = [row for row in rows if row["after"] not in befores]
                chosen = tips[-1] if tips else rows[-1]
                roots = [row for row in rows if row["before"] not in afters]
                before = roots[0]["before"] if roots else rows[0]["before"]
                for row in rows:
                    if row["id"] != chosen["id"]:
                        db.execute(
                            "UPDATE runs SET status = 'superseded', superseded_by = ?, finished_at = ? WHERE id = ?",
                            (chosen["id"], now, row["id"]),
                        )
                db.execute(
                    "UPDATE runs SET status = 'running', started_at = ?, before = ?, coalesced = ? WHERE id = ?",
                    (now, before, len(rows) - 1, chosen["id"]),
                )
                return self._get(db, chosen["id"])

    def set_log_path(self, run_id: int, log_path: Path) -> None:
        with self._transaction() as db:
            db.execute("UPDATE runs SET log_path = ? WHERE id = ?", (str(log_path), run_id))

    def finish(self, run_id: int, exit_code: int | None, report: str | None) -> Run:
        status: RunStatus = "succeeded" if exit_code == 0 else "failed"
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, exit_code = ?, report = ? WHERE id = ?",
                (status, time.time(), exit_code, report, run_id),
            )
            return self._get(db, run_id)

    def requeue_interrupted(self) -> list[int]:
        """Runs left `running` by a server that died: queue them again (nothing pushed is skipped)."""
        with self._transaction() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM runs WHERE status = 'running'").fetchall()]
            db.execute("UPDATE runs SET status = 'queued', started_at = NULL WHERE status = 'running'")
            return ids

    def get(self, run_id: int) -> Run | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run(row) if row else None

    def recent(self, limit: int = 50) -> list[Run]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_run(row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) AS n FROM runs GROUP BY status").fetchall()
        found = {row["status"]: int(row["n"]) for row in rows}
        return {status: found.get(status, 0) for status in ("queued", "running", "succeeded", "failed", "superseded")}

    @staticmethod
    def _get(db: sqlite3.Connection, run_id: int) -> Run:
        return _run(db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())


def _run(row: sqlite3.Row) -> Run:
    return Run(**{key: row[key] for key in row.keys()})
