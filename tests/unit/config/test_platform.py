"""The platform grammar: `os/arch[/variant]` with the OCI image-index values, and what a run does with
a platform that is not one (exit 2 with file:line:col before anything is built)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config.platform import platform_problem
from tests.helpers import write_project
from tests.unit.config.test_config_errors import GOOD_IMAGES, run_main

VALID = [
    "linux/amd64",
    "linux/amd64/v3",
    "linux/arm64",
    "linux/arm64/v8",
    "linux/arm64/v8.2",
    "linux/arm/v5",
    "linux/arm/v7",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
    "linux/mips64le",
    "windows/amd64",
    "freebsd/amd64",
    "darwin/arm64",
]


@pytest.mark.parametrize("platform", VALID)
def test_oci_platforms_are_accepted(platform: str) -> None:
    assert platform_problem(platform) is None


@pytest.mark.parametrize(
    "platform",
    [
        "",
        "linux",
        "/amd64",
        "linux/",
        "linux/amd64/",
        "linux/arm/v7/x",
        "Linux/amd64",
        "linux/AMD64",
        "linux/amd64 ",
        "linux/x86_64",
        "linux/aarch64",
        "linux/amd64/v8",
        "linux/arm64/v7",
        "linux/s390x/v1",
        "plan10/amd64",
    ],
)
def test_everything_else_is_refused(platform: str) -> None:
    assert platform_problem(platform) is not None


def test_valid_platforms_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    local = [p for p in VALID if not p.startswith("windows/")]  # windows/* builds on ACR Tasks: other settings
    images = "".join(f"      i{n}: {{context: images/base, platform: {p}}}\n" for n, p in enumerate(local))
    write_project(tmp_path, f"registry: 127.0.0.1:5000/t\npipelines:\n  shop:\n    images:\n{images}", GOOD_IMAGES)
    code, output = run_main(["validate"], capsys, monkeypatch, tmp_path)
    assert code == 0, output


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", "pipelines.yaml:7:19: pipelines.shop.images.base.platform: Input should be a valid string"),
        ("linux/x86_64", "pipelines.yaml:7:19: pipelines.shop.images.base.platform: unknown architecture 'x86_64'"),
    ],
)
def test_a_bad_platform_stops_run_before_anything_is_built(
    value: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(
        tmp_path,
        "registry: 127.0.0.1:5000/t\npipelines:\n  shop:\n    images:\n      base:\n"
        f"        context: images/base\n        platform: {value}\n",
        GOOD_IMAGES,
    )
    # DOCKER_HOST points nowhere: a run that got past validation would fail with exit 3 (or 1 at build time).
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    code, output = run_main(["run", "--report", "r.json"], capsys, monkeypatch, tmp_path)
    assert code == 2, output
    assert output.strip().startswith(f"error: {expected}"), output
    assert not (tmp_path / "r.json").exists()
