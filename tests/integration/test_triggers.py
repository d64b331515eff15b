"""Git triggers on real repositories: changed detection, run --since, hooks, the watch loop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import git, init_git, run_cli, shop_project
from tests.integration.conftest import RegistryPeek, Services


def shop(root: Path, registry: str, triggers: str = "") -> None:
    """The shop with a script in app's context and a file its `.dockerignore` leaves out."""
    shop_project(root, registry, sign=False, triggers=triggers)
    (root / "images/app/app.sh").write_text("echo app\n")
    (root / "images/app/NOTES.md").write_text("notes\n")
    (root / "images/app/.dockerignore").write_text("*.md\n")


def change(root: Path, path: str, message: str = "change") -> str:
    file = root / path
    file.write_text(file.read_text() + f"# {time.time_ns()}\n")
    git(root, "commit", "-qam", message)
    return git(root, "rev-parse", "HEAD")


def changed(root: Path, since: str) -> dict[str, str]:
    result = run_cli(["changed", "--since", since, "--json"], root)
    assert result.code == 0, result.output
    return {i["image"]: i["reason"] for i in json.loads(result.stdout)["images"]}


def test_changed_maps_commits_to_images(tmp_path: Path, services: Services, namespace: str) -> None:
    shop(tmp_path, f"{services.plain_registry}/{namespace}")
    init_git(tmp_path)
    change(tmp_path, "images/app/app.sh")
    assert changed(tmp_path, "HEAD~1") == {"shop/app": "images/app/app.sh changed"}
    change(tmp_path, "images/base/Dockerfile")
    assert changed(tmp_path, "HEAD~1") == {
        "shop/base": "images/base/Dockerfile changed",
        "shop/app": "depends on shop/base",
        "shop/worker": "depends on shop/base",
    }
    change(tmp_path, "images/app/NOTES.md")  # .dockerignore'd
    assert changed(tmp_path, "HEAD~1") == {}
    text = run_cli(["changed", "--since", "HEAD~1"], tmp_path)
    assert "nothing changed since HEAD~1 affects an image" in text.stdout


def test_run_since_builds_only_the_change_on_the_last_pushed_base(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop(tmp_path, f"{services.plain_registry}/{namespace}")
    first = init_git(tmp_path)
    assert run_cli(["run"], tmp_path).code == 0
    second = change(tmp_path, "images/app/app.sh")
    result = run_cli(["run", "--since", "HEAD~1", "--json"], tmp_path)
    assert result.code == 0, result.output
    built = {i["name"] for i in json.loads(result.stdout)["images"]}
    assert built == {"app"}
    base_layers = plain_peek.layers(f"{namespace}/base", f"sha-{first[:12]}")
    assert plain_peek.layers(f"{namespace}/app", f"sha-{second[:12]}")[: len(base_layers)] == base_layers
    assert f"sha-{second[:12]}" not in plain_peek.tags(f"{namespace}/base")


def bare_remote(tmp_path: Path, registry: str, triggers: str = "") -> tuple[Path, Path]:
    """A bare 'server' repository and a clone with the shop project pushed to it."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    clone = tmp_path / "clone"
    shop(clone, registry, triggers)
    init_git(clone)
    git(clone, "remote", "add", "origin", str(remote))
    git(clone, "push", "-q", "origin", "main")
    return remote, clone


def test_post_receive_hook_builds_pushed_commits(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    triggers = (
        '[{branch: "main", tags: ["latest-main"]},'
        ' {tag: "^v(?P<version>\\\\d+\\\\.\\\\d+\\\\.\\\\d+)$", release: true}]'
    )
    remote, clone = bare_remote(tmp_path, f"{services.plain_registry}/{namespace}", triggers)
    installed = run_cli(["hooks", "install", "--repo", str(remote), "--hook", "post-receive"], tmp_path)
    assert installed.code == 0, installed.output
    again = run_cli(["hooks", "install", "--repo", str(remote), "--hook", "post-receive"], tmp_path)
    assert "already installed" in again.stdout  # idempotent

    sha = change(clone, "images/base/Dockerfile")
    pushed = subprocess.run(["git", "push", "origin", "main"], cwd=clone, capture_output=True, text=True, check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: pipeline: post-receive refs/heads/main" in pushed.stderr
    for name in ("base", "app", "worker"):
        tags = plain_peek.tags(f"{namespace}/{name}")
        assert {f"sha-{sha[:12]}", "latest-main"} <= tags, (name, tags)

    # Only the app changes next: only app is rebuilt, on the base pushed before.
    app_sha = change(clone, "images/app/app.sh")
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=clone, capture_output=True, check=True)
    assert f"sha-{app_sha[:12]}" in plain_peek.tags(f"{namespace}/app")
    assert f"sha-{app_sha[:12]}" not in plain_peek.tags(f"{namespace}/base")

    # A release tag runs the release path.
    git(clone, "tag", "-a", "v1.2.3", "-m", "release")
    subprocess.run(["git", "push", "-q", "origin", "v1.2.3"], cwd=clone, capture_output=True, check=True)
    assert {"1.2.3", "1.2", "1", "latest"} <= plain_peek.tags(f"{namespace}/app")


def test_hooks_chain_to_an_existing_hook_and_uninstall_restores_it(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop(tmp_path, f"{services.plain_registry}/{namespace}")
    init_git(tmp_path)
    assert run_cli(["run"], tmp_path).code == 0  # the base the hook's builds pin to
    existing = tmp_path / ".git/hooks/post-commit"
    existing.write_text('#!/bin/sh\necho ran >> "$(git rev-parse --show-toplevel)/../legacy-ran"\n')
    existing.chmod(0o755)
    assert run_cli(["hooks", "install"], tmp_path).code == 0
    assert run_cli(["hooks", "install"], tmp_path).code == 0
    sha = change(tmp_path, "images/worker/Dockerfile")
    assert (tmp_path.parent / "legacy-ran").read_text() == "ran\n"
    assert f"sha-{sha[:12]}" in plain_peek.tags(f"{namespace}/worker")
    assert run_cli(["hooks", "uninstall"], tmp_path).code == 0
    assert existing.read_text().startswith("#!/bin/sh\necho ran")
    assert not (tmp_path / ".git/hooks/post-commit.pre-pipeline").exists()


def test_watch_survives_a_failing_commit_and_a_restart(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    remote, clone = bare_remote(tmp_path, f"{services.plain_registry}/{namespace}")
    state = tmp_path / "watch-state.json"
    watch = ["watch", "--repo", str(remote), "--branch", "main", "--state", str(state), "--once"]
    first = run_cli(watch, tmp_path)
    assert first.code == 0, first.output
    head = git(clone, "rev-parse", "HEAD")
    assert json.loads(state.read_text())["last"] == head
    assert f"starting fresh (state file {state})" in first.stderr

    dockerfile = clone / "images/worker/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN false\n")
    git(clone, "commit", "-qam", "break worker")
    broken = git(clone, "rev-parse", "HEAD")
    dockerfile.write_text(dockerfile.read_text().replace("RUN false\n", "RUN true\n"))
    git(clone, "commit", "-qam", "fix worker")
    fixed = git(clone, "rev-parse", "HEAD")
    git(clone, "push", "-q", "origin", "main")

    second = run_cli(watch, tmp_path)
    assert second.code == 0, second.output
    assert f"resuming after {head[:12]} (state file {state})" in second.stderr  # a restart says so
    history = json.loads(state.read_text())["history"]
    assert [(h["commit"], h["ok"]) for h in history[-2:]] == [(broken, False), (fixed, True)]
    assert f"sha-{fixed[:12]}" in plain_peek.tags(f"{namespace}/worker")
    assert f"sha-{broken[:12]}" not in plain_peek.tags(f"{namespace}/worker")

    # A restart with nothing new handles nothing: no commit is built twice.
    third = run_cli(watch, tmp_path)
    assert third.code == 0
    assert "building" not in third.stderr
    assert len(json.loads(state.read_text())["history"]) == 3

    # SIGTERM stops the loop cleanly.
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "watch", "--repo", str(remote), "--state", str(state), "--interval", "1s"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert process.stderr is not None
    assert "watching" in process.stderr.readline()  # the handlers are in place: no sleep deciding when
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def test_a_partial_run_records_the_inputs_a_full_run_computes(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """`run --since` (the path of trigger, watch and hooks) pins unchanged dependencies; it must record the
    same input digest a full run computes, so the full run of that commit rebuilds nothing and a later
    release keeps the sha- tag where the partial run put it."""
    shop(tmp_path, f"{services.plain_registry}/{namespace}")
    init_git(tmp_path)
    assert run_cli(["run"], tmp_path).code == 0
    sha = change(tmp_path, "images/app/app.sh")
    partial = run_cli(["run", "--since", "HEAD~1", "--json"], tmp_path)
    assert partial.code == 0, partial.output
    built = {i["name"]: i for i in json.loads(partial.stdout)["images"]}
    assert set(built) == {"app"} and not built["app"]["reused"]
    explained = run_cli(["explain", "shop/app", "--json"], tmp_path)
    assert explained.code == 0, explained.output
    explanation = json.loads(explained.stdout)
    assert "dependencies" not in explanation["changed_inputs"] and not explanation["changed_dependencies"], explanation
    full = run_cli(["run", "--version", "1.0.0", "--json"], tmp_path)
    assert full.code == 0, full.output
    images = {i["name"]: i for i in json.loads(full.stdout)["images"]}
    assert all(i["reused"] for i in images.values()), full.stderr
    assert images["app"]["inputs"] == built["app"]["inputs"]
    assert images["app"]["digest"] == built["app"]["digest"]
    assert plain_peek.digest(f"{namespace}/app", f"sha-{sha[:12]}") == built["app"]["digest"]
    assert plain_peek.digest(f"{namespace}/app", "1.0.0") == built["app"]["digest"]
