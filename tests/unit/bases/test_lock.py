"""pipelines.lock: the exact text `bases --update` writes, read back entry for entry; a malformed lock is
one error naming the file and the entry (builds never fall back to floating bases)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.bases.lock import BaseLock, LockEntry, lock_path
from pipeline.errors import ConfigError

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
IDX = "sha256:" + "1" * 64

HEADER = [
    "# The digest each base image of the pipelines file builds on, per platform: written by",
    "# `pipeline bases --update`. While this file exists, builds use these digests, not what the tags",
    "# point at now; update it (and review the diff) to move a base.",
]
ENTRIES = [
    LockEntry("mcr.microsoft.com/windows/servercore:ltsc2022", "windows/amd64", "10.0.20348", B, IDX),
    LockEntry("127.0.0.1:5000/up/base:1", "linux/arm64", None, B),
    LockEntry("127.0.0.1:5000/up/base:1", "linux/amd64", None, A, IDX),
    LockEntry("mcr.microsoft.com/windows/servercore:ltsc2022", "windows/amd64", "10.0.17763", A, IDX),
]
TEXT = "\n".join(
    [
        *HEADER,
        "version: 1",
        "bases:",
        '- reference: "127.0.0.1:5000/up/base:1"',
        '  platform: "linux/amd64"',
        f"  digest: {A}",
        f"  index: {IDX}",
        '- reference: "127.0.0.1:5000/up/base:1"',
        '  platform: "linux/arm64"',
        f"  digest: {B}",
        '- reference: "mcr.microsoft.com/windows/servercore:ltsc2022"',
        '  platform: "windows/amd64"',
        '  os_version: "10.0.17763"',
        f"  digest: {A}",
        f"  index: {IDX}",
        '- reference: "mcr.microsoft.com/windows/servercore:ltsc2022"',
        '  platform: "windows/amd64"',
        '  os_version: "10.0.20348"',
        f"  digest: {B}",
        f"  index: {IDX}",
    ]
)


def test_render_is_sorted_and_exact_whatever_the_order_given() -> None:
    assert BaseLock.of(ENTRIES).render() == TEXT + "\n"
    assert BaseLock.of(reversed(ENTRIES)).render() == TEXT + "\n"


def test_an_empty_lock_says_so() -> None:
    assert BaseLock.of([]).render() == "\n".join([*HEADER, "version: 1", "bases: []"]) + "\n"


def test_save_then_load_gives_the_same_entries_and_the_same_text(tmp_path: Path) -> None:
    path = lock_path(tmp_path / "pipelines.yaml")
    assert path == tmp_path / "pipelines.lock"
    BaseLock.of(ENTRIES).save(path)
    assert path.read_text(encoding="utf-8") == TEXT + "\n"
    loaded = BaseLock.load(path)
    assert loaded is not None
    assert loaded.path == path
    assert dict(loaded.entries) == dict(BaseLock.of(ENTRIES).entries)
    assert loaded.render() == TEXT + "\n"
    assert loaded.get("127.0.0.1:5000/up/base:1", "linux/arm64", None) == ENTRIES[1]
    assert loaded.get("127.0.0.1:5000/up/base:1", "linux/arm/v7", None) is None


def test_no_lock_file_is_none(tmp_path: Path) -> None:
    assert BaseLock.load(tmp_path / "pipelines.lock") is None


def test_a_hand_written_short_reference_locks_what_the_dockerfile_pulls(tmp_path: Path) -> None:
    # `FROM busybox` resolves as docker.io/library/busybox:latest: the entry must match it, not float.
    path = tmp_path / "pipelines.lock"
    path.write_text(f"version: 1\nbases:\n- {{reference: busybox, platform: linux/amd64, digest: {A}}}\n")
    loaded = BaseLock.load(path)
    assert loaded is not None
    assert loaded.get("docker.io/library/busybox:latest", "linux/amd64", None) == LockEntry(
        "docker.io/library/busybox:latest", "linux/amd64", None, A
    )


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipelines.lock"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\nbases: [\n", "{path}:3: not valid YAML: "),
        ("bases: []\n", "{path}: not a pipelines.lock of version 1 (key 'version')"),
        ("version: 2\nbases: []\n", "{path}: not a pipelines.lock of version 1 (key 'version')"),
        ("version: true\nbases: []\n", "{path}: not a pipelines.lock of version 1 (key 'version')"),
        ("version: 1\nbases: {a: 1}\n", "{path}: key 'bases' must be a list"),
        ("version: 1\nbases: {}\n", "{path}: key 'bases' must be a list"),
        ("version: 1\nbases: [just-a-string]\n", "{path}: bases entry 1: must be a mapping"),
        (
            f"version: 1\nbases:\n- {{reference: a/b:1, platform: linux/amd64, digest: {A}, pinned: yes}}\n",
            "{path}: bases entry 1: unknown key 'pinned'",
        ),
        (
            f"version: 1\nbases:\n- {{platform: linux/amd64, digest: {A}}}\n",
            "{path}: bases entry 1: key 'reference' must be a non-empty string",
        ),
        (
            "version: 1\nbases:\n- {reference: a/b:1, platform: linux/amd64, digest: sha256:abc}\n",
            "{path}: bases entry 1: key 'digest' must be a sha256 digest",
        ),
        (
            f"version: 1\nbases:\n- {{reference: a/b:1, platform: linux/amd64, digest: {A}, index: latest}}\n",
            "{path}: bases entry 1: key 'index' must be a sha256 digest",
        ),
        (
            f"version: 1\nbases:\n- {{reference: a/b:1, platform: windows/amd64, os_version: 10.0, digest: {A}}}\n",
            "{path}: bases entry 1: key 'os_version' must be a string",
        ),
        (
            f"version: 1\nbases:\n- {{reference: 'a/b:not a tag', platform: linux/amd64, digest: {A}}}\n",
            "{path}: bases entry 1: key 'reference': 'not a tag' is not a valid tag",
        ),
        (
            f"version: 1\nbases:\n- {{reference: a/b:1, platform: linux/amd64, digest: {A}}}\n"
            f"- {{reference: docker.io/a/b:1, platform: linux/amd64, digest: {B}}}\n",
            "{path}: bases entry 2: docker.io/a/b:1 (linux/amd64) is listed twice; keep one entry per reference "
            "and platform",
        ),
    ],
)
def test_a_malformed_lock_is_one_error_naming_the_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        BaseLock.load(path)
    assert str(raised.value).startswith(message.format(path=path)), str(raised.value)
    assert "\n" not in str(raised.value)
    assert raised.value.exit_code == 2


def test_a_lock_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.lock"
    os.mkfifo(path)  # reading would wait forever
    with pytest.raises(ConfigError, match="pipelines.lock"):
        BaseLock.load(path)
