"""Docker 26 with the containerd image store ($PIPELINE_ENGINE_MODERN_HOST, issue 28), measured in one run:

perimage   run_bench.py's benchmark 4 on that engine: `pipeline run --no-push --jobs 1` of 10 fresh small
           images with a RUN step against a bare `docker buildx build --network none` loop of the same 10
           (both with BUILDX_NO_DEFAULT_ATTESTATIONS=1: the run turns buildx's provenance off, so the loop
           does the same work); `perimage20` is the same on the default (20.10) engine, for context.
platforms  a two-platform image (linux/amd64 + linux/arm64, the arm64 RUN step under qemu), fresh content
           each time, pushed to the registry: ONE `docker buildx build --platform linux/amd64,linux/arm64
           --push` against TWO one-platform `--push` builds (at once, as `pipeline run` builds variants,
           and one after the other) + `docker buildx imagetools create` of their digests; and `pipeline
           run` of that image (`platforms:`), whose `docker buildx build` invocations are counted through
           a `docker` wrapper in PATH, so the output says which path it took (one build per variant + its
           own index, or one multi-platform build). `--code DIR` also times `pipeline run` with another
           tree's code (PYTHONPATH=DIR), e.g. a branch's worktree, in the same rotation.
Every timed method runs once untimed first (warm peers); then rounds rotate the order.

    set -a; . /tmp/pipeline-services/env; set +a
    PYTHONPATH=$PWD .venv/bin/python bench/engine_bench.py [--registry 127.0.0.1:5000] [--rounds 7] \\
        [--platform-rounds 15] [--only perimage,perimage20,platforms] [--code /other/worktree]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rotation import rotated_samples
from run_bench import BUSYBOX, GIT_ENV, build_seconds, git_init, perimage, pipeline_report, require, sh, stdout_of

PLATFORMS = ("linux/amd64", "linux/arm64")
DOCKERFILE = """\
FROM scratch
ARG TARGETARCH
COPY busybox-${TARGETARCH} /bin/busybox
COPY nonce /nonce
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox md5sum /nonce > /nonce.md5"]
"""
# Runs the real docker; logs each `docker buildx build` as a line: its start, its end (epoch seconds), its argv.
WRAPPER = """#!/bin/sh
[ "$1 $2" = "buildx build" ] || exec {docker} "$@"
start=$(date +%s.%N)
{docker} "$@"
status=$?
printf '%s %s %s\\n' "$start" "$(date +%s.%N)" "$*" >> {log}
exit $status
"""


def environ(**settings: str | None) -> dict[str, str]:
    """This process's environment with `settings` (None: unset)."""
    env = dict(os.environ)
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def engine_named(env: dict[str, str]) -> str:
    """The engine `env` reaches, as BENCHMARKS.md names it: versions, image store, buildx, BuildKit."""
    version = stdout_of("docker", "version", "--format", "{{.Server.Version}}", env=env)
    store = stdout_of("docker", "info", "--format", "{{.Driver}} {{json .DriverStatus}}", env=env)
    plugin = stdout_of("docker", "buildx", "version", env=env)
    inspect = stdout_of("docker", "buildx", "inspect", "default", env=env)
    buildkit = re.search(r"BuildKit version:\s*(\S+)", inspect)
    kind = "containerd image store" if "io.containerd.snapshotter" in store else f"graph driver {store.split()[0]}"
    host = env.get("DOCKER_HOST", "the default socket")
    return (
        f"Docker {version.strip()} ({kind}) at {host}; buildx {plugin.split()[1]}, "
        f"BuildKit {buildkit.group(1) if buildkit else '?'} (docker driver)"
    )


def load() -> float:
    return os.getloadavg()[0]


# --- two platforms -------------------------------------------------------------------------


def write_context(context: Path, arm64_busybox: Path) -> None:
    """The two-platform context with fresh content: each build's RUN step reads a nonce no build had."""
    context.mkdir(exist_ok=True)
    if not (context / "busybox-amd64").exists():
        shutil.copy(BUSYBOX, context / "busybox-amd64")
        shutil.copy(arm64_busybox, context / "busybox-arm64")
        (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "nonce").write_text(f"{uuid.uuid4().hex}\n")


def push(context: Path, ref: str, platforms: str, env: dict[str, str]) -> str:
    """A bare `docker buildx build --push` as a user would type it; the pushed manifest's (or index's) digest."""
    metadata = context.parent / f"metadata-{uuid.uuid4().hex[:8]}.json"  # beside the context, not sent with it
    sh(
        "docker", "buildx", "build", "-q", "--network", "none", "--platform", platforms, "--push",
        "--metadata-file", str(metadata), "-t", ref, str(context), env=env,
    )  # fmt: skip
    return str(json.loads(metadata.read_text())["containerimage.digest"])


def index_of(reference: str, env: dict[str, str]) -> str:
    """What is pushed at `reference`: its media type and its children's platforms."""
    raw = stdout_of("docker", "buildx", "imagetools", "inspect", "--raw", reference, env=env)
    manifest = json.loads(raw)
    children = [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in manifest.get("manifests", [])]
    return f"{manifest['mediaType'].removeprefix('application/vnd.')} [{', '.join(children)}]"


def platforms(registry: str, rounds: int, env: dict[str, str], codes: list[Path]) -> None:
    arm64 = Path(os.environ.get("PIPELINE_BUSYBOX_ARM64", ""))
    if not arm64.is_file():
        raise SystemExit("bench: PIPELINE_BUSYBOX_ARM64 (the arm64 busybox) is missing; source the services env")
    namespace = f"bench-platforms-{uuid.uuid4().hex[:8]}"
    image = f"{registry}/{namespace}/cli"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wrapper, log = root / "wrapper", root / "buildx.log"
        wrapper.mkdir()
        (wrapper / "docker").write_text(WRAPPER.format(log=log, docker=require("docker")))
        (wrapper / "docker").chmod(0o755)
        project = root / "project"
        project.mkdir()
        (project / "pipelines.yaml").write_text(
            f"registry: {registry}/{namespace}\nnetwork: none\npipelines:\n  two:\n    images:\n"
            f"      app: {{context: app, platforms: [{', '.join(PLATFORMS)}]}}\n"
        )
        write_context(project / "app", arm64)
        git_init(project)

        paths: dict[str, set[str]] = {}
        pushed: dict[str, str] = {}  # method -> what it pushed in its last round
        inside: dict[str, list[float]] = {}
        slot: dict[str, list[float]] = {}  # the report's build_started_at..build_finished_at of the image
        in_buildx: dict[str, list[float]] = {}  # from the first buildx invocation's start to the last one's end

        def one(i: int) -> float:
            write_context(root / "one", arm64)
            started = time.perf_counter()
            push(root / "one", f"{image}:one-{i}", ",".join(PLATFORMS), env)
            pushed["one"] = f"{image}:one-{i}"
            return time.perf_counter() - started

        def two(i: int, together: bool) -> float:
            name = "parallel" if together else "sequential"
            write_context(root / name, arm64)
            started = time.perf_counter()

            def variant(platform: str) -> str:
                return push(root / name, f"{image}:{name}-{i}-{platform.split('/')[1]}", platform, env)

            if together:
                with ThreadPoolExecutor(len(PLATFORMS)) as pool:
                    digests = list(pool.map(variant, PLATFORMS))
            else:
                digests = [variant(platform) for platform in PLATFORMS]
            sources = [f"{image}@{digest}" for digest in digests]
            sh("docker", "buildx", "imagetools", "create", "-t", f"{image}:{name}-{i}", *sources, env=env)
            pushed[name] = f"{image}:{name}-{i}"
            return time.perf_counter() - started

        def run(code: Path | None) -> Callable[[int], float]:
            label = f"pipeline {code}" if code else "pipeline"
            settings = {"PATH": f"{wrapper}{os.pathsep}{env['PATH']}"}
            run_env = {**env, **settings, **({"PYTHONPATH": str(code)} if code else {})}

            def timed(_round: int) -> float:
                write_context(project / "app", arm64)  # a new commit: nothing reused by input digest
                sh("git", "commit", "-qam", "fresh", cwd=project, env=GIT_ENV)
                log.write_text("")
                seconds, report, _progress = pipeline_report("--jobs", "2", cwd=project, env=run_env)
                built = [line.split(" ", 2) for line in log.read_text().splitlines()]
                argv = [re.search(r"--platform (\S+)", command) for _, _, command in built]
                platforms_built = sorted(match.group(1) if match else "(none)" for match in argv)
                paths.setdefault(label, set()).add(f"{len(built)} `docker buildx build`: {'; '.join(platforms_built)}")
                span = max(float(end) for _, end, _ in built) - min(float(start) for start, _, _ in built)
                in_buildx.setdefault(label, []).append(span)
                inside.setdefault(label, []).append(report["duration_seconds"])
                slot.setdefault(label, []).append(build_seconds(report)["app"])
                (app,) = report["images"]
                pushed[label] = f"{registry}/{namespace}/app@{app['digest']}"
                return seconds

            return timed

        methods: dict[str, Callable[[int], float]] = {
            "one": one,
            "parallel": lambda i: two(i, together=True),
            "sequential": lambda i: two(i, together=False),
            "pipeline": run(None),
            **{f"pipeline {code}": run(code) for code in codes},
        }
        for work in methods.values():  # warm peers: base layers, plugin, interpreter, registry blobs
            work(-1)
        paths.clear()
        inside.clear()
        slot.clear()
        in_buildx.clear()
        loads: dict[str, list[float]] = {name: [] for name in methods}

        def with_load(name: str, work: Callable[[int], float]) -> Callable[[int], float]:
            def sample(i: int) -> float:
                seconds = work(i)
                loads[name].append(load())
                return seconds

            return sample

        load_before = load()
        samples = rotated_samples({name: with_load(name, work) for name, work in methods.items()}, rounds)
        load_after = load()
        shapes = {name: index_of(reference, env) for name, reference in pushed.items()}
    base = statistics.median(samples["one"])
    labels = {
        "one": "ONE docker buildx build --platform amd64,arm64 --push",
        "parallel": "TWO --push builds at once + imagetools create",
        "sequential": "TWO --push builds one after the other + imagetools create",
    }
    print(f"two platforms ({', '.join(PLATFORMS)}; arm64 RUN under qemu), fresh content, pushed; {rounds} rounds")
    print(f"   load average: {load_before:.1f} before, {load_after:.1f} after ({os.cpu_count()} cores)")
    for name, values in samples.items():
        label = labels.get(name, f"{name} run --jobs 2")
        print(
            f"   {label:<60} median {statistics.median(values):6.2f} s (min {min(values):5.2f})  "
            f"{statistics.median(values) / base:5.2f}x one  load {statistics.median(loads[name]):.1f}"
        )
        if name in inside:
            print(
                f"     after start-up (report's duration)  median {statistics.median(inside[name]):6.2f} s; "
                f"build_started..finished {statistics.median(slot[name]):5.2f} s; "
                f"in `docker buildx build` {statistics.median(in_buildx[name]):5.2f} s"
            )
            print(f"     path taken: {' | '.join(sorted(paths[name]))}")
        print(f"     pushed: {shapes[name]}")
    print(f"   rounds: {'; '.join(f'{n} ' + ', '.join(f'{x:.2f}' for x in v) for n, v in samples.items())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", default="127.0.0.1:5000")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each per-image benchmark")
    parser.add_argument("--platform-rounds", type=int, default=15, help="rounds of the two-platform benchmark")
    parser.add_argument("--only", default="perimage,perimage20,platforms")
    parser.add_argument("--code", type=Path, action="append", default=[], help="another tree's pipeline, timed too")
    args = parser.parse_args()
    require("docker")
    require("git")
    modern = os.environ.get("PIPELINE_ENGINE_MODERN_HOST")
    if not modern:
        raise SystemExit("bench: PIPELINE_ENGINE_MODERN_HOST is not set; source /tmp/pipeline-services/env")
    # The run turns buildx's default provenance off (pipeline/builders/buildx.py); the peers do too.
    on_modern = environ(DOCKER_HOST=modern, DOCKER_CONTEXT=None, BUILDX_NO_DEFAULT_ATTESTATIONS="1")
    on_default = environ(DOCKER_HOST=None, DOCKER_CONTEXT=None, BUILDX_NO_DEFAULT_ATTESTATIONS="1")
    chosen = args.only.split(",")
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"machine: {os.cpu_count()} cores; registry {args.registry}; {now}")
    print(f"modern engine: {engine_named(on_modern)}")
    if "perimage" in chosen:
        perimage(args.registry, args.rounds, on_modern, "Docker 26 (containerd store)")
    if "perimage20" in chosen:
        print(f"default engine: {engine_named(on_default)}")
        perimage(args.registry, args.rounds, on_default, "Docker 20.10 (default engine)")
    if "platforms" in chosen:
        platforms(args.registry, args.platform_rounds, on_modern, [code.resolve() for code in args.code])
    return 0


if __name__ == "__main__":
    sys.exit(main())
