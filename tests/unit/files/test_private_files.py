"""The private files a cache or a store writes (files/writing.py): made exclusively, owner-only, never
through a link; the one helper `pipeline changed`'s cache and the signing verdict store share."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeline.files import create_private, fresh_file
from pipeline.signing.reuse import VerdictStore


def test_a_private_file_is_new_and_owner_only(tmp_path: Path) -> None:
    old = os.umask(0)  # whatever the umask, never more than 0600
    try:
        handle = create_private(tmp_path / "secret")
    finally:
        os.umask(old)
    with os.fdopen(handle, "wb") as out:
        out.write(b"x")
    assert (tmp_path / "secret").read_bytes() == b"x"
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        create_private(tmp_path / "secret")


def test_a_private_file_is_never_written_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "secret").symlink_to(target)  # dangling: O_CREAT alone would make `elsewhere`
    with pytest.raises(FileExistsError):
        create_private(tmp_path / "secret")
    assert not target.exists()


def test_a_fresh_file_has_a_new_name_beside_its_path(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    names = set()
    for _ in range(3):
        handle, name = fresh_file(path)
        os.close(handle)
        names.add(name)
        assert Path(name).parent == tmp_path and Path(name).name.startswith("cache.json.")
        assert stat.S_IMODE(Path(name).stat().st_mode) == 0o600
    assert len(names) == 3 and not path.exists()


def test_the_verdict_store_writes_its_files_private(tmp_path: Path) -> None:
    store = VerdictStore(tmp_path / "verdicts")
    store.remember(b"verdict")
    assert store.known(b"verdict") and not store.known(b"other")
    files = sorted((tmp_path / "verdicts").iterdir())
    assert [f.name == "secret" or len(f.name) == 64 for f in files] == [True, True]  # no temporary left
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
