"""`pipeline serve` receiving a real Docker Distribution's notifications: an upstream base image pushed to
a `docker-registry` of the test's own (its `notifications: endpoints:` pointing at serve, with the
shared-secret header) queues a base update run, and its dependants are rebuilt on the new digest."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cache.inputs import BASES_LABEL
from tests.helpers import git, init_git, shop_config, write_project
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_serve import Serve

REGISTRY_SECRET = "bases-serve-registry-secret-8e2a"
WEBHOOK_SECRET = "bases-serve-webhook-secret-31c0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class NotifyingRegistry:
    """A `docker-registry` (Debian's Distribution 2.8) on its own port and storage, notifying `url`."""

    def __init__(self, root: Path, url: str, secret: str) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        root.mkdir(parents=True)
        config = root / "config.yml"
        config.write_text(
            f"""\
version: 0.1
log: {{level: info}}
storage:
  filesystem: {{rootdirectory: {root / "data"}}}
  delete: {{enabled: true}}
http:
  addr: {self.host}
notifications:
  endpoints:
    - name: pipeline-serve
      url: {url}/hooks/registry/distribution
      headers:
        Authorization: [Bearer {secret}]
      timeout: 5s
      threshold: 3
      backoff: 1s
      ignoredmediatypes: [application/octet-stream]
      ignore:
        actions: [pull]
"""
        )
        self.log_path = root / "registry.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, f"docker-registry exited:\n{self.log_path.read_text()}"
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"docker-registry did not start:\n{self.log_path.read_text()}"
            time.sleep(0.1)
        self.peek = RegistryPeek(self.host)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def docker(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["docker", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"docker {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def push_upstream(root: Path, reference: str, version: str) -> None:
    """A tiny image FROM scratch (one file, /upstream.txt = version) pushed to `reference` with the docker CLI."""
    context = root / f"upstream-{version}"
    context.mkdir()
    (context / "upstream.txt").write_text(f"{version}\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY upstream.txt /upstream.txt\n")
    docker("build", "-q", "-t", reference, str(context))
    docker("push", reference)


@pytest.fixture
def upstream_images() -> Iterator[list[str]]:
    pushed: list[str] = []
    yield pushed
    for reference in pushed:  # only the images this test made
        subprocess.run(["docker", "image", "rm", "-f", reference], capture_output=True, check=False)


def wait_for_run(serve: Serve, digest: str, timeout: float = 300) -> dict[str, Any]:
    """The base update run for `digest`, once finished."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [run for run in serve.runs() if run["kind"] == "base" and run["digest"] == digest]
        done = [run for run in runs if run["status"] in ("succeeded", "failed")]
        if done:
            return done[-1]
        assert serve.proc.poll() is None, f"serve exited:\n{serve.stderr}"
        assert time.monotonic() < deadline, f"no finished run for {digest}: {runs}\n{serve.stderr}"
        time.sleep(0.2)


def test_a_distribution_notification_rebuilds_the_dependants_on_the_new_digest(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, upstream_images: list[str]
) -> None:
    repo = _project(tmp_path / "shop", services, namespace)
    serve = Serve(
        tmp_path,
        repo,
        ["-f", "pipelines.yaml", "--registry-hook", "distribution", "--branch", "main"],
        {"PIPELINE_WEBHOOK_SECRET": WEBHOOK_SECRET, "PIPELINE_REGISTRY_SECRET": REGISTRY_SECRET},
    )
    registry = NotifyingRegistry(tmp_path / "upstream-registry", serve.url, REGISTRY_SECRET)
    try:
        upstream = f"{registry.host}/{namespace}-upstream/base:1"
        # The project's image is FROM the upstream base on that registry (written before serve started,
        # but the registry's port is only known now: the Dockerfile is committed again with it).
        (repo / "images" / "app" / "Dockerfile").write_text(f"FROM {upstream}\nCOPY app.txt /app.txt\n")
        git(repo, "commit", "-qam", "app on the upstream base")

        upstream_images.append(upstream)
        push_upstream(tmp_path, upstream, "1")
        first_digest = registry.peek.digest(f"{namespace}-upstream/base", "1")
        assert first_digest is not None
        first = wait_for_run(serve, first_digest)
        assert (first["reference"], first["ref"], first["source"]) == (upstream, "refs/heads/main", "distribution")
        log = serve.log(first["id"])
        assert f"--ref refs/heads/main --base {upstream} --report " in log, log
        assert first["status"] == "succeeded", log
        (app,) = [image for image in first["report"]["images"] if image["image"] == "shop/app"]
        assert plain_peek.files(f"{namespace}/app", app["digest"])["upstream.txt"] == b"1\n"

        # The upstream tag moves to a new image: the registry notifies serve, which rebuilds the app on it.
        push_upstream(tmp_path, upstream, "2")
        second_digest = registry.peek.digest(f"{namespace}-upstream/base", "1")
        assert second_digest is not None and second_digest != first_digest
        second = wait_for_run(serve, second_digest)
        assert (second["reference"], second["coalesced"]) == (upstream, 0)
        log = serve.log(second["id"])
        assert second["status"] == "succeeded", log
        (app,) = [image for image in second["report"]["images"] if image["image"] == "shop/app"]
        assert app["status"] == "succeeded" and app["reused"] is False, app
        files = plain_peek.files(f"{namespace}/app", app["digest"])
        assert (files["upstream.txt"], files["app.txt"]) == (b"2\n", b"app\n")  # built on the new base
        labels = plain_peek.config(f"{namespace}/app", app["digest"])["config"]["Labels"]
        assert second_digest in json.loads(labels[BASES_LABEL]).values(), labels
        # The status page shows the run with its reference, and why it rebuilt.
        page = serve.http.get(f"/runs/{second['id']}").text
        assert f'<code class="base">{upstream}</code>' in page and second_digest in page
        assert f"base update: {upstream} {first_digest} → {second_digest}" in page

        # The same image pushed again: Distribution notifies it (a new event id), serve answers it is a
        # duplicate of the run that built on that digest, and nothing more runs.
        ids = {run["id"] for run in serve.runs()}
        answered = serve.stderr.count('"POST /hooks/registry/distribution HTTP/1.1" 200')
        docker("push", upstream)
        deadline = time.monotonic() + 30
        while serve.stderr.count('"POST /hooks/registry/distribution HTTP/1.1" 200') == answered:
            assert time.monotonic() < deadline, f"no notification of the repeated push:\n{serve.stderr}"
            time.sleep(0.1)
        assert {run["id"] for run in serve.runs()} == ids
        assert REGISTRY_SECRET not in serve.stderr and WEBHOOK_SECRET not in serve.stderr
    finally:
        registry.stop()
        serve.stop()


def _project(repo: Path, services: Services, namespace: str) -> Path:
    write_project(
        repo,
        shop_config(f"{services.plain_registry}/{namespace}", ("app",)),
        {"app": "FROM scratch\nCOPY app.txt /app.txt\n"},
    )
    (repo / "images" / "app" / "app.txt").write_text("app\n")
    init_git(repo)
    return repo
