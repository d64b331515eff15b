"""Platforms as OCI writes them (`os/architecture[/variant]`, Windows' `os.version`): whether an image
config is the platform a build asked for. Pure.

>>> check_platform({"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.5329"},
...                "windows/amd64", "10.0.17763") is None
True
>>> check_platform({"os": "linux", "architecture": "amd64"}, "windows/amd64", None)
'its config says linux/amd64, not windows/amd64'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.errors import ConfigError

# containerd's normalization (platforms.Normalize): the spellings engines and `uname -m` use for one
# architecture, and the variant an architecture means when none is written (arm64 is v8, arm is v7,
# amd64's v1 is plain amd64), so `linux/arm64` and a config saying arm64/v8 are the same platform.
_ARCHITECTURES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386"}
_ARCH_VARIANTS = {"armhf": ("arm", "v7"), "armel": ("arm", "v6")}
_IMPLIED_VARIANT = {"arm64": "v8", "arm": "v7", "amd64": "v1"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str  # "" when none is written and none is implied

    def __str__(self) -> str:
        written = "" if self.variant in ("", _IMPLIED_VARIANT.get(self.architecture)) else f"/{self.variant}"
        return f"{self.os}/{self.architecture}{written}"


def platform_text(platform: str, os_version: str | None) -> str:
    """How a platform is shown: `linux/arm64`, `windows/amd64 10.0.17763`."""
    return f"{platform} {os_version}" if os_version else platform


def windows_build(version: str) -> str:
    """The build a Windows version names (major.minor.build): 10.0.17763.5329 -> 10.0.17763. Process
    isolation runs a container only on a host of the same build; revisions (the fourth part) mix."""
    return ".".join(version.split(".")[:3])


def same_windows_build(a: str, b: str) -> bool:
    return windows_build(a) == windows_build(b)


def normalize(os_name: str, architecture: str, variant: str | None = None) -> Platform:
    """One spelling per platform: lower-case os, containerd's architecture names, the implied variant
    written out (`arm64` -> `arm64/v8`), a bare variant number prefixed (`7` -> `v7`)."""
    arch = architecture.lower()
    arch = _ARCHITECTURES.get(arch, arch)
    implied = ""
    if arch in _ARCH_VARIANTS:
        arch, implied = _ARCH_VARIANTS[arch]
    chosen = (variant or "").lower() or implied or _IMPLIED_VARIANT.get(arch, "")
    if chosen.isdigit():
        chosen = f"v{chosen}"
    return Platform(os_name.lower(), arch, chosen)


def parse_platform(platform: str) -> Platform:
    """`windows/amd64`, `linux/arm64/v8`, `linux/arm/7` as a normalized Platform."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(f"platform '{platform}': write it as os/architecture[/variant], e.g. windows/amd64")
    return normalize(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def check_platform(config: Mapping[str, object], platform: str, os_version: str | None) -> str | None:
    """None when the image config `config` (the JSON of an image's config blob) is for `platform` and,
    when `os_version` is given (Windows), for that Windows version: its `os.version` is `os_version`
    itself or a revision of it (`10.0.17763` accepts `10.0.17763.5329`, not `10.0.177630`). Otherwise
    what is wrong, as a phrase ("its config says linux/amd64, not windows/amd64"). A config that names
    no os or architecture is wrong too: an image of unknown platform must not pass for one."""
    wanted = parse_platform(platform)
    os_name, architecture, variant = config.get("os"), config.get("architecture"), config.get("variant")
    if not isinstance(os_name, str) or not isinstance(architecture, str) or not os_name or not architecture:
        return f"its config names no platform (os {os_name!r}, architecture {architecture!r}), not {platform}"
    found = normalize(os_name, architecture, variant if isinstance(variant, str) else None)
    if found != wanted:
        return f"its config says {found}, not {platform}"
    if os_version is not None:
        version = config.get("os.version")
        if not isinstance(version, str) or not (version == os_version or version.startswith(os_version + ".")):
            said = f"os.version {version}" if isinstance(version, str) and version else "no os.version"
            return f"its config says {said}, not {os_version} ({platform})"
    return None
