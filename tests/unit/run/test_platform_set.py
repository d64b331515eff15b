"""Variants that differ only in platform, on an engine that builds several platforms at once: one build
request carrying every platform, the index it pushed checked child by child, each child tagged as its
variant; elsewhere (an engine that cannot, Windows versions) one build per variant."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pipeline.cache.inputs import INPUTS_LABEL, labelled_inputs, variant_labels
from pipeline.run.results import RunOptions, Status
from tests.unit.run.fakes import FakeBackend, MemoryRegistry, plan_of, run_images

TWO_PLATFORMS = (
    "      base:\n        context: images/base\n        variants:\n"
    "          amd64: {platform: linux/amd64}\n          arm64: {platform: linux/arm64}\n"
)


def _backend(registry: MemoryRegistry, several: bool) -> FakeBackend:
    backend = FakeBackend(registry)
    backend.several_platforms = several
    return backend


def test_a_two_platform_image_on_an_engine_that_builds_both_at_once_is_one_build(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, TWO_PLATFORMS, ["base"])
    registry = MemoryRegistry()
    backend = _backend(registry, True)
    found, events = run_images(plan, registry, backend, RunOptions())
    row = found["shop/base"]
    assert row.status == Status.SUCCEEDED, row.error
    assert [(r.platforms, r.platform, r.tag.tag) for r in backend.requests] == [
        (("linux/amd64", "linux/arm64"), None, row.tags[0])
    ]
    assert "building linux/amd64, linux/arm64 in one buildx invocation" in [e.message for e in events]
    index = registry.manifests[row.digest or ""]
    children = {m["platform"]["architecture"]: m["digest"] for m in index.json()["manifests"]}
    assert {name: (v.platform, v.digest, v.status) for name, v in row.variants.items()} == {
        "amd64": ("linux/amd64", children["amd64"], Status.SUCCEEDED),
        "arm64": ("linux/arm64", children["arm64"], Status.SUCCEEDED),
    }
    repository = plan.images["shop/base"].repository
    for name in ("amd64", "arm64"):
        assert registry.resolve_digest(repository.with_tag(f"{row.tags[0]}-{name}")) == children[name]
    assert registry.resolve_digest(repository.with_tag(row.tags[0])) == row.digest
    assert [e.message for e in events if e.step == "index"] == []  # the build pushed the index itself

    # Nothing changed: the index is reused, nothing built; one file changed: one build again.
    again = _backend(registry, True)
    second, _ = run_images(plan, registry, again, RunOptions())
    assert (again.requests, second["shop/base"].digest, second["shop/base"].cached) == ([], row.digest, True)
    (tmp_path / "images" / "base" / "extra.txt").write_text("changed\n")
    third = _backend(registry, True)
    changed, _ = run_images(plan, registry, third, RunOptions())
    assert [r.platforms for r in third.requests] == [("linux/amd64", "linux/arm64")]
    assert changed["shop/base"].digest not in (None, row.digest)


def test_a_variant_built_per_platform_reuses_a_child_of_an_index_built_at_once(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, TWO_PLATFORMS, ["base"])
    registry = MemoryRegistry()
    first, _ = run_images(plan, registry, _backend(registry, True), RunOptions())
    single = _backend(registry, False)
    again, _ = run_images(plan, registry, single, RunOptions())
    assert single.requests == []
    assert {n: v.digest for n, v in again["shop/base"].variants.items()} == {
        n: v.digest for n, v in first["shop/base"].variants.items()
    }


def test_on_an_engine_of_one_platform_per_build_each_variant_is_its_own_build(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, TWO_PLATFORMS, ["base"])
    registry = MemoryRegistry()
    backend = _backend(registry, False)
    found, _ = run_images(plan, registry, backend, RunOptions())
    assert found["shop/base"].status == Status.SUCCEEDED
    assert sorted((r.platform, r.platforms) for r in backend.requests) == [("linux/amd64", ()), ("linux/arm64", ())]


def test_windows_versions_stay_one_build_per_variant(tmp_path: Path) -> None:
    linux = plan_of(tmp_path, TWO_PLATFORMS, ["base"])
    image = linux.images["shop/base"]
    windows = tuple(
        replace(v, platform="windows/amd64", os_version=version)
        for v, version in zip(image.variants, ("10.0.17763", "10.0.20348"), strict=True)
    )
    plan = replace(linux, images={image.key: replace(image, variants=windows)})
    registry = MemoryRegistry()
    backend = _backend(registry, True)
    run_images(plan, registry, backend, RunOptions())
    assert sorted((r.platform, r.os_version, r.platforms) for r in backend.requests) == [
        ("windows/amd64", "10.0.17763", ()),
        ("windows/amd64", "10.0.20348", ()),
    ]


def _faulty(tmp_path: Path, pushed: tuple[str, ...]) -> tuple[str | None, MemoryRegistry, list[str]]:
    plan = plan_of(tmp_path, TWO_PLATFORMS, ["base"])
    registry = MemoryRegistry()
    backend = _backend(registry, True)
    backend.index_platforms = pushed
    found, _ = run_images(plan, registry, backend, RunOptions())
    row = found["shop/base"]
    assert (row.status, row.digest) == (Status.FAILED, None)
    assert [v.status for v in row.variants.values()] == [Status.FAILED, Status.FAILED]
    repository = str(plan.images["shop/base"].repository)
    # Only the build tag the engine pushed to: no variant or inputs tag written.
    tags = sorted(k.rpartition(":")[2] for k in registry.tags if k.rpartition(":")[0] == repository)
    return row.error, registry, tags


def test_a_pushed_index_missing_a_platform_fails_the_image_naming_it_and_tags_nothing(tmp_path: Path) -> None:
    error, _, tags = _faulty(tmp_path, ("linux/amd64",))
    assert error is not None and error.startswith("shop/base[arm64]: the build pushed ")
    assert error.endswith("with no image for linux/arm64; not published")
    assert len(tags) == 1 and not tags[0].endswith(("-amd64", "-arm64"))  # no variant tag, no variant inputs tag


def test_a_pushed_index_with_a_wrong_or_extra_platform_fails_the_image_naming_it(tmp_path: Path) -> None:
    error, registry, tags = _faulty(tmp_path, ("linux/amd64", "linux/s390x"))
    assert error is not None and error.endswith("with no image for linux/arm64; not published")
    assert len(tags) == 1
    # What the failed build left under its build tag (here an input tag) is not reused: built again.
    plan = plan_of(tmp_path, TWO_PLATFORMS, ["base"])
    again = _backend(registry, True)
    found, _ = run_images(plan, registry, again, RunOptions())
    assert (len(again.requests), found["shop/base"].status) == (1, Status.SUCCEEDED)
    error, _, tags = _faulty(tmp_path / "extra", ("linux/amd64", "linux/arm64", "linux/s390x"))
    assert error is not None and error.startswith("shop/base: the build pushed ")
    assert error.endswith("with an image for linux/s390x, not asked; not published")
    assert len(tags) == 1


def test_a_dependant_s_platform_set_builds_on_its_dependency_s_index_in_one_build(tmp_path: Path) -> None:
    images = TWO_PLATFORMS + (
        "      app:\n        context: images/app\n        depends_on: [base]\n"
        '        build_args: {BASE: "{{ images.base }}"}\n        variants:\n'
        "          amd64: {platform: linux/amd64}\n          arm64: {platform: linux/arm64}\n"
    )
    plan = plan_of(tmp_path, images)
    registry = MemoryRegistry()
    backend = _backend(registry, True)
    found, _ = run_images(plan, registry, backend, RunOptions())
    base, app = found["shop/base"], found["shop/app"]
    assert (base.status, app.status) == (Status.SUCCEEDED, Status.SUCCEEDED), (base.error, app.error)
    # BuildKit takes each platform's child of the index itself: one value for both platforms.
    assert [(r.image, r.platforms, dict(r.build_args)) for r in backend.requests] == [
        ("shop/base", ("linux/amd64", "linux/arm64"), {}),
        ("shop/app", ("linux/amd64", "linux/arm64"), {"BASE": f"{plan.images['shop/base'].repository}@{base.digest}"}),
    ]


def test_each_child_of_one_build_reads_back_its_variant_s_own_labels(tmp_path: Path) -> None:
    """What `explain`, base-update triggers and trusted reuse read of a child: as if built apart."""
    plan = plan_of(tmp_path, TWO_PLATFORMS, ["base"])

    def child_labels(several: bool) -> dict[str, dict[str, str]]:
        registry = MemoryRegistry()
        found, _ = run_images(plan, registry, _backend(registry, several), RunOptions())
        repository = plan.images["shop/base"].repository
        return {
            name: variant_labels(registry.manifest_labels(repository, registry.manifests[v.digest or ""]), name)
            for name, v in found["shop/base"].variants.items()
        }

    together, apart = child_labels(True), child_labels(False)
    assert together == apart
    assert {n: labelled_inputs(labels) for n, labels in apart.items()} == {
        n: {labels[INPUTS_LABEL]} for n, labels in together.items()
    }
