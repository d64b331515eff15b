"""Builds spread over more than one Docker engine: the engine at DOCKER_HOST (or the default socket),
the second engine scripts/services starts ($PIPELINE_ENGINE2_HOST), and a third, private dockerd that
a test starts and kills -9 mid-build. The shared engines are never stopped.

What a user sees decides: the report's `engine` and build windows, the registry's manifests and tags,
the images in each engine's store, the run's progress lines and exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BASE_DOCKERFILE, CliResult, git, init_git, run_cli, user_tags, write_project
from tests.integration.conftest import RegistryPeek, Services, _unavailable


def _local_host() -> str:
    """The engine at DOCKER_HOST, read per test: the engine matrix sets it (tests/integration/conftest.py)."""
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


LEAVES = 6


def _docker(host: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **(env or {}), "DOCKER_HOST": host}
    full.pop("DOCKER_CONTEXT", None)
    return subprocess.run(["docker", *args], capture_output=True, text=True, env=full, check=False, timeout=120)


def _has_image(host: str, reference: str) -> bool:
    return _docker(host, "image", "inspect", reference).returncode == 0


def _report(result: CliResult) -> dict[str, dict[str, Any]]:
    assert result.stdout.strip(), result.stderr
    return {image["name"]: image for image in json.loads(result.stdout)["images"]}


def _when(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _peak_builds(images: list[dict[str, Any]]) -> int:
    """The most builds that held a slot at one moment (a build ending as another starts: not overlapping)."""
    edges = sorted(
        [(_when(i["build_started_at"]), 1) for i in images] + [(_when(i["build_finished_at"]), -1) for i in images],
        key=lambda edge: (edge[0], edge[1]),
    )
    busy = peak = 0
    for _, step in edges:
        busy += step
        peak = max(peak, busy)
    return peak


def _wide_project(root: Path, registry: str, engines: str, namespace: str) -> None:
    """base (busybox) and LEAVES leaves FROM its digest, each with a one-second RUN unique to this test."""
    leaves = "\n".join(
        f'      leaf{n}: {{context: images/leaf{n}, build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}}}'
        for n in range(1, LEAVES + 1)
    )
    config = f"registry: {registry}\nnetwork: none\n{engines}pipelines:\n  wide:\n    images:\n"
    config += "      base: {context: images/base}\n" + leaves + "\n"
    leaf = "ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN sleep 1 && echo {namespace} leaf{n} > /leaf\n"
    dockerfiles = {"base": BASE_DOCKERFILE}
    dockerfiles |= {f"leaf{n}": leaf.format(namespace=namespace, n=n) for n in range(1, LEAVES + 1)}
    write_project(root, config, dockerfiles, busybox=("base",))
    init_git(root)


@pytest.mark.engines
def test_a_wide_dag_spreads_over_two_engines_within_their_limits(
    tmp_path: Path, services: Services, engine2: str, namespace: str, plain_peek: RegistryPeek
) -> None:
    engines = f"engines:\n  one: {{host: '{_local_host()}', jobs: 2}}\n  two: {{host: '{engine2}', jobs: 2}}\n"
    _wide_project(tmp_path, f"{services.plain_registry}/{namespace}", engines, namespace)

    result = run_cli(["run", "--version", "1.0.0", "--json"], tmp_path)

    assert result.code == 0, result.output
    report = _report(result)
    assert {i["status"] for i in report.values()} == {"succeeded"}
    used = {name: i["engine"] for name, i in report.items()}
    assert set(used.values()) == {"one", "two"}, used
    for engine in ("one", "two"):
        on_it = [i for i in report.values() if i["engine"] == engine]
        # Six leaves ready at once over 2 + 2 slots: each engine is filled, never past its limit.
        assert _peak_builds(on_it) == 2, (engine, [(i["name"], i["build_started_at"]) for i in on_it])
    assert "building on engine one" in result.stderr and "building on engine two" in result.stderr

    # Leaves built on the other engine than base's got base by digest from the registry.
    base_digest = plain_peek.digest(f"{namespace}/base", "1.0.0")
    assert base_digest == report["base"]["digest"]
    base_layers = plain_peek.layers(f"{namespace}/base", "1.0.0")
    elsewhere = [name for name, engine in used.items() if engine != used["base"]]
    assert elsewhere
    for name in elsewhere:
        assert plain_peek.layers(f"{namespace}/{name}", "1.0.0")[: len(base_layers)] == base_layers
    for name in report:
        assert plain_peek.digest(f"{namespace}/{name}", "latest") == report[name]["digest"]


@pytest.mark.engines
def test_engine_pins_are_honoured(
    tmp_path: Path, services: Services, engine2: str, namespace: str, plain_peek: RegistryPeek
) -> None:
    registry = f"{services.plain_registry}/{namespace}"
    write_project(
        tmp_path,
        f"""\
        registry: {registry}
        network: none
        engines:
          one: {{host: '{_local_host()}', jobs: 4}}
          two: {{host: '{engine2}', jobs: 4}}
        pipelines:
          shop:
            engine: two
            images:
              base: {{context: images/base}}
              app:
                context: images/app
                engine: one
                build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}
              worker:
                context: images/worker
                build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}
        """,
        {
            "base": BASE_DOCKERFILE,
            "app": f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {namespace} app > /app\n",
            "worker": f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {namespace} worker > /worker\n",
        },
        busybox=("base",),
    )
    init_git(tmp_path)

    result = run_cli(["run", "--version", "1.0.0", "--json"], tmp_path)

    assert result.code == 0, result.output
    report = _report(result)
    # The pipeline's pin, and the image's over it; with 4 free slots on one, only a pin sends base there.
    assert {name: i["engine"] for name, i in report.items()} == {"base": "two", "app": "one", "worker": "two"}
    host = {"one": _local_host(), "two": engine2}
    for name, engine in {"base": "two", "app": "one", "worker": "two"}.items():
        built = f"{registry}/{name}@{report[name]['digest']}"
        assert plain_peek.digest(f"{namespace}/{name}", "1.0.0") == report[name]["digest"]
        other = "one" if engine == "two" else "two"
        assert _has_image(host[engine], built) and not _has_image(host[other], built), (name, engine)


# --- an engine that goes away mid-run ------------------------------------------------------


@dataclass
class PrivateEngine:
    """A dockerd of the test's own (socket, data root, exec root and pid file in one temp directory)."""

    root: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"unix://{self.root}/d.sock"

    @property
    def pid(self) -> int:
        return self.process.pid

    def children(self) -> list[int]:
        return [pid for pid in _pids() if _parent(pid) == self.pid]

    def kill(self) -> list[int]:
        """kill -9 the dockerd and its containerd; returns the pids killed."""
        victims = [self.pid, *self.children()]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        return victims


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@contextlib.contextmanager
def started_engine(
    prefix: str, dockerd: str, options: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Iterator[PrivateEngine]:
    """A dockerd of the test's own, answering: its socket, data root, exec root, pid file and log in one
    temp directory; killed, unmounted and removed afterwards."""
    # A short path: the engine's and its containerd's unix sockets live under it (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    argv = [dockerd, *options, "--bridge=none", "--iptables=false", "--host", f"unix://{root}/d.sock"]
    argv += ["--data-root", f"{root}/data", "--exec-root", f"{root}/x", "--pidfile", f"{root}/d.pid"]
    log = (root / "dockerd.log").open("wb")
    engine = PrivateEngine(root, subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env))
    try:
        deadline = time.monotonic() + 60
        while _docker(engine.host, "info").returncode != 0:
            assert engine.process.poll() is None, (root / "dockerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, f"the private {dockerd} did not answer within 60 s"
            time.sleep(0.2)
        yield engine
    finally:
        if engine.process.poll() is None:
            engine.kill()
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_engine(services: Services, namespace: str) -> Iterator[PrivateEngine]:
    if shutil.which("dockerd") is None:
        _unavailable("no dockerd binary to start a private engine with")
    with started_engine("pe-", "dockerd") as engine:
        try:
            yield engine
        finally:
            if engine.process.poll() is None:
                engine.kill()
            # A RUN step of a killed engine lives on, orphaned: its shell's command line carries the namespace.
            steps = {pid for pid in _pids() if namespace in _cmdline(pid) and pid != os.getpid()}
            for pid in steps | {pid for pid in _pids() if _parent(pid) in steps}:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


class Background:
    """`python -m pipeline ARGS` running, its stderr readable while it runs."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.err = cwd / "run.stderr"
        self.out = cwd / "run.stdout"
        with self.err.open("wb") as err, self.out.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pipeline", *args], cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.err.read_text():
            assert self.process.poll() is None, f"exited before '{text}':\n{self.err.read_text()}"
            assert time.monotonic() < deadline, f"no '{text}' within {timeout} s:\n{self.err.read_text()}"
            time.sleep(0.05)

    def finish(self, timeout: float = 300) -> CliResult:
        code = self.process.wait(timeout=timeout)
        return CliResult(code, self.out.read_text(), self.err.read_text())


def _slow_dockerfile(namespace: str, name: str) -> str:
    # Long enough to be killed during, short enough that the survivor's own build does not hold the run up.
    return (
        "FROM scratch\nCOPY busybox /bin/busybox\nARG PAUSE=0\n"
        f'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox sleep $PAUSE; echo {namespace} {name} > /out"]\n'
    )


def _wait_for_step(run: Background, namespace: str, name: str, timeout: float = 120) -> None:
    """Until the RUN step of `name` (its command line names the test's namespace) is running."""
    deadline = time.monotonic() + timeout
    while not any(namespace in _cmdline(pid) and f" {name} > /out" in _cmdline(pid) for pid in _pids()):
        assert run.process.poll() is None, f"exited before {name}'s RUN step:\n{run.err.read_text()}"
        assert time.monotonic() < deadline, f"{name}'s RUN step did not start within {timeout} s"
        time.sleep(0.05)


def _release_tags(peek: RegistryPeek, namespace: str) -> dict[str, dict[str, str | None]]:
    """Each image's release and floating tags and the digests they name."""
    return {
        name: {tag: peek.digest(f"{namespace}/{name}", tag) for tag in user_tags(peek.all_tags(f"{namespace}/{name}"))}
        for name in ("base", "pinned")
    }


def test_an_engine_killed_mid_build_hands_its_image_to_another_engine(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, private_engine: PrivateEngine
) -> None:
    write_project(
        tmp_path,
        f"""\
        registry: {services.plain_registry}/{namespace}
        network: none
        engines:
          one: {{host: '{_local_host()}', jobs: 1}}
          three: {{host: '{private_engine.host}', jobs: 1}}
        pipelines:
          p:
            images:
              first: {{context: images/first, build_args: {{PAUSE: "6"}}}}
              second: {{context: images/second, build_args: {{PAUSE: "6"}}}}
        """,
        {name: _slow_dockerfile(namespace, name) for name in ("first", "second")},
        busybox=("first", "second"),
    )
    init_git(tmp_path)
    # One slot each and two images ready: one of them builds on three.
    run = Background(["run", "--version", "1.0.0", "--json"], tmp_path)
    run.wait_for("building on engine three")
    line = next(li for li in run.err.read_text().splitlines() if "building on engine three" in li)
    moved = "first" if " p/first " in line else "second"
    _wait_for_step(run, namespace, moved)  # its RUN step is running on three now

    killed = private_engine.kill()
    result = run.finish()

    assert not any(_alive(pid) for pid in killed), killed
    assert result.code == 0, result.output
    assert "engine three stopped answering; moving to another engine" in result.stderr
    report = _report(result)
    assert report[moved]["engine"] == "one" and report[moved]["status"] == "succeeded"
    for name in ("first", "second"):
        assert plain_peek.digest(f"{namespace}/{name}", "1.0.0") == report[name]["digest"] is not None
        assert _has_image(_local_host(), f"{services.plain_registry}/{namespace}/{name}@{report[name]['digest']}")


def test_an_image_pinned_to_an_engine_that_dies_fails_and_moves_no_release_tag(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, private_engine: PrivateEngine
) -> None:
    config = """\
        registry: {registry}
        network: none
        engines:
          one: {{host: '{one}'}}
          three: {{host: '{three}'}}
        pipelines:
          p:
            images:
              base: {{context: images/base}}
              pinned: {{context: images/pinned, engine: three, build_args: {{PAUSE: "{pause}"}}}}
        """
    values = {"registry": f"{services.plain_registry}/{namespace}", "one": _local_host(), "three": private_engine.host}
    write_project(
        tmp_path,
        config.format(pause=0, **values),
        {"base": BASE_DOCKERFILE, "pinned": _slow_dockerfile(namespace, "pinned")},
        busybox=("base", "pinned"),
    )
    init_git(tmp_path)
    released = run_cli(["run", "--version", "1.0.0", "--json"], tmp_path)
    assert released.code == 0, released.output
    assert _report(released)["pinned"]["engine"] == "three"
    before = _release_tags(plain_peek, namespace)
    assert all(before[name]["latest"] == before[name]["1.0.0"] is not None for name in before), before

    write_project(tmp_path, config.format(pause=30, **values), {})
    git(tmp_path, "commit", "-qam", "a slow build of pinned")
    run = Background(["run", "--version", "1.1.0", "--json"], tmp_path)
    _wait_for_step(run, namespace, "pinned")

    killed = private_engine.kill()
    result = run.finish()

    assert not any(_alive(pid) for pid in killed), killed
    assert result.code == 1, result.output
    report = _report(result)
    assert report["pinned"]["status"] == "failed" and report["pinned"]["engine"] == "three"
    assert "lost the Docker engine three" in report["pinned"]["error"], report["pinned"]["error"]
    assert "moving to another engine" not in result.stderr
    assert _release_tags(plain_peek, namespace) == before
    assert all(plain_peek.digest(f"{namespace}/{name}", "1.1.0") is None for name in ("base", "pinned"))


@pytest.mark.engines
def test_an_engine_named_by_a_docker_context(
    tmp_path: Path, services: Services, engine2: str, namespace: str, plain_peek: RegistryPeek
) -> None:
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    env = {"DOCKER_CONFIG": str(docker_config)}
    created = _docker(_local_host(), "context", "create", "second", "--docker", f"host={engine2}", env=env)
    assert created.returncode == 0, created.stderr
    project = tmp_path / "project"
    registry = f"{services.plain_registry}/{namespace}"
    write_project(
        project,
        f"""\
        registry: {registry}
        network: none
        engines:
          second: {{context: second}}
        pipelines:
          p:
            images:
              app: {{context: images/app}}
        """,
        {"app": BASE_DOCKERFILE.replace("echo base", f"echo {namespace}")},
        busybox=("app",),
    )
    init_git(project)

    result = run_cli(["run", "--version", "1.0.0", "--json"], project, env=env)

    assert result.code == 0, result.output
    app = _report(result)["app"]
    assert app["engine"] == "second"
    assert plain_peek.digest(f"{namespace}/app", "1.0.0") == app["digest"]
    built = f"{registry}/app@{app['digest']}"
    assert _has_image(engine2, built) and not _has_image(_local_host(), built)


# --- buildx builders -----------------------------------------------------------------------
# Only their checks run here: a builder of another driver than docker needs a BuildKit daemon
# (buildkitd, or the moby/buildkit image for docker-container), which this machine cannot get.


def _builder_project(root: Path, registry: str, builder: str) -> None:
    write_project(
        root,
        f"""\
        registry: {registry}
        network: none
        engines:
          kit: {{buildx: {{builder: {builder}}}}}
        pipelines:
          p:
            images:
              app: {{context: images/app}}
        """,
        {"app": BASE_DOCKERFILE},
        busybox=("app",),
    )


def test_a_docker_context_named_as_a_buildx_builder_is_refused_before_building(
    tmp_path: Path, services: Services, engine2: str, namespace: str, plain_peek: RegistryPeek
) -> None:
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    env = {"DOCKER_CONFIG": str(docker_config)}
    assert _docker(_local_host(), "context", "create", "second", "--docker", f"host={engine2}", env=env).returncode == 0
    _builder_project(tmp_path / "project", f"{services.plain_registry}/{namespace}", "second")

    result = run_cli(["run", "--version", "1.0.0"], tmp_path / "project", env=env)

    assert result.code == 3, result.output
    assert (
        "error: engine kit: buildx builder 'second' is a Docker engine's own builder (driver docker): "
        "name that engine with 'context: second' instead of 'buildx:'"
    ) in result.stderr
    assert plain_peek.all_tags(f"{namespace}/app") == set()


def test_a_buildx_builder_that_does_not_answer_stops_the_run_before_building(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    env = {"DOCKER_CONFIG": str(docker_config)}
    nothing = f"unix://{tmp_path}/no-buildkitd.sock"
    created = _docker(_local_host(), "buildx", "create", "--name", "remote-kit", "--driver", "remote", nothing, env=env)
    assert created.returncode == 0, created.stderr
    _builder_project(tmp_path / "project", f"{services.plain_registry}/{namespace}", "remote-kit")

    result = run_cli(["run", "--version", "1.0.0"], tmp_path / "project", env=env)

    assert result.code == 3, result.output
    assert "error: engine kit: buildx builder 'remote-kit': " in result.stderr, result.stderr
    assert plain_peek.all_tags(f"{namespace}/app") == set()


def test_the_default_engine_builds_where_it_pushes_whatever_docker_context_is_current(
    tmp_path: Path, services: Services, namespace: str, engine2: str, plain_peek: RegistryPeek
) -> None:
    """A user's `docker context use other` must not send buildx's build to another engine than the
    one the push reads (DOCKER_HOST, or the local socket): the build is named `--builder default`."""
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    env = {"DOCKER_CONFIG": str(config_dir)}
    assert _docker(_local_host(), "context", "create", "other", "--docker", f"host={engine2}", env=env).returncode == 0
    switched = subprocess.run(
        ["docker", "context", "use", "other"], capture_output=True, text=True, env={**os.environ, **env}, check=False
    )
    assert switched.returncode == 0, switched.stderr
    assert json.loads((config_dir / "config.json").read_text())["currentContext"] == "other"
    write_project(
        tmp_path / "p",
        f"""\
        registry: {services.plain_registry}/{namespace}
        network: none
        pipelines:
          p:
            images:
              app: {{context: images/app}}
        """,
        {"app": f'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "touch", "/{namespace}"]\n'},
        busybox=("app",),
    )
    init_git(tmp_path / "p")
    without_host = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--json"],
        cwd=tmp_path / "p",
        env={**without_host, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    digest = json.loads(result.stdout)["images"][0]["digest"]
    assert plain_peek.digest(f"{namespace}/app", digest) == digest
    assert f"{namespace}" in plain_peek.files(f"{namespace}/app", digest)


@pytest.mark.engines
def test_a_linux_engine_declared_windows_is_refused_before_anything_is_built(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    write_project(
        tmp_path,
        f"""\
        registry: {services.plain_registry}/{namespace}
        network: none
        engines:
          linux: {{host: '{_local_host()}'}}
          win: {{host: '{_local_host()}', os: windows, os_version: "10.0.17763"}}
        pipelines:
          p:
            images:
              tool: {{context: images/tool, engine: linux}}
              app: {{context: images/app, platform: windows/amd64, engine: win}}
        """,
        {"tool": BASE_DOCKERFILE, "app": "FROM scratch\nCOPY hello /hello\n"},
        busybox=("tool",),
    )
    (tmp_path / "images" / "app" / "hello").write_text("hello\n", encoding="utf-8")
    init_git(tmp_path)

    result = run_cli(["run", "--report", "report.json"], tmp_path)

    assert result.code == 3, result.output  # the environment does not match the config
    assert result.stderr.splitlines() == [
        f"error: engine win is declared 'os: windows', but the Docker engine win at {_local_host()} runs linux: "
        "point the engine at a windows engine, or declare 'os: linux'"
    ]
    assert "operating system is not supported" not in result.output
    assert not (tmp_path / "report.json").exists()  # refused before the run: nothing to report
    for name in ("tool", "app"):  # nothing built or pushed, the Linux image neither
        assert plain_peek.all_tags(f"{namespace}/{name}") == set()
        listed = _docker(_local_host(), "images", "-q", f"{services.plain_registry}/{namespace}/{name}")
        assert listed.returncode == 0 and listed.stdout == "", listed
