"""The merge table (config.resolved): each inherited field at each level, top -> pipeline -> image ->
variant; the nearest wins, dicts merge by key, the tag policy merges field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.config.resolved import (
    MERGE_TABLE,
    AcrSettings,
    BuildSecret,
    Notification,
    NotifyDestination,
    ResolvedImage,
    Signing,
    TagRules,
    resolve_images,
)
from pipeline.config.schema import ConfigSpec

Levels = dict[str, dict[str, Any]]


def resolved(base_dir: Path, top: dict[str, Any], pipeline: dict[str, Any], image: dict[str, Any]) -> ResolvedImage:
    raw = {
        "registry": "r.example/x",
        **top,
        "pipelines": {"shop": {**pipeline, "images": {"app": {"context": "app", **image}}}},
    }
    return resolve_images(ConfigSpec.model_validate(raw), base_dir)["shop/app"]


def with_variant(variant: dict[str, Any]) -> dict[str, Any]:
    return {"variants": {"v1": {"platform": "linux/amd64", **variant}}}


# field: what each level writes and what the resolved image then holds, farthest level first.
NEAREST: dict[str, list[tuple[str, dict[str, Any], Any]]] = {
    "network": [("top", {"network": "host"}, "host"), ("pipeline", {"network": "none"}, "none"),
                ("image", {"network": "default"}, "default")],
    "registry": [("top", {"registry": "r.top/a"}, "r.top/a/app"),
                 ("pipeline", {"registry": "r.pipe/b"}, "r.pipe/b/app"),
                 ("image", {"repository": "r.own/c/app"}, "r.own/c/app")],
    "reuse": [("top", {"reuse": "never"}, "never"), ("pipeline", {"reuse": "trusted"}, "trusted")],
    "engine": [("pipeline", {"engine": "e1"}, "e1"), ("image", {"engine": "e2"}, "e2")],
    "builder": [("pipeline", {"builder": "classic"}, "classic"), ("image", {"builder": "acr"}, "acr")],
}  # fmt: skip


def _image_value(field: str, image: ResolvedImage) -> Any:
    return image.repository if field == "registry" else getattr(image, field)


@pytest.mark.parametrize("field", sorted(NEAREST))
def test_nearest_level_wins(tmp_path: Path, field: str) -> None:
    """Each level that sets the field takes it over every farther level; unset, the farther one shows."""
    levels = NEAREST[field]
    for depth in range(len(levels)):
        written: Levels = {"top": {}, "pipeline": {}, "image": {}}
        for level, setting, _ in levels[: depth + 1]:
            written[level].update(setting)
        image = resolved(tmp_path, written["top"], written["pipeline"], written["image"])
        assert _image_value(field, image) == levels[depth][2], (field, levels[depth][0])


def test_unset_fields_take_the_defaults(tmp_path: Path) -> None:
    image = resolved(tmp_path, {}, {}, {})
    assert (image.network, image.engine, image.engine_at, image.sign, image.acr) == (None, None, None, None, None)
    assert (image.builder, image.chosen_builder, image.reuse, image.secrets, image.secrets_at) == (
        "docker",
        None,
        "any",
        (),
        None,
    )
    assert image.tags == TagRules(floating=None, extra=(), suffix="", variants=False)


def test_top_level_builder_is_the_default_after_the_windows_rule(tmp_path: Path) -> None:
    windows = resolved(tmp_path, {"builder": "classic"}, {}, {"platform": "windows/amd64"})
    linux = resolved(tmp_path, {"builder": "classic"}, {}, {"platform": "linux/amd64"})
    engine = resolved(tmp_path, {"builder": "classic", "windows_engine": True}, {}, {"platform": "windows/amd64"})
    assert (windows.builder, linux.builder, engine.builder) == ("acr", "classic", "classic")


def test_engine_remembers_where_it_is_pinned(tmp_path: Path) -> None:
    assert resolved(tmp_path, {}, {"engine": "e1"}, {}).engine_at == ("pipelines", "shop", "engine")
    own = resolved(tmp_path, {}, {"engine": "e1"}, {"engine": "e2"})
    assert own.engine_at == ("pipelines", "shop", "images", "app", "engine")


def test_sign_nearest_wins_and_its_key_is_made_absolute(tmp_path: Path) -> None:
    top = {"sign": {"key": "keys/top.key", "attest": ["provenance"]}}
    image = resolved(tmp_path, top, {}, {})
    assert image.sign == Signing(key=str((tmp_path / "keys/top.key").resolve()), keyless=False, attest=("provenance",))
    assert image.reuse == "trusted"  # unset reuse where the pipeline signs
    nearer = resolved(tmp_path, top, {"sign": {"keyless": True}}, {})
    assert nearer.sign == Signing(key=None, keyless=True, attest=())


def test_acr_nearest_wins(tmp_path: Path) -> None:
    top = {"acr": {"registry": "TopAcr", "resource_group": "rg", "subscription": "s"}}
    pipeline = {"acr": {"registry": "pipe", "resource_group": "rg2", "subscription": "s2", "timeout": 60}}
    assert resolved(tmp_path, top, {}, {}).acr == AcrSettings("TopAcr", "rg", "s")
    assert resolved(tmp_path, top, {}, {}).acr.server == "topacr.azurecr.io"  # type: ignore[union-attr]
    assert resolved(tmp_path, top, pipeline, {}).acr == AcrSettings("pipe", "rg2", "s2", timeout=60)


def test_secrets_merge_by_id_image_over_pipeline(tmp_path: Path) -> None:
    pipeline = {"secrets": {"npm": {"env": "PIPE_NPM"}, "netrc": {"file": "netrc"}}}
    image = resolved(tmp_path, {}, pipeline, {"secrets": {"npm": {"file": "npm"}}})
    assert image.secrets == (
        BuildSecret("netrc", file=(tmp_path / "netrc").resolve()),
        BuildSecret("npm", file=(tmp_path / "npm").resolve()),
    )
    assert image.secrets_at == ("pipelines", "shop", "images", "app", "secrets")
    assert resolved(tmp_path, {}, pipeline, {}).secrets_at == ("pipelines", "shop", "secrets")


def test_variant_build_args_merge_over_the_images(tmp_path: Path) -> None:
    image = resolved(
        tmp_path,
        {},
        {},
        {"build_args": {"A": "image", "B": "image"}, **with_variant({"build_args": {"B": "variant", "C": "v"}})},
    )
    (variant,) = image.variants
    assert dict(variant.build_args) == {"A": "image", "B": "variant", "C": "v"}
    assert list(variant.build_args) == ["A", "B", "C"]
    assert dict(variant.own_build_args) == {"B": "variant", "C": "v"}
    assert dict(image.build_args) == {"A": "image", "B": "image"}


@pytest.mark.parametrize(
    ("pipeline", "image", "variant", "builder", "engine"),
    [
        ({}, {}, {}, "docker", None),
        ({"builder": "classic", "engine": "e1"}, {}, {}, "classic", "e1"),
        ({"builder": "classic", "engine": "e1"}, {"builder": "docker", "engine": "e2"}, {}, "docker", "e2"),
        ({"engine": "e1"}, {"engine": "e2"}, {"builder": "classic", "engine": "e3"}, "classic", "e3"),
        # On ACR Tasks a variant runs on no engine, whatever its image is pinned to.
        ({"engine": "e1"}, {}, {"builder": "acr"}, "acr", None),
    ],
)
def test_variant_builder_and_engine_nearest_wins(
    tmp_path: Path,
    pipeline: dict[str, Any],
    image: dict[str, Any],
    variant: dict[str, Any],
    builder: str,
    engine: str | None,
) -> None:
    (resolved_variant,) = resolved(tmp_path, {}, pipeline, {**image, **with_variant(variant)}).variants
    assert (resolved_variant.builder, resolved_variant.engine) == (builder, engine)
    assert resolved_variant.own_engine == variant.get("engine")
    assert resolved_variant.chosen_builder == (
        variant.get("builder") or image.get("builder") or pipeline.get("builder")
    )


def test_tag_policy_merges_field_by_field_nearest_wins(tmp_path: Path) -> None:
    top = {"tags": {"floating": ["major"], "suffix": "-top", "extra": ["top"]}}
    pipeline = {"tags": {"suffix": "-pipe", "variants": True}}
    image = {"tags": {"extra": ["{{ git.short_sha }}"], "floating": []}}
    assert resolved(tmp_path, top, {}, {}).tags == TagRules(("major",), ("top",), "-top", False)
    assert resolved(tmp_path, top, pipeline, {}).tags == TagRules(("major",), ("top",), "-pipe", True)
    assert resolved(tmp_path, top, pipeline, image).tags == TagRules((), ("{{ git.short_sha }}",), "-pipe", True)


def test_the_table_names_every_inherited_field_and_how_it_merges() -> None:
    assert {name: (rule.merge, rule.levels) for name, rule in MERGE_TABLE.items()} == {
        "registry": ("nearest", ("top", "pipeline")),
        "tags": ("merged policy", ("top", "pipeline", "image")),
        "sign": ("nearest", ("top", "pipeline")),
        "reuse": ("nearest", ("top", "pipeline")),
        "acr": ("nearest", ("top", "pipeline")),
        "network": ("nearest", ("top", "pipeline", "image")),
        "secrets": ("merged dict", ("pipeline", "image")),
        "engine": ("nearest", ("pipeline", "image", "variant")),
        "builder": ("nearest", ("pipeline", "image", "variant")),
        "build_args": ("merged dict", ("image", "variant")),
        "notify": ("nearest", ("top", "pipeline")),
    }


HOOK = {"url": "https://hooks.example.com/top"}
SLACK = {"url_env": "SLACK_URL", "kind": "slack", "events": ["release"], "secret_env": None}


def test_notify_nearest_wins_and_remembers_where_it_is_written(tmp_path: Path) -> None:
    """A pipeline's `notify:` replaces the top level's whole (no merge of targets); unset anywhere, none."""
    top = {"notify": {"targets": [HOOK]}}
    pipeline = {"notify": {"events": ["failure", "release"], "targets": [SLACK], "timeout": 5}}
    assert resolved(tmp_path, {}, {}, {}).notify is None
    inherited = resolved(tmp_path, top, {}, {}).notify
    assert inherited == Notification(
        events=("failure",),
        targets=(NotifyDestination(HOOK["url"], None, "generic", None, None),),
        timeout=30.0,
        at=("notify",),
    )
    assert inherited.owner == "notify"
    own = resolved(tmp_path, top, pipeline, {}).notify
    assert own == Notification(
        events=("failure", "release"),
        targets=(NotifyDestination(None, "SLACK_URL", "slack", ("release",), None),),
        timeout=5.0,
        at=("pipelines", "shop", "notify"),
    )
    assert own.owner == "pipelines.shop.notify"
    assert resolved(tmp_path, {}, pipeline, {}).notify == own


def test_notify_is_a_frozen_value_not_the_config_model(tmp_path: Path) -> None:
    notify = resolved(tmp_path, {"notify": {"targets": [HOOK]}}, {}, {}).notify
    assert type(notify) is Notification and all(type(t) is NotifyDestination for t in notify.targets)
    with pytest.raises(AttributeError):
        notify.timeout = 1.0  # type: ignore[misc]


def test_dependencies_are_resolved_once_explicit_and_implied(tmp_path: Path) -> None:
    raw = {
        "registry": "r.example/x",
        "pipelines": {
            "shop": {
                "images": {
                    "base": {"context": "base"},
                    "tool": {"context": "tool"},
                    "app": {"context": "app", "depends_on": ["tool"], "build_args": {"B": "{{ images.base }}"}},
                }
            }
        },
    }
    images = resolve_images(ConfigSpec.model_validate(raw), tmp_path)
    assert list(images) == ["shop/base", "shop/tool", "shop/app"]
    assert images["shop/app"].depends_on == ("tool", "base")
