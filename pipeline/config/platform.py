"""The platform grammar an image may name: `os/arch[/variant]` with the values of the OCI image-index
spec (GOOS and GOARCH as Go lists them) and the variants containerd's platform matching knows.

A platform is taken exactly as written, lower case: it is what the engine builds for and part of the
image's input digest, so a spelling that merely means the same (`Linux/AMD64`, `linux/x86_64`,
`linux/aarch64`) is refused with the canonical spelling as a suggestion, never rewritten silently."""

from __future__ import annotations

import difflib

from pipeline.errors import ConfigError

# GOOS values (https://go.dev/doc/install/source#environment), which image-index.md's `os` refers to.
OPERATING_SYSTEMS = frozenset(
    "aix android darwin dragonfly freebsd illumos ios js linux netbsd openbsd plan9 solaris wasip1 windows".split()
)
# GOARCH values, which image-index.md's `architecture` refers to.
ARCHITECTURES = frozenset(
    "386 amd64 arm arm64 loong64 mips mips64 mips64le mipsle ppc64 ppc64le riscv64 s390x wasm".split()
)
# image-index.md's table (arm v6-v8, arm64 v8) widened to what containerd's platforms package matches:
# arm v5, amd64 microarchitecture levels v1-v4, arm64 v8.x and v9.x.
VARIANTS: dict[str, frozenset[str]] = {
    "arm": frozenset({"v5", "v6", "v7", "v8"}),
    "arm64": frozenset({"v8", *(f"v8.{n}" for n in range(10)), "v9", *(f"v9.{n}" for n in range(6))}),
    "amd64": frozenset({"v1", "v2", "v3", "v4"}),
}
# Other names for the same thing (uname -m, Debian, older tools): suggested, not accepted.
ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "x64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm/v7",
    "armel": "arm/v6",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "macos": "darwin",
    "osx": "darwin",
    "win": "windows",
}

SHAPE = "expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"


def _closest(value: str, known: frozenset[str]) -> str | None:
    if value in ALIASES:
        return ALIASES[value]
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
    return close[0] if close else None


def _did_you_mean(parts: list[str], index: int, known: frozenset[str]) -> str:
    """The whole platform with the one unknown part replaced, when that makes a valid platform."""
    replacement = _closest(parts[index], known)
    if replacement is None:
        return ""
    candidate = "/".join([*parts[:index], replacement, *parts[index + 1 :]])
    return f" (did you mean '{candidate}'?)" if platform_problem(candidate) is None else ""


def platform_problem(platform: str) -> str | None:
    """Why `platform` is not a platform to build for, or None if it is one."""
    canonical = platform.strip().lower()
    if platform != canonical:
        hint = f" (did you mean '{canonical}'?)" if platform_problem(canonical) is None else ""
        return f"'{platform}' is not a platform: platforms are lower case, without spaces{hint}"
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        return f"'{platform}' is not a platform: {SHAPE}"
    os_name, architecture = parts[0], parts[1]
    if os_name not in OPERATING_SYSTEMS:
        hint = _did_you_mean(parts, 0, OPERATING_SYSTEMS)
        return f"unknown operating system '{os_name}' in platform '{platform}'{hint}"
    if architecture not in ARCHITECTURES:
        hint = _did_you_mean(parts, 1, ARCHITECTURES)
        return f"unknown architecture '{architecture}' in platform '{platform}'{hint}"
    if len(parts) == 3:
        variant, known = parts[2], VARIANTS.get(architecture, frozenset())
        if not known:
            return f"architecture '{architecture}' has no variants (did you mean '{os_name}/{architecture}'?)"
        if variant not in known:
            listed = ", ".join(sorted(known, key=lambda v: [int(n) for n in v[1:].split(".")]))
            return f"unknown {architecture} variant '{variant}' in platform '{platform}' (known: {listed})"
    return None


def validate_platform(platform: str) -> None:
    problem = platform_problem(platform)
    if problem:
        raise ConfigError(problem)
