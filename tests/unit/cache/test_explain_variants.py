"""`explain` for an image with variants: each variant is compared with the last index's child for its
platform (and Windows build), and its line shows its own input digest."""

from __future__ import annotations

from pipeline.cache.explain import VariantExplanation, changed_components, match_children
from pipeline.cache.inputs import INPUTS_LABEL, InputDigest
from pipeline.plan import Variant

VARIANTS = [
    Variant("linux-amd64", "linux/amd64", None, {}, "docker", None),
    Variant("linux-arm64", "linux/arm64/v8", None, {}, "docker", None),
    Variant("ltsc2019", "windows/amd64", "10.0.17763", {}, "acr", None),
    Variant("ltsc2022", "windows/amd64", "10.0.20348", {}, "acr", None),
]


def child(digest: str, os: str, arch: str, variant: str | None = None, version: str | None = None) -> dict[str, object]:
    platform: dict[str, str] = {"os": os, "architecture": arch}
    if variant:
        platform["variant"] = variant
    if version:
        platform["os.version"] = version
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "platform": platform}


def test_children_match_by_platform_and_windows_build_in_any_order() -> None:
    index = [
        child("sha256:22", "windows", "amd64", version="10.0.20348.2227"),
        child("sha256:19", "windows", "amd64", version="10.0.17763.5329"),
        child("sha256:a8", "linux", "arm64", "v8"),
        child("sha256:64", "linux", "amd64"),
    ]
    assert match_children(VARIANTS, index) == {
        "linux-amd64": "sha256:64",
        "linux-arm64": "sha256:a8",
        "ltsc2019": "sha256:19",
        "ltsc2022": "sha256:22",
    }


def test_a_variant_without_its_child_is_left_out_and_spellings_match_as_a_run_matches_them() -> None:
    index = [
        child("sha256:64", "linux", "amd64"),
        child("sha256:a8", "linux", "arm64"),  # no /v8 recorded: the same platform to containerd and the run
        child("sha256:16", "windows", "amd64", version="10.0.14393.1"),  # another Windows build
    ]
    assert match_children(VARIANTS, index) == {"linux-amd64": "sha256:64", "linux-arm64": "sha256:a8"}


def test_changed_components_compare_with_the_labels_the_build_recorded() -> None:
    inputs = InputDigest("sha256:x", {"context": "sha256:c1", "build_args": "sha256:b2", "os_version": "sha256:o"})
    labels = {f"{INPUTS_LABEL}.context": "sha256:c1", f"{INPUTS_LABEL}.build_args": "sha256:b1"}
    assert changed_components(inputs, labels) == ["build_args", "os_version"]


def test_a_variants_line_shows_its_platform_inputs_and_changes() -> None:
    line = VariantExplanation("ltsc2019", "windows/amd64", "10.0.17763", "sha256:" + "f" * 64, ["build_args"]).line
    assert line == "variant ltsc2019 (windows/amd64 10.0.17763): inputs sha256:ffffffffffff; changed: build_args"
    pending = VariantExplanation("linux-amd64", "linux/amd64", None, None).line
    assert pending == "variant linux-amd64 (linux/amd64): inputs unknown until its dependencies are built"
