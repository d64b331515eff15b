"""`pipeline changed` keeps what it needs of the checked config in the git directory
(.git/pipeline/changed-cache.json). A hit must say exactly what a miss says, and anything that could
change the answer (the file's bytes, a context or Dockerfile, the branch its tags are checked with)
must make it a miss, so the loader gives the new answer or its error: never a stale answer."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

import pipeline
from pipeline.triggers import changed_cache
from tests.helpers import commit_files, git, init_git, shop_config, write_project
from tests.unit.config.test_config_errors import run_main

CONFIG = (
    shop_config("127.0.0.1:5000/cached", ("base",), network=None)
    + """\
      app:
        context: images/app
        build_args: {BASE: "{{ images.base }}"}
        platforms: [linux/amd64, linux/arm64]
"""
)
IMAGES = {"base": "FROM scratch\n", "app": "ARG BASE\nFROM ${BASE}\n", "v1": "FROM scratch\n", "v2": "FROM scratch\n"}
TEXT = ["changed", "--since", "HEAD~1"]
JSON = [*TEXT, "--json"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_project(tmp_path, CONFIG, IMAGES)
    (tmp_path / "images/app/.dockerignore").write_text("*.md\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared/app.cfg").write_text("v1\n")
    init_git(tmp_path)
    commit_files(
        tmp_path, {"images/base/new.txt": "new\n", "images/app/README.md": "ignored\n", "shared/app.cfg": "v2\n"}
    )
    return tmp_path


def cache_of(root: Path) -> Path:
    # A linked worktree's git directory is under the main one's .git/worktrees/.
    return Path(git(root, "rev-parse", "--absolute-git-dir").strip()) / "pipeline/changed-cache.json"


Run = tuple[int, str]


@pytest.fixture(autouse=True)
def outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CI's branch and pull request are part of the plan: these tests run as on a laptop.
    for marker in ("GITHUB_ACTIONS", "GITLAB_CI", "TF_BUILD"):
        monkeypatch.delenv(marker, raising=False)


def written(root: Path) -> tuple[int, int]:
    """Which write of the cache file is there: each write replaces it by a new file (a new inode)."""
    info = cache_of(root).stat()
    return info.st_ino, info.st_mtime_ns


def cached(args: list[str], root: Path, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch) -> Run:
    """The answer, asserted to come from the cache: the run after the one that wrote it prints the same
    and leaves the file as it was (a miss rewrites it; a cache never read or never written fails here)."""
    first = run_main(args, capsys, mp, root)
    before = written(root)
    hit = run_main(args, capsys, mp, root)
    assert hit == first
    assert written(root) == before, "the cache was not read: the second run rewrote it"
    return hit


def uncached(args: list[str], root: Path, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch) -> Run:
    """The answer without a cache (and the one a miss gives): the cache file removed first."""
    cache_of(root).unlink(missing_ok=True)
    return run_main(args, capsys, mp, root)


def as_uncached(args: list[str], root: Path, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch) -> Run:
    """The answer with the cache as it is, asserted to be the answer without it (the file removed)."""
    answer = run_main(args, capsys, mp, root)
    assert answer == uncached(args, root, capsys, mp)
    return answer


def test_a_hit_prints_byte_for_byte_what_the_miss_printed(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for args in (TEXT, JSON):
        miss = uncached(args, project, capsys, monkeypatch)
        written = cache_of(project).stat().st_mtime_ns
        hit = run_main(args, capsys, monkeypatch, project)
        assert miss[0] == 0, miss[1]
        assert hit == miss
        assert cache_of(project).stat().st_mtime_ns == written  # a hit reads it, never rewrites it
    rows = json.loads(run_main(JSON, capsys, monkeypatch, project)[1])["images"]
    assert [(r["image"], [v["name"] for v in r["variants"]]) for r in rows] == [
        ("shop/base", []),
        ("shop/app", ["linux-amd64", "linux-arm64"]),
    ]
    # Kept in the git directory: the work tree stays clean.
    assert git(project, "status", "--porcelain", "--ignored") == ""


def test_an_edited_pipelines_file_misses_and_gives_the_new_answer(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = cached(TEXT, project, capsys, monkeypatch)
    assert "shop/app" in before[1] and "shared/app.cfg" not in before[1]
    # One glob more, committed before the change compared: the answer must come from the new bytes.
    (project / "pipelines.yaml").write_text(CONFIG + "        paths: [shared/*.cfg]\n")
    commit_files(project, {})
    commit_files(project, {"shared/app.cfg": "v3\n"})
    old = written(project)
    after = run_main(TEXT, capsys, monkeypatch, project)
    assert written(project) != old  # a miss, which wrote the new entry
    assert after == uncached(TEXT, project, capsys, monkeypatch)
    assert after[1] == f"{'shop/app':<30} shared/app.cfg changed (paths: glob) [linux-amd64, linux-arm64]\n"


def test_a_corrupt_cache_is_a_miss_and_is_rewritten(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = uncached(JSON, project, capsys, monkeypatch)
    entries = json.loads(cache_of(project).read_text())["entries"]
    [key] = entries
    wrong_types = {"format": changed_cache.FORMAT, "entries": {key: {**entries[key], "images": [{"key": 1}]}}}
    for garbage in (
        "{not json",
        json.dumps({"format": changed_cache.FORMAT, "entries": []}),
        json.dumps(wrong_types),
        "\0\0\0",
    ):
        cache_of(project).write_text(garbage)
        assert run_main(JSON, capsys, monkeypatch, project) == expected, garbage
        assert json.loads(cache_of(project).read_text())["entries"] == entries
    assert cached(JSON, project, capsys, monkeypatch) == expected  # and the rewritten one is read again


def test_an_invalid_config_gives_the_loaders_error_never_the_cached_answer(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cached(TEXT, project, capsys, monkeypatch)[0] == 0
    (project / "pipelines.yaml").write_text(CONFIG.replace("context: images/base", "contxt: images/base"))
    broken = as_uncached(TEXT, project, capsys, monkeypatch)
    assert broken[0] == 2 and "unknown key 'contxt'" in broken[1]


def test_a_deleted_context_gives_the_loaders_error_though_the_file_is_unchanged(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cached(TEXT, project, capsys, monkeypatch)[0] == 0
    shutil.rmtree(project / "images/base")
    broken = as_uncached(TEXT, project, capsys, monkeypatch)
    assert broken[0] == 2 and "context directory" in broken[1] and "does not exist" in broken[1]


def test_a_context_symlink_moved_elsewhere_gives_the_new_contexts_changes(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan resolves contexts: the cache must notice a link now leading to another directory."""
    (project / "images/tools").symlink_to("v1")
    (project / "pipelines.yaml").write_text(CONFIG + "      tools: {context: images/tools}\n")
    commit_files(project, {})
    commit_files(project, {"images/v2/new.txt": "v2\n"})
    assert "shop/tools" not in cached(TEXT, project, capsys, monkeypatch)[1]  # tools is v1
    (project / "images/tools").unlink()
    (project / "images/tools").symlink_to("v2")
    old = written(project)
    moved = run_main(TEXT, capsys, monkeypatch, project)
    assert written(project) != old
    assert moved == uncached(TEXT, project, capsys, monkeypatch)
    assert f"{'shop/tools':<30} images/v2/new.txt changed" in moved[1]


def test_the_branch_its_tags_are_checked_with_is_part_of_the_key(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tag template naming the branch renders to a tag too long on a long branch: the plan's error,
    which a cache filled on a short branch must not hide."""
    (project / "pipelines.yaml").write_text(CONFIG + 'tags: {extra: ["{{ git.branch }}"], suffix: "-s"}\n')
    commit_files(project, {})
    commit_files(project, {"images/base/more.txt": "more\n"})
    assert cached(TEXT, project, capsys, monkeypatch)[0] == 0  # on main
    git(project, "checkout", "-qb", "b" * 128)
    long_branch = as_uncached(TEXT, project, capsys, monkeypatch)
    assert long_branch[0] == 2 and "renders to an invalid tag" in long_branch[1]


def test_dockerignore_files_are_read_on_every_run(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_files(project, {"images/app/notes.txt": "new\n"})
    assert f"{'shop/app':<30} images/app/notes.txt changed" in cached(TEXT, project, capsys, monkeypatch)[1]
    (project / "images/app/.dockerignore").write_text("*.md\n*.txt\n")  # not committed: only the context
    old = written(project)
    ignored = run_main(TEXT, capsys, monkeypatch, project)
    assert written(project) == old  # a hit: the new answer comes from the .dockerignore, read again
    assert ignored == uncached(TEXT, project, capsys, monkeypatch)
    assert ignored[1] == f"{'shop/app':<30} images/app/.dockerignore changed [linux-amd64, linux-arm64]\n"


def test_a_linked_worktree_keeps_its_own_cache(
    project: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    linked = tmp_path_factory.mktemp("linked") / "wt"
    git(project, "worktree", "add", "-q", str(linked), "-b", "other")
    (linked / "pipelines.yaml").write_text(CONFIG.replace("images/base", "images/v1"))
    expected = cached(TEXT, project, capsys, monkeypatch)
    elsewhere = cached(TEXT, linked, capsys, monkeypatch)
    assert (project / ".git/worktrees/wt/pipeline/changed-cache.json").is_file()
    assert run_main(TEXT, capsys, monkeypatch, project) == expected
    assert run_main(TEXT, capsys, monkeypatch, linked) == elsewhere != expected
    assert git(linked, "status", "--porcelain", "--", "*.json") == ""


PACKAGE = Path(pipeline.__file__).resolve().parent


def test_the_key_covers_the_installed_package() -> None:
    assert getattr(changed_cache, "CODE_ROOT", None) == PACKAGE


def test_other_pipeline_code_misses_though_its_version_is_the_same(
    project: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An upgrade may check more (a new error): its first run must load the config, not answer from an
    entry the old code wrote. pipeline's version stays "0.1.0" between releases, so the key covers the
    code itself; here a copy of the package stands in for the installed one, and one module changes."""
    installed = tmp_path_factory.mktemp("site") / "pipeline"
    shutil.copytree(PACKAGE, installed, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(changed_cache, "CODE_ROOT", installed, raising=False)
    expected = cached(TEXT, project, capsys, monkeypatch)
    module = installed / "plan.py"
    module.write_text(module.read_text() + "\n# the next release\n")
    old = written(project)
    assert run_main(TEXT, capsys, monkeypatch, project) == expected
    assert written(project) != old, "the new code answered from the old code's entry"
    info = module.stat()
    os.utime(module, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))  # the same bytes, reinstalled
    old = written(project)
    assert run_main(TEXT, capsys, monkeypatch, project) == expected
    assert written(project) != old


PR_CONFIG = CONFIG.replace(
    'build_args: {BASE: "{{ images.base }}"}', 'build_args: {BASE: "{{ images.base }}", PR: "{{ git.pr }}"}'
)


def test_a_pull_request_build_plans_as_a_run_does_and_outside_ci_gives_the_plans_error(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`changed` plans with the CI's pull request and branch as `plan` and `run` do (ci.checkout_of): in a
    pull request job {{ git.pr }} renders; outside one it is the plan's error, never the PR run's entry."""
    (project / "pipelines.yaml").write_text(PR_CONFIG)
    commit_files(project, {})
    commit_files(project, {"images/base/more.txt": "more\n"})
    outside = run_main(TEXT, capsys, monkeypatch, project)
    assert outside[0] == 2 and "no pull/merge request build" in outside[1]
    assert outside[1] == run_main(["plan", "--offline"], capsys, monkeypatch, project)[1]
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REF", "refs/pull/7/merge")
    monkeypatch.delenv("GITHUB_HEAD_REF", raising=False)
    in_pr = cached(TEXT, project, capsys, monkeypatch)
    assert in_pr[0] == 0 and f"{'shop/base':<30} images/base/more.txt changed" in in_pr[1]
    assert in_pr == uncached(TEXT, project, capsys, monkeypatch)
    run_main(TEXT, capsys, monkeypatch, project)  # the PR's entry, kept
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert run_main(TEXT, capsys, monkeypatch, project) == outside


def test_a_detached_ci_checkout_is_keyed_by_the_cis_branch(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI checks out a detached HEAD; the branch its variables name is the one tags are checked with
    (as `run --since` does), so a long CI branch gives the plan's error though a short one was cached."""
    (project / "pipelines.yaml").write_text(CONFIG + 'tags: {extra: ["{{ git.branch }}"], suffix: "-s"}\n')
    commit_files(project, {})
    commit_files(project, {"images/base/more.txt": "more\n"})
    git(project, "checkout", "-q", "--detach")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REF_TYPE", "branch")
    monkeypatch.setenv("GITHUB_REF", "refs/heads/short")
    monkeypatch.setenv("GITHUB_REF_NAME", "short")
    monkeypatch.delenv("GITHUB_HEAD_REF", raising=False)
    assert cached(TEXT, project, capsys, monkeypatch)[0] == 0
    monkeypatch.setenv("GITHUB_REF", "refs/heads/" + "b" * 128)
    monkeypatch.setenv("GITHUB_REF_NAME", "b" * 128)
    long_branch = as_uncached(TEXT, project, capsys, monkeypatch)
    assert long_branch[0] == 2 and "renders to an invalid tag" in long_branch[1]


def test_buildkit_images_use_the_dockerfiles_own_ignore_file_as_their_builds_do(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """BuildKit reads `<Dockerfile>.dockerignore` before the context's .dockerignore (and so does the
    input digest): a file only the context's excludes is sent to the build, so it affects the image.
    The classic builder reads only the context's."""
    (project / "pipelines.yaml").write_text(CONFIG + "      old: {context: images/v1, builder: classic}\n")
    for context in ("images/app", "images/v1"):
        (project / context / ".dockerignore").write_text("*.md\n")
        (project / context / "Dockerfile.dockerignore").write_text("*.txt\n")
    commit_files(project, {})
    commit_files(
        project, {"images/app/NOTES.md": "sent\n", "images/v1/NOTES.md": "not sent\n", "images/v1/a.txt": "x\n"}
    )
    expected = (
        f"{'shop/old':<30} images/v1/a.txt changed\n"
        f"{'shop/app':<30} images/app/NOTES.md changed [linux-amd64, linux-arm64]\n"
    )
    assert cached(TEXT, project, capsys, monkeypatch) == (0, expected)
    commit_files(project, {"images/app/Dockerfile.dockerignore": "*.txt\n*.md\n"})
    # The ignore file in use changed (what is sent with it): the image is affected; read on a hit too.
    old = written(project)
    own = run_main(TEXT, capsys, monkeypatch, project)
    assert written(project) == old
    assert own == (0, f"{'shop/app':<30} images/app/Dockerfile.dockerignore changed [linux-amd64, linux-arm64]\n")


def test_the_cache_is_written_owner_only_beside_a_leftover_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The entry is written to a fresh file, then renamed over the cache (as tempfile.mkstemp made it,
    without importing tempfile): owner-only, and a killed writer's leftover neither blocks it nor is used."""
    git_dir = tmp_path / ".git"
    (git_dir / "pipeline").mkdir(parents=True)
    leftover = git_dir / "pipeline" / "changed-cache.json.0123456789ab.tmp"
    leftover.write_text("half a cache")
    changed_cache.write(git_dir, "key", [], [{"image": "shop/base"}])
    path = changed_cache.cache_file(git_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, leftover.name])
    assert changed_cache.read(git_dir, "key") == [{"image": "shop/base"}]
