"""Release tag semantics, `pipeline release` and `pipeline promote` against the real registries."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers import SHOP_IMAGES, CliResult, built_steps, git, init_git, run_cli, shop_project
from tests.integration.conftest import RegistryPeek, Services


def break_worker(root: Path) -> None:
    """worker's build fails from now on (base and app still build)."""
    dockerfile = root / "images/worker/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN false\n")


def commit_change(root: Path, marker: str, message: str | None = None) -> None:
    """A real change to the base (so every image's digest changes), committed."""
    dockerfile = root / "images/base/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + f"RUN echo {marker} > /marker\n")
    git(root, "commit", "-qam", message or f"change {marker}")


def shop(root: Path, services: Services, namespace: str, images: tuple[str, ...] = SHOP_IMAGES) -> str:
    """The unsigned shop under the plain registry, committed; HEAD's sha."""
    shop_project(root, f"{services.plain_registry}/{namespace}", sign=False, images=images)
    return init_git(root)


def released(root: Path, services: Services, namespace: str, *args: str) -> str:
    """The shop committed and published by `pipeline ARGS` (`run --version 1.0.0`, `release ...`); HEAD's sha."""
    sha = shop(root, services, namespace)
    assert run_cli(list(args), root).code == 0
    return sha


def snapshot(peek: RegistryPeek, namespace: str) -> dict[str, dict[str, str | None]]:
    """Every tag of every image, with the digest it points at."""
    return {
        name: {tag: peek.digest(f"{namespace}/{name}", tag) for tag in sorted(peek.tags(f"{namespace}/{name}"))}
        for name in ("base", "app", "worker")
    }


def test_backport_moves_its_line_but_not_latest(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    released(tmp_path, services, namespace, "run", "--version", "1.4.2")
    commit_change(tmp_path, "two")
    assert run_cli(["run", "--version", "2.0.0"], tmp_path).code == 0
    commit_change(tmp_path, "backport")
    result = run_cli(["run", "--version", "1.4.3", "--json"], tmp_path)
    assert result.code == 0, result.output

    app = f"{namespace}/app"
    new, two, old = (plain_peek.digest(app, t) for t in ("1.4.3", "2.0.0", "1.4.2"))
    assert len({new, two, old}) == 3
    assert plain_peek.digest(app, "1.4") == new
    assert plain_peek.digest(app, "1") == new
    assert plain_peek.digest(app, "latest") == two
    assert plain_peek.digest(app, "2.0") == two and plain_peek.digest(app, "2") == two
    assert plain_peek.digest(app, "1.4.2") == old  # release tags never move
    changes = [c for c in json.loads(result.stdout)["tag_changes"] if c["image"] == "shop/app"]
    latest = next(c for c in changes if c["tag"] == "latest")
    assert latest["action"] == "stays"
    assert latest["reason"] == "2.0.0 is higher than 1.4.3 among the stable versions"


def test_existing_release_tag_at_another_digest_blocks_with_nothing_moved(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    released(tmp_path, services, namespace, "run", "--version", "1.0.0")
    before = snapshot(plain_peek, namespace)

    # Another commit released under the same version: refused before anything is built.
    commit_change(tmp_path, "other")
    result = run_cli(["run", "--version", "1.0.0"], tmp_path)
    assert result.code == 1
    assert "Traceback" not in result.output and not built_steps(result.output)
    message = result.output.strip().splitlines()[-1]
    assert message.startswith("error: release tags are immutable: ")
    assert f"{services.plain_registry}/{namespace}/base:1.0.0 already exists at {before['base']['1.0.0']}" in message
    assert snapshot(plain_peek, namespace) == before

    # Same commit, but uncommitted changes: caught after the build by digest, still nothing moved.
    git(tmp_path, "reset", "-q", "--hard", "HEAD~1")
    dockerfile = tmp_path / "images/app/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo dirty > /dirty\n")
    result = run_cli(["run", "--version", "1.0.0"], tmp_path)
    assert result.code == 1
    old_app = before["app"]["1.0.0"]
    assert f"{services.plain_registry}/{namespace}/app:1.0.0 is {old_app}, this run built sha256:" in result.output
    after = snapshot(plain_peek, namespace)
    for name, tags in after.items():  # a dirty build is pushed under its own sha-…-dirty tag only
        dirty = [t for t in tags if t.endswith("-dirty")]
        assert len(dirty) == 1, name
        del tags[dirty[0]]
    assert after == before

    # --force overrides, loudly.
    forced = run_cli(["run", "--version", "1.0.0", "--force"], tmp_path)
    assert forced.code == 0, forced.output
    assert "warning" in forced.stderr and "overwriting release tag" in forced.stderr
    assert plain_peek.digest(f"{namespace}/app", "1.0.0") != old_app


def test_a_versioned_run_of_a_commit_moves_none_of_its_build_tags(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """Before, app (whose build arg renders {{ version }}) was rebuilt by the --version run and its
    `sha-<commit>` moved from the unversioned build to the 1.0.0 one."""
    app_dockerfile = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG VERSION\nRUN echo $VERSION > /version\n"
    config = shop_project(tmp_path, f"{services.plain_registry}/{namespace}", sign=False, app_dockerfile=app_dockerfile)
    plain = '        build_args: {BASE_IMAGE: "{{ images.base }}"}\n'
    text = config.read_text()
    config.write_text(text.replace(plain, plain.replace('}}"}', '}}", VERSION: "{{ version }}"}'), 1))
    sha = init_git(tmp_path)[:12]
    assert run_cli(["run"], tmp_path).code == 0
    before = snapshot(plain_peek, namespace)
    assert all(set(tags) == {f"sha-{sha}"} for tags in before.values()), before

    result = run_cli(["run", "--version", "1.0.0"], tmp_path)
    assert result.code == 0, result.output
    after = snapshot(plain_peek, namespace)
    for name, tags in before.items():  # no tag moved
        assert {tag: after[name][tag] for tag in tags} == tags, name
    # base and worker do not use the version: the unversioned build is the release (reused, not rebuilt).
    for name in ("base", "worker"):
        assert after[name]["1.0.0"] == after[name][f"sha-{sha}"] == before[name][f"sha-{sha}"]
        assert f"sha-{sha}-1.0.0" not in after[name]
    # app does: the 1.0.0 build is another image, under its own build tag.
    assert after["app"][f"sha-{sha}-1.0.0"] == after["app"]["1.0.0"] != before["app"][f"sha-{sha}"]
    assert (
        plain_peek.image_config(f"{namespace}/app", f"sha-{sha}")["config"]["Labels"][
            "org.opencontainers.image.version"
        ]
        == "dev"
    )

    # Both runs again: every tag stays where it is (the input cache reuses each build under its own tag).
    assert run_cli(["run"], tmp_path).code == 0
    assert run_cli(["run", "--version", "1.0.0"], tmp_path).code == 0
    assert snapshot(plain_peek, namespace) == after


def test_rerun_of_the_same_release_changes_nothing(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    sha = shop(tmp_path, services, namespace)
    assert run_cli(["run", "--version", "3.1.4"], tmp_path).code == 0
    before = snapshot(plain_peek, namespace)
    # Like a fresh CI runner: no local images, no layer cache for this project.
    for name in ("base", "app", "worker"):
        subprocess.run(
            ["docker", "rmi", "-f", f"{services.plain_registry}/{namespace}/{name}:sha-{sha[:12]}"],
            capture_output=True,
            check=False,
        )
    again = run_cli(["run", "--version", "3.1.4", "--json"], tmp_path)
    assert again.code == 0, again.output
    assert not built_steps(again.stderr)  # nothing rebuilt: this commit's release is reused
    assert again.stderr.count(" reuse ") == 3
    assert snapshot(plain_peek, namespace) == before
    actions = {c["action"] for c in json.loads(again.stdout)["tag_changes"]}
    assert actions == {"unchanged"}


def test_prerelease_moves_nothing_floating(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    released(tmp_path, services, namespace, "run", "--version", "1.0.0")
    before = snapshot(plain_peek, namespace)
    commit_change(tmp_path, "rc")
    result = run_cli(["run", "--version", "1.1.0-rc.1"], tmp_path)
    assert result.code == 0, result.output
    after = snapshot(plain_peek, namespace)
    for name in ("base", "app", "worker"):
        new_tags = set(after[name]) - set(before[name])
        assert len(new_tags) == 2 and "1.1.0-rc.1" in new_tags  # the rc and its sha- tag only
        assert {t: after[name][t] for t in before[name]} == before[name]


def test_one_failing_image_leaves_every_floating_and_release_tag(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    released(tmp_path, services, namespace, "run", "--version", "1.0.0")
    before = snapshot(plain_peek, namespace)

    break_worker(tmp_path)
    commit_change(tmp_path, "broken")
    result = run_cli(["run", "--version", "1.1.0", "--keep-going", "--report", "r.json"], tmp_path)
    assert result.code == 1
    status = {i["name"]: i["status"] for i in json.loads((tmp_path / "r.json").read_text())["images"]}
    assert status == {"base": "succeeded", "app": "succeeded", "worker": "failed"}
    after = snapshot(plain_peek, namespace)
    for name in ("base", "app", "worker"):
        assert "1.1.0" not in after[name]
        for tag in ("1.0.0", "1.0", "1", "latest"):
            assert after[name][tag] == before[name][tag]


def test_promote_from_plain_to_authenticated_registry(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, auth_peek: RegistryPeek
) -> None:
    released(tmp_path, services, namespace, "run", "--version", "1.0.0")
    tested = plain_peek.digest(f"{namespace}/app", "1.0.0")
    env = {"DOCKER_CONFIG": str(services.auth_docker_config)}

    source = f"{services.plain_registry}/{namespace}/app:1.0.0"
    dest = f"{services.auth_registry}/{namespace}/prod-app"
    result = run_cli(["promote", source, dest, "--version", "1.0.0", "--json"], tmp_path, env=env)
    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    assert data["digest"] == tested
    assert data["blobs"]["copied"] >= 2
    assert auth_peek.tags(f"{namespace}/prod-app") == {"1.0.0", "1.0", "1", "latest"}
    assert {auth_peek.digest(f"{namespace}/prod-app", t) for t in ("1.0.0", "latest")} == {tested}
    assert plain_peek.layers(f"{namespace}/app", "1.0.0") == auth_peek.layers(f"{namespace}/prod-app", "1.0.0")
    assert services.auth_password not in result.output

    # Within one registry, blobs are mounted, not copied; by digest works too.
    same = run_cli(
        [
            "promote",
            f"{services.plain_registry}/{namespace}/app@{tested}",
            f"{services.plain_registry}/{namespace}/app2",
            "--version",
            "1.0.0",
            "--json",
        ],
        tmp_path,
    )
    assert same.code == 0, same.output
    blobs = json.loads(same.stdout)["blobs"]
    assert blobs["mounted"] >= 2 and blobs["copied"] == 0

    # Without credentials the authenticated registry refuses, clearly.
    empty = tmp_path / "empty"
    empty.mkdir()
    denied = run_cli(["promote", source, dest, "--version", "1.0.1"], tmp_path, env={"DOCKER_CONFIG": str(empty)})
    assert denied.code == 1
    assert f"registry {services.auth_registry} requires credentials" in denied.output

    # `tags` shows the semver view of what landed.
    view = run_cli(["tags", dest, "--json"], tmp_path, env=env)
    assert view.code == 0, view.output
    versions = json.loads(view.stdout)["versions"]
    sha = git(tmp_path, "rev-parse", "HEAD")
    assert versions == [
        {
            "version": "1.0.0",
            "tag": "1.0.0",
            "versions": ["1.0.0"],
            "version_tags": ["1.0.0"],
            "digest": tested,
            "also": ["1", "1.0", "latest"],
            "platforms": [],  # one image, not an index: no platforms
            "built_from": {"version": "1.0.0", "revision": sha},  # its labels came along
        }
    ]
    # With a variant suffix the versions stay versions; the tags carry the suffix.
    windows = run_cli(["promote", source, dest, "--version", "1.0.0", "--suffix", "-windows"], tmp_path, env=env)
    assert windows.code == 0, windows.output
    view = run_cli(["tags", dest, "--suffix", "-windows", "--json"], tmp_path, env=env)
    (row,) = json.loads(view.stdout)["versions"]
    assert (row["version"], row["tag"], row["versions"], row["version_tags"]) == (
        "1.0.0",
        "1.0.0-windows",
        ["1.0.0"],
        ["1.0.0-windows"],
    )


def test_release_bump_auto_from_conventional_commits(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop(tmp_path, services, namespace)
    remote = tmp_path.parent / f"{tmp_path.name}-remote.git"
    git(tmp_path.parent, "init", "-q", "--bare", str(remote))
    git(tmp_path, "remote", "add", "origin", str(remote))

    first = run_cli(["release", "--version", "1.2.0"], tmp_path)
    assert first.code == 0, first.output
    assert git(tmp_path, "cat-file", "-t", "v1.2.0") == "tag"  # annotated

    commit_change(tmp_path, "fix", "fix: handle empty carts")
    commit_change(tmp_path, "feat", "feat(api): add wishlist endpoint")
    dry = run_cli(["release", "--bump", "auto", "--dry-run"], tmp_path)
    assert dry.code == 0, dry.output
    assert dry.stdout.splitlines()[0] == (
        "version 1.3.0 (--bump auto: minor from Conventional Commits since v1.2.0); git tag v1.3.0"
    )
    assert "1.3                      move     1.3.0 is the highest of the 1.3.x" not in dry.stdout
    assert "1.3                      create   1.3.0 is the highest of the 1.3.x" in dry.stdout
    assert "latest                   move     1.3.0 is the highest of the stable versions" in dry.stdout
    assert "1.3.0" not in plain_peek.tags(f"{namespace}/app")  # a dry run changes nothing
    assert git(tmp_path, "tag", "--list", "v1.3.0") == ""

    (tmp_path / "untracked.txt").write_text("x")
    dirty = run_cli(["release", "--bump", "auto"], tmp_path)
    assert dirty.code == 2
    assert "uncommitted changes (untracked.txt)" in dirty.output
    (tmp_path / "untracked.txt").unlink()

    result = run_cli(["release", "--bump", "auto", "--push-tag"], tmp_path)
    assert result.code == 0, result.output
    assert plain_peek.digest(f"{namespace}/app", "1.3.0") == plain_peek.digest(f"{namespace}/app", "latest")
    assert git(remote, "tag", "--list") == "v1.3.0"


def test_failed_release_removes_its_git_tag(tmp_path: Path, services: Services, namespace: str) -> None:
    shop_project(tmp_path, f"{services.plain_registry}/{namespace}", sign=False)
    break_worker(tmp_path)
    init_git(tmp_path)
    result = run_cli(["release", "--bump", "minor"], tmp_path)
    assert result.code == 1
    assert "removed git tag v0.1.0" in result.output
    assert git(tmp_path, "tag", "--list") == ""


def with_origin(root: Path) -> Path:
    """A bare repository as `origin`, like a clone's."""
    remote = root.parent / f"{root.name}-remote.git"
    git(root.parent, "init", "-q", "--bare", str(remote))
    git(root, "remote", "add", "origin", str(remote))
    return remote


def tags_on_head(root: Path) -> list[str]:
    return git(root, "tag", "--points-at", "HEAD").split()


def all_tags(peek: RegistryPeek, repo_path: str) -> dict[str, str | None]:
    """Every tag of a repository (the input cache's too) with the digest it names."""
    return {tag: peek.digest(repo_path, tag) for tag in sorted(peek.all_tags(repo_path))}


def one_line_error(result: CliResult) -> str:
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.stderr.strip().splitlines()[-1] == line
    return line


def test_push_tag_without_origin_is_refused_before_anything_is_published(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """Before, the dry run passed and the real run moved 0.2.1, 0.2, 0 and latest, then failed to push."""
    shop(tmp_path, services, namespace, images=("base",))
    assert run_cli(["release", "--version", "0.2.0"], tmp_path).code == 0
    commit_change(tmp_path, "next", "fix: next")
    before = all_tags(plain_peek, f"{namespace}/base")
    assert {"0.2.0", "0.2", "0", "latest"} <= set(before)

    expected = (
        "error: --push-tag: the repository has no remote 'origin' to push git tag v0.2.1 to; "
        "add one (git remote add origin URL) or release without --push-tag"
    )
    dry = run_cli(["release", "--bump", "patch", "--push-tag", "--dry-run"], tmp_path)
    assert dry.code == 2, dry.output
    assert one_line_error(dry) == expected
    real = run_cli(["release", "--bump", "patch", "--push-tag"], tmp_path)
    assert real.code == 2, real.output
    assert one_line_error(real) == expected
    assert not built_steps(real.stderr)
    assert all_tags(plain_peek, f"{namespace}/base") == before  # no tag created or moved
    assert git(tmp_path, "tag", "--list").split() == ["v0.2.0"]


def test_push_tag_already_on_origin_from_another_writer_is_refused_before_anything_is_published(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop(tmp_path, services, namespace, images=("base",))
    remote = with_origin(tmp_path)
    git(tmp_path, "push", "-q", "origin", "main")
    # Another release manager's clone cuts v0.1.0 from another commit and pushes the tag first.
    other = tmp_path.parent / f"{tmp_path.name}-other"
    git(tmp_path.parent, "clone", "-q", str(remote), str(other))
    git(other, "commit", "-q", "--allow-empty", "-m", "feat: theirs")
    git(other, "tag", "-a", "v0.1.0", "-m", "Release 0.1.0")
    git(other, "push", "-q", "origin", "v0.1.0")
    theirs = git(other, "rev-parse", "HEAD")

    dry = run_cli(["release", "--bump", "minor", "--push-tag", "--dry-run"], tmp_path)
    assert dry.code == 2, dry.output
    message = one_line_error(dry)
    assert message.startswith(
        f"error: --push-tag: git tag v0.1.0 already exists on remote 'origin' (on commit {theirs[:12]}), "
        "not in this clone: another release was cut as v0.1.0"
    )
    real = run_cli(["release", "--bump", "minor", "--push-tag"], tmp_path)
    assert real.code == 2, real.output
    assert one_line_error(real) == message
    assert all_tags(plain_peek, f"{namespace}/base") == {}  # nothing built, pushed or tagged
    assert git(tmp_path, "tag", "--list") == ""
    assert git(remote, "rev-parse", "v0.1.0^{commit}") == theirs


def test_rerunning_a_bump_release_on_its_commit_changes_nothing(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop(tmp_path, services, namespace)
    remote = with_origin(tmp_path)
    assert run_cli(["release", "--version", "0.1.0"], tmp_path).code == 0
    commit_change(tmp_path, "next")

    first = run_cli(["release", "--bump", "patch", "--push-tag"], tmp_path)
    assert first.code == 0, first.output
    assert tags_on_head(tmp_path) == ["v0.1.1"]
    before = snapshot(plain_peek, namespace)
    assert "0.1.1" in before["app"]

    # The same command again, as a user would after a CI retry: that release, not the next one.
    again = run_cli(["release", "--bump", "patch", "--push-tag"], tmp_path)
    assert again.code == 0, again.output
    assert "re-run of release 0.1.1: v0.1.1 is already on HEAD" in again.stderr
    assert tags_on_head(tmp_path) == ["v0.1.1"]
    assert git(tmp_path, "tag", "--list").split() == ["v0.1.0", "v0.1.1"]
    assert snapshot(plain_peek, namespace) == before
    assert not built_steps(again.stderr)  # this commit's release images are reused, not rebuilt

    # A re-run finishes what is unfinished: origin lost the tag, --push-tag pushes it again.
    git(remote, "tag", "-d", "v0.1.1")
    finish = run_cli(["release", "--bump", "minor", "--push-tag"], tmp_path)
    assert finish.code == 0, finish.output
    assert git(remote, "tag", "--list").split() == ["v0.1.1"]
    assert git(tmp_path, "tag", "--list").split() == ["v0.1.0", "v0.1.1"]
    assert snapshot(plain_peek, namespace) == before


def test_a_release_left_with_only_its_git_tag_is_finished_by_the_same_command(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """A run killed after tagging HEAD (before anything was published) leaves v0.0.1 behind; the same
    command publishes 0.0.1 instead of cutting 0.0.2."""
    shop(tmp_path, services, namespace)
    git(tmp_path, "tag", "-a", "v0.0.1", "-m", "Release 0.0.1")
    result = run_cli(["release", "--bump", "patch"], tmp_path)
    assert result.code == 0, result.output
    assert git(tmp_path, "tag", "--list").split() == ["v0.0.1"]
    for name in ("base", "app", "worker"):
        tags = plain_peek.tags(f"{namespace}/{name}")
        assert {"0.0.1", "0.0", "0", "latest"} <= tags and not any(t.startswith("0.0.2") for t in tags)


def test_rerunning_a_prerelease_on_its_commit_changes_nothing(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop(tmp_path, services, namespace)
    first = run_cli(["release", "--bump", "minor", "--pre", "rc"], tmp_path)
    assert first.code == 0, first.output
    assert tags_on_head(tmp_path) == ["v0.1.0-rc.1"]
    before = snapshot(plain_peek, namespace)

    again = run_cli(["release", "--bump", "minor", "--pre", "rc"], tmp_path)
    assert again.code == 0, again.output
    assert "re-run of release 0.1.0-rc.1: v0.1.0-rc.1 is already on HEAD" in again.stderr
    assert tags_on_head(tmp_path) == ["v0.1.0-rc.1"]
    assert snapshot(plain_peek, namespace) == before

    # The tested rc becomes the release: a stable request is another kind, so it is cut as usual.
    final = run_cli(["release", "--bump", "minor"], tmp_path)
    assert final.code == 0, final.output
    assert sorted(tags_on_head(tmp_path)) == ["v0.1.0", "v0.1.0-rc.1"]
    assert plain_peek.digest(f"{namespace}/app", "0.1.0") == before["app"]["0.1.0-rc.1"]
    released = snapshot(plain_peek, namespace)

    # HEAD is released: it is no candidate for anything any more.
    late = run_cli(["release", "--bump", "patch", "--pre", "rc"], tmp_path)
    assert late.code == 0, late.output  # rc.1 is still on HEAD: a re-run of it
    assert "re-run of release 0.1.0-rc.1" in late.stderr
    assert snapshot(plain_peek, namespace) == released


def test_a_prerelease_of_a_commit_released_as_stable_is_refused(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    released(tmp_path, services, namespace, "release", "--bump", "minor")
    before = snapshot(plain_peek, namespace)
    for args in (["--bump", "patch", "--pre", "rc"], ["--bump", "patch", "--pre", "rc", "--dry-run"]):
        refused = run_cli(["release", *args], tmp_path)
        assert refused.code == 2, refused.output
        assert refused.stderr.strip().splitlines()[-1] == (
            "error: HEAD is already released as v0.1.0; a prerelease (--pre rc) after it would name the same "
            "commit: commit the next change first, or give the version with --version X.Y.Z-rc.N"
        )
    assert git(tmp_path, "tag", "--list").split() == ["v0.1.0"]
    assert snapshot(plain_peek, namespace) == before


def test_rerunning_bump_auto_on_a_released_commit_is_that_release(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    released(tmp_path, services, namespace, "release", "--version", "1.2.0")
    commit_change(tmp_path, "fix", "fix: handle empty carts")
    first = run_cli(["release", "--bump", "auto"], tmp_path)
    assert first.code == 0, first.output
    assert tags_on_head(tmp_path) == ["v1.2.1"]
    before = snapshot(plain_peek, namespace)

    dry = run_cli(["release", "--bump", "auto", "--dry-run"], tmp_path)
    assert dry.code == 0, dry.output
    assert dry.stdout.splitlines()[0] == (
        "version 1.2.1 (re-run of release 1.2.1: v1.2.1 is already on HEAD; only what is unfinished is done); "
        "git tag v1.2.1"
    )
    assert "1.2.1                    unchanged the release tag" in dry.stdout
    assert "latest                   unchanged 1.2.1 is the highest of the stable versions" in dry.stdout

    again = run_cli(["release", "--bump", "auto", "--json"], tmp_path)
    assert again.code == 0, again.output
    assert json.loads(again.stdout)["release"]["version"] == "1.2.1"
    assert {c["action"] for c in json.loads(again.stdout)["tag_changes"]} == {"unchanged"}
    assert tags_on_head(tmp_path) == ["v1.2.1"]
    assert snapshot(plain_peek, namespace) == before


def last_line(result: CliResult) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_dry_run_refuses_what_the_real_run_refuses_in_git(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop(tmp_path, services, namespace)

    (tmp_path / "untracked.txt").write_text("x")
    dry = run_cli(["release", "--bump", "minor", "--dry-run"], tmp_path)
    real = run_cli(["release", "--bump", "minor"], tmp_path)
    assert (dry.code, real.code) == (2, 2), dry.output + real.output
    assert (
        last_line(dry)
        == last_line(real)
        == ("error: the working tree has uncommitted changes (untracked.txt); commit or stash them first")
    )
    assert dry.stdout.splitlines()[0] == "version 0.1.0 (--bump minor from no previous release (0.0.0)); git tag v0.1.0"
    (tmp_path / "untracked.txt").unlink()

    # v0.1.0 already names another commit.
    git(tmp_path, "tag", "-a", "v0.1.0", "-m", "Release 0.1.0")
    commit_change(tmp_path, "other")
    dry = run_cli(["release", "--version", "0.1.0", "--dry-run"], tmp_path)
    real = run_cli(["release", "--version", "0.1.0"], tmp_path)
    assert (dry.code, real.code) == (2, 2), dry.output + real.output
    assert last_line(dry) == last_line(real)
    assert last_line(real).startswith("error: git tag v0.1.0 already exists on commit ")
    assert plain_peek.tags(f"{namespace}/app") == set()


def test_dry_run_refuses_a_registry_release_tag_of_another_commit_like_the_real_run(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    released(tmp_path, services, namespace, "run", "--version", "1.0.0")  # released without a git tag
    commit_change(tmp_path, "other")
    before = snapshot(plain_peek, namespace)

    dry = run_cli(["release", "--version", "1.0.0", "--dry-run"], tmp_path)
    real = run_cli(["release", "--version", "1.0.0"], tmp_path)
    assert (dry.code, real.code) == (1, 1), dry.output + real.output
    assert last_line(dry) == last_line(real)
    assert last_line(real).startswith("error: release tags are immutable: ")
    assert "built from commit" in last_line(real)
    assert dry.stdout.splitlines()[0] == "version 1.0.0 (--version 1.0.0); git tag v1.0.0"
    assert snapshot(plain_peek, namespace) == before
    assert git(tmp_path, "tag", "--list") == ""

    # Several refusals: the dry run names each; the first one the release meets decides the exit code.
    (tmp_path / "untracked.txt").write_text("x")
    both = run_cli(["release", "--version", "1.0.0", "--dry-run"], tmp_path)
    assert both.code == 2, both.output
    assert (
        last_line(both) == "error: the working tree has uncommitted changes (untracked.txt); commit or stash them first"
    )
    assert f"the release would also refuse: {last_line(real).removeprefix('error: ')}" in both.stderr


def test_dry_run_refuses_an_unreachable_registry_like_the_real_run(tmp_path: Path, services: Services) -> None:
    shop_project(tmp_path, "127.0.0.1:9/nothing", sign=False)  # the discard port: nothing listens there
    init_git(tmp_path)
    dry = run_cli(["release", "--version", "1.0.0", "--dry-run"], tmp_path)
    real = run_cli(["release", "--version", "1.0.0"], tmp_path)
    assert (dry.code, real.code) == (1, 1), dry.output + real.output
    assert last_line(dry) == last_line(real)
    assert "cannot reach registry 127.0.0.1:9" in last_line(real)
    assert dry.stdout.splitlines()[0] == "version 1.0.0 (--version 1.0.0); git tag v1.0.0"
    assert git(tmp_path, "tag", "--list") == ""
