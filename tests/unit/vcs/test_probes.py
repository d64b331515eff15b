"""vcs.probes: answers noted while recording are checked again later with shared lstats; those answers
must be exactly what the probes (os.path) give, on plain paths and on every odd one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.vcs import probes


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "images/app").mkdir(parents=True)
    (tmp_path / "images/app/Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "images/v1").mkdir()
    (tmp_path / "images/v1/Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "images/link").symlink_to("v1")
    (tmp_path / "images/app/df-link").symlink_to("Dockerfile")
    (tmp_path / "images/dangling").symlink_to("nowhere")
    (tmp_path / "images/loop").symlink_to("loop")
    (tmp_path / "file").write_text("x")
    monkeypatch.chdir(tmp_path)
    return tmp_path


PATHS = [
    "images/app",
    "images/app/Dockerfile",
    "images/app/",
    "images/app/Dockerfile/",
    "./images//app/./Dockerfile",
    "images/link",
    "images/link/Dockerfile",
    "images/app/df-link",
    "images/app/../v1/Dockerfile",
    "images/link/../app",
    "images/dangling",
    "images/dangling/x",
    "images/loop",
    "images/loop/x",
    "images/missing/Dockerfile",
    "file/x",
    "file",
    ".",
    "",
    "/",
    "//tmp",
    "images/app\0x",
    "images/" + "x" * 5000,
]


def test_replayed_answers_are_the_probes_own(tree: Path) -> None:
    paths = [*PATHS, *(str(tree / p) for p in PATHS if p and not p.startswith("/"))]
    replay = probes._Replay()
    for probe, ask in probes.PROBES.items():
        for path in paths:
            try:
                expected: object = ask(path)
            except (OSError, ValueError) as exc:
                expected = type(exc)
            try:
                got: object = replay.answer(probe, path)
            except (OSError, ValueError) as exc:
                got = type(exc)
            assert got == expected, (probe, path)


def test_a_recording_holds_until_a_path_changes(tree: Path) -> None:
    with probes.recording() as facts:
        assert probes.is_dir(Path("images/link"))
        assert probes.realpath(Path("images/link/Dockerfile")) == str(tree / "images/v1/Dockerfile")
        assert not probes.exists(Path("images/missing"))
    assert len(facts) == 3 and probes.still_true(facts)
    os.rename(tree / "images/v1", tree / "images/v2")
    os.unlink(tree / "images/link")
    (tree / "images/link").symlink_to("v2")  # the same directory, found under another real path
    assert not probes.still_true(facts)
    os.unlink(tree / "images/link")
    (tree / "images/link").symlink_to("v1")
    os.rename(tree / "images/v2", tree / "images/v1")
    assert probes.still_true(facts)
    (tree / "images/missing").mkdir()
    assert not probes.still_true(facts)


def test_nothing_is_noted_outside_a_recording(tree: Path) -> None:
    probes.is_dir(Path("images"))
    with probes.recording() as facts:
        pass
    assert facts == []


def test_a_recording_answers_as_the_probes_and_each_path_once(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While recording, answers come from the shared lstats (as still_true replays them) and a path asked
    again is not looked at again (the checks and the plan ask for the same contexts); the answers, errors
    included, are still the probes' own."""
    expected: dict[tuple[str, str], object] = {}
    for probe, ask in probes.PROBES.items():
        for path in PATHS:
            try:
                expected[(probe, path)] = ask(path)
            except (OSError, ValueError) as exc:
                expected[(probe, path)] = type(exc)
    looks: list[str] = []
    real_lstat = os.lstat
    monkeypatch.setattr(os, "lstat", lambda path, *a, **k: looks.append(os.fspath(path)) or real_lstat(path, *a, **k))
    with probes.recording() as facts:
        for _ in range(2):
            for probe in probes.PROBES:
                for path in PATHS:
                    try:
                        got: object = probes._ask(probe, path)
                    except (OSError, ValueError) as exc:
                        got = type(exc)
                    assert got == expected[(probe, path)], (probe, path)
        first = len(looks)
        assert probes.realpath("images/app/Dockerfile") == str(tree / "images/app/Dockerfile")
        assert len(looks) == first  # asked before: answered from the recording
    assert probes.still_true(facts)
    plain = str(tree / "images/app")
    assert looks.count(plain) <= 1, "one lstat per directory while recording"
