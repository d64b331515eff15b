"""`pipeline serve`'s queue for base updates: deduplicated by event id and by reference+digest once run,
coalesced per reference (hints by digest per repository), apart from git pushes; an older state
database gains the new columns; the worker's command line for such a run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipeline.triggers.queue import Duplicate, Queued, RunQueue
from pipeline.triggers.registry_hooks import BaseUpdate
from pipeline.triggers.statuspage import run_json, run_page
from pipeline.triggers.webhooks import Push
from pipeline.triggers.worker import WorkerSettings, run_argv

MAIN = "refs/heads/main"
BASE = "127.0.0.1:5010/upstream/base"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def update(n: int, reference: str = f"{BASE}:1", event: str | None = None, digest_n: int | None = None) -> BaseUpdate:
    return BaseUpdate("distribution", f"distribution:{event or n}", reference, digest(digest_n if digest_n else n))


def queued(outcome: Queued | Duplicate) -> int:
    assert isinstance(outcome, Queued), outcome
    return outcome.run_id


def test_a_redelivered_event_queues_nothing(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path / "q.sqlite3")
    run_id = queued(queue.enqueue_base(update(1), MAIN))
    assert queue.enqueue_base(update(1), MAIN) == Duplicate(run_id)
    assert queue.counts()["queued"] == 1


def test_updates_of_one_reference_while_queued_become_one_run_of_the_newest_digest(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path / "q.sqlite3")
    first, second, third = (queued(queue.enqueue_base(update(n), MAIN)) for n in (1, 2, 3))
    other = queued(queue.enqueue_base(update(9, f"{BASE}:2"), MAIN))
    git = queue.enqueue(Push("github", "github:g", MAIN, "a" * 40, "b" * 40))
    claimed = queue.claim_next()
    assert claimed is not None
    assert (claimed.id, claimed.kind, claimed.reference, claimed.digest) == (third, "base", f"{BASE}:1", digest(3))
    assert claimed.coalesced == 2 and claimed.ref == MAIN
    for older in (first, second):
        run = queue.get(older)
        assert run is not None and (run.status, run.superseded_by) == ("superseded", third)
    nxt = queue.claim_next()
    assert nxt is not None and (nxt.id, nxt.reference, nxt.coalesced) == (other, f"{BASE}:2", 0)
    # A git push to the same branch is not mixed with base updates: its own run, its range untouched.
    push = queue.claim_next()
    assert push is not None and push.id == git.run_id and push.kind == "push"  # type: ignore[union-attr]
    assert (push.before, push.after, push.reference) == ("a" * 40, "b" * 40, None)
    assert queue.claim_next() is None


def test_a_repeat_after_the_run_of_that_digest_is_a_duplicate_a_new_digest_is_not(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path / "q.sqlite3")
    run_id = queued(queue.enqueue_base(update(1), MAIN))
    claimed = queue.claim_next()
    assert claimed is not None
    # While it runs, and after it succeeded: the same image pushed again (a new event id) runs nothing.
    assert queue.enqueue_base(update(2, event="again-1", digest_n=1), MAIN) == Duplicate(run_id)
    queue.finish(run_id, 0, None)
    assert queue.enqueue_base(update(3, event="again-2", digest_n=1), MAIN) == Duplicate(run_id)
    assert queue.counts() == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0, "superseded": 0}
    moved = queued(queue.enqueue_base(update(4), MAIN))  # the tag moved on
    assert moved != run_id
    # A run that failed is tried again when its digest is notified again.
    assert queue.claim_next() is not None
    queue.finish(moved, 1, None)
    assert isinstance(queue.enqueue_base(update(5, event="retry", digest_n=4), MAIN), Queued)


def test_a_push_by_digest_is_a_hint_covered_by_an_update_of_a_tag_of_its_repository(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path / "q.sqlite3")
    # An index is pushed as its children by digest, then the index by tag.
    hints = [queued(queue.enqueue_base(update(n, f"{BASE}@{digest(n)}"), MAIN)) for n in (1, 2)]
    tagged = queued(queue.enqueue_base(update(3), MAIN))
    elsewhere = queued(queue.enqueue_base(update(4, f"127.0.0.1:5010/other@{digest(4)}"), MAIN))
    claimed = queue.claim_next()
    assert claimed is not None and (claimed.id, claimed.coalesced) == (tagged, 2)
    assert {queue.get(h).superseded_by for h in hints} == {tagged}  # type: ignore[union-attr]
    alone = queue.claim_next()
    assert alone is not None and alone.id == elsewhere and alone.reference == f"127.0.0.1:5010/other@{digest(4)}"


def test_hints_alone_become_one_run_of_the_newest(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path / "q.sqlite3")
    ids = [queued(queue.enqueue_base(update(n, f"{BASE}@{digest(n)}"), MAIN)) for n in (1, 2, 3)]
    claimed = queue.claim_next()
    assert claimed is not None and (claimed.id, claimed.coalesced) == (ids[-1], 2)


OLD_SCHEMA = """
CREATE TABLE deliveries (id TEXT PRIMARY KEY, source TEXT NOT NULL, received_at REAL NOT NULL,
    run_id INTEGER REFERENCES runs(id), ignored TEXT);
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, delivery_id TEXT,
    ref TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL, status TEXT NOT NULL
    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'superseded')), created_at REAL NOT NULL,
    started_at REAL, finished_at REAL, exit_code INTEGER, report TEXT, log_path TEXT,
    superseded_by INTEGER REFERENCES runs(id), coalesced INTEGER NOT NULL DEFAULT 0);
CREATE INDEX runs_by_status ON runs (status, ref, id);
CREATE TABLE links (ref TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL, PRIMARY KEY (ref, after, before));
INSERT INTO runs (source, delivery_id, ref, before, after, status, created_at)
    VALUES ('github', 'github:old', 'refs/heads/main', 'aaaa', 'bbbb', 'succeeded', 1.0);
INSERT INTO deliveries (id, source, received_at, run_id) VALUES ('github:old', 'github', 1.0, 1);
"""


def test_a_state_database_from_before_base_updates_keeps_its_runs_and_takes_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "serve.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    queue = RunQueue(path)
    old = queue.get(1)
    assert old is not None and (old.kind, old.reference, old.after, old.status) == ("push", None, "bbbb", "succeeded")
    assert queue.enqueue(Push("github", "github:old", MAIN, "a" * 40, "b" * 40)) == Duplicate(1)
    run_id = queued(queue.enqueue_base(update(1), MAIN))
    queue.close()
    again = RunQueue(path)  # opened a second time: nothing to migrate
    run = again.get(run_id)
    assert run is not None and (run.kind, run.reference, run.digest) == ("base", f"{BASE}:1", digest(1))


def test_a_base_update_runs_trigger_base_on_the_branch_and_shows_its_reference(tmp_path: Path) -> None:
    queue = RunQueue(tmp_path / "q.sqlite3")
    queued(queue.enqueue_base(update(1), "refs/heads/release"))
    run = queue.claim_next()
    assert run is not None
    settings = WorkerSettings(
        repo="/srv/shop.git", runs_dir=tmp_path, config="ci/pipelines.yaml", command=("pipeline", "trigger")
    )
    assert run_argv(settings, run, tmp_path / "report.json") == [
        "pipeline", "trigger", "--repo", "/srv/shop.git", "--ref", "refs/heads/release",
        "--base", f"{BASE}:1", "--report", str(tmp_path / "report.json"), "-f", "ci/pipelines.yaml",
    ]  # fmt: skip
    data = run_json(run)
    assert (data["kind"], data["reference"], data["digest"]) == ("base", f"{BASE}:1", digest(1))
    page = run_page(run, None)
    assert f'<code class="base">{BASE}:1</code>' in page and digest(1) in page
