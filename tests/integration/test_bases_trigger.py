"""Base image updates on real repositories, registry and engine: `trigger --base`, `watch --bases` and
`on_base_update: {release: patch}` rebuild exactly the images on the moved base and their dependants."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import assert_valid_report, git, init_git, run_cli, write_project
from tests.integration.conftest import RegistryPeek, Services


def push_upstream(tmp_path: Path, reference: str, marker: str) -> str:
    """Build a tiny image FROM scratch holding `marker` and push it as `reference` (moving the tag)."""
    context = tmp_path / f"upstream-{abs(hash((reference, marker)))}"
    context.mkdir(parents=True, exist_ok=True)
    (context / "marker").write_text(marker + "\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    for argv in (["docker", "build", "-q", "-t", reference, str(context)], ["docker", "push", "-q", reference]):
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
        assert done.returncode == 0, done.stderr
    subprocess.run(["docker", "image", "rm", "-f", reference], capture_output=True, check=False)
    return reference


def project(tmp_path: Path, services: Services, namespace: str, policy: str = "") -> tuple[Path, Path, str, str]:
    """A bare origin and a clone: `onbase` FROM the upstream base, `dependant` FROM onbase, `elsewhere`
    FROM another upstream image, `plain` FROM scratch. Returns (origin, clone, base ref, other ref)."""
    registry = services.plain_registry
    base = push_upstream(tmp_path, f"{registry}/{namespace}-upstream/base:1", "base one")
    other = push_upstream(tmp_path, f"{registry}/{namespace}-upstream/other:1", "other one")
    clone = tmp_path / "clone"
    config = f"""\
registry: {registry}/{namespace}
network: none
pipelines:
  shop:
    triggers: [{{branch: "^main$"}}]
{policy}    images:
      onbase: {{context: images/onbase}}
      dependant:
        context: images/dependant
        build_args: {{BASE_IMAGE: "{{{{ images.onbase }}}}"}}
      elsewhere: {{context: images/elsewhere}}
      plain: {{context: images/plain}}
"""
    write_project(
        clone,
        config,
        {
            "onbase": f"FROM {base}\nCOPY . /onbase\n",
            "dependant": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /dependant\n",
            "elsewhere": f"FROM {other}\nCOPY . /elsewhere\n",
            "plain": "FROM scratch\nCOPY . /plain\n",
        },
    )
    for name in ("onbase", "dependant", "elsewhere", "plain"):
        (clone / f"images/{name}/{name}.txt").write_text(f"{name}\n")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    init_git(clone)
    git(clone, "remote", "add", "origin", str(origin))
    git(clone, "push", "-q", "origin", "main")
    return origin, clone, base, other


IMAGES = ("onbase", "dependant", "elsewhere", "plain")


def digests(peek: RegistryPeek, namespace: str, tag: str) -> dict[str, str | None]:
    return {name: peek.digest(f"{namespace}/{name}", tag) for name in IMAGES}


def trigger(origin: Path, cwd: Path, *references: str, report: Path | None = None) -> tuple[int, str]:
    args = ["trigger", "--repo", str(origin), "--ref", "refs/heads/main"]
    args += [part for reference in references for part in ("--base", reference)]
    args += ["--report", str(report)] if report else []
    done = run_cli(args, cwd)
    return done.code, done.output


def test_trigger_base_rebuilds_exactly_the_images_on_the_moved_base(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    origin, clone, base, other = project(tmp_path, services, namespace)
    sha = git(clone, "rev-parse", "HEAD")
    tag = f"sha-{sha[:12]}"
    first = run_cli(["run"], clone)
    assert first.code == 0, first.output
    before = digests(plain_peek, namespace, tag)
    assert all(before.values()), before

    # Nothing moved: a no-op that says so, nothing pushed.
    code, output = trigger(origin, tmp_path, base)
    assert code == 0, output
    assert "nothing moved since the last build of shop/onbase" in output
    assert digests(plain_peek, namespace, tag) == before

    # No image uses it: a no-op that says so.
    code, output = trigger(origin, tmp_path, f"{services.plain_registry}/{namespace}-upstream/unused:1")
    assert code == 0, output
    assert "no image of refs/heads/main uses it; nothing to build" in output

    old_base = plain_peek.digest(f"{namespace}-upstream/base", "1")
    push_upstream(tmp_path, base, "base two")
    new_base = plain_peek.digest(f"{namespace}-upstream/base", "1")
    assert old_base != new_base
    report = tmp_path / "report.json"
    code, output = trigger(origin, tmp_path, base, report=report)
    assert code == 0, output
    after = digests(plain_peek, namespace, tag)
    assert after["onbase"] != before["onbase"]
    assert after["dependant"] != before["dependant"]
    assert after["elsewhere"] == before["elsewhere"]
    assert after["plain"] == before["plain"]
    reason = f"base update: {base} {old_base} → {new_base}"
    assert f"shop/onbase: {reason}" in output
    data = assert_valid_report(report)
    assert data["reason"] == reason
    assert {i["image"] for i in data["images"]} == {"shop/onbase", "shop/dependant"}
    assert data["trigger"]["moves"] == [{"image": "shop/onbase", "reference": base, "old": old_base, "new": new_base}]
    assert data["trigger"]["affected"] == [
        {"image": "shop/onbase", "reason": reason},
        {"image": "shop/dependant", "reason": "depends on shop/onbase"},
    ]
    # The rebuilt image records the base it stands on now; the same notification again is a no-op.
    config = plain_peek.config(f"{namespace}/onbase", tag)
    assert json.loads(config["config"]["Labels"]["org.pipeline.bases"]) == {base: new_base}
    code, output = trigger(origin, tmp_path, base)
    assert code == 0 and "nothing moved" in output, output
    assert digests(plain_peek, namespace, tag) == after

    # A digest-only reference names the base whose tag points at it now.
    push_upstream(tmp_path, base, "base three")
    newest = plain_peek.digest(f"{namespace}-upstream/base", "1")
    code, output = trigger(origin, tmp_path, f"{services.plain_registry}/{namespace}-upstream/base@{newest}")
    assert code == 0, output
    third = digests(plain_peek, namespace, tag)
    assert third["onbase"] != after["onbase"] and third["elsewhere"] == before["elsewhere"]


def test_watch_bases_once_rebuilds_after_a_move_and_then_does_nothing(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    origin, clone, base, other = project(tmp_path, services, namespace)
    tag = f"sha-{git(clone, 'rev-parse', 'HEAD')[:12]}"
    assert run_cli(["run"], clone).code == 0
    before = digests(plain_peek, namespace, tag)
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    watch = ["watch", "--repo", str(origin), "--branch", "main", "--bases", "--once"]
    first = run_cli(watch, tmp_path, env)  # no state yet: every base handed on, nothing moved since the builds
    assert first.code == 0, first.output
    assert digests(plain_peek, namespace, tag) == before

    push_upstream(tmp_path, other, "other two")
    moved = run_cli(watch, tmp_path, env)
    assert moved.code == 0, moved.output
    assert f"{other}: sha256:" in moved.stderr
    after = digests(plain_peek, namespace, tag)
    assert after["elsewhere"] != before["elsewhere"]
    assert {k: v for k, v in after.items() if k != "elsewhere"} == {k: v for k, v in before.items() if k != "elsewhere"}

    again = run_cli(watch, tmp_path, env)
    assert again.code == 0, again.output
    assert "no base moved (2 watched)" in again.stderr
    assert digests(plain_peek, namespace, tag) == after
    state = json.loads(next((tmp_path / "state/pipeline/watch").glob("bases-main-*.json")).read_text())
    assert state["bases"][other] == plain_peek.digest(f"{namespace}-upstream/other", "1")


def test_on_base_update_release_patch_cuts_exactly_one_patch_release(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    origin, clone, base, _other = project(tmp_path, services, namespace, "    on_base_update: {release: patch}\n")
    released = run_cli(["release", "--version", "1.0.0", "--push-tag"], clone)
    assert released.code == 0, released.output
    v100 = digests(plain_peek, namespace, "1.0.0")
    assert all(v100.values()), v100

    old_base = plain_peek.digest(f"{namespace}-upstream/base", "1")
    push_upstream(tmp_path, base, "base two")
    new_base = plain_peek.digest(f"{namespace}-upstream/base", "1")
    report = tmp_path / "report.json"
    code, output = trigger(origin, tmp_path, base, report=report)
    assert code == 0, output
    reason = f"base update: {base} {old_base} → {new_base}"
    v101 = digests(plain_peek, namespace, "1.0.1")
    assert v101["onbase"] not in (None, v100["onbase"]) and v101["dependant"] not in (None, v100["dependant"])
    assert v101["elsewhere"] is None and v101["plain"] is None  # unaffected images keep 1.0.0
    moved = {"onbase": v101["onbase"], "dependant": v101["dependant"]}
    assert digests(plain_peek, namespace, "latest") == {**v100, **moved}
    data = assert_valid_report(report)
    assert data["reason"] == reason
    assert data["release"] == {"version": "1.0.1", "git_tag": "v1.0.1", "reason": reason}
    message = git(origin, "tag", "-l", "--format=%(contents)", "v1.0.1")
    assert message.strip() == f"Release 1.0.1\n\n{reason}"

    # Delivered twice: nothing moved since the 1.0.1 builds, so no second release.
    code, output = trigger(origin, tmp_path, base)
    assert code == 0 and "nothing moved" in output, output
    assert git(origin, "tag", "-l", "v*").split() == ["v1.0.0", "v1.0.1"]
    assert "1.0.2" not in plain_peek.tags(f"{namespace}/onbase")
