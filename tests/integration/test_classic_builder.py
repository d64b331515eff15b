"""The engine's classic builder, kept for engines without buildx: `builder: classic` end to end, and
`builder: docker` falling back to it when the docker CLI has no buildx plugin."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers import SHOP_IMAGES, built_steps, init_git, run_cli, shop_project
from tests.integration.conftest import RegistryPeek, Services

# What BuildKit writes into every history entry of an image it built from a Dockerfile; the classic
# builder writes no comment there. Read from the registry, it tells which builder made a pushed image.
BUILDKIT_HISTORY_COMMENT = "buildkit.dockerfile.v0"

# The docker CLI looks for plugins in fixed system directories (here /usr/local/lib/docker/cli-plugins,
# where scripts/services links buildx) besides $DOCKER_CONFIG/cli-plugins and the config's
# cliPluginsExtraDirs, so no environment variable hides an installed plugin. A `docker` first on PATH
# that answers `buildx` as the CLI does for a command it does not have, and runs the real CLI otherwise,
# is a docker CLI without the buildx plugin.
NO_BUILDX_DOCKER = """\
#!/bin/sh
if [ "$1" = buildx ]; then
  echo "docker: unknown command: docker buildx" >&2
  echo >&2
  echo "Run 'docker --help' for more information" >&2
  exit 1
fi
exec {docker} "$@"
"""


def report(stdout: str) -> dict[str, dict[str, object]]:
    return {i["name"]: i for i in json.loads(stdout)["images"]}


def built_by_buildkit(config: dict[str, object]) -> bool:
    history = config.get("history")
    assert isinstance(history, list) and history, config
    return any(entry.get("comment") == BUILDKIT_HISTORY_COMMENT for entry in history)


def test_classic_builder_pushes_the_shop_with_labels_and_a_rerun_is_a_no_op(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop_project(tmp_path, f"{services.plain_registry}/{namespace}", sign=False, extra_config="builder: classic")
    sha = init_git(tmp_path)
    build_tag = f"sha-{sha[:12]}"
    first = run_cli(["run", "--json"], tmp_path)
    assert first.code == 0, first.output
    images = report(first.stdout)
    assert set(images) == set(SHOP_IMAGES)
    # The classic builder's own progress: "Step N/M : ..." per Dockerfile step (BuildKit numbers "[N/M]").
    assert any(step.startswith("shop/worker: Step ") for step in built_steps(first.stderr)), first.stderr
    for name, image in images.items():
        path = f"{namespace}/{name}"
        assert image["status"] == "succeeded" and image["reused"] is False
        assert plain_peek.digest(path, build_tag) == image["digest"]
        assert image["reference"] == f"{services.plain_registry}/{path}@{image['digest']}"
        config = plain_peek.image_config(path, build_tag)
        assert not built_by_buildkit(config), config["history"]
        labels = config["config"]["Labels"]
        assert labels["org.opencontainers.image.title"] == name
        assert labels["org.opencontainers.image.revision"] == sha
        assert labels["org.pipeline.inputs"].startswith("sha256:")
    # app and worker are built FROM this run's base, by digest: its layers are theirs too.
    base_layers = plain_peek.layers(f"{namespace}/base", build_tag)
    for name in ("app", "worker"):
        assert plain_peek.layers(f"{namespace}/{name}", build_tag)[: len(base_layers)] == base_layers

    # Nothing changed: the input digests find every image in the registry; nothing is built or pushed anew.
    tags_before = {name: plain_peek.all_tags(f"{namespace}/{name}") for name in SHOP_IMAGES}
    again = run_cli(["run", "--json"], tmp_path)
    assert again.code == 0, again.output
    assert not built_steps(again.stderr), again.stderr
    for name, image in report(again.stdout).items():
        assert image["reused"] is True
        assert image["digest"] == images[name]["digest"]
        assert plain_peek.all_tags(f"{namespace}/{name}") == tags_before[name]
        assert plain_peek.digest(f"{namespace}/{name}", build_tag) == images[name]["digest"]


def test_docker_builder_without_buildx_falls_back_to_classic_with_one_warning(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    real_docker = subprocess.run(["sh", "-c", "command -v docker"], capture_output=True, text=True, check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "docker"
    wrapper.write_text(NO_BUILDX_DOCKER.format(docker=real_docker.stdout.strip()))
    wrapper.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def docker(*args: str, environment: dict[str, str]) -> int:
        return subprocess.run(["docker", *args], capture_output=True, env=environment, check=False).returncode

    # The arrangement hides buildx, and only it: the same CLI has the plugin, and still reaches the engine.
    assert docker("buildx", "version", environment=dict(os.environ)) == 0
    assert docker("buildx", "version", environment={**os.environ, **env}) != 0
    assert docker("version", environment={**os.environ, **env}) == 0

    root = tmp_path / "shop"
    shop_project(root, f"{services.plain_registry}/{namespace}", sign=False, images=("base", "app"))
    assert "builder:" not in (root / "pipelines.yaml").read_text()  # the default, docker (BuildKit)
    sha = init_git(root)
    result = run_cli(["run", "--json"], root, env=env)
    assert result.code == 0, result.output
    mentions = [line for line in result.stderr.splitlines() if "buildx" in line]
    assert len(mentions) == 1, result.stderr
    assert mentions[0].startswith("docker buildx is not installed: building with the engine's classic builder")
    for name, image in report(result.stdout).items():
        path = f"{namespace}/{name}"
        assert image["status"] == "succeeded"
        assert plain_peek.digest(path, f"sha-{sha[:12]}") == image["digest"]
        assert not built_by_buildkit(plain_peek.image_config(path, f"sha-{sha[:12]}"))
