"""The lock workflow on the real registry and engine: `pipeline bases` lists the upstream base the test
pushed, `--update` writes pipelines.lock, the lock holds when the upstream tag moves (nothing rebuilt)
until `--update` moves it (the images on it and their dependants rebuilt on the new digest), and
`run --locked` refuses a base the lock does not name before anything is pushed."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.dockerfile.bases import default_platform
from tests.helpers import (
    WEB_ON_APP,
    built_steps,
    commit_files,
    git,
    init_git,
    push_upstream,
    run_cli,
    shop_config,
    two_upstreams,
    write_project,
)
from tests.integration.conftest import RegistryPeek, Services

HEADER = [
    "# The digest each base image of the pipelines file builds on, per platform: written by",
    "# `pipeline bases --update`. While this file exists, builds use these digests, not what the tags",
    "# point at now; update it (and review the diff) to move a base.",
]


def images_of(stdout: str) -> dict[str, dict[str, object]]:
    return {i["name"]: i for i in json.loads(stdout)["images"]}


def test_the_lock_holds_until_bases_update_moves_it(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    registry = services.plain_registry
    base = f"{registry}/{namespace}-upstream/base:1"
    push_upstream(tmp_path / "upstream", base, "one\n")
    first = plain_peek.digest(f"{namespace}-upstream/base", "1")
    project = tmp_path / "project"
    write_project(
        project,
        shop_config(f"{registry}/{namespace}", {"app": "", "web": WEB_ON_APP, "tool": ""}),
        {
            "app": f"FROM {base}\nCOPY app.txt /app.txt\n",
            "web": "ARG BASE\nFROM ${BASE}\nCOPY web.txt /web.txt\n",
            "tool": "FROM scratch\nCOPY tool.txt /tool.txt\n",
        },
    )
    for name in ("app", "web", "tool"):
        (project / "images" / name / f"{name}.txt").write_text(f"{name}\n")
    init_git(project)
    platform = default_platform()

    # Only the external base is listed (not scratch, not {{ images.app }}), not locked yet.
    listed = run_cli(["bases", "--json"], project)
    assert listed.code == 0, listed.output
    row = {"reference": base, "platform": platform, "os_version": None, "current": first, "index": None}
    row |= {"stage_platform": False}
    assert json.loads(listed.stdout) == {"bases": [row | {"locked": None, "images": ["shop/app"]}]}

    updated = run_cli(["bases", "--update"], project)
    assert updated.code == 0, updated.output
    assert updated.stdout.splitlines() == [
        f"{base} {platform} (not locked) → {first}",
        "rebuilds: nothing (no locked base moved)",
        "wrote pipelines.lock (1 base(s))",
    ]
    lock = project / "pipelines.lock"
    locked_lines = [*HEADER, "version: 1", "bases:", f'- reference: "{base}"', f'  platform: "{platform}"']
    assert lock.read_text().splitlines() == [*locked_lines, f"  digest: {first}"]
    git(project, "add", "pipelines.lock")
    git(project, "commit", "-qm", "Lock the base images")
    sha = git(project, "rev-parse", "HEAD")[:12]

    built = run_cli(["run", "--json"], project)
    assert built.code == 0, built.output
    before = images_of(built.stdout)
    assert plain_peek.files(f"{namespace}/app", f"sha-{sha}")["up.txt"] == b"one\n"

    # The upstream tag moves: the run stays on the locked digest (nothing built, nothing moved) ...
    push_upstream(tmp_path / "upstream", base, "two\n")
    second = plain_peek.digest(f"{namespace}-upstream/base", "1")
    assert second != first
    held = run_cli(["run", "--json"], project)
    assert held.code == 0, held.output
    assert built_steps(held.stderr) == []
    assert {k: v["digest"] for k, v in images_of(held.stdout).items()} == {k: v["digest"] for k, v in before.items()}
    for name in ("app", "web", "tool"):
        assert plain_peek.digest(f"{namespace}/{name}", f"sha-{sha}") == before[name]["digest"]
    assert plain_peek.files(f"{namespace}/app", f"sha-{sha}")["up.txt"] == b"one\n"

    # ... and `bases` says the lock is behind.
    behind = json.loads(run_cli(["bases", "--json"], project).stdout)
    assert behind == {"bases": [row | {"current": second, "locked": first, "images": ["shop/app"]}]}

    # `--update` moves it, says what moved and what that rebuilds; a second one leaves the file alone.
    moved = run_cli(["bases", "--update"], project)
    assert moved.code == 0, moved.output
    assert moved.stdout.splitlines() == [
        f"{base} {platform} {first} → {second}",
        "rebuilds: shop/app (then their dependants: shop/web)",
        "wrote pipelines.lock (1 base(s))",
    ]
    assert lock.read_text().splitlines() == [*locked_lines, f"  digest: {second}"]
    written = lock.stat().st_mtime_ns
    again = run_cli(["bases", "--update"], project)
    assert again.stdout.splitlines() == ["pipelines.lock: up to date (1 base(s)); left untouched"]
    assert lock.stat().st_mtime_ns == written
    git(project, "commit", "-qam", "Update the base images")
    sha = git(project, "rev-parse", "HEAD")[:12]

    # The commit rebuilds exactly the images on the base and their dependants, on the new digest.
    rebuilt = run_cli(["run", "--json"], project)
    assert rebuilt.code == 0, rebuilt.output
    after = images_of(rebuilt.stdout)
    assert {k for k, v in after.items() if not v["reused"]} == {"app", "web"}
    assert after["tool"]["digest"] == before["tool"]["digest"]
    assert after["app"]["digest"] != before["app"]["digest"]
    app_files = plain_peek.files(f"{namespace}/app", f"sha-{sha}")
    assert app_files["up.txt"] == b"two\n"
    assert plain_peek.files(f"{namespace}/web", f"sha-{sha}")["up.txt"] == b"two\n"


def test_run_locked_refuses_a_base_the_lock_does_not_name_and_pushes_nothing(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    registry = services.plain_registry
    base, other = two_upstreams(tmp_path, registry, namespace)
    project = tmp_path / "project"
    write_project(
        project,
        shop_config(f"{registry}/{namespace}", ("app",)),
        {"app": f"FROM {base}\nCOPY Dockerfile /app\n"},
    )
    init_git(project)
    assert run_cli(["bases", "--update"], project).code == 0
    platform = default_platform()

    # A second image on a base the lock does not name: refused before anything is looked up or built.
    commit_files(
        project,
        {
            "pipelines.yaml": (project / "pipelines.yaml").read_text() + "      extra: {context: images/extra}\n",
            "images/extra/Dockerfile": f"FROM {other}\nCOPY Dockerfile /extra\n",
        },
    )
    refused = run_cli(["run", "--locked"], project)
    assert refused.code == 2, refused.output
    assert refused.stderr.splitlines() == [
        f"error: shop/extra: images/extra/Dockerfile:1: base image {other} ({platform}) is not in pipelines.lock; "
        "run `pipeline bases --update` and commit the lock (refused by --locked)"
    ]
    assert plain_peek.all_tags(f"{namespace}/app") == set()
    assert plain_peek.all_tags(f"{namespace}/extra") == set()

    # No lock at all: the same refusal, saying so.
    (project / "pipelines.lock").unlink()
    no_lock = run_cli(["run", "--locked"], project)
    assert no_lock.code == 2, no_lock.output
    assert no_lock.stderr.splitlines() == [
        f"error: shop/app: images/app/Dockerfile:1: base image {base} ({platform}) is not in pipelines.lock "
        "(there is no lock file); run `pipeline bases --update` and commit the lock (refused by --locked)"
    ]
    assert plain_peek.all_tags(f"{namespace}/app") == set()

    # Without --locked, a base the lock does not name floats on the registry's digest, with a warning.
    git(project, "checkout", "pipelines.lock")  # the committed lock: only the first base
    assert other not in (project / "pipelines.lock").read_text()
    sha = git(project, "rev-parse", "HEAD")[:12]
    floated = run_cli(["run", "--json"], project)
    assert floated.code == 0, floated.output
    current = plain_peek.digest(f"{namespace}-upstream/other", "1")
    assert (
        f"warning: base image {other} ({platform}) is not in pipelines.lock: building on the registry's {current}; "
        "run `pipeline bases --update` to lock it"
    ) in floated.stderr.splitlines()
    assert plain_peek.files(f"{namespace}/extra", f"sha-{sha}")["up.txt"] == b"other\n"
    # The report says which base floated: not locked, and not in the existing lock.
    reported = {name: image["bases"] for name, image in images_of(floated.stdout).items()}
    assert [(b["reference"], b["digest"], b["locked"], b["not_in_lock"]) for b in reported["extra"]] == [
        (other, current, False, True)
    ]
    assert [(b["reference"], b["locked"], b["not_in_lock"]) for b in reported["app"]] == [(base, True, False)]
