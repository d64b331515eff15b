"""check_platform: whether an image config is the platform (and Windows version) a build asked for."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.registry.platforms import check_platform

LTSC2019 = "10.0.17763"


def windows(version: str | None, architecture: str = "amd64") -> dict[str, object]:
    config: dict[str, object] = {"os": "windows", "architecture": architecture, "rootfs": {"type": "layers"}}
    if version is not None:
        config["os.version"] = version
    return config


def test_a_windows_config_of_the_version_asked_passes_with_or_without_a_revision() -> None:
    assert check_platform(windows(LTSC2019), "windows/amd64", LTSC2019) is None
    assert check_platform(windows("10.0.17763.5329"), "windows/amd64", LTSC2019) is None
    assert check_platform(windows("10.0.17763.5329"), "windows/amd64", None) is None  # no version asked


def test_another_windows_version_is_refused() -> None:
    assert check_platform(windows("10.0.20348.2113"), "windows/amd64", LTSC2019) == (
        "its config says os.version 10.0.20348.2113, not 10.0.17763 (windows/amd64)"
    )
    # A version that merely starts with the same digits is another version.
    assert check_platform(windows("10.0.177630"), "windows/amd64", LTSC2019) is not None
    assert check_platform(windows(None), "windows/amd64", LTSC2019) == (
        "its config says no os.version, not 10.0.17763 (windows/amd64)"
    )


def test_another_os_or_architecture_is_refused() -> None:
    linux = {"os": "linux", "architecture": "amd64"}
    assert check_platform(linux, "windows/amd64", LTSC2019) == "its config says linux/amd64, not windows/amd64"
    assert check_platform(windows(LTSC2019, "arm64"), "windows/amd64", LTSC2019) == (
        "its config says windows/arm64, not windows/amd64"
    )
    assert check_platform(linux, "linux/arm64", None) == "its config says linux/amd64, not linux/arm64"
    assert check_platform(linux, "linux/amd64", None) is None


def test_variants_compare_as_containerd_normalizes_them() -> None:
    arm64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert check_platform(arm64, "linux/arm64", None) is None  # arm64 means v8
    assert check_platform({"os": "linux", "architecture": "arm64"}, "linux/arm64/v8", None) is None
    assert check_platform({"os": "linux", "architecture": "aarch64"}, "linux/arm64", None) is None
    arm = {"os": "linux", "architecture": "arm", "variant": "v6"}
    assert check_platform(arm, "linux/arm/v6", None) is None
    assert check_platform(arm, "linux/arm/v7", None) == "its config says linux/arm/v6, not linux/arm/v7"
    assert check_platform({"os": "linux", "architecture": "arm"}, "linux/arm/v7", None) is None  # arm means v7


def test_a_config_without_a_platform_is_refused() -> None:
    assert check_platform({}, "linux/amd64", None) == (
        "its config names no platform (os None, architecture None), not linux/amd64"
    )
    assert check_platform({"os": "windows", "architecture": 64}, "windows/amd64", None) is not None


def test_a_platform_that_is_not_os_arch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="os/architecture"):
        check_platform(windows(LTSC2019), "windows", LTSC2019)
