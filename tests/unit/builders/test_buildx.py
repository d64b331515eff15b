"""The buildx adapter's pure parts: the rawjson progress stream, step lines, the failing step's log
tail, and the command line (a secret's source goes in, never its value)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from pipeline.builders import buildx as buildx_module
from pipeline.builders.buildx import BuildxBackend, BuildxBuilder, StepTracker, _check_builder, read_progress, user_step
from pipeline.builders.classic import DockerBuilder
from pipeline.common.reporting import Forward
from pipeline.errors import EnvironmentProblem
from pipeline.plan import BuildSecret, Engine
from tests.helpers import build_request

RUN = "sha256:run"


def _update(**fields: object) -> str:
    return json.dumps(fields, indent=2) + "\n"  # buildx pretty-prints each status object


def _log(text: str) -> dict[str, object]:
    return {"vertex": RUN, "stream": 1, "data": base64.b64encode(text.encode()).decode()}


def _stream() -> str:
    numbers = "".join(f"line {i}\n" for i in range(1, 31))
    return "".join(
        [
            _update(vertexes=[{"digest": "sha256:a", "name": "[internal] load build definition from Dockerfile"}]),
            _update(vertexes=[{"digest": "sha256:a", "name": "[internal] load .dockerignore", "started": "t"}]),
            _update(
                vertexes=[
                    {"digest": "sha256:c", "name": "[1/2] COPY busybox /bin/busybox", "started": "t", "cached": True}
                ]
            ),
            _update(vertexes=[{"digest": RUN, "name": "[build 2/2] RUN make", "started": "t"}]),
            _update(vertexes=[{"digest": RUN, "name": "[build 2/2] RUN make", "started": "t"}]),  # a repeat
            _update(logs=[_log(numbers[:17])]),  # "line 1\n"... then half a line
            _update(logs=[_log(numbers[17:])]),
            _update(
                vertexes=[
                    {
                        "digest": RUN,
                        "name": "[build 2/2] RUN make",
                        "started": "t",
                        "completed": "t",
                        "error": 'process "make" did not complete successfully: exit code: 3',
                    }
                ]
            ),
            'ERROR: failed to solve: process "make" did not complete successfully: exit code: 3\n',
        ]
    )


def test_progress_stream_gives_objects_and_text_lines() -> None:
    items = list(read_progress(io.StringIO(_stream())))
    assert sum(isinstance(i, dict) for i in items) == 8
    assert [i for i in items if isinstance(i, str)] == [
        'ERROR: failed to solve: process "make" did not complete successfully: exit code: 3'
    ]


def test_progress_stream_read_in_odd_chunks() -> None:
    whole = _stream()
    chunks = [whole[i : i + 7] for i in range(0, len(whole), 7)]  # objects split mid-token
    assert list(read_progress(iter(chunks))) == list(read_progress(io.StringIO(whole)))  # type: ignore[arg-type]


def test_one_line_per_user_step_and_the_failing_steps_tail() -> None:
    lines: list[tuple[str, str]] = []
    steps = StepTracker(Forward(step=lambda _image, step, message: lines.append((step, message))), "app")
    for item in read_progress(io.StringIO(_stream())):
        steps.text(item) if isinstance(item, str) else steps.status(item)
    assert [m for s, m in lines if s == "build"] == [
        "[1/2] COPY busybox /bin/busybox (cached)",
        "[build 2/2] RUN make",
    ]
    assert [m for s, m in lines if s == "log"][:30] == [f"line {i}" for i in range(1, 31)]
    assert steps.failed_step == "[build 2/2] RUN make"
    assert steps.error is not None and "exit code: 3" in steps.error
    assert steps.failed_tail() == tuple(f"line {i}" for i in range(11, 31))


def test_bookkeeping_vertices_are_not_steps() -> None:
    assert user_step("[internal] load build context") is None
    assert user_step("exporting to image") is None
    assert user_step("[stage-0 3/4] RUN x") == "[3/4] RUN x"
    assert user_step("[runtime 1/1] RUN x") == "[runtime 1/1] RUN x"


def test_command_passes_secret_sources_labels_network_and_cache(tmp_path: Path) -> None:
    request = build_request(
        tmp_path,
        "127.0.0.1:5000/shop/app:sha-abc",
        build_args={"BASE": "127.0.0.1:5000/shop/base@sha256:" + "0" * 64},
        labels={"org.opencontainers.image.title": "app"},
        network="none",
        secrets=(BuildSecret("npm_token", env="NPM_TOKEN"), BuildSecret("netrc", file=tmp_path / ".netrc")),
        cache_from=("127.0.0.1:5000/shop/app:latest",),
    )
    argv = BuildxBuilder({}, Engine("default"), None).command(request, tmp_path / "meta.json")
    joined = " ".join(argv)
    assert "--secret id=npm_token,env=NPM_TOKEN" in joined
    assert f"--secret id=netrc,src={tmp_path / '.netrc'}" in joined
    assert "--label org.opencontainers.image.title=app" in joined
    assert "--network none" in joined
    assert "--cache-from type=registry,ref=127.0.0.1:5000/shop/app:latest" in joined
    assert "--cache-to type=inline" in joined
    assert "--push" not in argv  # on an engine, the engine pushes (same retries and credentials)
    assert argv[argv.index("--builder") + 1] == "default"  # not whatever `docker buildx use` chose
    assert argv[-1] == str(tmp_path)
    pushed = BuildxBuilder({}, Engine("k8s", buildx_builder="k8s"), None).command(request, tmp_path / "m.json")
    assert pushed[pushed.index("--builder") + 1] == "k8s" and "--push" in pushed


def test_an_engine_builds_on_its_own_contexts_builder(tmp_path: Path) -> None:
    def builder(environment: dict[str, str], engine: Engine) -> str:
        return BuildxBuilder(environment, engine, None).builder

    assert builder({"DOCKER_HOST": "unix:///other.sock"}, Engine("two", host="unix:///other.sock")) == "default"
    assert builder({"DOCKER_CONTEXT": "ci"}, Engine("ci", context="ci")) == "ci"
    assert builder({"DOCKER_CONTEXT": "ci", "DOCKER_HOST": "tcp://x:2376"}, Engine("default")) == "default"


def test_a_step_answered_from_the_cache_without_a_start_time_is_still_a_line() -> None:
    lines: list[tuple[str, str]] = []
    steps = StepTracker(Forward(step=lambda _image, step, message: lines.append((step, message))), "app")
    steps.status({"vertexes": [{"digest": "sha256:c", "name": "[1/2] COPY busybox /bin/busybox", "cached": True}]})
    steps.status(
        {
            "vertexes": [
                {"digest": "sha256:c", "name": "[1/2] COPY busybox /bin/busybox", "cached": True, "completed": "t"}
            ]
        }
    )
    assert lines == [("build", "[1/2] COPY busybox /bin/busybox (cached)")]


def test_a_builder_that_never_answers_is_one_error_line_not_a_traceback(tmp_path: Path) -> None:
    # A kubernetes builder whose pods never start: `docker buildx inspect --bootstrap` hangs.
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\nexec /bin/sleep 30\n")
    fake.chmod(0o755)
    engine = Engine("fleet", buildx_builder="fleet")
    with pytest.raises(EnvironmentProblem, match=r"^engine fleet: buildx builder 'fleet' did not answer within 0.5 s$"):
        _check_builder(engine, {"PATH": str(tmp_path)}, timeout=0.5)


def test_several_platforms_are_one_command_that_writes_an_oci_index(tmp_path: Path) -> None:
    request = build_request(tmp_path, "127.0.0.1:5000/shop/app:sha-abc", platforms=("linux/amd64", "linux/arm64"))
    argv = BuildxBuilder({}, Engine("default"), None).command(request, tmp_path / "meta.json")
    assert argv[argv.index("--platform") + 1] == "linux/amd64,linux/arm64" and argv.count("--platform") == 1
    assert argv[argv.index("--output") + 1] == "type=image,name=127.0.0.1:5000/shop/app:sha-abc,oci-mediatypes=true"
    assert "--push" not in argv  # the engine pushes the index from its containerd store
    pushed = BuildxBuilder({}, Engine("k8s", buildx_builder="k8s"), None).command(request, tmp_path / "m.json")
    assert pushed[pushed.index("--output") + 1].endswith(",oci-mediatypes=true,push=true") and "--push" not in pushed


def test_only_an_engine_with_the_containerd_store_or_a_buildx_builder_builds_several_platforms_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stores = {"unix:///modern.sock": True, "unix:///old.sock": False}
    monkeypatch.setattr(buildx_module, "containerd_store", lambda environment: stores[environment["DOCKER_HOST"]])
    engines = {"modern": Engine("modern", host="unix:///modern.sock"), "old": Engine("old", host="unix:///old.sock")}
    backend = BuildxBackend({}, engines, {"modern": DockerBuilder(), "old": DockerBuilder()})
    assert [backend.multi_platform(engines[n]) for n in ("modern", "old")] == [True, False]
    assert backend.multi_platform(Engine("fleet", buildx_builder="fleet")) is True


def test_a_step_failing_in_a_build_of_several_platforms_names_the_platform_it_failed_on() -> None:
    lines: list[str] = []
    steps = StepTracker(Forward(step=lambda _image, step, message: lines.append(message)), "app")
    run = '[2/2] RUN ["/bin/busybox", "true"]'
    steps.status(
        {
            "vertexes": [
                {"digest": "sha256:c1", "name": "[linux/amd64 1/2] COPY busybox-amd64 /bin/busybox", "started": "t"},
                {"digest": "sha256:c2", "name": "[linux/arm64 1/2] COPY busybox-arm64 /bin/busybox", "started": "t"},
                {"digest": "sha256:r1", "name": run, "inputs": ["sha256:c1"], "started": "t"},
                {"digest": "sha256:r2", "name": run, "inputs": ["sha256:c2"], "started": "t", "error": "exit code: 1"},
            ]
        }
    )
    assert steps.failed_step == '[linux/arm64 2/2] RUN ["/bin/busybox", "true"]'
    assert lines[2:] == [f'[linux/{arch} 2/2] RUN ["/bin/busybox", "true"]' for arch in ("amd64", "arm64")]
    one = StepTracker(Forward(), "app")  # a build of one platform: its steps name none
    one.status({"vertexes": [{"digest": "sha256:r", "name": run, "inputs": ["sha256:x"], "error": "exit code: 1"}]})
    assert one.failed_step == run
