"""A run's SBOMs read each shared layer once (`LayerCache`), and get the files they would get without it."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.sbom import LayerCache, SbomError, image_files
from pipeline.sbom.layers import LayerChanges, apply_changes, layer_changes
from pipeline.sbom.readers import READERS, wanted_by
from tests.sbom_fixture import fixture_layers


def test_layer_by_layer_changes_give_the_files_image_files_gives() -> None:
    wanted = wanted_by(READERS)
    files: dict[str, bytes] = {}
    for layer in fixture_layers():
        files = apply_changes(files, layer_changes(layer, wanted))
    assert files == image_files(fixture_layers(), wanted)


def test_threads_wanting_one_layer_at_once_read_it_once() -> None:
    cache = LayerCache()
    reads: list[str] = []
    start = threading.Barrier(8)

    def read() -> LayerChanges:
        reads.append("read")
        time.sleep(0.05)  # a download: the other threads ask meanwhile
        return LayerChanges({"etc/os-release": b"ID=x\n"}, frozenset(), frozenset())

    found: list[LayerChanges] = []

    def ask() -> None:
        start.wait()
        found.append(cache.changes("sha256:" + "a" * 64, "tar+gzip", "readers", read))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reads == ["read"]
    assert len(found) == 8 and all(changes.added == {"etc/os-release": b"ID=x\n"} for changes in found)
    # Other readers want other files of the same layer: read again.
    cache.changes("sha256:" + "a" * 64, "tar+gzip", "other readers", read)
    assert reads == ["read", "read"]


def test_a_failed_read_is_not_kept() -> None:
    cache = LayerCache()

    def broken() -> LayerChanges:
        raise SbomError("layer sha256:… is not a readable tar")

    with pytest.raises(SbomError):
        cache.changes("sha256:" + "b" * 64, "tar", None, broken)
    fine = LayerChanges({}, frozenset({"x"}), frozenset())
    assert cache.changes("sha256:" + "b" * 64, "tar", None, lambda: fine) == fine
