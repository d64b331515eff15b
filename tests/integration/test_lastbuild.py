"""`last_build` and `narrow_plan` against the plain local registry: which pushed build of an image is the
last one on a line of history (what `explain` compares with and `run --since` pins dependencies to)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cache.lastbuild import LastBuild, last_build, narrow_plan
from pipeline.config import load_config
from pipeline.errors import PipelineError
from pipeline.plan import Plan, RunContext, make_plan
from pipeline.registry.client import Manifest, RegistryClient
from pipeline.registry.reference import Repository
from tests.helpers import image_entry, shop_config, write_project
from tests.integration.conftest import RegistryPeek, Services

# Commits of a made-up first-parent history, HEAD first: only their sha- tags matter here.
C5, C4, C3, C2, C1 = (hashlib.sha1(f"commit {n}".encode()).hexdigest() for n in (5, 4, 3, 2, 1))
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def registry(services: Services) -> Iterator[RegistryClient]:
    with RegistryClient(lambda _: None) as client:
        yield client


def shop_plan(root: Path, registry: str) -> Plan:
    """base (tags with suffix -win) and app FROM it; never built: the registry is filled by `push`."""
    config_file = write_project(
        root,
        shop_config(
            registry,
            {
                "base": image_entry("base", "tags: {suffix: -win}"),
                "app": image_entry("app", 'build_args: {BASE: "{{ images.base }}"}'),
            },
        ),
        {"base": "FROM scratch\n", "app": "ARG BASE\nFROM $BASE\n"},
    )
    config = load_config(config_file)
    return make_plan(config.spec, config.base_dir, [], RunContext())


def push(registry: RegistryClient, repository: Repository, tag: str, marker: str) -> str:
    """A distinct tiny image (no layers, a config naming `marker`) under `tag`; its digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"marker": marker}}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": registry.push_blob(repository, config),
            "size": len(config),
        },
        "layers": [],
    }
    body = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return registry.put_manifest(repository, tag, Manifest(OCI_MANIFEST, digest, body))


def test_last_build_is_the_newest_sha_tag_on_the_history_then_the_fallback_tag(
    tmp_path: Path, services: Services, namespace: str, registry: RegistryClient, plain_peek: RegistryPeek
) -> None:
    plan = shop_plan(tmp_path, f"{services.plain_registry}/{namespace}")
    base = plan.images["shop/base"]
    # Nothing pushed yet: the repository does not exist, which is no build rather than an error.
    assert last_build(registry, base, [C5, C4, C3, C2, C1], "main") is None

    old = push(registry, base.repository, f"sha-{C2[:12]}-win", "c2")
    new = push(registry, base.repository, f"sha-{C4[:12]}-win", "c4")
    branch = push(registry, base.repository, "main", "branch")
    push(registry, base.repository, f"sha-{C5[:12]}", "c5 without the suffix: another variant's build")
    assert plain_peek.tags(f"{namespace}/base") == {
        f"sha-{C2[:12]}-win",
        f"sha-{C4[:12]}-win",
        f"sha-{C5[:12]}",
        "main",
    }

    assert last_build(registry, base, [C5, C4, C3, C2, C1]) == LastBuild(C4, f"sha-{C4[:12]}-win", new)
    assert last_build(registry, base, [C3, C2, C1], "main") == LastBuild(C2, f"sha-{C2[:12]}-win", old)
    # The fallback (a branch tag) is taken as it is, without the suffix, and only when no sha- tag matched.
    assert last_build(registry, base, [C3, C1], "main") == LastBuild(None, "main", branch)
    assert last_build(registry, base, [C3, C1], "develop") is None
    assert last_build(registry, base, [C3, C1]) is None
    assert last_build(registry, base, [], "main") == LastBuild(None, "main", branch)


def test_narrow_plan_pins_unchanged_dependencies_to_their_last_build_or_says_to_build_them(
    tmp_path: Path, services: Services, namespace: str, registry: RegistryClient
) -> None:
    plan = shop_plan(tmp_path, f"{services.plain_registry}/{namespace}")
    base = plan.images["shop/base"]
    history = [C5, C4, C3, C2, C1]
    with pytest.raises(PipelineError) as raised:
        narrow_plan(plan, {"shop/app"}, registry, history, "main")
    assert str(raised.value) == (
        f"shop/base is unchanged but no pushed build of it exists for this line of history "
        f"(no sha-<commit> tag of the last 5 commits in {base.repository}); build it first (run without --since)"
    )

    branch = push(registry, base.repository, "main", "branch")
    narrowed = narrow_plan(plan, {"shop/app"}, registry, history, "main")
    assert list(narrowed.images) == ["shop/app"] and narrowed.pinned == {"shop/base": f"{base.repository}@{branch}"}

    built = push(registry, base.repository, f"sha-{C3[:12]}-win", "c3")
    narrowed = narrow_plan(plan, {"shop/app"}, registry, history, "main")
    assert narrowed.pinned == {"shop/base": f"{base.repository}@{built}"}
    # Nothing left out, nothing to look up.
    assert narrow_plan(plan, {"shop/base", "shop/app"}, registry, [], None).pinned == {}
