"""ACR backend pieces that need no service: labelled Dockerfiles, the source archive, log lines,
platforms, task definitions and the changes a sync makes."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pipeline.acr.auth import is_acr_host
from pipeline.acr.client import RemoteBuild, StaticTokenCredential, arm_scope, docker_build_request
from pipeline.acr.source import GENERATED_DOCKERFILE, source_archive, with_labels
from pipeline.acr.tasks import (
    IMAGE_TAG,
    OWNER,
    OWNER_TAG,
    SOURCE_TAG,
    https_repository_url,
    platform_properties,
    source_control_type,
    task_changes,
    task_name,
    task_source,
    wanted_tasks,
)
from pipeline.builders import BuildRequest
from pipeline.builders.acr import AcrBuilder, LogFollower
from pipeline.common.reporting import SILENT, Forward
from pipeline.config import load_config
from pipeline.config.schema import AcrSpec
from pipeline.errors import ConfigError
from pipeline.plan import Plan, RunContext, make_plan
from pipeline.registry.reference import ImageRef, parse_repository
from tests.helpers import image_entry, shop_config, write_project

LABELS = {"org.opencontainers.image.revision": "abc", "team": 'say "hi"'}


def test_labels_go_to_the_end_of_the_last_stage() -> None:
    result = with_labels("FROM a AS build\nRUN x\nFROM b\nCOPY --from=build /x /x", LABELS, None)
    assert result.splitlines()[-1] == 'LABEL "org.opencontainers.image.revision"="abc" "team"="say \\"hi\\""'


def test_labels_go_to_the_end_of_the_target_stage() -> None:
    result = with_labels("FROM a AS build\nRUN x\n\nFROM b AS final\nRUN y\n", {"k": "v"}, "build")
    assert result.splitlines() == ["FROM a AS build", "RUN x", "", 'LABEL "k"="v"', "FROM b AS final", "RUN y"]
    with pytest.raises(Exception, match="target stage 'nope'"):
        with_labels("FROM a\n", {"k": "v"}, "nope")


def test_labels_follow_the_escape_directive() -> None:
    result = with_labels("# escape=`\nFROM mcr.microsoft.com/windows/nanoserver\n", {"path": "C:\\x`y"}, None)
    assert result.splitlines()[-1] == 'LABEL "path"="C:\\x``y"'
    assert with_labels("FROM a\n", {}, None) == "FROM a\n"


def test_source_archive_honours_dockerignore_and_adds_the_labelled_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (tmp_path / ".dockerignore").write_text("# comment\nsecret*\nbuild/\n")
    (tmp_path / "app.txt").write_text("app")
    (tmp_path / "secret.key").write_text("no")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.o").write_text("no")

    archive = source_archive(tmp_path, tmp_path / "Dockerfile", {"k": "v"}, None)

    with archive.file:
        data = archive.file.read()
    assert len(data) == archive.size and archive.dockerfile == GENERATED_DOCKERFILE
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        names = set(tar.getnames())
        generated = tar.extractfile(GENERATED_DOCKERFILE)
        ignore = tar.extractfile(".dockerignore")
        assert generated is not None and ignore is not None
        assert generated.read().decode().endswith('LABEL "k"="v"\n')
        assert GENERATED_DOCKERFILE in ignore.read().decode()  # `COPY .` does not pick it up
    assert {"app.txt", "Dockerfile"} <= names
    assert not {"secret.key", "build/out.o"} & names


def test_log_follower_reports_whole_lines_once() -> None:
    lines: list[tuple[str, str]] = []
    follower = LogFollower(Forward(step=lambda _image, step, line: lines.append((step, line))), "app")
    follower.feed(b"2024/01/01 00:00:00 Step 1/2 : FROM x\r\n2024/01/01 partial")
    assert lines == [("build", "Step 1/2 : FROM x")]
    follower.feed(b" line\n\n")
    follower.feed(b"last without newline", final=False)
    assert lines[-1] == ("log", "2024/01/01 partial line")
    follower.feed(b"", final=True)
    assert lines[-1] == ("log", "last without newline")
    assert follower.offset == len(
        b"2024/01/01 00:00:00 Step 1/2 : FROM x\r\n2024/01/01 partial line\n\nlast without newline"
    )
    assert list(follower.tail) == ["2024/01/01 partial line", "last without newline"]


def test_log_follower_keeps_the_failing_steps_last_lines_and_hides_the_label_step() -> None:
    lines: list[tuple[str, str]] = []
    follower = LogFollower(
        Forward(step=lambda _image, step, line: lines.append((step, line))),
        "app",
        {"org.opencontainers.image.revision": "abc"},
    )
    log = ["Step 1/3 : FROM x", " ---> 1a2b3c", "Step 2/3 : RUN ./make.sh", " ---> Running in 4d5e6f"]
    log += [f"line {n}" for n in range(1, 31)] + ["Removing intermediate container 4d5e6f"]
    follower.feed(("\n".join(log) + "\n").encode())

    # Numbered as the user's Dockerfile: without the LABEL step the upload adds (3/3 here).
    assert follower.step == "Step 2/2 : RUN ./make.sh"
    assert list(follower.tail) == [f"line {n}" for n in range(11, 31)]
    assert [line for step, line in lines if step == "build"] == ["Step 1/2 : FROM x", "Step 2/2 : RUN ./make.sh"]
    assert [line for step, line in lines if step == "log"][2:32] == [f"line {n}" for n in range(1, 31)]

    follower.feed(b'Step 3/3 : LABEL "org.opencontainers.image.revision"="abc"\n')
    assert [line for step, line in lines if step == "build"][-1] == "Step 2/2 : RUN ./make.sh"  # not a user step
    assert list(follower.tail) == []


def test_platforms() -> None:
    assert platform_properties(None) == ("Linux", "amd64", None)
    assert platform_properties("windows/amd64") == ("Windows", "amd64", None)
    assert platform_properties("linux/arm64/v8") == ("Linux", "arm64", "v8")
    with pytest.raises(ConfigError, match="darwin/arm64"):
        platform_properties("darwin/arm64")


def _wire(build_args: dict[str, str], **platform: str) -> dict[str, Any]:
    """The scheduleRun body, as it goes to Azure, of shop/app's build with `build_args` on `platform`."""
    build = RemoteBuild(
        image_names=("shop/app:sha-1",),
        dockerfile="Dockerfile",
        source_location="source/x.tar.gz",
        build_args=build_args,
        **platform,
    )
    return dict(docker_build_request(build).serialize())


def test_a_windows_run_request_carries_the_platform_and_the_windows_version_as_a_build_arg() -> None:
    body = _wire(
        {"BASE": "mcr.microsoft.com/windows/servercore"}, os="Windows", architecture="amd64", os_version="10.0.17763"
    )
    assert body["platform"] == {"os": "Windows", "architecture": "amd64"}
    assert body["arguments"] == [
        {"name": "BASE", "value": "mcr.microsoft.com/windows/servercore", "isSecret": False},
        {"name": "PIPELINE_OS_VERSION", "value": "10.0.17763", "isSecret": False},
    ]


def test_a_run_request_without_os_version_has_no_pipeline_os_version() -> None:
    body = _wire({"BASE": "busybox"}, architecture="arm64", variant="v8")
    assert body["platform"] == {"os": "Linux", "architecture": "arm64", "variant": "v8"}
    assert [a["name"] for a in body["arguments"]] == ["BASE"]


def _acr_build(root: Path, repository: str, **request: Any) -> None:
    """p/app (context `root`) built by the ACR builder of registry `shop` under `repository`:sha-1."""
    spec = AcrSpec(registry="shop", resource_group="rg", subscription="s")
    tag = ImageRef(parse_repository(repository), tag="sha-1")
    built = BuildRequest(image="p/app", context=root, dockerfile=root / "Dockerfile", tag=tag, **request)
    AcrBuilder(StaticTokenCredential("t")).for_settings(spec).build(built, SILENT)


@pytest.mark.parametrize(
    ("platform", "build_args", "message"),
    [
        ("linux/amd64", {}, "os_version 10.0.17763 is for windows/\\* platforms, not linux/amd64"),
        ("windows/amd64", {"PIPELINE_OS_VERSION": "10.0.20348"}, "contradicts os_version 10.0.17763"),
    ],
)
def test_builder_refuses_an_os_version_it_cannot_honour(
    tmp_path: Path, platform: str, build_args: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _acr_build(tmp_path, "shop.azurecr.io/app", build_args=build_args, platform=platform, os_version="10.0.17763")


def test_arm_scopes_and_acr_hosts() -> None:
    assert arm_scope("https://management.azure.com") == "https://management.azure.com/.default"
    assert arm_scope("https://management.usgovcloudapi.net/") == "https://management.core.usgovcloudapi.net/.default"
    assert arm_scope("https://127.0.0.1:8443") == "https://127.0.0.1:8443/.default"
    assert is_acr_host("shop.azurecr.io") and is_acr_host("127.0.0.1:9000", ["127.0.0.1:9000"])
    assert not is_acr_host("ghcr.io")
    assert AcrSpec(registry="Shop", resource_group="rg", subscription="s").server == "shop.azurecr.io"


def test_builder_refuses_a_repository_off_the_login_server(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="login server shop.azurecr.io"):
        _acr_build(tmp_path, "ghcr.io/org/app")


def test_task_names_and_repository_urls() -> None:
    assert task_name("shop/app") == "shop-app"
    assert task_name("a/b") == "pipeline-a-b"
    long = task_name("p" * 40 + "/" + "i" * 40)
    assert len(long) == 50 and long == task_name("p" * 40 + "/" + "i" * 40)
    assert https_repository_url("git@github.com:org/shop.git") == "https://github.com/org/shop.git"
    assert source_control_type("https://dev.azure.com/org/project/_git/shop") == "VisualStudioTeamService"
    with pytest.raises(ConfigError, match="GitHub or Azure DevOps"):
        source_control_type("https://gitlab.com/org/shop.git")


def _plan(tmp_path: Path) -> tuple[Plan, Path]:
    config_file = write_project(
        tmp_path,
        shop_config(
            "127.0.0.1:5000/local",
            {
                "base": "",
                "app": image_entry(
                    "app",
                    "repository: shopacr.azurecr.io/shop/app",
                    "platform: windows/amd64",
                    'build_args: {BASE: "{{ images.base }}", SHA: "{{ git.short_sha }}"}',
                ),
            },
            network=None,
            top="acr: {registry: shopacr, resource_group: rg, subscription: sub, timeout: 100}",
        ),
        {"base": "FROM scratch\n", "app": "ARG BASE\nFROM $BASE\n"},
    )
    config = load_config(config_file)
    return make_plan(config.spec, config.base_dir, [], RunContext()), config_file


def test_wanted_tasks_and_changes(tmp_path: Path) -> None:
    plan, config_file = _plan(tmp_path)
    source = task_source("git@github.com:org/shop.git", tmp_path, config_file)
    assert source == "https://github.com/org/shop.git#pipelines.yaml"
    wanted, skipped = wanted_tasks(plan, "git@github.com:org/shop.git", "main", tmp_path, source)

    assert list(skipped) == ["shop/base"] and "not on the ACR login server" in skipped["shop/base"]
    (task,) = [w.spec for w in wanted]
    assert task.name == "shop-app" and task.os == "Windows" and task.timeout == 300
    assert task.context_path == "https://github.com/org/shop.git#main:images/app"
    assert task.image_names == ("shop/app:{{.Run.ID}}", "shop/app:sha-{{slice .Run.Commit 0 12}}")
    assert task.build_args == {
        "BASE": "127.0.0.1:5000/local/base:sha-{{slice .Run.Commit 0 12}}",
        "SHA": "{{slice .Run.Commit 0 12}}",
    }
    assert task.tags == {OWNER_TAG: OWNER, SOURCE_TAG: source, IMAGE_TAG: "shop/app"}

    assert [c.action for c in task_changes("shopacr", [task], {}, False, source)] == ["create"]
    same = {task.name: (dict(task.tags), task)}
    assert [c.action for c in task_changes("shopacr", [task], same, False, source)] == ["unchanged"]
    stale = {task.name: (dict(task.tags), None)}
    assert [c.action for c in task_changes("shopacr", [task], stale, False, source)] == ["update"]
    existing = {
        "shop-gone": ({OWNER_TAG: OWNER, SOURCE_TAG: source, IMAGE_TAG: "shop/gone"}, None),
        "other-file": ({OWNER_TAG: OWNER, SOURCE_TAG: "https://github.com/org/x.git#p.yaml"}, None),
        "hand-made": ({}, None),
    }
    pruned = task_changes("shopacr", [task], existing, True, source)
    assert [(c.action, c.name) for c in pruned] == [("create", "shop-app"), ("delete", "shop-gone")]
    assert [c.action for c in task_changes("shopacr", [task], existing, False, source)] == ["create"]
    with pytest.raises(ConfigError, match="does not manage"):
        task_changes("shopacr", [task], {task.name: ({}, None)}, False, source)
