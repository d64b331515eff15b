"""The local content store: what it returns always matches the digest asked for."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipeline.registry.contentcache import ContentCache


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_content_comes_back_by_its_digest(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path)
    data = b'{"config": {"Labels": {"a": "b"}}}'
    cache.put(_digest(data), data)
    assert cache.get(_digest(data)) == data
    assert cache.get(_digest(b"other")) is None


def test_damaged_content_is_dropped_not_returned(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path)
    data = b"the real config"
    cache.put(_digest(data), data)
    stored = tmp_path / "sha256" / _digest(data).removeprefix("sha256:")
    stored.write_bytes(b"edited by someone")
    assert cache.get(_digest(data)) is None
    assert not stored.exists()


def test_content_that_does_not_match_its_digest_is_not_kept(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path)
    cache.put(_digest(b"one"), b"two")
    cache.put("sha512:" + "0" * 128, b"x")
    cache.put("sha256:../../etc/passwd", b"x")
    assert not (tmp_path / "sha256").exists() or not any((tmp_path / "sha256").iterdir())


def test_an_unwritable_store_only_costs_round_trips(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = ContentCache(blocker)
    cache.put(_digest(b"x"), b"x")  # no error
    assert cache.get(_digest(b"x")) is None
