"""Which tags `pipeline tags` keeps to itself unless --all: the input cache's and the attached artefacts'."""

from __future__ import annotations

import pytest

from pipeline.release.tagview import is_internal

HEX = "2e13c52d9c53ce56134adeae80e1a9b6e9cc65af8c96c1c4ec335f3f3559b93b"


@pytest.mark.parametrize(
    "tag",
    [
        "inputs-000c97a610a71816ba9d1924",
        f"sha256-{HEX}",
        f"sha256-{HEX}.sig",
        f"sha256-{HEX}.att",
        f"sha256-{HEX}.sbom",
    ],
)
def test_the_tools_own_tags_are_internal(tag: str) -> None:
    assert is_internal(tag)


@pytest.mark.parametrize(
    "tag", ["sha-8204a1ede5c7", "1.0.0", "latest", "latest-main", "sha256-short", f"sha256-{HEX}.txt"]
)
def test_user_tags_are_not(tag: str) -> None:
    assert not is_internal(tag)
