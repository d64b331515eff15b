"""`pipeline promote` checks the destination before it copies anything, against the real registries."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.helpers import BASE_DOCKERFILE, app_project, git, init_git, run_cli
from tests.integration.conftest import RegistryPeek, Services


@pytest.mark.engines  # issue 28: a build, its attestations and a promotion on each engine
def test_promote_onto_a_release_tag_of_another_digest_copies_nothing(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, auth_peek: RegistryPeek
) -> None:
    app_project(tmp_path, f"{services.plain_registry}/{namespace}", BASE_DOCKERFILE, busybox=True)
    init_git(tmp_path)
    env = {"DOCKER_CONFIG": str(services.auth_docker_config)}
    dest = f"{services.auth_registry}/{namespace}/prod-app"
    assert run_cli(["run", "--version", "1.0.0"], tmp_path).code == 0
    released = plain_peek.digest(f"{namespace}/app", "1.0.0")
    first = run_cli(
        ["promote", f"{services.plain_registry}/{namespace}/app:1.0.0", dest, "--version", "1.0.0"], tmp_path, env=env
    )
    assert first.code == 0, first.output
    before = {
        tag: auth_peek.digest(f"{namespace}/prod-app", tag) for tag in auth_peek.all_tags(f"{namespace}/prod-app")
    }
    assert before["1.0.0"] == released

    # A later build, with a layer the destination has never seen, promoted under the same version.
    dockerfile = tmp_path / "images/app/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo two > /marker\n")
    git(tmp_path, "commit", "-qam", "two")
    assert run_cli(["run", "--version", "1.1.0"], tmp_path).code == 0
    source = plain_peek.digest(f"{namespace}/app", "1.1.0")
    assert source is not None and source != released
    manifest = plain_peek.manifest(f"{namespace}/app", source)
    assert manifest is not None
    config = manifest[1]["config"]
    assert isinstance(config, dict)
    new_blobs = {config["digest"]} | (
        set(plain_peek.layers(f"{namespace}/app", source)) - set(plain_peek.layers(f"{namespace}/app", released))
    )
    assert len(new_blobs) >= 2  # the config and the marker layer

    refused = run_cli(
        ["promote", f"{services.plain_registry}/{namespace}/app:1.1.0", dest, "--version", "1.0.0"], tmp_path, env=env
    )
    assert refused.code == 1, refused.output
    assert f"{dest}:1.0.0 is {released}, the source is {source}" in refused.output
    assert "this run built" not in refused.output
    assert "nothing was copied" in refused.output

    # Nothing reached the destination: not the manifest, not one blob of the source, no tag moved.
    assert auth_peek.digest(f"{namespace}/prod-app", source) is None
    for blob in sorted(new_blobs):
        response = httpx.head(f"{auth_peek.base}/{namespace}/prod-app/blobs/{blob}", auth=auth_peek.auth, timeout=30)
        assert response.status_code == 404, f"{blob} was copied to the destination ({response.status_code})"
    after = {tag: auth_peek.digest(f"{namespace}/prod-app", tag) for tag in auth_peek.all_tags(f"{namespace}/prod-app")}
    assert after == before
