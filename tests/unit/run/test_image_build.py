"""One image build at a time, with a registry in memory and a builder that pushes into it (no services):
build slots per engine, build args naming the dependency's pushed digest, reuse of an image with the
same inputs, the pushed digest checked, and variants pushed as one image index."""

from __future__ import annotations

import threading
from pathlib import Path

from pipeline.run.results import RunOptions, Status
from tests.unit.run.fakes import REGISTRY, FakeBackend, MemoryRegistry, plan_of, run_images

TWO = (
    "      base: {context: images/base}\n"
    '      app: {context: images/app, depends_on: [base], build_args: {BASE: "{{ images.base }}"}}\n'
)


def test_no_more_builds_at_once_than_the_engine_has_slots(tmp_path: Path) -> None:
    images = "".join(f"      i{n}: {{context: images/i{n}}}\n" for n in range(4))
    plan = plan_of(tmp_path, images, [f"i{n}" for n in range(4)])
    registry = MemoryRegistry()
    backend = FakeBackend(registry, hold=threading.Barrier(2))  # two must run at once to get past it
    found, _ = run_images(plan, registry, backend, RunOptions(jobs=2, push=False))
    assert [row.status for row in found.values()] == [Status.SUCCEEDED] * 4
    assert (len(backend.requests), backend.most) == (4, 2)


def test_a_dependant_builds_on_its_dependency_s_pushed_digest(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, TWO)
    registry = MemoryRegistry()
    backend = FakeBackend(registry)
    found, _ = run_images(plan, registry, backend, RunOptions())
    base = found["shop/base"]
    assert [r.image for r in backend.requests] == ["shop/base", "shop/app"]
    assert backend.requests[1].build_args == {"BASE": f"{REGISTRY}/base@{base.digest}"}
    assert registry.resolve_digest(backend.requests[0].tag) == base.digest


def test_an_image_with_the_same_inputs_in_the_registry_is_reused_not_built(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, TWO)
    registry = MemoryRegistry()
    first, _ = run_images(plan, registry, FakeBackend(registry), RunOptions())
    backend = FakeBackend(registry)
    again, events = run_images(plan, registry, backend, RunOptions())
    assert backend.requests == []
    assert [(r.digest, r.cached, r.inputs) for r in again.values()] == [
        (r.digest, True, r.inputs) for r in first.values()
    ]
    reused = [e.message for e in events if e.step == "reuse"]
    assert reused == [
        f"inputs unchanged (inputs-{(r.inputs or '')[7:31]}): {r.repository}@{r.digest}" for r in first.values()
    ]


def test_a_digest_other_than_the_push_wrote_fails_the_image_and_skips_its_dependant(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, TWO)
    registry = MemoryRegistry()
    backend = FakeBackend(registry)
    backend.wrong_digest = True
    found, _ = run_images(plan, registry, backend, RunOptions(keep_going=True))
    base, app = found["shop/base"], found["shop/app"]
    pushed = registry.resolve_digest(backend.requests[0].tag)
    assert (base.status, base.digest, base.error) == (
        Status.FAILED,
        None,
        f"shop/base: {backend.requests[0].tag} points at {pushed} in the registry, but the push wrote "
        f"sha256:{'0' * 64} (another push to the same tag?)",
    )
    assert (app.status, app.error) == (Status.SKIPPED, "not built: depends on shop/base, which failed")


def test_variants_are_built_each_for_its_platform_and_pushed_as_one_index(tmp_path: Path) -> None:
    images = (
        "      base:\n        context: images/base\n        variants:\n"
        "          amd64: {platform: linux/amd64}\n          arm64: {platform: linux/arm64}\n"
    )
    plan = plan_of(tmp_path, images, ["base"])
    registry = MemoryRegistry()
    backend = FakeBackend(registry)
    found, events = run_images(plan, registry, backend, RunOptions())
    row = found["shop/base"]
    assert sorted((r.platform, r.tag.tag) for r in backend.requests) == [
        ("linux/amd64", f"{row.tags[0]}-amd64"),
        ("linux/arm64", f"{row.tags[0]}-arm64"),
    ]
    index = registry.manifests[row.digest or ""]
    children = {c.platform: c.digest for c in row.variants.values()}
    assert index.is_index and [m["digest"] for m in index.json()["manifests"]] == [
        children["linux/amd64"],
        children["linux/arm64"],
    ]
    assert registry.resolve_digest(plan.images["shop/base"].repository.with_tag(row.tags[0])) == row.digest
    assert [e.message for e in events if e.step == "index"] == ["pushing the image index of 2 variants"]
