"""Base updates, pure parts: which written base a notified reference names, which images use a base,
which images a move rebuilds, the watcher's poll, and the reason where a user reads it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pipeline.attest.provenance import provenance_predicate
from pipeline.common.reporting import SILENT
from pipeline.config import load_config
from pipeline.notify.message import Notice, generic_body, slack_body
from pipeline.plan import Plan, RunContext, make_plan
from pipeline.registry.reference import parse_reference
from pipeline.triggers.bases import BaseMove, affected_by, names_base, overall_reason
from pipeline.triggers.basewatch import BaseWatcher, BaseWatchState
from pipeline.triggers.queue import Run
from pipeline.triggers.statuspage import index_page, run_page
from tests.helpers import build_facts, write_project

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64


def never(_ref: object) -> str:
    raise AssertionError("a tag match needs no registry")


def test_a_notified_reference_names_the_written_base_by_normalized_repository_and_tag() -> None:
    written = parse_reference("127.0.0.1:5000/up/base:1")
    assert names_base(parse_reference("127.0.0.1:5000/up/base:1"), written, never)
    assert not names_base(parse_reference("127.0.0.1:5000/up/base:2"), written, never)
    assert not names_base(parse_reference("127.0.0.1:5000/up/other:1"), written, never)
    # Docker Hub's short names and an implied :latest are the same reference.
    assert names_base(parse_reference("docker.io/library/alpine:latest"), parse_reference("alpine"), never)
    assert names_base(parse_reference("alpine"), parse_reference("index.docker.io/library/alpine:latest"), never)


def test_a_digest_only_reference_names_the_base_whose_tag_points_at_it_now() -> None:
    written = parse_reference("127.0.0.1:5000/up/base:1")
    assert names_base(parse_reference(f"127.0.0.1:5000/up/base@{NEW}"), written, lambda ref: NEW)
    assert not names_base(parse_reference(f"127.0.0.1:5000/up/base@{OLD}"), written, lambda ref: NEW)
    pinned = parse_reference(f"127.0.0.1:5000/up/base@{OLD}")
    assert names_base(parse_reference(f"127.0.0.1:5000/up/base@{OLD}"), pinned, never)


def shop(tmp_path: Path) -> Plan:
    config = write_project(
        tmp_path,
        """\
        registry: r.example/shop
        pipelines:
          shop:
            images:
              onbase: {context: images/onbase}
              dependant: {context: images/dependant, build_args: {BASE: "{{ images.onbase }}"}}
              deeper: {context: images/deeper, build_args: {BASE: "{{ images.dependant }}"}}
              plain: {context: images/plain}
              copies: {context: images/copies}
        """,
        {
            "onbase": "ARG TAG=1\nFROM r.example/up/base:${TAG}\n",
            "dependant": "ARG BASE\nFROM ${BASE}\n",
            "deeper": "ARG BASE\nFROM ${BASE}\n",
            "plain": "FROM scratch\n",
            "copies": "FROM scratch\nCOPY --from=r.example/up/tools:2 /bin/x /x\n",
        },
    )
    loaded = load_config(config)
    return make_plan(loaded.spec, loaded.base_dir, ["shop"], RunContext(), loaded.positions)


def test_a_move_rebuilds_the_image_and_its_dependants_only(tmp_path: Path) -> None:
    plan = shop(tmp_path)
    move = BaseMove("shop/onbase", "r.example/up/base:1", OLD, NEW)
    affected = affected_by(plan, [move])
    assert [(a.key, a.reason) for a in affected] == [
        ("shop/onbase", f"base update: r.example/up/base:1 {OLD} → {NEW}"),
        ("shop/dependant", "depends on shop/onbase"),
        ("shop/deeper", "depends on shop/dependant"),
    ]
    assert affected_by(plan, []) == []
    first = BaseMove("shop/onbase", "r.example/up/base:1", None, NEW)
    assert overall_reason([first, first]) == f"base update: r.example/up/base:1 (not recorded) → {NEW}"


def test_the_watcher_hands_on_only_what_moved_and_keeps_it_after_a_success(tmp_path: Path) -> None:
    digests = {"r/up/base:1": OLD, "r/up/tools:2": OLD}
    handled: list[list[str]] = []
    outcome = [True]

    def handle(moved: list[str]) -> bool:
        handled.append(moved)
        return outcome[0]

    state = BaseWatchState.load(tmp_path / "state.json")
    watcher = BaseWatcher(lambda: dict(digests), handle, state, SILENT)
    assert watcher.poll() == ["r/up/base:1", "r/up/tools:2"]  # a first poll hands every base on
    assert watcher.poll() == []
    digests["r/up/base:1"] = NEW
    outcome[0] = False
    assert watcher.poll() == ["r/up/base:1"]
    assert watcher.poll() == ["r/up/base:1"]  # failed: tried again
    outcome[0] = True
    assert watcher.poll() == ["r/up/base:1"]
    assert watcher.poll() == []
    assert handled == [["r/up/base:1", "r/up/tools:2"], ["r/up/base:1"], ["r/up/base:1"], ["r/up/base:1"]]
    assert BaseWatchState.load(tmp_path / "state.json").digests == {"r/up/base:1": NEW, "r/up/tools:2": OLD}


REASON = f"base update: r.example/up/base:1 {OLD} → {NEW}"


def test_the_reason_is_in_notifications_provenance_and_the_status_page() -> None:
    notice = Notice(event="release", pipeline="shop", command="trigger", version="1.0.1", reason=REASON)
    assert generic_body(notice)["reason"] == REASON
    assert "*reason:*" in json.dumps(slack_body(notice))
    facts = build_facts(
        "r.example/shop/onbase",
        NEW,
        reason=REASON,
        started_on=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert provenance_predicate(facts)["buildDefinition"]["internalParameters"]["reason"] == REASON
    run = Run(
        id=3,
        source="registry",
        delivery_id="d",
        ref="refs/heads/main",
        before="a" * 40,
        after="b" * 40,
        status="succeeded",
        created_at=1.0,
        started_at=1.0,
        finished_at=2.0,
        exit_code=0,
        report=json.dumps({"ok": True, "images": [], "reason": REASON}),
        log_path=None,
        superseded_by=None,
        coalesced=0,
    )
    assert REASON in index_page([run], {"succeeded": 1}, "repo").replace("&rarr;", "→")
    assert REASON in run_page(run, None)
