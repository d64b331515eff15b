"""`pipeline bases` in the core: the registry's digest now (an index's child per platform, and the index)
against the lock's; the lock update (moved, new, dropped, other pipelines' entries kept); --locked and
the warning of a base an existing lock does not name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.bases.lock import BaseLock, LockEntry
from pipeline.bases.resolve import BaseNotLocked, BaseNotResolved, open_resolver, plan_builds
from pipeline.bases.status import BaseStatus, Move, base_status, lock_update
from pipeline.bases.usage import BaseUse, Rebuild, base_uses
from pipeline.common.reporting import Forward
from pipeline.config.schema import ConfigSpec
from pipeline.dockerfile.bases import default_platform
from pipeline.plan import Plan, PlannedImage, RunContext, make_plan
from tests.unit.bases.fakes import FakeRegistry
from tests.unit.bases.test_usage import UP, plan_of

HERE = default_platform()
OLD = "sha256:" + "0" * 63 + "1"


@pytest.fixture
def registry() -> FakeRegistry:
    found = FakeRegistry()
    amd, arm = found.image(f"{UP}/debian:bookworm-amd64", "amd"), found.image(f"{UP}/debian:bookworm-arm64", "arm")
    win = found.image(f"{UP}/debian:ltsc2019-child", "win")
    found.index(f"{UP}/debian:bookworm", {"linux/amd64": amd, "linux/arm64": arm})
    found.index(f"{UP}/debian:ltsc2019", {"windows/amd64 10.0.17763.5329": win, "linux/amd64": amd})
    found.image(f"{UP}/debian:12", "twelve")
    found.image(f"{UP}/tools:1", "tools")
    return found


def test_current_per_platform_with_the_index_and_the_lock_beside_it(tmp_path: Path, registry: FakeRegistry) -> None:
    t = registry.tags
    lock = BaseLock.of(
        [LockEntry(f"{UP}/debian:12", HERE, None, OLD), LockEntry(f"{UP}/tools:1", HERE, None, t[f"{UP}/tools:1"])]
    )
    found = base_status(plan_of(tmp_path), registry, lock)  # type: ignore[arg-type]
    fields = ("reference", "platform", "os_version", "current", "index", "locked", "images", "stage_platform")
    rows = [
        (f"{UP}/debian:12", HERE, None, t[f"{UP}/debian:12"], None, OLD, ["shop/base", "tools/lint"], False),
        *(
            (f"{UP}/debian:bookworm", f"linux/{arch}", None, t[f"{UP}/debian:bookworm-{arch}"])
            + (t[f"{UP}/debian:bookworm"], None, ["shop/win"], False)
            for arch in ("amd64", "arm64")
        ),
        (f"{UP}/debian:ltsc2019", "windows/amd64", "10.0.17763", t[f"{UP}/debian:ltsc2019-child"])
        + (t[f"{UP}/debian:ltsc2019"], None, ["shop/win"], False),
        (f"{UP}/tools:1", HERE, None, t[f"{UP}/tools:1"], None, t[f"{UP}/tools:1"], ["shop/base", "shop/top"], False),
    ]
    assert [s.data() for s in found] == [dict(zip(fields, row, strict=True)) for row in rows]
    assert [s.moved for s in found] == [True, False, False, False, False]
    # One HEAD per reference, whatever the number of platforms and images using it.
    assert sorted(registry.heads) == sorted({s.reference for s in found})


def test_a_base_not_in_the_registry_names_it_and_its_images(tmp_path: Path, registry: FakeRegistry) -> None:
    del registry.tags[f"{UP}/tools:1"]
    with pytest.raises(BaseNotResolved) as raised:
        base_status(plan_of(tmp_path), registry, None)  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"shop/base, shop/top: base image {UP}/tools:1 is not in the registry, so the build cannot stand on a "
        "known digest; refusing to build"
    )


def status(reference: str, current: str, locked: str | None, images: tuple[str, ...]) -> BaseStatus:
    return BaseStatus(reference, "linux/amd64", None, current, None, locked, images)


A, B, C = ("sha256:" + c * 64 for c in "abc")


def test_the_lock_update_moves_adds_drops_and_keeps_other_pipelines_entries(tmp_path: Path) -> None:
    plan = plan_of(tmp_path)
    path = tmp_path / "pipelines.lock"
    old = BaseLock.of(
        [
            LockEntry("r/moved:1", "linux/amd64", None, A),
            LockEntry("r/same:1", "linux/amd64", None, B),
            LockEntry("r/gone:1", "linux/amd64", None, C),  # no image uses it any more
            LockEntry("r/elsewhere:1", "linux/amd64", None, C),  # a pipeline not asked about uses it
        ]
    )
    found = [
        status("r/moved:1", B, A, ("shop/base",)),
        status("r/same:1", B, B, ("shop/win",)),
        status("r/new:1", C, None, ("tools/lint",)),
    ]
    used = [BaseUse(*s.key, s.images) for s in found] + [BaseUse("r/elsewhere:1", "linux/amd64", None, ("x/y",))]
    update = lock_update(found, old, used, plan, path)
    assert update.changed
    assert update.moves == (
        Move("r/gone:1", "linux/amd64", None, C, None, ()),
        Move("r/moved:1", "linux/amd64", None, A, B, ("shop/base",)),
        Move("r/new:1", "linux/amd64", None, None, C, ("tools/lint",)),
    )
    assert [m.line() for m in update.moves] == [
        f"r/gone:1 linux/amd64 {C} → (dropped: no longer used)",
        f"r/moved:1 linux/amd64 {A} → {B}",
        f"r/new:1 linux/amd64 (not locked) → {C}",
    ]
    assert update.rebuild == Rebuild(("shop/base",), ("shop/app", "shop/top"))  # a new entry rebuilds nothing
    assert {k[0]: e.digest for k, e in update.lock.entries.items()} == {
        "r/moved:1": B,
        "r/same:1": B,
        "r/new:1": C,
        "r/elsewhere:1": C,
    }
    assert update.lock.path == path


def test_an_up_to_date_lock_is_unchanged(tmp_path: Path) -> None:
    found = [status("r/same:1", B, B, ("shop/win",))]
    old = BaseLock.of([LockEntry("r/same:1", "linux/amd64", None, B)])
    update = lock_update(found, old, [], plan_of(tmp_path), tmp_path / "pipelines.lock")
    assert not update.changed and update.moves == () and update.rebuild == Rebuild((), ())
    # No lock yet: written even when no base is used (then `run --locked` has a lock to hold to).
    assert lock_update([], None, [], plan_of(tmp_path), tmp_path / "pipelines.lock").changed


def write_lock(tmp_path: Path, entries: list[LockEntry]) -> Path:
    config = tmp_path / "pipelines.yaml"
    BaseLock.of(entries).save(tmp_path / "pipelines.lock")
    return config


def test_locked_refuses_the_first_base_the_lock_does_not_name_before_any_lookup(
    tmp_path: Path, registry: FakeRegistry
) -> None:
    plan = plan_of(tmp_path, ["tools"])
    with pytest.raises(BaseNotLocked) as raised:
        open_resolver(registry, plan, tmp_path / "pipelines.yaml", locked=True)  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"tools/lint: {tmp_path}/lint/Dockerfile:1: base image {UP}/debian:12 ({HERE}) is not in "
        f"{tmp_path}/pipelines.lock (there is no lock file); run `pipeline bases --update` and commit the lock "
        "(refused by --locked)"
    )
    assert raised.value.exit_code == 2
    config = write_lock(tmp_path, [LockEntry(f"{UP}/debian:12", "linux/other", None, A)])
    with pytest.raises(BaseNotLocked, match=rf"is not in {tmp_path}/pipelines.lock; run"):
        open_resolver(registry, plan, config, locked=True)  # type: ignore[arg-type]
    assert registry.heads == []
    write_lock(tmp_path, [LockEntry(f"{UP}/debian:12", HERE, None, A)])
    resolver = open_resolver(registry, plan, config, locked=True)  # type: ignore[arg-type]
    assert [b.digest for b in resolver.bases_of(*_lint(plan))] == [A]
    assert registry.heads == []


def _lint(plan: Plan) -> tuple[PlannedImage, dict[str, str]]:
    """tools/lint and its build args, as the run finds its bases."""
    (build,) = plan_builds(plan)
    return build


def test_a_base_an_existing_lock_does_not_name_floats_with_a_warning(tmp_path: Path, registry: FakeRegistry) -> None:
    plan = plan_of(tmp_path, ["tools"])
    config = write_lock(tmp_path, [LockEntry("r/other:1", HERE, None, A)])
    said: list[str] = []
    resolver = open_resolver(registry, plan, config, reporter=Forward(said.append))
    (found,) = resolver.bases_of(*_lint(plan))
    current = registry.tags[f"{UP}/debian:12"]
    assert (found.digest, found.locked, found.not_in_lock) == (current, False, True)
    assert found.as_dict()["not_in_lock"] is True
    assert said == [
        f"warning: base image {UP}/debian:12 ({HERE}) is not in {tmp_path}/pipelines.lock: building on the "
        f"registry's {current}; run `pipeline bases --update` to lock it"
    ]
    # Without a lock, bases float silently (the floating workflow).
    (tmp_path / "pipelines.lock").unlink()
    said.clear()
    (floating,) = open_resolver(registry, plan, config, reporter=Forward(said.append)).bases_of(*_lint(plan))
    assert (floating.digest, floating.not_in_lock, said) == (current, False, [])


def test_base_uses_and_status_agree(tmp_path: Path, registry: FakeRegistry) -> None:
    plan = plan_of(tmp_path)
    assert [u.key for u in base_uses(plan)] == [s.key for s in base_status(plan, registry, None)]  # type: ignore[arg-type]


def test_a_base_shared_with_pipelines_not_asked_about_rebuilds_their_images_too(
    tmp_path: Path, registry: FakeRegistry
) -> None:
    # `pipeline bases --update tools`: debian:12 is tools/lint's base and shop/base's; the lock is shared, so
    # moving it rebuilds shop/base (and its dependants) as well.
    whole, tools = plan_of(tmp_path), plan_of(tmp_path, ["tools"])
    current = registry.tags[f"{UP}/debian:12"]
    old = BaseLock.of([LockEntry(f"{UP}/debian:12", HERE, None, OLD)])
    found = base_status(tools, registry, old)  # type: ignore[arg-type]
    update = lock_update(found, old, base_uses(whole), whole, tmp_path / "pipelines.lock")
    assert update.moves == (Move(f"{UP}/debian:12", HERE, None, OLD, current, ("shop/base", "tools/lint")),)
    assert update.rebuild == Rebuild(("shop/base", "tools/lint"), ("shop/app", "shop/top"))


CROSS = f"""\
FROM --platform=$BUILDPLATFORM {UP}/golang:1 AS build
RUN true
FROM scratch
COPY --from=build /x /x
"""


def cross_plan(root: Path) -> Plan:
    (root / "cross").mkdir(parents=True, exist_ok=True)
    (root / "cross" / "Dockerfile").write_text(CROSS)
    (root / "native").mkdir(parents=True, exist_ok=True)
    (root / "native" / "Dockerfile").write_text(f"FROM {UP}/golang:1\n")
    config = "registry: 127.0.0.1:5000/shop\npipelines:\n  shop:\n    images:\n"
    config += "      cross: {context: cross}\n      native: {context: native}\n"
    spec = ConfigSpec.model_validate(yaml.safe_load(config))
    return make_plan(spec, root, [], RunContext())


def test_a_stage_naming_its_own_platform_is_reported_and_moved_by_the_index(
    tmp_path: Path, registry: FakeRegistry
) -> None:
    # cross's stage stands on the whole index (FROM --platform=$BUILDPLATFORM); native on this platform's child.
    here = registry.image(f"{UP}/golang:1-here", "here")
    first = registry.index(f"{UP}/golang:1", {HERE: here, "linux/s390x": registry.image(f"{UP}/g:s1", "s1")})
    plan = cross_plan(tmp_path)
    old = BaseLock.of([LockEntry(f"{UP}/golang:1", HERE, None, here, first)])
    # Another platform's child moves: the index moves, this platform's child does not.
    second = registry.index(f"{UP}/golang:1", {HERE: here, "linux/s390x": registry.image(f"{UP}/g:s2", "s2")})
    found = base_status(plan, registry, old)  # type: ignore[arg-type]
    assert [(s.images, s.current, s.index, s.locked, s.moved) for s in found] == [
        (("shop/native",), here, second, here, False),
        (("shop/cross",), second, second, first, True),
    ]
    assert [s.data()["stage_platform"] for s in found] == [False, True]
    update = lock_update(found, old, base_uses(plan), plan, tmp_path / "pipelines.lock")
    assert update.moves == (Move(f"{UP}/golang:1", HERE, None, first, second, ("shop/cross",), whole=True),)
    assert update.moves[0].line() == f"{UP}/golang:1 {HERE} (whole index, FROM --platform) {first} → {second}"
    assert update.rebuild == Rebuild(("shop/cross",), ())
    # The lock keeps this platform's child and the new index: the run stands on the index for cross.
    assert dict(update.lock.entries) == {
        (f"{UP}/golang:1", HERE, None): LockEntry(f"{UP}/golang:1", HERE, None, here, second)
    }
