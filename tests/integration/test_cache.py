"""The input-digest cache against the real registry: reuse across commits and machines, plan, explain."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import built_steps, git, init_git, run_cli, shop_project
from tests.integration.conftest import RegistryPeek, Services


def shop(root: Path, registry: str) -> None:
    """The shop with a file of app's context and one outside every context, for commits to change."""
    shop_project(root, registry, sign=False)
    (root / "images/app/main.txt").write_text("v1\n")
    (root / "README.md").write_text("docs\n")


def report(result_stdout: str) -> dict[str, dict[str, object]]:
    return {i["name"]: i for i in json.loads(result_stdout)["images"]}


def test_unchanged_images_are_reused_from_the_registry(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop(tmp_path, f"{services.plain_registry}/{namespace}")
    init_git(tmp_path)
    first = report(run_cli(["run", "--json"], tmp_path).stdout)
    assert not any(i["reused"] for i in first.values())

    # A commit that touches no image: nothing is built, and the new commit's sha- tags point at the
    # images already pushed — even with no local images (another machine).
    (tmp_path / "README.md").write_text("more docs\n")
    git(tmp_path, "commit", "-qam", "docs")
    sha = git(tmp_path, "rev-parse", "HEAD")
    for name in first:
        # Untag only this test's references: `rmi -f <id>` would also untag another test's image that
        # happens to have the same id (same Dockerfile, same commit second), failing its push.
        tags = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .RepoTags}}", str(first[name]["image_id"])],
            capture_output=True,
            text=True,
            check=False,
        )
        ours = [
            t
            for t in json.loads(tags.stdout or "null") or []
            if t.startswith(f"{services.plain_registry}/{namespace}/")
        ]
        if ours:
            subprocess.run(["docker", "rmi", *ours], capture_output=True, check=False)
    second = run_cli(["run", "--json"], tmp_path)
    assert second.code == 0, second.output
    assert not built_steps(second.stderr)
    again = report(second.stdout)
    for name in first:
        assert again[name]["reused"] is True
        assert again[name]["digest"] == first[name]["digest"]
        assert plain_peek.digest(f"{namespace}/{name}", f"sha-{sha[:12]}") == first[name]["digest"]

    # The plan says so before running.
    planned = run_cli(["plan", "--json"], tmp_path)
    assert {i["image"]: i["action"] for i in json.loads(planned.stdout)["images"]} == {
        "shop/base": "reuse",
        "shop/app": "reuse",
        "shop/worker": "reuse",
    }

    # An app change: only app is built, and `plan` / `explain` say why.
    (tmp_path / "images/app/main.txt").write_text("v2\n")
    git(tmp_path, "commit", "-qam", "app v2")
    planned = {i["image"]: i for i in json.loads(run_cli(["plan", "--json"], tmp_path).stdout)["images"]}
    assert planned["shop/app"]["action"] == "build"
    assert planned["shop/app"]["why"] == "no pushed image has these inputs"
    assert planned["shop/worker"]["action"] == "reuse"
    explained = run_cli(["explain", "app", "--json"], tmp_path)
    assert explained.code == 0, explained.output
    data = json.loads(explained.stdout)
    assert data["changed_inputs"] == ["context"]
    assert "  images/app/main.txt" in data["details"]
    third = report(run_cli(["run", "--json"], tmp_path).stdout)
    assert [name for name, i in third.items() if not i["reused"]] == ["app"]

    # --no-cache builds everything again.
    forced = report(run_cli(["run", "--json", "--no-cache"], tmp_path).stdout)
    assert not any(i["reused"] for i in forced.values())


def test_a_rerun_after_a_failure_rebuilds_only_what_failed(tmp_path: Path, services: Services, namespace: str) -> None:
    shop(tmp_path, f"{services.plain_registry}/{namespace}")
    dockerfile = tmp_path / "images/worker/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN false\n")
    init_git(tmp_path)
    failed = run_cli(["run", "--keep-going", "--json"], tmp_path)
    assert failed.code == 1
    dockerfile.write_text(dockerfile.read_text().replace("RUN false\n", ""))
    git(tmp_path, "commit", "-qam", "fix worker")
    rerun = report(run_cli(["run", "--json"], tmp_path).stdout)
    assert {name: i["reused"] for name, i in rerun.items()} == {"base": True, "app": True, "worker": False}
