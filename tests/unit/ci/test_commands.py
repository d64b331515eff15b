"""Error annotations and log groups, escaped per each service's rules."""

from __future__ import annotations

from pathlib import Path

from pipeline.ci.commands import (
    GROUPS,
    Command,
    azure_data,
    azure_property,
    error_annotations,
    github_data,
    github_property,
)
from pipeline.ci.groups import FLUSH_AFTER_LINES, GroupedLines, Line

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


def texts(lines: list[Line]) -> list[str]:
    """Lines as printed, pipeline's own commands marked `!`: they go past the CI output filter."""
    return [f"!{line.text}" if isinstance(line, Command) else line for line in lines]


def test_groups_hold_each_images_lines_until_it_finishes() -> None:
    grouped = GroupedLines(GROUPS["github"])
    assert grouped.start("shop/app", "app start") == ["app start"]
    assert grouped.start("shop/web", "web start") == ["web start"]
    assert grouped.add("shop/app", ["app build"]) == []
    assert grouped.add("shop/web", ["web build"]) == []
    # the start line was printed already: not again in the group
    assert texts(grouped.finish("shop/web", "shop/web done", ["web done"])) == [
        "!::group::shop/web done",
        "web build",
        "web done",
        "!::endgroup::",
    ]
    # a failure's lines stay outside the group, visible while it is folded
    assert texts(grouped.finish("shop/app", "shop/app failed", [], shown=["app failed", "    | tail"])) == [
        "!::group::shop/app failed",
        "app build",
        "!::endgroup::",
        "app failed",
        "    | tail",
    ]
    # after the builds (tag moves) and for images that never started (skipped): no group
    assert grouped.add("shop/app", ["publish"]) == ["publish"]
    assert grouped.finish("shop/db", "shop/db skipped", ["db skipped"]) == ["db skipped"]


def test_azure_groups() -> None:
    grouped = GroupedLines(GROUPS["azure"])
    grouped.start("shop/app", "start")
    grouped.add("shop/app", ["build"])
    assert texts(grouped.finish("shop/app", "shop/app 100%", ["done"])) == [
        "!##[group]shop/app 100%AZP25",
        "build",
        "done",
        "!##[endgroup]",
    ]


def test_lines_held_a_minute_or_500_lines_are_printed_as_a_running_group() -> None:
    now = [0.0]
    grouped = GroupedLines(GROUPS["github"], clock=lambda: now[0])
    grouped.start("shop/app", "app start")
    grouped.start("shop/web", "web start")
    assert grouped.add("shop/app", ["app 1"]) == []
    now[0] = 30.0
    assert grouped.add("shop/web", ["web 1"]) == []
    now[0] = 59.9
    assert grouped.due() == []
    now[0] = 60.0  # app's first line waited a minute; web's only 30 s
    assert texts(grouped.add("shop/app", ["app 2"])) == [
        "!::group::shop/app running",
        "app 1",
        "app 2",
        "!::endgroup::",
    ]
    now[0] = 90.0  # the ticker asks without a new line
    assert texts(grouped.due()) == ["!::group::shop/web running", "web 1", "!::endgroup::"]
    assert texts(grouped.finish("shop/web", "shop/web done", ["web done"])) == [
        "!::group::shop/web done",
        "web done",
        "!::endgroup::",
    ]
    chatty = [f"line {n}" for n in range(FLUSH_AFTER_LINES)]
    assert texts(grouped.add("shop/app", chatty)) == ["!::group::shop/app running", *chatty, "!::endgroup::"]


def test_an_interrupt_prints_every_open_group() -> None:
    grouped = GroupedLines(GROUPS["github"])
    grouped.start("shop/app", "app start")
    grouped.start("shop/web", "web start")
    grouped.add("shop/app", ["app step 1", "app step 2"])
    assert texts(grouped.close_all("interrupted")) == [
        "!::group::shop/app interrupted",
        "app step 1",
        "app step 2",
        "!::endgroup::",
        "!::group::shop/web interrupted",
        "!::endgroup::",
    ]
    assert grouped.close_all("interrupted") == []
