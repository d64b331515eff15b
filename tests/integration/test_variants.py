"""README "Platforms and Windows versions", the Linux part: an image with `platforms:` is built once per
platform, each pushed by digest, and published as one image index that is the image from then on
(sha-, release and floating tags, the input cache, `{{ images.base }}` for dependants' variants)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import git, image_entry, init_git, run_cli, shop_config, write_project
from tests.integration.conftest import RegistryPeek, Services, _read_env, _unavailable

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

BASE = """\
FROM scratch
ARG TARGETARCH
COPY ${TARGETARCH}.txt /arch.txt
"""
FROM_BASE = 'build_args: {BASE: "{{ images.base }}"}'
TWO_PLATFORMS = "platforms: [linux/amd64, linux/arm64]"
APP = """\
ARG BASE
FROM ${BASE}
COPY app.txt /app.txt
"""


def _project(root: Path, registry: str, *, variant_tags: bool = False) -> None:
    images = {"base": "", "app": image_entry("app", FROM_BASE)}
    top = "tags: {variants: true}" if variant_tags else ""
    write_project(root, shop_config(registry, images, top=top, keys=TWO_PLATFORMS), {"base": BASE, "app": APP})
    _files(root, "app v1\n")
    init_git(root)


def _files(root: Path, app: str) -> None:
    """base's file per architecture, app's app.txt."""
    for arch in ("amd64", "arm64"):
        (root / "images" / "base" / f"{arch}.txt").write_text(f"base for {arch}\n")
    (root / "images" / "app" / "app.txt").write_text(app)


def _index_base_and_amd64_app(root: Path, registry: str, top: str = "") -> str:
    """base in both platforms (an image index), app FROM it for linux/amd64 only; HEAD's sha."""
    images = {"base": image_entry("base", TWO_PLATFORMS), "app": image_entry("app", "platform: linux/amd64", FROM_BASE)}
    write_project(root, shop_config(registry, images, top=top), {"base": BASE, "app": APP})
    _files(root, "app\n")
    return init_git(root)


def _images(stdout: str) -> dict[str, dict[str, Any]]:
    return {image["name"]: image for image in json.loads(stdout)["images"]}


def _children(peek: RegistryPeek, repo: str, digest: str) -> dict[str, str]:
    return peek.index_children(repo, digest)


def test_platforms_publish_one_index_that_is_the_image(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    _project(tmp_path, f"{services.plain_registry}/{namespace}")
    first = run_cli(["run", "--json", "--version", "1.2.3"], tmp_path)
    assert first.code == 0, first.output
    images = _images(first.stdout)

    for name in ("base", "app"):
        repo = f"{namespace}/{name}"
        index = str(images[name]["digest"])
        children = _children(plain_peek, repo, index)
        assert set(children) == {"linux/amd64", "linux/arm64"}
        for tag in ("1.2.3", "1.2", "1", "latest"):
            assert plain_peek.digest(repo, tag) == index, (name, tag)
        # Each child is the platform it says, with that platform's bytes.
        for platform, child in children.items():
            config = plain_peek.image_config(repo, child)
            assert f"{config['os']}/{config['architecture']}" == platform
        reported = {v["platform"]: v["digest"] for v in images[name]["variants"]}
        assert reported == children

    base_children = _children(plain_peek, f"{namespace}/base", str(images["base"]["digest"]))
    app_children = _children(plain_peek, f"{namespace}/app", str(images["app"]["digest"]))
    for platform, arch in (("linux/amd64", "amd64"), ("linux/arm64", "arm64")):
        files = plain_peek.files(f"{namespace}/base", base_children[platform])
        assert files["arch.txt"] == f"base for {arch}\n".encode()
        # The app's variant is built on the base's variant of the same platform: its layers start with them.
        base_layers = plain_peek.layers(f"{namespace}/base", base_children[platform])
        app_layers = plain_peek.layers(f"{namespace}/app", app_children[platform])
        assert app_layers[: len(base_layers)] == base_layers, platform
        assert plain_peek.files(f"{namespace}/app", app_children[platform])["arch.txt"] == files["arch.txt"]
    assert base_children["linux/amd64"] != base_children["linux/arm64"]

    # Nothing changed: the whole index is reused, every variant with it.
    (tmp_path / "notes.md").write_text("outside every context\n")
    git(tmp_path, "add", "notes.md")
    git(tmp_path, "commit", "-qm", "notes")
    again = run_cli(["run", "--json"], tmp_path)
    assert again.code == 0, again.output
    reused = _images(again.stdout)
    for name in ("base", "app"):
        assert reused[name]["reused"] is True, again.output
        assert reused[name]["digest"] == images[name]["digest"]
        assert {v["platform"]: v["digest"] for v in reused[name]["variants"]} == {
            v["platform"]: v["digest"] for v in images[name]["variants"]
        }

    # Only the app changed: a run of what changed pins the base to its pushed index, and each app
    # variant builds on the base's child of its own platform.
    (tmp_path / "images" / "app" / "app.txt").write_text("app v2\n")
    git(tmp_path, "commit", "-qam", "app v2")
    partial = run_cli(["run", "--json", "--since", "HEAD~1"], tmp_path)
    assert partial.code == 0, partial.output
    rebuilt = _images(partial.stdout)
    assert set(rebuilt) == {"app"}, partial.output
    new_children = _children(plain_peek, f"{namespace}/app", str(rebuilt["app"]["digest"]))
    for platform in ("linux/amd64", "linux/arm64"):
        base_layers = plain_peek.layers(f"{namespace}/base", base_children[platform])
        app_layers = plain_peek.layers(f"{namespace}/app", new_children[platform])
        assert app_layers[: len(base_layers)] == base_layers, platform
        assert plain_peek.files(f"{namespace}/app", new_children[platform])["app.txt"] == b"app v2\n"


def test_one_failing_variant_moves_no_tag(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    _project(tmp_path, f"{services.plain_registry}/{namespace}")
    (tmp_path / "images" / "base" / "arm64.txt").unlink()  # the arm64 variant's COPY fails
    git(tmp_path, "commit", "-qam", "no arm64 file")
    result = run_cli(["run", "--json", "--version", "1.2.3"], tmp_path)
    assert result.code != 0
    images = _images(result.stdout)
    assert images["base"]["status"] == "failed"
    assert "arm64" in str(images["base"]["error"]), images["base"]["error"]
    assert images["app"]["status"] == "skipped"
    # The amd64 variant may have been pushed under its own build tag, but no image tag exists.
    tags = plain_peek.all_tags(f"{namespace}/base")
    assert not tags & {"1.2.3", "1.2", "1", "latest"}, tags
    assert not [t for t in tags if t.startswith("sha-") and not t.endswith(("-linux-amd64", "-linux-arm64"))], tags
    assert plain_peek.all_tags(f"{namespace}/app") == set()


def test_a_variant_built_for_another_platform_than_asked_is_not_published(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """The platform check after the push, whatever the builder: here the classic builder, which takes the
    image config's platform from the base image, on a Dockerfile pinned to an arm64 base, so the
    linux/amd64 variant's build pushes an arm64 image (BuildKit would write linux/amd64 in its config)."""
    arm = tmp_path / "arm"
    write_project(
        arm,
        shop_config(
            f"{services.plain_registry}/{namespace}",
            {"armbase": image_entry("armbase", "platform: linux/arm64")},
            pipeline="other",
        ),
        {"armbase": "FROM scratch\nCOPY arm.txt /arm.txt\n"},
    )
    (arm / "images" / "armbase" / "arm.txt").write_text(f"arm64 only {namespace}\n", encoding="utf-8")
    init_git(arm)
    built = run_cli(["run", "--json"], arm)
    assert built.code == 0, built.output
    armbase = _images(built.stdout)["armbase"]["reference"]
    # The base is taken from the registry, not from the engine's store: on Docker 26's containerd store an
    # image BuildKit built for another platform than the engine's is kept without its unpacked snapshot,
    # and the classic builder then fails on it ("parent snapshot ... does not exist"), an engine's bug.
    local = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", armbase.split("@")[0]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    subprocess.run(["docker", "image", "rm", armbase, *local], capture_output=True, check=False)
    shop = tmp_path / "shop"
    _project(shop, f"{services.plain_registry}/{namespace}")
    config = shop / "pipelines.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("network: none", "network: none\nbuilder: classic"))
    (shop / "images" / "base" / "Dockerfile").write_text(
        f"FROM --platform=linux/arm64 {armbase}\nCOPY arm64.txt /arch.txt\n", encoding="utf-8"
    )
    git(shop, "commit", "-qam", "a base pinned to arm64")
    sha = git(shop, "rev-parse", "HEAD")
    result = run_cli(["run", "--json", "--version", "1.2.3"], shop)
    assert result.code == 1, result.output
    images = _images(result.stdout)
    base = images["base"]
    assert base["status"] == "failed" and images["app"]["status"] == "skipped", images
    amd64 = plain_peek.digest(f"{namespace}/base", f"sha-{sha[:12]}-linux-amd64")
    assert amd64 is not None, base["error"]  # pushed under its variant's build tag, then refused
    repository = f"{services.plain_registry}/{namespace}/base"
    assert base["error"] == (
        f"shop/base[linux-amd64]: the build pushed {repository}@{amd64} for linux/amd64, but its config says "
        "linux/arm64, not linux/amd64; not published as that variant"
    ), base["error"]
    variants = {v["variant"]: v["status"] for v in base["variants"]}
    assert variants == {"linux-amd64": "failed", "linux-arm64": "succeeded"}, variants
    # No index: neither the image's build tag nor any release tag names anything.
    tags = plain_peek.all_tags(f"{namespace}/base")
    assert not tags & {f"sha-{sha[:12]}", "1.2.3", "1.2", "1", "latest"}, tags
    assert plain_peek.all_tags(f"{namespace}/app") == set()


def test_per_variant_tags_point_at_each_variant(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    _project(tmp_path, f"{services.plain_registry}/{namespace}", variant_tags=True)
    result = run_cli(["run", "--json", "--version", "2.1.5"], tmp_path)
    assert result.code == 0, result.output
    base = _images(result.stdout)["base"]
    children = _children(plain_peek, f"{namespace}/base", str(base["digest"]))
    for platform, name in (("linux/amd64", "linux-amd64"), ("linux/arm64", "linux-arm64")):
        for tag in ("2.1.5", "2.1", "2", "latest"):
            assert plain_peek.digest(f"{namespace}/base", f"{tag}-{name}") == children[platform], (tag, name)
    assert plain_peek.digest(f"{namespace}/base", "2.1.5") == base["digest"]


def test_a_change_to_one_variant_rebuilds_only_it_and_the_dependants_variants_on_it(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    config = write_project(
        tmp_path,
        f"""\
        registry: {services.plain_registry}/{namespace}
        network: none
        pipelines:
          shop:
            variants:
              linux-amd64: {{platform: linux/amd64, build_args: {{FLAVOUR: amd64}}}}
              linux-arm64: {{platform: linux/arm64, build_args: {{FLAVOUR: arm64}}}}
            images:
              base: {{context: images/base}}
              app:
                context: images/app
                build_args: {{BASE: "{{{{ images.base }}}}"}}
        """,
        {"base": "FROM scratch\nARG FLAVOUR\nCOPY ${FLAVOUR}.txt /arch.txt\n", "app": APP},
    )
    for name in ("amd64", "arm64", "arm64-patched"):
        (tmp_path / "images" / "base" / f"{name}.txt").write_text(f"base {name}\n")
    (tmp_path / "images" / "app" / "app.txt").write_text("app\n")
    init_git(tmp_path)
    first = run_cli(["run", "--json"], tmp_path)
    assert first.code == 0, first.output
    before = {name: {v["variant"]: v["digest"] for v in i["variants"]} for name, i in _images(first.stdout).items()}

    # One variant's build arg changes: only that variant of base, and the app's variant on it, are new.
    config.write_text(config.read_text().replace("FLAVOUR: arm64", "FLAVOUR: arm64-patched"))
    git(tmp_path, "commit", "-qam", "patch the arm64 base")
    second = run_cli(["run", "--json"], tmp_path)
    assert second.code == 0, second.output
    images = _images(second.stdout)
    sha = git(tmp_path, "rev-parse", "HEAD").strip()[:12]
    for name in ("base", "app"):
        variants = {v["variant"]: v for v in images[name]["variants"]}
        # The amd64 variant is the earlier image, reused by its own inputs; the arm64 one is new.
        assert variants["linux-amd64"]["reused"] is True, (name, second.output)
        assert variants["linux-amd64"]["digest"] == before[name]["linux-amd64"]
        assert variants["linux-arm64"]["reused"] is False, (name, second.output)
        assert variants["linux-arm64"]["digest"] != before[name]["linux-arm64"]
        # A new index of both, under the new commit's tag.
        children = _children(plain_peek, f"{namespace}/{name}", str(images[name]["digest"]))
        assert children == {
            "linux/amd64": before[name]["linux-amd64"],
            "linux/arm64": variants["linux-arm64"]["digest"],
        }
        assert plain_peek.digest(f"{namespace}/{name}", f"sha-{sha}") == images[name]["digest"]
    app_arm64 = {v["variant"]: v["digest"] for v in images["app"]["variants"]}["linux-arm64"]
    assert plain_peek.files(f"{namespace}/app", app_arm64)["arch.txt"] == b"base arm64-patched\n"


def test_without_a_push_a_dependant_without_variants_cannot_build_on_a_base_with_them(tmp_path: Path) -> None:
    _index_base_and_amd64_app(tmp_path, "127.0.0.1:5000/nopush")
    result = run_cli(["run", "--no-push", "--json"], tmp_path)
    assert result.code != 0
    images = _images(result.stdout)
    assert images["base"]["status"] == "succeeded"
    assert images["app"]["status"] == "failed"
    assert "shop/app: builds on shop/base, which has variants; without a push there is no image index" in str(
        images["app"]["error"]
    )


def test_each_variant_builds_on_the_engine_it_names(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    second = _read_env().get("PIPELINE_ENGINE2_HOST", "")
    if not second:
        _unavailable("no second engine (PIPELINE_ENGINE2_HOST) in the services env")
    local = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    write_project(
        tmp_path,
        shop_config(
            f"{services.plain_registry}/{namespace}",
            {
                "base": image_entry(
                    "base",
                    "engine: here",
                    "variants: {linux-amd64: {platform: linux/amd64, engine: there},"
                    " linux-arm64: {platform: linux/arm64, engine: there}}",
                )
            },
            top=f'engines: {{here: {{host: "{local}"}}, there: {{host: "{second}"}}}}',
        ),
        {"base": BASE},
    )
    for arch in ("amd64", "arm64"):
        (tmp_path / "images" / "base" / f"{arch}.txt").write_text(f"base for {arch}\n")
    init_git(tmp_path)
    result = run_cli(["run", "--json"], tmp_path)
    assert result.code == 0, result.output
    base = _images(result.stdout)["base"]
    # The variants' own engine wins over the image's (and over a free slot on the image's engine).
    assert {v["variant"]: v["engine"] for v in base["variants"]} == {"linux-amd64": "there", "linux-arm64": "there"}
    children = _children(plain_peek, f"{namespace}/base", str(base["digest"]))
    assert plain_peek.files(f"{namespace}/base", children["linux/arm64"])["arch.txt"] == b"base for arm64\n"


def test_suffix_and_variant_tags_in_a_run_and_a_dependant_without_variants_gets_the_index(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    registry = f"{services.plain_registry}/{namespace}"
    sha = _index_base_and_amd64_app(tmp_path, registry, top="tags: {suffix: -x, variants: true}")[:12]
    result = run_cli(["run", "--json", "--version", "2.1.5", "--progress", "plain"], tmp_path)
    assert result.code == 0, result.output
    images = _images(result.stdout)
    index = str(images["base"]["digest"])
    children = _children(plain_peek, f"{namespace}/base", index)
    # The suffix goes on the index's tags; each variant's tags put the variant name after it.
    assert plain_peek.digest(f"{namespace}/base", "2.1.5-x") == index
    assert plain_peek.digest(f"{namespace}/base", "2.1.5-x-linux-arm64") == children["linux/arm64"]
    assert plain_peek.digest(f"{namespace}/base", "latest-x-linux-amd64") == children["linux/amd64"]
    # Each variant was pushed under the build tag and its name, by digest.
    for platform, name in (("linux/amd64", "linux-amd64"), ("linux/arm64", "linux-arm64")):
        assert plain_peek.digest(f"{namespace}/base", f"sha-{sha}-x-{name}") == children[platform]
    # A dependant without variants builds FROM base's index (the engine takes its own platform's child).
    assert f"FROM {services.plain_registry}/{namespace}/base@{index}" in result.stderr
    base_layers = plain_peek.layers(f"{namespace}/base", children["linux/amd64"])
    assert plain_peek.layers(f"{namespace}/app", str(images["app"]["digest"]))[: len(base_layers)] == base_layers
