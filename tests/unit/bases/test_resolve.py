"""The run's base resolver against a fake registry: one lookup per reference however many threads ask,
an index's child chosen by platform and Windows build, refusals that name what the base has, and the
lock file's digests winning over the registry's."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from pipeline.bases.lock import BaseLock, LockEntry
from pipeline.bases.resolve import BaseNotLocked, BaseNotResolved, BaseResolver, own_repositories, plan_builds
from pipeline.config.schema import ConfigSpec
from pipeline.plan import Plan, RunContext, make_plan
from pipeline.registry.client import Manifest, RegistryClient
from pipeline.registry.reference import ImageRef, Repository
from tests.helpers import fake_digests, write_project

UP = "up.example/lib/base"
INDEX, AMD64, LTSC2019, LTSC2022, LOCKED = fake_digests("1abcd")


@pytest.fixture(autouse=True)
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # Dockerfiles are named as the user types them from the project


class FakeRegistry:
    """Tags -> digests and digests -> manifests; counts every tag lookup (a HEAD in the real client)."""

    def __init__(
        self,
        tags: dict[str, str],
        manifests: dict[str, dict[str, Any]],
        configs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.tags = tags
        self.manifests = manifests
        self.configs = configs or {}  # an image's digest -> its config (default: linux/amd64)
        self.heads: list[str] = []
        self.config_reads: list[str] = []
        self._guard = threading.Lock()

    def resolve_digest(self, ref: ImageRef) -> str | None:
        time.sleep(0.05)  # long enough for racing threads to meet
        with self._guard:
            self.heads.append(str(ref))
        return self.tags.get(str(ref))

    def manifest_by_digest(self, repository: Repository, digest: str) -> Manifest:
        body = self.manifests[digest]
        return Manifest(str(body.get("mediaType", "")), digest, json.dumps(body).encode())

    def image_config(self, repository: Repository, manifest: Manifest) -> dict[str, Any]:
        with self._guard:
            self.config_reads.append(manifest.digest)
        return self.configs.get(manifest.digest, {"os": "linux", "architecture": "amd64"})


def image_manifest() -> dict[str, Any]:
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {}, "layers": []}


def windows_index() -> FakeRegistry:
    child = {"mediaType": "application/vnd.oci.image.manifest.v1+json"}
    index = {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {**child, "digest": AMD64, "platform": {"os": "linux", "architecture": "amd64"}},
            {
                **child,
                "digest": LTSC2019,
                "platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.5458"},
            },
            {
                **child,
                "digest": LTSC2022,
                "platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.2322"},
            },
        ],
    }
    return FakeRegistry({f"{UP}:1": INDEX}, {INDEX: index, AMD64: image_manifest()})


def plan_of(root: Path, variants: str = "") -> Plan:
    config = f"""\
registry: r.example/x
pipelines:
  p:
    images:
      app: {{context: images/app{variants}}}
      other: {{context: images/other}}
      child: {{context: images/child, build_args: {{BASE: "{{{{ images.app }}}}"}}}}
"""
    write_project(
        root,
        config,
        {
            "app": f"FROM {UP}:1\nCOPY . /app\n",
            "other": f"FROM {UP}:1 AS one\nFROM scratch\nCOPY --from=one / /\n",
            "child": "ARG BASE\nFROM ${BASE}\n",
        },
    )
    return make_plan(ConfigSpec.model_validate(yaml.safe_load(config)), root, [], RunContext())


def resolver(registry: FakeRegistry, plan: Plan, **options: Any) -> BaseResolver:
    return BaseResolver(cast(RegistryClient, registry), own=own_repositories(plan), **options)


def test_every_build_resolves_its_bases_with_one_lookup_per_reference_across_threads(tmp_path: Path) -> None:
    registry = windows_index()
    plan = plan_of(tmp_path)
    bases = resolver(registry, plan)
    builds = plan_builds(plan) * 4  # the same builds asked again and again, from many threads
    assert bases.resolve_all(builds, jobs=8) == {}
    assert registry.heads == [f"{UP}:1"]
    threads = [threading.Thread(target=bases.bases_of, args=build) for build in builds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert registry.heads == [f"{UP}:1"]
    app = bases.bases_of(plan.images["p/app"], {})
    assert [(b.reference, b.digest, b.index) for b in app] == [(f"{UP}:1", AMD64, INDEX)]
    assert bases.digests(plan.images["p/child"], {"BASE": "r.example/x/app@" + AMD64}) == {}  # its own image


def test_an_index_child_is_chosen_by_platform_and_windows_build(tmp_path: Path) -> None:
    variants = (
        ", variants: {ltsc2019: {platform: windows/amd64, os_version: 10.0.17763},"
        " ltsc2022: {platform: windows/amd64, os_version: 10.0.20348}}"
    )
    plan = plan_of(tmp_path, variants)
    bases = resolver(windows_index(), plan)
    image = plan.images["p/app"]
    chosen = {v.name: bases.bases_of(image.variant_view(v), {})[0] for v in image.variants}
    assert chosen["ltsc2019"].digest == LTSC2019 and chosen["ltsc2019"].os_version == "10.0.17763"
    assert chosen["ltsc2022"].digest == LTSC2022 and chosen["ltsc2022"].index == INDEX
    assert chosen["ltsc2019"].pinned == f"{UP}@{LTSC2019}"


def test_a_windows_build_the_base_lacks_is_refused_naming_the_versions_it_has(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, ", variants: {ltsc2025: {platform: windows/amd64, os_version: 10.0.26100}}")
    bases = resolver(windows_index(), plan)
    refused = bases.resolve_all(plan_builds(plan))
    assert list(refused) == ["p/app[ltsc2025]"]
    message = str(refused["p/app[ltsc2025]"])
    assert isinstance(refused["p/app[ltsc2025]"], BaseNotResolved)
    assert message.startswith(f"p/app[ltsc2025]: images/app/Dockerfile:1: base image {UP}:1 ({UP}@{INDEX}) has no ")
    assert "10.0.26100" in message
    assert "(it has linux/amd64, windows/amd64 10.0.17763.5458, windows/amd64 10.0.20348.2322)" in message


def test_a_missing_base_is_refused_naming_the_dockerfile_line(tmp_path: Path) -> None:
    plan = plan_of(tmp_path)
    bases = resolver(FakeRegistry({}, {}), plan)
    refused = bases.resolve_all(plan_builds(plan))
    assert set(refused) == {"p/app", "p/other"}
    assert str(refused["p/other"]) == (
        f"p/other: images/other/Dockerfile:1: base image {UP}:1 is not in the registry, so the build cannot "
        "stand on a known digest; refusing to build"
    )


def test_a_locked_digest_wins_over_the_registry_and_locked_refuses_what_the_lock_lacks(tmp_path: Path) -> None:
    plan = plan_of(tmp_path)
    registry = windows_index()
    lock = BaseLock.of([LockEntry(f"{UP}:1", "linux/amd64", None, LOCKED, INDEX)], tmp_path / "pipelines.lock")
    bases = resolver(registry, plan, lock=lock)
    found = bases.bases_of(plan.images["p/app"], {})
    assert [(b.digest, b.locked) for b in found] == [(LOCKED, True)]
    assert registry.heads == []  # the lock answered: the registry was not asked

    strict = resolver(registry, plan, lock=BaseLock.of([], tmp_path / "pipelines.lock"), locked=True)
    with pytest.raises(BaseNotLocked) as refused:
        strict.bases_of(plan.images["p/app"], {})
    assert str(refused.value) == (
        f"p/app: images/app/Dockerfile:1: base image {UP}:1 (linux/amd64) is not in {tmp_path / 'pipelines.lock'}; "
        "run `pipeline bases --update` and commit the lock (refused by --locked)"
    )


def test_a_stage_naming_its_own_platform_stands_on_the_whole_index(tmp_path: Path) -> None:
    """`FROM --platform=$BUILDPLATFORM` (a cross-compiling stage) takes the build machine's image from the
    reference: pinning the target platform's child would run it emulated. It stands on the index itself
    (content-addressed), and a plain FROM of the same reference in another image keeps its child."""
    plan = plan_of(tmp_path)
    (tmp_path / "images/other/Dockerfile").write_text(
        f"FROM --platform=$BUILDPLATFORM {UP}:1 AS tools\nFROM scratch\nCOPY --from=tools / /\n", encoding="utf-8"
    )
    registry = windows_index()
    bases = resolver(registry, plan)
    assert bases.resolve_all(plan_builds(plan)) == {}
    assert [(b.digest, b.index) for b in bases.bases_of(plan.images["p/other"], {})] == [(INDEX, INDEX)]
    assert [(b.digest, b.index) for b in bases.bases_of(plan.images["p/app"], {})] == [(AMD64, INDEX)]
    assert registry.heads == [f"{UP}:1"]
    locked = resolver(
        registry, plan, lock=BaseLock.of([LockEntry(f"{UP}:1", "linux/amd64", None, LOCKED, INDEX)])
    ).bases_of(plan.images["p/other"], {})
    assert [(b.digest, b.locked) for b in locked] == [(INDEX, True)]


def test_a_single_image_base_is_checked_against_every_variants_platform(tmp_path: Path) -> None:
    """Not an index: the image is for the one platform its config names. An arm64 variant on an amd64-only
    base is refused before anything builds (as an index without the platform is), the amd64 one is not; a
    stage naming its own platform stands on it whatever its config says."""
    plan = plan_of(tmp_path, ", variants: {amd64: {platform: linux/amd64}, arm64: {platform: linux/arm64}}")
    registry = FakeRegistry({f"{UP}:1": AMD64}, {AMD64: image_manifest()})
    bases = resolver(registry, plan)
    refused = bases.resolve_all(plan_builds(plan))
    assert list(refused) == ["p/app[arm64]"]
    assert str(refused["p/app[arm64]"]) == (
        f"p/app[arm64]: images/app/Dockerfile:1: base image {UP}:1 ({UP}@{AMD64}) is not a linux/arm64 image: "
        "its config says linux/amd64, not linux/arm64; refusing to build"
    )
    app = plan.images["p/app"]
    amd64 = app.variant_view(next(v for v in app.variants if v.name == "amd64"))
    assert [b.digest for b in bases.bases_of(amd64, {})] == [AMD64]
    assert registry.heads == [f"{UP}:1"]
    (tmp_path / "images/app/Dockerfile").write_text(f"FROM --platform=$BUILDPLATFORM {UP}:1\n", encoding="utf-8")
    whole = resolver(registry, plan)
    assert whole.resolve_all(plan_builds(plan)) == {}
    arm64 = app.variant_view(next(v for v in app.variants if v.name == "arm64"))
    assert [(b.digest, b.index) for b in whole.bases_of(arm64, {})] == [(AMD64, None)]


def test_each_dockerfile_is_read_once_per_run_for_its_build_args(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start-of-run resolution, the input digest, the report and the gate each ask an image's bases: its
    Dockerfile is read and parsed once (a no-op run of 300 images parsed 1,200 times), again only for other
    build args (a dependant's, its dependency's tag at the start and its digest once built)."""
    from pipeline.bases import resolve

    read: list[str] = []
    real = resolve.dockerfile_text
    monkeypatch.setattr(resolve, "dockerfile_text", lambda path: read.append(path.parent.name) or real(path))
    plan = plan_of(tmp_path)
    bases = resolver(windows_index(), plan)
    assert bases.resolve_all(plan_builds(plan)) == {}
    for _ in range(3):
        for view, args in plan_builds(plan):
            bases.bases_of(view, args)
        bases.digests(plan.images["p/child"], {"BASE": "r.example/x/app@" + AMD64})
    assert sorted(read) == ["app", "child", "child", "other"]
    assert [(b.reference, b.digest) for b in bases.bases_of(plan.images["p/app"], {})] == [(f"{UP}:1", AMD64)]
