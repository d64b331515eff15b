from __future__ import annotations

import pytest
import semver

from pipeline.errors import UsageError
from pipeline.release.conventional import bump_from_commits
from pipeline.versioning import decide_floating, next_version, parse_version, tag_set, versions_in


def names(tags: object) -> tuple[str, ...]:
    return tuple(t.name for t in tags)  # type: ignore[attr-defined]


def test_release_gets_patch_minor_major_latest_and_sha() -> None:
    tags = tag_set(parse_version("2.1.5"), "0123456789abcdef0123")
    assert tags.release == "2.1.5"
    assert tags.build == ("sha-0123456789ab",)
    assert names(tags.floating) == ("2.1", "2", "latest")
    assert tags.primary == "sha-0123456789ab"
    assert tags.all == ("sha-0123456789ab", "2.1.5", "2.1", "2", "latest")


def test_outside_git_the_release_tag_is_pushed_directly() -> None:
    assert tag_set(parse_version("2.1.5"), None).primary == "2.1.5"


def test_prerelease_gets_only_its_own_tag() -> None:
    tags = tag_set(parse_version("v2.1.0-rc.1"), None)
    assert tags.all == ("2.1.0-rc.1",)
    assert decide_floating(tags, ["2.0.0", "latest"]) == []


def test_build_metadata_is_dropped_from_the_tag() -> None:
    assert tag_set(parse_version("1.2.3+build.7"), None).release == "1.2.3"


def test_suffix_and_floating_selection() -> None:
    tags = tag_set(parse_version("2.1.5"), "abc", suffix="-windows", floating=["major", "latest"], extra=["x-windows"])
    assert tags.release == "2.1.5-windows"
    assert tags.build == ("sha-abc-windows",)
    assert names(tags.floating) == ("2-windows", "latest-windows")
    assert tags.extra == ("x-windows",)


def test_without_version_the_commit_names_the_build() -> None:
    assert tag_set(None, "abcdef1234567890").all == ("sha-abcdef123456",)


def test_outside_git_without_version_falls_back_to_latest() -> None:
    assert tag_set(None, None).all == ("latest",)


@pytest.mark.parametrize("text", ["1.2", "1.2.3.4", "latest", "01.2.3", ""])
def test_invalid_versions_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="is not a semantic version"):
        parse_version(text)


def moves(version: str, existing: list[str], suffix: str = "") -> dict[str, bool]:
    tags = tag_set(parse_version(version), None, suffix=suffix)
    return {d.tag.name: d.moves for d in decide_floating(tags, existing)}


def test_backport_does_not_steal_latest() -> None:
    existing = ["1.4.2", "1.4", "1", "2.0.0", "2.0", "2", "latest"]
    assert moves("1.4.3", existing) == {"1.4": True, "1": True, "latest": False}


def test_old_patch_moves_nothing_when_a_higher_patch_exists() -> None:
    existing = ["1.4.2", "1.4.5", "1.5.0"]
    assert moves("1.4.3", existing) == {"1.4": False, "1": False, "latest": False}


def test_new_highest_moves_everything() -> None:
    assert moves("2.1.0", ["2.0.0", "1.9.9", "2.1.0-rc.1", "3.0.0-beta.1"]) == {"2.1": True, "2": True, "latest": True}


def test_versions_are_compared_within_a_suffix() -> None:
    existing = ["3.0.0", "2.0.0-windows"]
    assert moves("2.1.0", existing, suffix="-windows") == {
        "2.1-windows": True,
        "2-windows": True,
        "latest-windows": True,
    }
    assert versions_in(["1.0.0", "1.0.0-windows", "x-windows", "1.0-windows"], "-windows") == {
        "1.0.0-windows": semver.Version(1, 0, 0)
    }


def test_stay_reason_names_the_higher_version() -> None:
    tags = tag_set(parse_version("1.4.3"), None)
    latest = [d for d in decide_floating(tags, ["2.0.0"]) if d.tag.name == "latest"][0]
    assert latest.reason == "2.0.0 is higher than 1.4.3 among the stable versions"


def test_next_version() -> None:
    v = semver.Version.parse
    assert next_version(v("1.2.3"), "patch") == v("1.2.4")
    assert next_version(v("1.2.3"), "minor") == v("1.3.0")
    assert next_version(v("1.2.3"), "major") == v("2.0.0")
    assert next_version(None, "minor") == v("0.1.0")
    assert next_version(v("1.2.3"), "minor", "rc") == v("1.3.0-rc.1")
    assert next_version(v("1.2.3"), "minor", "rc", [v("1.3.0-rc.1"), v("1.3.0-rc.2"), v("1.4.0-rc.7")]) == v(
        "1.3.0-rc.3"
    )


@pytest.mark.parametrize(
    ("messages", "bump"),
    [
        (["fix: a", "chore: b"], "patch"),
        (["fix(api): a", "feat(ui): b"], "minor"),
        (["feat!: drop v1 API"], "major"),
        (["refactor: x\n\nBREAKING CHANGE: config renamed"], "major"),
        (["docs: x", "chore: y", "Merge branch 'x'"], None),
        (["feature: not conventional"], None),
    ],
)
def test_conventional_commit_bumps(messages: list[str], bump: str | None) -> None:
    assert bump_from_commits(messages) == bump
