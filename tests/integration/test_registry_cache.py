"""The registry as a layer cache between engines: an image pushed from one engine carries its layer
cache inline, and a second engine that never built it rebuilds a one-file change reusing the layers
below the change, pulled from the registry."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BUSYBOX, CliResult, app_project, git, init_git, run_cli
from tests.integration.conftest import SERVICES_ENV, RegistryPeek, Services, _unavailable
from tests.integration.test_engines import started_engine

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

SLOW_SECONDS = 8
# Unique per project (`{unique}`), so neither engine has the RUN step's layer from another test.
DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep {seconds} && echo {unique} > /slow"]
COPY file.txt /file.txt
"""
RUN_STEP = re.compile(r"\[2/3\] RUN .*sleep")


def project(root: Path, registry: str) -> str:
    """A one-image project (committed); returns the commit."""
    app_project(root, registry, DOCKERFILE.format(seconds=SLOW_SECONDS, unique=uuid.uuid4().hex))
    shutil.copy(BUSYBOX, root / "images" / "app" / "busybox")
    (root / "images" / "app" / "file.txt").write_text("one\n")
    return init_git(root)


def change_one_file(root: Path) -> str:
    (root / "images" / "app" / "file.txt").write_text("two\n")
    git(root, "commit", "-q", "-am", "change one file")
    return git(root, "rev-parse", "HEAD")


def run_step_lines(result: CliResult) -> list[str]:
    """The progress lines of the slow RUN step."""
    return [line.rstrip() for line in result.stderr.splitlines() if RUN_STEP.search(line)]


def image_seconds(result: CliResult) -> float:
    """The run clock at the image's `done` line: its build, push and read-back, without start-up."""
    found = re.search(r"\[\s*([0-9.]+)s\] \S+\s+done ", result.stderr)
    assert found, result.stderr
    return float(found.group(1))


def timed(args: list[str], root: Path, host: str) -> tuple[CliResult, float]:
    started = time.monotonic()
    result = run_cli(args, root, env={"DOCKER_HOST": host}, timeout=600)
    return result, time.monotonic() - started


@pytest.fixture
def second_engine(request: pytest.FixtureRequest, docker_engine: str, services: Services) -> Iterator[str]:
    """Another engine of the same kind as the test's, which never built the test's images: the services'
    second Docker 20.10, or a private Docker 26 on the containerd store started for the test. (BuildKit's
    cache keys differ between versions: Docker 20.10's BuildKit 0.8 does not match Docker 26's inline
    cache, nor the other way round, so the two engines of one test are of one version.)"""
    if docker_engine != "docker26":
        yield request.getfixturevalue("engine2")
        return
    tools = SERVICES_ENV.parent / "tools" / "modern" / "bin"
    if not (tools / "dockerd").exists():
        _unavailable(f"no Docker 26 binaries in {tools} to start a second engine with")
    root = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))
    (root / "daemon.json").write_text('{"features": {"containerd-snapshotter": true}}\n')
    env = os.environ | {"PATH": f"{tools}:{os.environ['PATH']}"}
    options = ("--config-file", f"{root}/daemon.json", "--ip6tables=false")
    try:
        with started_engine("pm-", str(tools / "dockerd"), options, env) as engine:
            yield engine.host
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_second_engine_reuses_the_unchanged_layers_from_the_registry(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, second_engine: str
) -> None:
    first_sha = project(tmp_path / "cached", f"{services.plain_registry}/{namespace}")
    baseline_sha = project(tmp_path / "baseline", f"{services.plain_registry}/{namespace}b")
    for root in (tmp_path / "cached", tmp_path / "baseline"):
        built = run_cli(["run"], root)  # on the test's engine (DOCKER_HOST)
        assert built.code == 0, built.output
        assert run_step_lines(built) and not any(line.endswith("(cached)") for line in run_step_lines(built))

    second_sha = change_one_file(tmp_path / "cached")
    rebuilt, with_cache = timed(["run"], tmp_path / "cached", second_engine)
    assert rebuilt.code == 0, rebuilt.output
    baseline_second_sha = change_one_file(tmp_path / "baseline")
    uncached, without_cache = timed(["run", "--no-cache"], tmp_path / "baseline", second_engine)
    assert uncached.code == 0, uncached.output
    print(
        f"\nsecond engine, one-file change, wall time of `pipeline run` (image's build+push on the run clock): "
        f"registry cache {with_cache:.2f} s ({image_seconds(rebuilt):.1f} s), "
        f"--no-cache {without_cache:.2f} s ({image_seconds(uncached):.1f} s)"
    )

    # The RUN step above the changed COPY came from the registry's inline cache, not from a rerun.
    assert run_step_lines(rebuilt) and all(line.endswith("(cached)") for line in run_step_lines(rebuilt)), (
        rebuilt.stderr
    )
    assert run_step_lines(uncached) and not any(line.endswith("(cached)") for line in run_step_lines(uncached))
    # Same lower layers (busybox, the RUN step's output), a new top layer for the changed file.
    first = plain_peek.layers(f"{namespace}/app", f"sha-{first_sha[:12]}")
    second = plain_peek.layers(f"{namespace}/app", f"sha-{second_sha[:12]}")
    assert len(first) == len(second) == 3
    assert second[:2] == first[:2]
    assert second[2] != first[2]
    assert plain_peek.files(f"{namespace}/app", f"sha-{second_sha[:12]}")["file.txt"] == b"two\n"
    # The control: the same RUN step run again (--no-cache) writes a layer of another digest (its file's
    # time), so the equal RUN layer above is the first engine's, taken from the registry, not a rerun. (No
    # timed assertion: the print above shows the time saved, which load on the machine can hide.)
    before = plain_peek.layers(f"{namespace}b/app", f"sha-{baseline_sha[:12]}")
    after = plain_peek.layers(f"{namespace}b/app", f"sha-{baseline_second_sha[:12]}")
    assert before[0] == after[0] and before[1] != after[1]


def test_a_missing_cache_source_is_not_named_as_the_failure(tmp_path: Path, services: Services, namespace: str) -> None:
    app_project(
        tmp_path,
        f"{services.plain_registry}/{namespace}",
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "exit 3"]\n',
        busybox=True,
    )
    init_git(tmp_path)
    result = run_cli(["run", "--report", "report.json"], tmp_path)  # cache sources: tags not pushed yet
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    failed = [line for line in result.stderr.splitlines() if re.search(r"\] shop/app +failed ", line)]
    assert len(failed) == 1 and "shop/app: build failed at [2/2] RUN" in failed[0], result.stderr
    # The summary on stdout quotes the step as written (its brackets are not markup).
    assert 'build failed at [2/2] RUN ["/bin/busybox", "sh", "-c", "exit 3"]' in result.stdout.replace("\n", "")
    assert "importing cache manifest" not in result.stderr + (tmp_path / "report.json").read_text()
