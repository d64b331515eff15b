"""The locked workflow's triggers on the real git, registry and engine: the commit of `bases --update` (only
pipelines.lock changed) rebuilds through `pipeline trigger` exactly the images on the moved base and their
dependants, on the new digest, every other image reused; and `trigger --base --locked` / `watch --bases
--locked` refuse a base the lock does not name before anything is pushed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import WEB_ON_APP, git, init_git, push_upstream, run_cli, shop_config, two_upstreams, write_project
from tests.integration.conftest import RegistryPeek, Services

IMAGES = ("app", "web", "tool", "plain")


def project(tmp_path: Path, services: Services, namespace: str) -> tuple[Path, str, str]:
    """`app` FROM the upstream base, `web` FROM app, `tool` FROM another upstream image, `plain` FROM
    scratch; built on main. Returns (project, base, other)."""
    registry = services.plain_registry
    base, other = two_upstreams(tmp_path, registry, namespace)
    root = tmp_path / "project"
    write_project(
        root,
        shop_config(
            f"{registry}/{namespace}",
            {"app": "", "web": WEB_ON_APP, "tool": "", "plain": ""},
            keys='triggers: [{branch: "^main$"}]',
        ),
        {
            "app": f"FROM {base}\nCOPY app.txt /app.txt\n",
            "web": "ARG BASE\nFROM ${BASE}\nCOPY web.txt /web.txt\n",
            "tool": f"FROM {other}\nCOPY tool.txt /tool.txt\n",
            "plain": "FROM scratch\nCOPY plain.txt /plain.txt\n",
        },
    )
    for name in IMAGES:
        (root / "images" / name / f"{name}.txt").write_text(f"{name}\n")
    init_git(root)
    return root, base, other


def digests(peek: RegistryPeek, namespace: str, tag: str) -> dict[str, str | None]:
    return {name: peek.digest(f"{namespace}/{name}", tag) for name in IMAGES}


def test_the_commit_of_bases_update_rebuilds_through_trigger_exactly_the_images_on_the_moved_base(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    root, base, _other = project(tmp_path, services, namespace)
    locked = run_cli(["bases", "--update"], root)
    assert locked.code == 0, locked.output
    git(root, "add", "pipelines.lock")
    git(root, "commit", "-qm", "Lock the base images")
    first = git(root, "rev-parse", "HEAD")
    built = run_cli(["run"], root)
    assert built.code == 0, built.output
    before = digests(plain_peek, namespace, f"sha-{first[:12]}")
    assert all(before.values()), before

    # The upstream moves; the scheduled job's `bases --update` commits only the lock.
    old_base = plain_peek.digest(f"{namespace}-upstream/base", "1")
    push_upstream(tmp_path / "up-base", base, "two\n")
    new_base = plain_peek.digest(f"{namespace}-upstream/base", "1")
    assert new_base != old_base
    updated = run_cli(["bases", "--update"], root)
    assert updated.code == 0, updated.output
    git(root, "commit", "-qam", "Update the base images")
    assert git(root, "show", "--name-only", "--format=", "HEAD").split() == ["pipelines.lock"]
    second = git(root, "rev-parse", "HEAD")

    report = tmp_path / "report.json"
    trigger = ["trigger", "--repo", ".", "--ref", "refs/heads/main", "--before", "HEAD~1", "--after", "HEAD"]
    done = run_cli([*trigger, "--report", str(report)], root)
    assert done.code == 0, done.output
    assert "shop/app: pipelines.lock changed" in done.output, done.output
    after = digests(plain_peek, namespace, f"sha-{second[:12]}")
    # The images on the moved base and their dependants are rebuilt on the new digest ...
    assert after["app"] not in (None, before["app"]) and after["web"] not in (None, before["web"])
    for name in ("app", "web"):
        files = plain_peek.files(f"{namespace}/{name}", f"sha-{second[:12]}")
        assert (files["up.txt"], files[f"{name}.txt"]) == (b"two\n", f"{name}\n".encode())
    labels = plain_peek.config(f"{namespace}/app", f"sha-{second[:12]}")["config"]["Labels"]
    assert json.loads(labels["org.pipeline.bases"]) == {base: new_base}
    # ... every other image is the same image as before (reused, tagged for the commit).
    assert (after["tool"], after["plain"]) == (before["tool"], before["plain"])
    reused = {i["image"]: i["reused"] for i in json.loads(report.read_text())["images"]}
    assert reused == {"shop/app": False, "shop/web": False, "shop/tool": True, "shop/plain": True}


def test_trigger_base_and_watch_bases_locked_refuse_a_base_the_lock_does_not_name(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    root, base, other = project(tmp_path, services, namespace)
    lock = root / "pipelines.lock"
    trigger = ["trigger", "--repo", ".", "--ref", "refs/heads/main", "--base", base, "--locked"]

    # No lock at all.
    done = run_cli(trigger, root)
    assert done.code == 2, done.output
    assert f"base image {base} (" in done.output and "pipelines.lock (there is no lock file)" in done.output
    assert "refused by --locked" in done.output
    assert all(plain_peek.all_tags(f"{namespace}/{name}") == set() for name in IMAGES)

    # A lock that names the other base but not this one.
    assert run_cli(["bases", "--update"], root).code == 0
    text = lock.read_text()
    entries = text.split("\n- ")
    kept = [entries[0], *(entry for entry in entries[1:] if base not in entry)]
    lock.write_text("\n- ".join(kept))
    assert other in lock.read_text() and base not in lock.read_text()
    git(root, "add", "pipelines.lock")
    git(root, "commit", "-qm", "Lock only the other base")
    done = run_cli(trigger, root)
    assert done.code == 2, done.output
    assert f"base image {base} (" in done.output
    assert "pipelines.lock; run `pipeline bases --update`" in done.output, done.output

    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    watch = run_cli(["watch", "--repo", ".", "--branch", "main", "--bases", "--once", "--locked"], root, env)
    assert f"base image {base} (" in watch.output and "refused by --locked" in watch.output, watch.output
    assert all(plain_peek.all_tags(f"{namespace}/{name}") == set() for name in IMAGES)
