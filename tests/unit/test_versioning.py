from __future__ import annotations

import pytest

from pipeline.errors import UsageError
from pipeline.versioning import parse_version, tag_set


def test_release_gets_patch_minor_major_latest_and_sha() -> None:
    tags = tag_set(parse_version("2.1.5"), "0123456789abcdef0123")
    assert tags.immutable == ("2.1.5", "sha-0123456789ab")
    assert tags.floating == ("2.1", "2", "latest")
    assert tags.primary == "2.1.5"


def test_prerelease_gets_only_its_own_tag() -> None:
    tags = tag_set(parse_version("v2.1.0-rc.1"), None)
    assert tags.all == ("2.1.0-rc.1",)


def test_build_metadata_is_dropped_from_the_tag() -> None:
    assert tag_set(parse_version("1.2.3+build.7"), None).immutable == ("1.2.3",)


def test_without_version_the_commit_names_the_build() -> None:
    tags = tag_set(None, "abcdef1234567890")
    assert tags.all == ("sha-abcdef123456",)


def test_outside_git_without_version_falls_back_to_latest() -> None:
    assert tag_set(None, None).all == ("latest",)


@pytest.mark.parametrize("text", ["1.2", "1.2.3.4", "latest", "01.2.3", ""])
def test_invalid_versions_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="is not a semantic version"):
        parse_version(text)
