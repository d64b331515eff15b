"""The run queue and run history of `pipeline serve`, in one SQLite file.

Deliveries are remembered by id (a redelivery runs nothing). Runs go queued → running →
succeeded|failed (a run stopped with the server, or left running by a crash, goes back to queued); a
burst of pushes to one ref is coalesced when the worker claims the next run, and
a push in the past of a run already started on its ref (a late delivery) never runs.

A registry notification queues a "base update" run (kind `base`, with the pushed `reference` and its
`digest`): queued updates of one reference become one run (the newest), a push by digest alone (a
hint) is covered by any queued update of its repository, and an update to a digest a run already
started on for that reference is a duplicate.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pipeline.errors import PipelineError
from pipeline.triggers.registry_hooks import BaseUpdate, is_hint, repository_of
from pipeline.triggers.rules import ZERO_SHA
from pipeline.triggers.webhooks import Ignored, Push

RunStatus = Literal["queued", "running", "succeeded", "failed", "superseded"]
RunKind = Literal["push", "base"]  # a git push to `ref`; an upstream base image pushed to `reference`
ACTIVE: tuple[RunStatus, ...] = ("queued", "running")
STARTED: tuple[RunStatus, ...] = ("running", "succeeded", "failed")


class Ancestry(Protocol):
    """What git knows about a ref's commits; "don't know" (a commit not in the repository) is False."""

    def contains(self, tips: Collection[str], commit: str) -> bool:
        """`commit` is one of `tips` or an ancestor of one."""

    def left_behind(self, ref: str, commit: str) -> bool:
        """`ref` has moved to a commit that does not contain `commit` (a force-push left it behind)."""


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
    coalesced     INTEGER NOT NULL DEFAULT 0,
    kind          TEXT NOT NULL DEFAULT 'push',
    reference     TEXT,
    digest        TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, ref, id);
-- Each push as delivered (a run's `before` is rewritten to the start of the range it covers).
CREATE TABLE IF NOT EXISTS links (
    ref    TEXT NOT NULL,
    before TEXT NOT NULL,
    after  TEXT NOT NULL,
    PRIMARY KEY (ref, after, before)
);
"""
# A state database from before `links` existed: the runs' ranges are true links too.
_BACKFILL_LINKS = "INSERT OR IGNORE INTO links (ref, before, after) SELECT ref, before, after FROM runs"
# Columns added since the first release, by `ALTER TABLE` on an older state database (its runs are pushes).
_ADDED_COLUMNS = {
    "kind": "kind TEXT NOT NULL DEFAULT 'push'",
    "reference": "reference TEXT",
    "digest": "digest TEXT",
}
_INDEXES = "CREATE INDEX IF NOT EXISTS runs_by_reference ON runs (kind, reference, status)"


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
    report: str | None  # the JSON report's text, as the run wrote it (secrets redacted)
    log_path: str | None
    superseded_by: int | None
    coalesced: int  # how many superseded runs this one also covers
    kind: RunKind = "push"
    reference: str | None = None  # a base update's image reference (host/repository:tag, or @digest)
    digest: str | None = None  # the digest the notification named for it (None: not said)

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
            fresh = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'links'").fetchone() is None
            self._db.executescript(_SCHEMA)
            if fresh:
                self._db.execute(_BACKFILL_LINKS)
            columns = {row["name"] for row in self._db.execute("PRAGMA table_info(runs)")}
            for name, definition in _ADDED_COLUMNS.items():
                if name not in columns:
                    self._db.execute(f"ALTER TABLE runs ADD COLUMN {definition}")
            self._db.execute(_INDEXES)
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
                "INSERT OR IGNORE INTO links (ref, before, after) VALUES (?, ?, ?)", (push.ref, push.before, push.after)
            )
            db.execute(
                "INSERT INTO deliveries (id, source, received_at, run_id) VALUES (?, ?, ?, ?)",
                (push.delivery_id, push.source, now, run_id),
            )
            return Queued(run_id)

    def enqueue_base(self, update: BaseUpdate, ref: str) -> Queued | Duplicate:
        """A base update, to run on `ref` (the branch the server builds). A delivery seen before, or an
        update to the digest a run on that reference already started on (running or succeeded), is a
        duplicate; after a failed run the same digest runs again."""
        now = time.time()
        with self._transaction() as db:
            seen = db.execute("SELECT run_id FROM deliveries WHERE id = ?", (update.delivery_id,)).fetchone()
            if seen is not None:
                return Duplicate(seen["run_id"])
            done = None
            if update.digest is not None:
                done = db.execute(
                    "SELECT MAX(id) AS id FROM runs WHERE kind = 'base' AND ref = ? AND reference = ? AND digest = ?"
                    " AND status IN ('running', 'succeeded')",
                    (ref, update.reference, update.digest),
                ).fetchone()["id"]
            if done is None:
                cursor = db.execute(
                    "INSERT INTO runs (source, delivery_id, ref, before, after, status, created_at, kind, reference,"
                    " digest) VALUES (?, ?, ?, '', '', 'queued', ?, 'base', ?, ?)",
                    (update.source, update.delivery_id, ref, now, update.reference, update.digest),
                )
            db.execute(
                "INSERT INTO deliveries (id, source, received_at, run_id) VALUES (?, ?, ?, ?)",
                (update.delivery_id, update.source, now, done if done is not None else cursor.lastrowid),
            )
            return Duplicate(done) if done is not None else Queued(int(cursor.lastrowid or 0))

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

    def claim_next(self, ancestry: Ancestry | None = None) -> Run | None:
        """Take the oldest queued run's ref; run only the tip of its queued pushes, covering the others.

        A queued push whose commit is in the past of a run that already started on the ref (a late or
        repeated delivery) never runs: it is superseded by the newest started run. "The past" is what
        the deliveries' before -> after links lead back to (the only order a force-push leaves), plus,
        with `ancestry`, the commits git says those contain, and a commit git says the ref no longer
        reaches (force-pushed away). Of the rest, the run to execute is the one no other queued push
        has in its past; its `before` becomes the chain's first `before`, so the changed range spans
        every coalesced push.
        """
        now = time.time()
        with self._transaction() as db:
            while True:
                first = db.execute(
                    "SELECT id, ref, kind, reference FROM runs WHERE status = 'queued' ORDER BY id LIMIT 1"
                ).fetchone()
                if first is None:
                    return None
                if first["kind"] == "base":
                    return self._claim_base(db, first, now)
                ref = first["ref"]
                links: dict[str, set[str]] = {}
                for link in db.execute(
                    "SELECT before, after FROM links WHERE ref = ? AND before != ?", (ref, ZERO_SHA)
                ):
                    links.setdefault(link["after"], set()).add(link["before"])
                started = db.execute(
                    "SELECT after, MAX(id) AS id FROM runs WHERE kind = 'push' AND ref = ? AND status IN (?, ?, ?)"
                    " GROUP BY after",
                    (ref, *STARTED),
                ).fetchall()
                newest = max((row["id"] for row in started), default=None)
                past = _closure({row["after"] for row in started}, links)
                rows = []
                for row in db.execute(
                    "SELECT id, before, after FROM runs WHERE status = 'queued' AND kind = 'push' AND ref = ?"
                    " ORDER BY id",
                    (ref,),
                ).fetchall():
                    if _stale(row["after"], past, ancestry, ref):
                        # By nothing when nothing started yet (a commit force-pushed away before it ran):
                        # the delivery of the push that moved the ref is still to come.
                        self._supersede(db, row["id"], newest, now)
                    else:
                        rows.append(row)
                if not rows:
                    continue
                tips = [row for row in rows if not _dominated(row, rows, links, ancestry)]
                chosen = tips[-1] if tips else rows[-1]
                afters = {row["after"] for row in rows}
                roots = [row for row in rows if row["before"] not in afters]
                before = roots[0]["before"] if roots else rows[0]["before"]
                for row in rows:
                    if row["id"] != chosen["id"]:
                        self._supersede(db, row["id"], chosen["id"], now)
                db.execute(
                    "UPDATE runs SET status = 'running', started_at = ?, before = ?, coalesced = ? WHERE id = ?",
                    (now, before, len(rows) - 1, chosen["id"]),
                )
                return self._get(db, chosen["id"])

    def _claim_base(self, db: sqlite3.Connection, first: sqlite3.Row, now: float) -> Run:
        """Run the newest queued update of the oldest one's reference, covering the others and every
        queued hint (push by digest) of its repository; a hint first in line gives way to a queued
        update of a tag of its repository, if any."""
        repository = repository_of(first["reference"])
        queued = [
            row
            for row in db.execute(
                "SELECT id, reference FROM runs WHERE status = 'queued' AND kind = 'base' AND ref = ? ORDER BY id",
                (first["ref"],),
            ).fetchall()
            if repository_of(row["reference"]) == repository
        ]
        tagged = [row for row in queued if not is_hint(row["reference"])]
        reference = tagged[0]["reference"] if tagged else first["reference"]
        group = [row for row in queued if row["reference"] == reference or is_hint(row["reference"])]
        # Of hints alone, the newest; else the newest update of the tag.
        chosen = [row for row in group if not tagged or row["reference"] == reference][-1]
        for row in group:
            if row["id"] != chosen["id"]:
                self._supersede(db, row["id"], chosen["id"], now)
        db.execute(
            "UPDATE runs SET status = 'running', started_at = ?, coalesced = ? WHERE id = ?",
            (now, len(group) - 1, chosen["id"]),
        )
        return self._get(db, chosen["id"])

    @staticmethod
    def _supersede(db: sqlite3.Connection, run_id: int, by: int | None, now: float) -> None:
        db.execute(
            "UPDATE runs SET status = 'superseded', superseded_by = ?, finished_at = ? WHERE id = ?", (by, now, run_id)
        )

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

    def requeue(self, run_id: int) -> None:
        """A run stopped before it finished (the server is stopping): queued again, as if never started."""
        with self._transaction() as db:
            db.execute(
                "UPDATE runs SET status = 'queued', started_at = NULL WHERE id = ? AND status = 'running'", (run_id,)
            )

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


def _closure(commits: set[str], links: dict[str, set[str]]) -> set[str]:
    """`commits` and every commit the before -> after links lead back to from them."""
    seen, todo = set(commits), list(commits)
    while todo:
        for before in links.get(todo.pop(), ()):
            if before not in seen:
                seen.add(before)
                todo.append(before)
    return seen


def _stale(commit: str, past: set[str], ancestry: Ancestry | None, ref: str) -> bool:
    if commit in past:
        return True
    if ancestry is None:
        return False
    return bool(past) and ancestry.contains(past, commit) or ancestry.left_behind(ref, commit)


def _dominated(
    row: sqlite3.Row, rows: list[sqlite3.Row], links: dict[str, set[str]], ancestry: Ancestry | None
) -> bool:
    """Another queued push leads past this one's commit (of two deliveries of one commit, the later counts)."""
    if any(other["after"] == row["after"] and other["id"] > row["id"] for other in rows):
        return True
    others = {other["after"] for other in rows} - {row["after"]}
    if not others:
        return False
    if row["after"] in _closure(others, links):
        return True
    return ancestry is not None and ancestry.contains(others, row["after"])


def _run(row: sqlite3.Row) -> Run:
    return Run(**{key: row[key] for key in row.keys()})
