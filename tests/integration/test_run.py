"""`pipeline run` against the real engine and registries."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import (
    BASE_DOCKERFILE,
    FROM_BASE,
    assert_valid_report,
    built_steps,
    image_entry,
    init_git,
    run_cli,
    shop_config,
    write_project,
)
from tests.integration.conftest import RegistryPeek, Services

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

APP_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}} AS build
RUN echo {name} >> /layers
FROM build AS runtime
ARG GREETING=none
RUN echo "$GREETING" > /greeting
"""


def three_image_config(registry: str) -> str:
    app = image_entry(
        "app", "target: runtime", 'build_args: {BASE_IMAGE: "{{ images.base }}", GREETING: "hello {{ version }}"}'
    )
    return shop_config(
        registry, {"base": "", "app": app, "worker": image_entry("worker", "depends_on: [base]", FROM_BASE)}
    )


def three_image_project(root: Path, registry: str) -> Path:
    return write_project(
        root,
        three_image_config(registry),
        {
            "base": BASE_DOCKERFILE,
            "app": APP_DOCKERFILE.format(name="app"),
            "worker": APP_DOCKERFILE.format(name="worker"),
        },
        busybox=("base",),
    )


def test_three_image_dag_is_pushed_with_every_tag_on_one_digest(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    three_image_project(tmp_path, f"{services.plain_registry}/{namespace}")
    sha = init_git(tmp_path)
    result = run_cli(["run", "--version", "2.1.5", "--report", "report.json"], tmp_path)
    assert result.code == 0, result.output

    report = assert_valid_report(tmp_path / "report.json")
    assert report["ok"] is True
    by_name = {image["name"]: image for image in report["images"]}
    assert set(by_name) == {"base", "app", "worker"}
    for name, image in by_name.items():
        # app's build arg renders the version: its build tag names it (README, Tags).
        expected_tags = {"2.1.5", "2.1", "2", "latest", f"sha-{sha[:12]}" + ("-2.1.5" if name == "app" else "")}
        path = f"{namespace}/{name}"
        assert image["status"] == "succeeded"
        assert set(image["tags"]) == expected_tags
        assert plain_peek.tags(path) == expected_tags
        inputs_tags = plain_peek.all_tags(path) - expected_tags
        assert len(inputs_tags) == 1 and next(iter(inputs_tags)).startswith("inputs-")
        digests = {plain_peek.digest(path, tag) for tag in expected_tags}
        assert digests == {image["digest"]}, f"{name}: tags point at {digests}"
        assert image["reference"] == f"{services.plain_registry}/{path}@{image['digest']}"
        # One image manifest, not an index: buildx's own provenance attestation (on by default where the
        # image store can hold it: Docker 26's containerd store) is off (docs/engines.md).
        manifest = plain_peek.manifest(path, str(image["digest"]))
        assert manifest is not None and "manifests" not in manifest[1], f"{name}: {manifest}"
    # The summary table is on stdout, progress (image, step, elapsed) on stderr.
    assert "shop/app" in result.stdout and "succeeded" in result.stdout
    # One progress line per Dockerfile step, as BuildKit numbers them ("[build 1/2] FROM ...").
    assert re.search(r"^\[ *[\d.]+s\] shop/app +build +\[(\S+ )?\d+/\d+\] \S", result.stderr, re.MULTILINE)


def test_dependant_is_built_on_this_runs_base(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    three_image_project(tmp_path, f"{services.plain_registry}/{namespace}")
    result = run_cli(["run", "--version", "1.0.0"], tmp_path)
    assert result.code == 0, result.output
    base_layers = plain_peek.layers(f"{namespace}/base", "1.0.0")
    for dependant in ("app", "worker"):
        layers = plain_peek.layers(f"{namespace}/{dependant}", "1.0.0")
        assert layers[: len(base_layers)] == base_layers
        assert len(layers) > len(base_layers)

    # Change the base: the next run's dependants must start with the *new* base's layers.
    dockerfile = tmp_path / "images/base/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo changed > /changed\n")
    result = run_cli(["run", "--version", "1.0.1"], tmp_path)
    assert result.code == 0, result.output
    new_base = plain_peek.layers(f"{namespace}/base", "1.0.1")
    assert new_base != base_layers
    for dependant in ("app", "worker"):
        assert plain_peek.layers(f"{namespace}/{dependant}", "1.0.1")[: len(new_base)] == new_base


def test_oci_labels_are_set(tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek) -> None:
    three_image_project(tmp_path, f"{services.plain_registry}/{namespace}")
    sha = init_git(tmp_path)
    from tests.helpers import git

    git(tmp_path, "remote", "add", "origin", "https://user:s3cret@git.example.com/shop.git")
    # The origin only names the source (no such host): the version is not claimed on it (Several runners).
    result = run_cli(["run", "shop", "--version", "3.0.0", "--json"], tmp_path, env={"PIPELINE_CLAIMS": "off"})
    assert result.code == 0, result.output
    report = assert_valid_report(result.stdout)
    app = next(i for i in report["images"] if i["name"] == "app")
    inspect = json.loads(
        __import__("subprocess")
        .run(["docker", "image", "inspect", app["image_id"]], capture_output=True, text=True, check=True)
        .stdout
    )[0]
    labels = inspect["Config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == "app"
    assert labels["org.opencontainers.image.version"] == "3.0.0"
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/shop.git"
    datetime.strptime(labels["org.opencontainers.image.created"], "%Y-%m-%dT%H:%M:%SZ")
    # README names the input-digest label: images pushed by earlier versions are reused only under it.
    assert labels["org.pipeline.inputs"].startswith("sha256:")
    assert labels["org.pipeline.inputs.dockerfile"]
    assert "s3cret" not in result.output
    # README: labels go to BuildKit as --label, in the pushed config and not as extra build steps.
    pushed = plain_peek.config(f"{namespace}/app", app["digest"])
    assert pushed["config"]["Labels"]["org.pipeline.inputs"] == labels["org.pipeline.inputs"]
    steps = [entry.get("created_by", "") for entry in pushed["history"]]
    assert steps and not [s for s in steps if "org.opencontainers.image" in s or "org.pipeline" in s], steps


def test_independent_images_build_in_parallel(tmp_path: Path, services: Services, namespace: str) -> None:
    slow = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "3"]\n'
    write_project(
        tmp_path,
        shop_config(f"{services.plain_registry}/{namespace}", ("one", "two"), pipeline="p"),
        {"one": slow, "two": slow.replace("3", "3.1")},
        busybox=("one", "two"),
    )
    result = run_cli(["run", "--jobs", "2", "--report", "r.json"], tmp_path)
    assert result.code == 0, result.output
    images = assert_valid_report(tmp_path / "r.json")["images"]
    spans = [
        (datetime.fromisoformat(i["build_started_at"]), datetime.fromisoformat(i["build_finished_at"])) for i in images
    ]
    (start_a, end_a), (start_b, end_b) = spans
    assert start_a < end_b and start_b < end_a, f"builds did not overlap: {spans}"

    # With --jobs 1 the same two builds must not overlap.
    (tmp_path / "images/one/Dockerfile").write_text(slow.replace("3", "2.9"))
    (tmp_path / "images/two/Dockerfile").write_text(slow.replace("3", "2.8"))
    result = run_cli(["run", "--jobs", "1", "--report", "r1.json"], tmp_path)
    assert result.code == 0, result.output
    images = assert_valid_report(tmp_path / "r1.json")["images"]
    first, second = sorted(images, key=lambda i: i["build_started_at"])
    assert first["build_finished_at"] <= second["build_started_at"]


FAILING_IMAGES = {
    "base": "",
    "broken": image_entry("broken", "depends_on: [base]"),
    "after_broken": image_entry("after", 'build_args: {BASE_IMAGE: "{{ images.broken }}"}'),
    "sibling": image_entry("sibling", FROM_BASE),
}


def failing_project(root: Path, registry: str) -> None:
    write_project(
        root,
        shop_config(registry, FAILING_IMAGES, pipeline="p"),
        {
            "base": BASE_DOCKERFILE,
            "broken": 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "false"]\n',
            "after": APP_DOCKERFILE.format(name="after"),
            "sibling": APP_DOCKERFILE.format(name="sibling"),
        },
        busybox=("base", "broken"),
    )


def test_failing_image_stops_only_its_dependants_with_keep_going(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    failing_project(tmp_path, f"{services.plain_registry}/{namespace}")
    result = run_cli(["run", "--keep-going", "--version", "1.0.0", "--report", "r.json"], tmp_path)
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    status = {i["name"]: i for i in assert_valid_report(tmp_path / "r.json")["images"]}
    assert status["base"]["status"] == "succeeded"
    assert status["sibling"]["status"] == "succeeded"
    assert status["broken"]["status"] == "failed"
    assert status["after_broken"]["status"] == "skipped"
    assert "depends on p/broken" in status["after_broken"]["error"]
    # The failing Dockerfile step is named, as BuildKit numbers it (FROM scratch is no step), with the reason.
    assert 'at [2/2] RUN ["/bin/busybox", "false"]: ' in status["broken"]["error"]
    assert "exit code: 1" in status["broken"]["error"]
    assert 'p/broken: build failed at [2/2] RUN ["/bin/busybox", "false"]' in result.stdout
    # The run failed, so nothing is released: outside git the images that succeeded were pushed under
    # their input-digest tag only (a name for that build), and no release, floating or extra tag exists.
    for name in ("base", "sibling"):
        assert plain_peek.tags(f"{namespace}/{name}") == set()
        (pushed,) = plain_peek.all_tags(f"{namespace}/{name}")
        assert pushed.startswith("inputs-")
        assert plain_peek.digest(f"{namespace}/{name}", pushed) == status[name]["digest"]
    assert plain_peek.all_tags(f"{namespace}/after_broken") == set()
    # Fixed, the same command releases every image, reusing what the failed run pushed.
    (tmp_path / "images/broken/Dockerfile").write_text(BASE_DOCKERFILE)
    again = run_cli(["run", "--version", "1.0.0", "--report", "r2.json"], tmp_path)
    assert again.code == 0, again.output
    after = {i["name"]: i for i in assert_valid_report(tmp_path / "r2.json")["images"]}
    for name in ("base", "sibling", "broken", "after_broken"):
        assert plain_peek.tags(f"{namespace}/{name}") == {"1.0.0", "1.0", "1", "latest"}, name
    assert after["base"]["digest"] == status["base"]["digest"]


def test_fail_fast_stops_scheduling_after_first_failure(tmp_path: Path, services: Services, namespace: str) -> None:
    failing_project(tmp_path, f"{services.plain_registry}/{namespace}")
    result = run_cli(["run", "--jobs", "1", "--report", "r.json"], tmp_path)
    assert result.code == 1
    status = {i["name"]: i["status"] for i in assert_valid_report(tmp_path / "r.json")["images"]}
    assert status["base"] == "succeeded"
    assert status["broken"] == "failed"
    assert status["after_broken"] == "skipped"


def test_no_push_builds_locally_only(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    three_image_project(tmp_path, f"{services.plain_registry}/{namespace}")
    result = run_cli(["run", "--no-push", "--version", "1.0.0"], tmp_path)
    assert result.code == 0, result.output
    assert plain_peek.tags(f"{namespace}/base") == set()


def test_auth_registry_with_and_without_credentials(
    tmp_path: Path, services: Services, namespace: str, auth_peek: RegistryPeek
) -> None:
    three_image_project(tmp_path, f"{services.auth_registry}/{namespace}")
    empty_config = tmp_path / "empty-docker-config"
    empty_config.mkdir()
    no_creds = {"DOCKER_CONFIG": str(empty_config)}
    # A plain run finds out before building (the input-cache lookup), naming the fix.
    without = run_cli(["run"], tmp_path, env=no_creds)
    assert without.code == 1
    assert "Traceback" not in without.output
    assert f"shop/base: registry {services.auth_registry} requires credentials" in without.output
    # With the input cache off it finds out at the engine's push.
    pushed = run_cli(["run", "--no-cache"], tmp_path, env=no_creds)
    assert pushed.code == 1
    assert "shop/base: push to" in pushed.output
    assert "no credentials for this registry in the docker config" in pushed.output
    # A release checks its release tags first, so it fails before building anything.
    release = run_cli(["run", "--version", "1.0.0"], tmp_path, env=no_creds)
    assert release.code == 1
    assert release.output.strip().splitlines()[-1] == (
        f"error: registry {services.auth_registry} requires credentials and the docker config has none for it "
        "(run 'docker login' or point DOCKER_CONFIG at a config with 'auths')"
    )
    assert not built_steps(release.output)
    assert auth_peek.tags(f"{namespace}/base") == set()

    with_creds = run_cli(
        ["run", "--version", "1.0.0"], tmp_path, env={"DOCKER_CONFIG": str(services.auth_docker_config)}
    )
    assert with_creds.code == 0, with_creds.output
    assert auth_peek.tags(f"{namespace}/app") == {"1.0.0", "1.0", "1", "latest"}
    assert services.auth_password not in with_creds.output


def test_engine_unreachable_is_exit_3(tmp_path: Path, services: Services, namespace: str) -> None:
    three_image_project(tmp_path, f"{services.plain_registry}/{namespace}")
    result = run_cli(["run"], tmp_path, env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert result.code == 3
    # The engine is named since engines: exists; without it, it is the environment's own, "default".
    assert result.output.startswith("error: cannot reach the Docker engine at tcp://127.0.0.1:9")
