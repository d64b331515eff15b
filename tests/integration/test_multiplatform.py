"""Docker 26 with the containerd image store builds every platform of an image in ONE `docker buildx build
--platform linux/amd64,linux/arm64` (arm64's RUN under qemu) and pushes one index: its children are the
variants, signed with it, reused by the next run; the Docker 20.10 engine still builds one per variant."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import BUSYBOX, commit_files, init_git, run_cli, shop_config, write_project
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_arm64_run import DOCKERFILE, busybox_arm64  # noqa: F401 (a fixture)
from tests.integration.test_signing import ENV

PLATFORMS = ("linux/amd64", "linux/arm64")


@pytest.fixture
def on_modern(modern_host: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's DOCKER_HOST (its CLI runs and its own docker calls): Docker 26 with the containerd store."""
    monkeypatch.setenv("DOCKER_HOST", modern_host)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    return modern_host


@pytest.fixture
def docker_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker` first in PATH that logs each invocation's argv (one line) and runs the real one."""
    real = shutil.which("docker")
    assert real is not None
    folder = tmp_path / "wrapper"
    folder.mkdir()
    log = tmp_path / "docker.log"
    script = folder / "docker"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return log


def _builds(log: Path) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if line.startswith("buildx build ")]


def _project(root: Path, registry: str, arm64_busybox: Path, trusted: bool = False) -> str:
    """`trusted`: provenance attested, and reused only when signed and attested for these inputs."""
    platforms = f"[{', '.join(PLATFORMS)}]"
    sign = "sign: {key: cosign.key, attest: [provenance]}" if trusted else "sign: {key: cosign.key}"
    images = {"app": f"{{context: images/app, platforms: {platforms}}}"}
    write_project(
        root,
        shop_config(registry, images, top=sign, keys="reuse: trusted" if trusted else ""),
        {"app": DOCKERFILE},
    )
    _busyboxes(root / "images" / "app", arm64_busybox)
    assert run_cli(["keys", "generate"], root).code == 0
    return init_git(root)


def _busyboxes(context: Path, arm64_busybox: Path) -> None:
    """Each platform's busybox (`COPY busybox-${TARGETARCH}`), and a layer no earlier run built, so the
    RUN steps run."""
    shutil.copy(BUSYBOX, context / "busybox-amd64")
    shutil.copy(arm64_busybox, context / "busybox-arm64")
    (context / "run-id").write_text(f"{context}\n")


def test_two_platforms_are_one_buildx_invocation_on_the_containerd_store(
    tmp_path: Path,
    services: Services,
    namespace: str,
    plain_peek: RegistryPeek,
    on_modern: str,
    busybox_arm64: Path,  # noqa: F811
    docker_log: Path,
) -> None:
    root = tmp_path / "project"
    init_sha = _project(root, f"{services.plain_registry}/{namespace}", busybox_arm64, trusted=True)
    started = time.monotonic()
    result = run_cli(["run", "--json", "--version", "1.0.0"], root)
    took = time.monotonic() - started
    assert result.code == 0, result.output
    (build,) = _builds(docker_log)
    assert "--platform linux/amd64,linux/arm64 " in build, build
    assert "building linux/amd64, linux/arm64 in one buildx invocation" in result.stderr
    for platform in PLATFORMS:  # each platform's steps said as its own, the RUN too (its text is the same)
        assert f"[{platform} 3/3] RUN " in result.stderr, result.stderr
    (app,) = json.loads(result.stdout)["images"]
    repo = f"{namespace}/app"
    assert plain_peek.digest(repo, "1.0.0") == app["digest"]
    children = plain_peek.index_children(repo, str(app["digest"]))
    assert set(children) == set(PLATFORMS), children
    assert {v["platform"]: v["digest"] for v in app["variants"]} == children
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        config = plain_peek.image_config(repo, children[platform])
        assert f"{config['os']}/{config['architecture']}" == platform
        assert plain_peek.files(repo, children[platform])["arch"] == f"{machine}\n".encode(), platform
    # Each child under its variant's tag, as a variant built apart is (`tags`, `tree` and reuse read them).
    build_tag = f"sha-{init_sha[:12]}"
    for variant in app["variants"]:
        assert plain_peek.digest(repo, f"{build_tag}-{variant['variant']}") == variant["digest"], variant

    verified = run_cli(["verify", f"{services.plain_registry}/{repo}:1.0.0", "--key", "cosign.pub", "--json"], root)
    assert verified.code == 0, verified.output
    verdict = json.loads(verified.stdout)
    assert verdict["verified"] is True
    assert sorted((c["platform"], c["verified"]) for c in verdict["children"]) == [(p, True) for p in PLATFORMS]

    # A new commit that changes no input: reused by its inputs, nothing built. One file changed: one
    # build again, of both platforms.
    docker_log.unlink()
    commit_files(root, {"notes.md": "outside every context\n"})
    again = run_cli(["run", "--json", "--version", "1.0.1"], root)
    assert again.code == 0, again.output
    assert _builds(docker_log) == []
    assert "inputs unchanged" in again.stderr
    (reused,) = json.loads(again.stdout)["images"]
    assert (reused["digest"], reused["reused"]) == (app["digest"], True)
    assert {v["platform"]: v["digest"] for v in reused["variants"]} == children
    commit_files(root, {"images/app/run-id": f"{root} changed\n"})
    changed = run_cli(["run", "--json", "--version", "1.0.2"], root)
    assert changed.code == 0, changed.output
    assert len(_builds(docker_log)) == 1
    (rebuilt,) = json.loads(changed.stdout)["images"]
    assert rebuilt["digest"] != app["digest"] and not rebuilt["reused"]
    print(f"one invocation: two-platform run took {took:.1f}s")


def test_the_docker_20_10_engine_still_builds_one_platform_per_invocation(
    tmp_path: Path,
    services: Services,
    namespace: str,
    plain_peek: RegistryPeek,
    busybox_arm64: Path,  # noqa: F811
    docker_log: Path,
) -> None:
    root = tmp_path / "project"
    _project(root, f"{services.plain_registry}/{namespace}", busybox_arm64)
    result = run_cli(["run", "--json", "--version", "1.0.0"], root)
    assert result.code == 0, result.output
    builds = _builds(docker_log)
    assert sorted(b.split("--platform ")[1].split()[0] for b in builds) == list(PLATFORMS), builds
    assert "in one buildx invocation" not in result.stderr
    (app,) = json.loads(result.stdout)["images"]
    children = plain_peek.index_children(f"{namespace}/app", str(app["digest"]))
    assert {v["platform"]: v["digest"] for v in app["variants"]} == children


APP = """\
ARG BASE
FROM ${BASE}
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox uname -m > /app-arch"]
"""


def test_a_dependant_builds_on_its_base_s_index_one_invocation_each(
    tmp_path: Path,
    services: Services,
    namespace: str,
    plain_peek: RegistryPeek,
    on_modern: str,
    busybox_arm64: Path,  # noqa: F811
    docker_log: Path,
) -> None:
    root = tmp_path / "project"
    platforms = f"platforms: [{', '.join(PLATFORMS)}]"
    images = {
        "base": f"{{context: images/base, {platforms}}}",
        "app": "{context: images/app, depends_on: [base], build_args: {BASE: '{{ images.base }}'}, " + platforms + "}",
    }
    write_project(root, shop_config(f"{services.plain_registry}/{namespace}", images), {"base": DOCKERFILE, "app": APP})
    _busyboxes(root / "images" / "base", busybox_arm64)
    init_git(root)
    result = run_cli(["run", "--json", "--version", "1.0.0"], root)
    assert result.code == 0, result.output
    builds = _builds(docker_log)
    assert len(builds) == 2 and all("--platform linux/amd64,linux/arm64 " in b for b in builds), builds
    images_out = {i["name"]: i for i in json.loads(result.stdout)["images"]}
    base_children = plain_peek.index_children(f"{namespace}/base", str(images_out["base"]["digest"]))
    app_children = plain_peek.index_children(f"{namespace}/app", str(images_out["app"]["digest"]))
    assert set(app_children) == set(PLATFORMS)
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        base_layers = plain_peek.layers(f"{namespace}/base", base_children[platform])
        app_layers = plain_peek.layers(f"{namespace}/app", app_children[platform])
        assert app_layers[: len(base_layers)] == base_layers, platform  # each platform on its own base child
        files = plain_peek.files(f"{namespace}/app", app_children[platform])
        assert (files["arch"], files["app-arch"]) == (f"{machine}\n".encode(),) * 2, platform


def test_a_step_failing_on_one_platform_fails_the_image_naming_that_platform_and_tags_nothing(
    tmp_path: Path,
    services: Services,
    namespace: str,
    plain_peek: RegistryPeek,
    on_modern: str,
    busybox_arm64: Path,  # noqa: F811
    docker_log: Path,
) -> None:
    root = tmp_path / "project"
    _project(root, f"{services.plain_registry}/{namespace}", busybox_arm64)
    dockerfile = root / "images" / "app" / "Dockerfile"
    dockerfile.write_text(DOCKERFILE + 'RUN ["/bin/busybox", "sh", "-c", "! /bin/busybox grep -q aarch64 /arch"]\n')
    commit_files(root, {})
    result = run_cli(["run", "--json", "--version", "1.0.0"], root)
    assert result.code != 0
    assert len(_builds(docker_log)) == 1
    (app,) = json.loads(result.stdout)["images"]
    assert app["status"] == "failed"
    assert app["error"].startswith("shop/app: build failed at [linux/arm64 "), app["error"]
    assert plain_peek.all_tags(f"{namespace}/app") <= {f"sha-{_head(root)[:12]}"}  # at most what the engine pushed


def _head(root: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout
