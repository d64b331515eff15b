"""Error annotations and log groups, escaped per each service's rules."""

from __future__ import annotations

from pathlib import Path

from pipeline.ci.commands import GROUPS, azure_data, azure_property, error_annotations, github_data, github_property
from pipeline.ci.groups import GroupedLines

CONFIG_ERROR = "pipelines.yaml:4:9: pipelines.shop.images.app.tags: unknown placeholder '{{ x }}' (known: a, b)"


def test_github_escapes_data_and_properties() -> None:
    assert github_data("100%\r\nnext: a,b") == "100%25%0D%0Anext: a,b"
    assert github_property("c:/x,y%") == "c%3A/x%2Cy%25"


def test_azure_escapes_data_and_properties() -> None:
    assert azure_data("100%\r\nnext; a]") == "100%AZP25%0D%0Anext; a]"
    assert azure_property("a;b]c%") == "a%3Bb%5Dc%AZP25"


def test_a_config_error_is_annotated_on_its_file_relative_to_the_workspace(tmp_path: Path) -> None:
    cwd = tmp_path / "repo" / "deploy"
    assert error_annotations("github", CONFIG_ERROR, cwd, tmp_path / "repo") == [
        "::error file=deploy/pipelines.yaml,line=4,col=9::pipelines.shop.images.app.tags: unknown placeholder "
        "'{{ x }}' (known: a, b)"
    ]
    assert error_annotations("azure", CONFIG_ERROR, cwd, tmp_path / "repo") == [
        "##vso[task.logissue type=error;sourcepath=deploy/pipelines.yaml;linenumber=4;columnnumber=9]"
        "pipelines.shop.images.app.tags: unknown placeholder '{{ x }}' (known: a, b)"
    ]


def test_a_file_outside_the_workspace_keeps_its_path_and_properties_are_escaped(tmp_path: Path) -> None:
    message = "/etc/p,1.yaml:2:3: bad: 100%"
    assert error_annotations("github", message, tmp_path, tmp_path / "repo") == [
        "::error file=/etc/p%2C1.yaml,line=2,col=3::bad: 100%25"
    ]


def test_other_errors_are_plain_annotations_and_gitlab_gets_none(tmp_path: Path) -> None:
    message = "2 image(s) failed: shop/app, shop/web; no release or floating tag moved\nsecond line"
    assert error_annotations("github", message, tmp_path, None) == [
        "::error::2 image(s) failed: shop/app, shop/web; no release or floating tag moved%0Asecond line"
    ]
    assert error_annotations("azure", message, tmp_path, None) == [
        "##vso[task.logissue type=error]2 image(s) failed: shop/app, shop/web; no release or floating tag "
        "moved%0Asecond line"
    ]
    assert error_annotations("gitlab", CONFIG_ERROR, tmp_path, None) == []


def test_groups_hold_each_images_lines_until_it_finishes() -> None:
    grouped = GroupedLines(GROUPS["github"])
    assert grouped.start("shop/app", "app start") == ["app start"]
    assert grouped.start("shop/web", "web start") == ["web start"]
    assert grouped.add("shop/app", ["app build"]) == []
    assert grouped.add("shop/web", ["web build"]) == []
    assert grouped.finish("shop/web", "shop/web done", ["web done"]) == [
        "::group::shop/web done",
        "web start",
        "web build",
        "web done",
        "::endgroup::",
    ]
    # a failure's lines stay outside the group, visible while it is folded
    assert grouped.finish("shop/app", "shop/app failed", [], shown=["app failed", "    | tail"]) == [
        "::group::shop/app failed",
        "app start",
        "app build",
        "::endgroup::",
        "app failed",
        "    | tail",
    ]
    # after the builds (tag moves) and for images that never started (skipped): no group
    assert grouped.add("shop/app", ["publish"]) == ["publish"]
    assert grouped.finish("shop/db", "shop/db skipped", ["db skipped"]) == ["db skipped"]


def test_azure_groups() -> None:
    grouped = GroupedLines(GROUPS["azure"])
    grouped.start("shop/app", "start")
    assert grouped.finish("shop/app", "shop/app 100%", ["done"]) == [
        "##[group]shop/app 100%AZP25",
        "start",
        "done",
        "##[endgroup]",
    ]
