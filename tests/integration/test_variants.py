"""README "Platforms and Windows versions", the Linux part: an image with `platforms:` is built once per
platform, each pushed by digest, and published as one image index that is the image from then on
(sha-, release and floating tags, the input cache, `{{ images.base }}` for dependants' variants)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import git, init_git, run_cli, write_project
from tests.integration.conftest import RegistryPeek, Services

OCI_INDEX = "application/vnd.oci.image.index.v1+json"

BASE = """\
FROM scratch
ARG TARGETARCH
COPY ${TARGETARCH}.txt /arch.txt
"""
APP = """\
ARG BASE
FROM ${BASE}
COPY app.txt /app.txt
"""


def _project(root: Path, registry: str, *, variant_tags: bool = False) -> None:
    tags = "\n        tags: {variants: true}" if variant_tags else ""
    write_project(
        root,
        f"""\
        registry: {registry}
        network: none{tags}
        pipelines:
          shop:
            platforms: [linux/amd64, linux/arm64]
            images:
              base: {{context: images/base}}
              app:
                context: images/app
                build_args: {{BASE: "{{{{ images.base }}}}"}}
        """,
        {"base": BASE, "app": APP},
    )
    for arch in ("amd64", "arm64"):
        (root / "images" / "base" / f"{arch}.txt").write_text(f"base for {arch}\n")
    (root / "images" / "app" / "app.txt").write_text("app v1\n")
    init_git(root)


def _images(stdout: str) -> dict[str, dict[str, Any]]:
    return {image["name"]: image for image in json.loads(stdout)["images"]}


def _children(peek: RegistryPeek, repo: str, digest: str) -> dict[str, str]:
    found = peek.manifest(repo, digest)
    assert found is not None
    _, index = found
    assert index["mediaType"] == OCI_INDEX, index
    return {
        f"{m['platform']['os']}/{m['platform']['architecture']}": str(m["digest"])
        for m in index["manifests"]  # type: ignore[union-attr]
    }


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
