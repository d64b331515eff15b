"""External base images as inputs, on the real engine and registry: an upstream tag that moves rebuilds
exactly the images on it (and their dependants) on the registry's new digest, never on a stale copy the
engine keeps of the tag; a base that cannot be resolved is refused before anything builds."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import built_steps, image_entry, init_git, run_cli, shop_config, write_project
from tests.integration.conftest import RegistryPeek, Services

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

UPSTREAM_DOCKERFILE = "FROM scratch\nCOPY up.txt /up.txt\n"


def docker(*args: str) -> str:
    # buildx's default provenance attestation off, as pipeline has it: on Docker 26 with the containerd store
    # it would make the one-platform upstream image an index (the image and its attestation manifest).
    env = os.environ | {"BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def push_upstream(work: Path, reference: str, content: str) -> str:
    """Build a tiny image (one file, /up.txt) as `reference` in the engine and push it; its local image id."""
    context = work / f"upstream-{abs(hash((reference, content)))}"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(UPSTREAM_DOCKERFILE)
    (context / "up.txt").write_text(content)
    docker("buildx", "build", "--builder", "default", "--load", "-q", "-t", reference, str(context))
    docker("push", "-q", reference)
    return docker("image", "inspect", "--format", "{{.Id}}", reference)


def report(stdout: str) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in json.loads(stdout)["images"]}


def project(root: Path, registry: str, *, second: str | None = None) -> Path:
    upstream = f"{registry}-upstream/base:1"
    app = f"FROM {upstream}\nCOPY app.txt /app.txt\n"
    if second is not None:
        app += f"COPY --from={second} /up.txt /second.txt\n"
    config = write_project(
        root,
        shop_config(
            registry,
            {"base-app": "", "other": "", "child": image_entry("child", 'build_args: {BASE: "{{ images.base-app }}"}')},
        ),
        {
            "base-app": app,
            "other": "FROM scratch\nCOPY other.txt /other.txt\n",
            "child": "ARG BASE\nFROM ${BASE}\nCOPY child.txt /child.txt\n",
        },
    )
    for name in ("base-app", "other", "child"):
        (root / "images" / name / f"{name.split('-')[-1]}.txt").write_text(f"{name}\n")
    return config


def test_a_moved_upstream_base_rebuilds_its_images_on_the_registry_digest_not_a_stale_local_copy(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    registry = f"{services.plain_registry}/{namespace}"
    upstream = f"{registry}-upstream/base:1"
    old_id = push_upstream(tmp_path, upstream, "old upstream\n")
    old = plain_peek.digest(f"{namespace}-upstream/base", "1")
    root = tmp_path / "project"
    project(root, registry)
    init_git(root)

    first = run_cli(["run", "--json"], root)
    assert first.code == 0, first.output
    built = report(first.stdout)
    assert plain_peek.files(f"{namespace}/base-app", built["base-app"]["digest"])["up.txt"] == b"old upstream\n"
    assert built["base-app"]["bases"] == [
        {
            "reference": upstream,
            "platform": "linux/amd64",
            "os_version": None,
            "digest": old,
            "index": None,
            "locked": False,
            "not_in_lock": False,
        }
    ]
    assert built["other"]["bases"] == [] and built["child"]["bases"] == []

    # The tag moves upstream; the engine keeps its (now stale) copy of the old image under the same tag.
    # The old image is kept under a second name meanwhile: the containerd image store drops an image whose
    # only name moves to another (the classic store keeps it, untagged, under its ID).
    docker("tag", upstream, f"{upstream}-stale")
    push_upstream(tmp_path, upstream, "new upstream\n")
    new = plain_peek.digest(f"{namespace}-upstream/base", "1")
    assert new != old
    docker("tag", f"{upstream}-stale", upstream)
    assert docker("image", "inspect", "--format", "{{.Id}}", upstream) == old_id

    explained = run_cli(["explain", "base-app"], root)
    assert explained.code == 0, explained.output
    assert f"  changed: base {upstream} {old[:19]}… → {new[:19]}…\n" in explained.stdout
    as_json = json.loads(run_cli(["explain", "base-app", "--json"], root).stdout)
    assert {"reference": upstream, "old": old, "new": new} in as_json["changed_bases"]

    for args in (["run", "--json"], ["run", "--json", "--no-cache"]):
        moved = run_cli(args, root)
        assert moved.code == 0, moved.output
        rebuilt = report(moved.stdout)
        assert {name: i["reused"] for name, i in rebuilt.items()} == {
            "base-app": False,
            "other": "--no-cache" not in args,
            "child": False,
        }
        for name in ("base-app", "child"):
            pushed = rebuilt[name]["digest"]
            assert plain_peek.files(f"{namespace}/{name}", pushed)["up.txt"] == b"new upstream\n", name
        assert rebuilt["base-app"]["bases"][0]["digest"] == new
        labels = plain_peek.config(f"{namespace}/base-app", rebuilt["base-app"]["digest"])["config"]["Labels"]
        assert json.loads(labels["org.pipeline.bases"]) == {upstream: new}
        # The engine's copy of the tag is still the old image: the build did not read it, nor replace it.
        assert docker("image", "inspect", "--format", "{{.Id}}", upstream) == old_id

    # Nothing moved since: nothing is built.
    again = run_cli(["run", "--json"], root)
    assert again.code == 0, again.output
    assert not built_steps(again.stderr)
    assert all(i["reused"] for i in report(again.stdout).values())


def test_a_second_base_copied_from_moves_and_rebuilds(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    registry = f"{services.plain_registry}/{namespace}"
    second = f"{registry}-upstream/tools:2"
    push_upstream(tmp_path, f"{registry}-upstream/base:1", "base\n")
    push_upstream(tmp_path, second, "tools v1\n")
    root = tmp_path / "project"
    project(root, registry, second=second)
    init_git(root)
    first = run_cli(["run", "--json"], root)
    assert first.code == 0, first.output
    assert [b["reference"] for b in report(first.stdout)["base-app"]["bases"]] == [
        f"{registry}-upstream/base:1",
        second,
    ]

    push_upstream(tmp_path, second, "tools v2\n")
    moved = run_cli(["run", "--json"], root)
    assert moved.code == 0, moved.output
    rebuilt = report(moved.stdout)
    assert {name: i["reused"] for name, i in rebuilt.items()} == {"base-app": False, "other": True, "child": False}
    files = plain_peek.files(f"{namespace}/base-app", rebuilt["base-app"]["digest"])
    assert files["second.txt"] == b"tools v2\n"
    assert files["up.txt"] == b"base\n"


def test_a_missing_base_is_refused_before_anything_builds(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    registry = f"{services.plain_registry}/{namespace}"
    root = tmp_path / "project"
    project(root, registry)  # its upstream was never pushed
    init_git(root)
    refused = run_cli(["run", "--json"], root)
    assert refused.code == 1, refused.output
    images = report(refused.stdout)
    assert images["base-app"]["status"] == "failed"
    assert images["base-app"]["error"] == (
        f"shop/base-app: images/base-app/Dockerfile:1: base image {registry}-upstream/base:1 is not in the "
        "registry, so the build cannot stand on a known digest; refusing to build"
    )
    assert {images["other"]["status"], images["child"]["status"]} == {"skipped"}
    assert not built_steps(refused.stderr)
    for name in ("base-app", "other", "child"):
        assert plain_peek.all_tags(f"{namespace}/{name}") == set()


def test_a_base_without_an_image_for_a_variant_platform_is_refused_naming_what_it_has(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    registry = f"{services.plain_registry}/{namespace}"
    upstream = f"{registry}-upstream/base:1"
    push_upstream(tmp_path, upstream, "amd64 only\n")
    # An index of one linux/amd64 image: a linux/arm64 variant has nothing to stand on.
    raw = httpx.get(
        f"{plain_peek.base}/{namespace}-upstream/base/manifests/1",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": raw.headers["Content-Type"],
                "digest": raw.headers["Docker-Content-Digest"],
                "size": len(raw.content),
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    put = httpx.put(
        f"{plain_peek.base}/{namespace}-upstream/base/manifests/multi",
        content=json.dumps(index),
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert put.status_code == 201, put.text
    root = tmp_path / "project"
    write_project(
        root,
        shop_config(registry, {"app": image_entry("app", "platforms: [linux/amd64, linux/arm64]"), "other": ""}),
        {
            "app": f"FROM {registry}-upstream/base:multi\n",
            "other": "FROM scratch\nCOPY Dockerfile /Dockerfile\n",
        },
    )
    init_git(root)
    refused = run_cli(["run", "--json"], root)
    assert refused.code == 1, refused.output
    images = report(refused.stdout)
    error = images["app"]["error"]
    assert error.startswith("shop/app[linux-arm64]: images/app/Dockerfile:1: base image "), error
    assert "has no linux/arm64 image to build on (it has linux/amd64); refusing to build" in error
    assert images["other"]["status"] == "skipped"
    assert not built_steps(refused.stderr)
    assert plain_peek.all_tags(f"{namespace}/app") == set() and plain_peek.all_tags(f"{namespace}/other") == set()
