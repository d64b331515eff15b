"""Publishing is all or nothing: tag writes go out together after a journal records them; a failure
moves back what it can and names the rest; the next run completes what a failure or a kill left."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.faults.proxy import FaultPlan, fault_proxy
from tests.helpers import SHOP_IMAGES, git, init_git, release_tags, run_cli, shop_project
from tests.integration.conftest import RegistryPeek, Services

ENV = {"COSIGN_PASSWORD": "publish-test-passphrase"}


def journals(state: Path) -> list[Path]:
    return sorted(state.glob("pipeline/pipelines/*/publish-journal.json"))


@contextmanager
def released_behind_faults(
    tmp_path: Path, services: Services, namespace: str
) -> Iterator[tuple[Path, FaultPlan, str, dict[str, str]]]:
    """The unsigned shop (in tmp_path/shop) released as 1.0.0 through a fault proxy in front of the plain
    registry, its state under tmp_path/state; yields the project, the proxy's plan and address, the env."""
    env = {**ENV, "XDG_STATE_HOME": str(tmp_path / "state")}
    plan = FaultPlan()
    with fault_proxy(services.plain_registry, plan) as proxy:
        root = tmp_path / "shop"
        shop_project(root, f"{proxy}/{namespace}", sign=False)
        init_git(root)
        assert run_cli(["run", "--version", "1.0.0"], root, env=env).code == 0
        yield root, plan, proxy, env


def test_a_tag_that_cannot_be_written_rolls_back_and_the_next_run_completes(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    with released_behind_faults(tmp_path, services, namespace) as (root, plan, proxy, env):
        before = release_tags(plain_peek, namespace)
        assert set(before["app"]) == {"1.0.0", "1.0", "1", "latest"}

        (root / "images/app/feature.txt").write_text("1.1\n")
        (root / "images/base/feature.txt").write_text("1.1\n")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "1.1")
        plan.fail_tags = {"1"}  # the major tag of every image cannot be written, on any attempt
        failed = run_cli(["run", "--version", "1.1.0", "--report", "r.json"], root, env=env)
        assert failed.code == 1, failed.output
        assert "Traceback" not in failed.output
        assert sum(1 for fault, _, _ in plan.injected if fault == "fail-tag") >= 5, plan.injected  # really failed
        new = {i["name"]: i["digest"] for i in json.loads((root / "r.json").read_text())["images"]}

        # Moved tags went back; the tags this run created cannot be deleted on Docker Distribution 2.x,
        # and the error names exactly those.
        after = release_tags(plain_peek, namespace)
        for name in SHOP_IMAGES:
            assert after[name]["latest"] == before[name]["latest"], name
            assert after[name]["1"] == before[name]["1"], name
            assert after[name]["1.0.0"] == before[name]["1.0.0"], name
        error = failed.stderr.strip().splitlines()[-1]
        assert error.startswith("error: publishing failed ("), error
        unrestored = error.split("could not restore: ", 1)[1].split("; the journal", 1)[0]
        expected = {
            f"{proxy}/{namespace}/{name}:{tag}" for name in SHOP_IMAGES for tag in ("1.1.0", "1.1") if new[name]
        }
        named = {part.split(" (", 1)[0] for part in unrestored.split(", ")}
        assert named == expected, error
        for name in SHOP_IMAGES:
            assert after[name]["1.1.0"] == new[name]
        assert len(journals(tmp_path / "state")) == 1

        # The fault is gone: the same command completes the release recorded in the journal first.
        plan.fail_tags = set()
        again = run_cli(["run", "--version", "1.1.0", "--json"], root, env=env)
        assert again.code == 0, again.output
        assert "completing it first" in again.stderr
        assert "completed the interrupted publish" in again.stderr
        final = release_tags(plain_peek, namespace)
        for name in SHOP_IMAGES:
            for tag in ("1.1.0", "1.1", "1", "latest"):
                assert final[name][tag] == new[name], (name, tag)
            assert final[name]["1.0.0"] == before[name]["1.0.0"]
            assert final[name]["1.0"] == before[name]["1.0"]
        assert journals(tmp_path / "state") == []
        assert {c["action"] for c in json.loads(again.stdout)["tag_changes"]} == {"unchanged"}


def test_a_failure_that_moved_only_existing_tags_leaves_no_trace(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """When every write of a run moves an existing tag, a failure restores the registry exactly."""
    with released_behind_faults(tmp_path, services, namespace) as (root, plan, _proxy, env):
        (root / "images/app/feature.txt").write_text("2\n")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "next")
        # Without a version, in git: the extra tag `{{ git.branch }}` moves for every image.
        config = root / "pipelines.yaml"
        config.write_text(config.read_text() + 'tags: {extra: ["{{ git.branch }}"]}\n')
        git(root, "commit", "-qam", "branch tag")
        assert run_cli(["run"], root, env=env).code == 0
        before = release_tags(plain_peek, namespace)
        (root / "images/app/feature.txt").write_text("3\n")
        (root / "images/worker/feature.txt").write_text("3\n")
        git(root, "commit", "-qam", "third")
        # Only the worker's write fails: app's `main` moved (concurrently) and must go back.
        plan.fail_tags = {f"{namespace}/worker:main"}
        failed = run_cli(["run"], root, env=env)
        assert failed.code == 1, failed.output
        assert "every tag this run had moved was moved back" in failed.stderr, failed.stderr
        assert "rollback" in failed.stderr and f"{namespace}/app:main moved back" in failed.stderr
        assert release_tags(plain_peek, namespace) == before
        assert journals(tmp_path / "state") == []
