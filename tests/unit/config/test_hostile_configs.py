"""Hostile pipelines.yaml files: each in tests/unit/config/bad_configs/ gives one line with file:line:col, exit 2.

Every corpus file starts with `# expect: REGEX` (after an optional BOM); the regex must match the one
line of output and name the position (`pipelines\\.yaml:LINE:COL`). Each file runs as
`<tmp>/repo/pipelines.yaml` through `pipeline validate`, in a repository holding what the files refer to:

    <tmp>/repo/.git/                                             the git work tree's root
    <tmp>/repo/images/base/Dockerfile, images/app/Dockerfile     two good contexts
    <tmp>/repo/images/link-out  -> <tmp>/outside                 a context symlinked out of the repository
    <tmp>/repo/images/linked/Dockerfile -> <tmp>/outside/Dockerfile
    <tmp>/outside/Dockerfile, <tmp>/outside/sub/                 things outside the repository
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.config.paths import repository_root
from pipeline.errors import ConfigError
from pipeline.registry.reference import validate_registry_host
from tests.unit.config.test_config_errors import run_main

CORPUS = Path(__file__).parent / "bad_configs"
FILES = sorted(CORPUS.glob("*.yaml"))
EXPECT = b"# expect: "
BOM = "\ufeff".encode()


def expectation(file: Path) -> str:
    first = file.read_bytes().removeprefix(BOM).split(b"\n", 1)[0]
    assert first.startswith(EXPECT), f"{file.name}: the first line must be '# expect: REGEX'"
    return first[len(EXPECT) :].decode("utf-8")


def make_repository(root: Path) -> Path:
    """The layout described in the module docstring; returns the repository directory."""
    repo, outside = root / "repo", root / "outside"
    (repo / ".git").mkdir(parents=True)
    (outside / "sub").mkdir(parents=True)
    (outside / "Dockerfile").write_text("FROM scratch\n")
    for name in ("base", "app"):
        (repo / "images" / name).mkdir(parents=True)
        (repo / "images" / name / "Dockerfile").write_text("FROM scratch\n")
    (repo / "images" / "link-out").symlink_to(Path("..", "..", "outside"))
    (repo / "images" / "linked").mkdir()
    (repo / "images" / "linked" / "Dockerfile").symlink_to(Path("..", "..", "..", "outside", "Dockerfile"))
    return repo


def test_corpus_is_big_and_every_file_names_a_position() -> None:
    assert len(FILES) >= 100
    for file in FILES:
        assert re.search(r"pipelines\\\.yaml:\d+:\d+", expectation(file)), file.name


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_bad_config_gives_one_line_and_exit_2(
    file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = expectation(file)
    repo = make_repository(tmp_path)
    (repo / "pipelines.yaml").write_bytes(file.read_bytes())
    code, output = run_main(["validate"], capsys, monkeypatch, repo)
    assert "Traceback" not in output
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("error: pipelines.yaml:"), lines[0]
    assert re.search(expected, lines[0]), f"{lines[0]!r} does not match {expected!r}"


CONFIG = """\
registry: 127.0.0.1:5000/t
pipelines:
  shop:
    images:
      base:
        context: {context}
"""


def write_config(directory: Path, context: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "pipelines.yaml"
    config.write_text(CONFIG.format(context=context))
    return config


def test_context_elsewhere_in_the_git_work_tree_is_allowed(tmp_path: Path) -> None:
    repo = make_repository(tmp_path)
    config = write_config(repo / "deploy", "../images/base")
    assert load_config(config).spec.pipelines["shop"].images["base"].context == "../images/base"


def test_linked_worktree_marks_the_root_with_a_git_file(tmp_path: Path) -> None:
    repo = make_repository(tmp_path)
    (repo / ".git").rmdir()
    (repo / ".git").write_text("gitdir: /elsewhere/.git/worktrees/repo\n")
    load_config(write_config(repo / "deploy", "../images/app"))


@pytest.fixture
def outside_git(tmp_path: Path) -> Iterator[Path]:
    """A new directory in no git work tree: pytest's temporary directory, unless that is inside one (a
    --basetemp in a checkout); then one in the first of the machine's other scratch directories that is not."""
    candidates = [tmp_path, *(Path(d) for d in ("/dev/shm", "/var/tmp", tempfile.gettempdir(), Path.home()))]
    for base in candidates:
        if base.is_dir() and os.access(base, os.W_OK) and repository_root(base) == base.resolve():
            break
    else:
        pytest.fail(f"every scratch directory is inside a git work tree: {', '.join(map(str, candidates))}")
    if base == tmp_path:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=base, prefix="pipeline-test-") as found:
        yield Path(found)


def test_outside_git_the_config_directory_is_the_repository(outside_git: Path) -> None:
    repo = make_repository(outside_git)
    (repo / ".git").rmdir()
    with pytest.raises(ConfigError, match=r"pipelines\.yaml:6:18: .*context '\.\./images/base' is outside"):
        load_config(write_config(repo / "deploy", "../images/base"))


def test_absolute_path_and_symlink_inside_the_repository_are_allowed(tmp_path: Path) -> None:
    repo = make_repository(tmp_path)
    load_config(write_config(repo, str(repo / "images" / "base")))
    (repo / "images" / "alias").symlink_to("base")
    load_config(write_config(repo, "images/alias"))


def test_config_reached_through_a_symlinked_directory(tmp_path: Path) -> None:
    repo = make_repository(tmp_path)
    write_config(repo, "images/base")
    (tmp_path / "shortcut").symlink_to(repo)
    load_config(tmp_path / "shortcut" / "pipelines.yaml")


def test_relative_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repository(tmp_path)
    write_config(repo, "images/base")
    monkeypatch.chdir(repo / "images")
    load_config(Path("..") / "pipelines.yaml")


def test_a_symlink_loop_is_a_missing_context(tmp_path: Path) -> None:
    repo = make_repository(tmp_path)
    os.symlink("loop", repo / "loop")
    with pytest.raises(ConfigError, match=r"pipelines\.yaml:6:18: .*context directory '.*loop' does not exist"):
        load_config(write_config(repo, "loop"))


def test_a_bare_registry_host_is_a_valid_prefix(tmp_path: Path) -> None:
    repo = make_repository(tmp_path)
    config = write_config(repo, "images/base")
    config.write_text(config.read_text().replace("127.0.0.1:5000/t", "127.0.0.1:5000"))
    load_config(config)


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    repo = make_repository(tmp_path)
    config = write_config(repo, "images/base")
    config.write_bytes(BOM + config.read_bytes())
    load_config(config)


@pytest.mark.parametrize(
    ("host", "ok"),
    [("r.example", True), ("r.example:1", True), ("[::1]:65535", True), ("r.example:65536", False)]
    + [("r.example:0", False), ("r.example:" + "9" * 5000, False), ("https://r.example", False)],
)
def test_registry_hosts_follow_the_grammar_with_real_ports(host: str, ok: bool) -> None:
    if ok:
        assert validate_registry_host(host) == host
    else:
        with pytest.raises(ConfigError):
            validate_registry_host(host)
