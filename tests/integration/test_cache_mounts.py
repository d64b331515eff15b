"""`RUN --mount=type=cache` keeps its contents across runs on an engine, and a dependant still builds
FROM its base's exact pushed digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import BASE_DOCKERFILE, FROM_BASE, git, image_entry, init_git, run_cli, shop_config, write_project
from tests.integration.conftest import RegistryPeek, Services

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

# The cache's id is the test's namespace: the engine shares a cache mount between every build that
# names the same id, and other tests build on this engine too.
APP_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
ARG BASE_IMAGE
RUN echo "$BASE_IMAGE" > /base-ref
COPY stamp /stamp
RUN --mount=type=cache,id={cache_id},target=/cache \\
    (cat /cache/marker 2>/dev/null || echo empty) > /seen && echo "written by $(cat /stamp)" > /cache/marker
"""


def test_a_cache_mount_keeps_its_contents_across_runs_and_dependants_build_from_the_base_digest(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    write_project(
        tmp_path,
        shop_config(f"{services.plain_registry}/{namespace}", {"base": "", "app": image_entry("app", FROM_BASE)}),
        {"base": BASE_DOCKERFILE, "app": APP_DOCKERFILE.format(cache_id=f"pipeline-test-{namespace}")},
        busybox=("base",),
    )
    (tmp_path / "images" / "app" / "stamp").write_text("run one\n")
    first_sha = init_git(tmp_path)
    first = run_cli(["run"], tmp_path)
    assert first.code == 0, first.output

    # A changed file under the cache step makes it run again, on the same engine.
    (tmp_path / "images" / "app" / "stamp").write_text("run two\n")
    git(tmp_path, "commit", "-q", "-am", "change the stamp")
    second_sha = git(tmp_path, "rev-parse", "HEAD")
    second = run_cli(["run"], tmp_path)
    assert second.code == 0, second.output

    app, base = f"{namespace}/app", f"{namespace}/base"
    one, two = f"sha-{first_sha[:12]}", f"sha-{second_sha[:12]}"
    assert plain_peek.files(app, one)["seen"] == b"empty\n"
    assert plain_peek.files(app, two)["seen"] == b"written by run one\n"

    # The base did not change: run two reused it, and both apps build FROM its digest.
    base_digest = plain_peek.digest(base, one)
    assert base_digest is not None and plain_peek.digest(base, two) == base_digest
    base_layers = plain_peek.layers(base, one)
    for tag in (one, two):
        assert plain_peek.files(app, tag)["base-ref"] == f"{services.plain_registry}/{base}@{base_digest}\n".encode()
        app_layers = plain_peek.layers(app, tag)
        assert app_layers[: len(base_layers)] == base_layers
        assert len(app_layers) > len(base_layers)
