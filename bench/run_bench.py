"""Speed of `pipeline run` against the plain docker CLI and docker-compose, on the same work, in one run.

1. No-op: a 100-image DAG already built -> `pipeline run` (input-digest cache) vs a loop of
   `docker build` (fully layer-cached) + `docker push`, timed on its second (warm) pass.
                                                                      target: <= 0.7 s and >= 10x faster
2. Cold makespan: a DAG whose Dockerfiles sleep -> `pipeline run --jobs 4` vs the critical path, vs a
   sequential `docker build` loop, vs `docker-compose build --parallel`. target: <= 1.15x critical path
3. Tag fan-out: 12 tags on a pushed image -> publishing (journal, writes together) vs tagging one by
   one in the registry vs `docker tag` + `docker push` each.
                                                                      target: >= 5x faster
Needs the engine and registry from scripts/services and Debian's docker-compose; a missing peer is an
error, never a number without its comparison.

    .venv/bin/python bench/run_bench.py [--registry 127.0.0.1:5000] [--only noop,makespan,fanout]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import parse_reference
from pipeline.release.publish import Action, TagChange, apply_changes

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@b",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@b",
}
BUSYBOX = Path(os.environ.get("PIPELINE_BUSYBOX", "/bin/busybox"))


def require(tool: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise SystemExit(f"bench: '{tool}' (a comparison peer) is missing; install it (bash scripts/services)")
    return found


def sh(*command: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - started


def pipeline(*args: str, cwd: Path) -> float:
    return sh(sys.executable, "-m", "pipeline", *args, cwd=cwd)


def git_init(root: Path) -> None:
    sh("git", "init", "-q", "-b", "main", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "bench", cwd=root, env=GIT_ENV)


# --- 1. no-op ---------------------------------------------------------------------------


def write_noop_project(root: Path, registry: str, namespace: str) -> None:
    """The 100-image DAG of benchmark 1 (ten chains of ten) as a committed git checkout in `root`."""
    lines = [f"registry: {registry}/{namespace}", "pipelines:", "  big:", "    images:"]
    for i in range(100):
        context = root / f"img{i:03d}"
        context.mkdir()
        for j in range(5):
            (context / f"file{j}.txt").write_text(f"image {i} file {j}\n")
        base = i - i % 10
        if i % 10 == 0:
            (context / "Dockerfile").write_text("FROM scratch\nCOPY . /data\n")
            lines += [f"      img{i:03d}: {{context: img{i:03d}}}"]
        else:
            (context / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCOPY . /app\n")
            lines += [
                f"      img{i:03d}:",
                f"        context: img{i:03d}",
                f'        build_args: {{BASE: "{{{{ images.img{base:03d} }}}}"}}',
            ]
    (root / "pipelines.yaml").write_text("\n".join(lines) + "\n")
    git_init(root)


def docker_loop(root: Path, registry: str, namespace: str) -> float:
    """The docker CLI doing a run's work: build every image (in DAG order) and push it."""
    started = time.perf_counter()
    for i in range(100):
        base = i - i % 10
        tag = f"{registry}/{namespace}/img{i:03d}:cli"
        args = [] if i % 10 == 0 else ["--build-arg", f"BASE={registry}/{namespace}/img{base:03d}:cli"]
        sh("docker", "build", "-q", *args, "-t", tag, str(root / f"img{i:03d}"))
        sh("docker", "push", "-q", tag)
    return time.perf_counter() - started


def noop(registry: str) -> None:
    namespace = f"bench-noop-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_noop_project(root, registry, namespace)
        cold = pipeline("run", "--jobs", "2", cwd=root)
        runs = [pipeline("run", cwd=root) for _ in range(3)]
        # The peer measured warm, like our no-op: a first pass fills the layer cache and the registry,
        # the second (timed) pass is what `docker build` (all cached) + `docker push` cost on a no-op.
        docker_loop(root, registry, namespace)
        cli = docker_loop(root, registry, namespace)
    ours = min(runs)
    print("1. no-op run, 100-image DAG already built")
    print(f"   pipeline run (cold, first time)          {cold:7.2f} s")
    print(
        f"   pipeline run (nothing changed), best of 3 {ours:6.2f} s   target <= 0.7 s  "
        f"(all: {', '.join(f'{r:.2f}' for r in runs)})"
    )
    print(f"   docker build (cached) + push, x100, warm {cli:7.2f} s")
    print(f"   ratio docker CLI / pipeline              {cli / ours:7.1f}x  target >= 10x")


# --- 2. cold makespan --------------------------------------------------------------------

# name -> (seconds it sleeps, its base)
# Sleeps long enough that the engine's fixed cost per build (~1 s: context upload, COPY, commit) is
# small next to the work, as it is in real builds.
MAKESPAN_DAG = {
    "base": (10.0, None),
    "api": (15.0, "base"),
    "web": (10.0, "base"),
    "jobs": (10.0, "base"),
    "docs": (5.0, None),
    "edge": (5.0, "api"),
}


def critical_path() -> float:
    def finish(name: str) -> float:
        seconds, base = MAKESPAN_DAG[name]
        return seconds + (finish(base) if base else 0.0)

    return max(finish(name) for name in MAKESPAN_DAG)


def levels() -> list[list[str]]:
    depth: dict[str, int] = {}

    def level(name: str) -> int:
        base = MAKESPAN_DAG[name][1]
        depth[name] = 0 if base is None else level(base) + 1
        return depth[name]

    for name in MAKESPAN_DAG:
        level(name)
    return [[n for n in MAKESPAN_DAG if depth[n] == d] for d in range(max(depth.values()) + 1)]


def makespan(registry: str) -> None:
    compose = require("docker-compose")
    namespace = f"bench-makespan-{uuid.uuid4().hex[:8]}"

    def write_dag(root: Path, nonce: str) -> None:
        for name, (seconds, base) in MAKESPAN_DAG.items():
            context = root / name
            context.mkdir(parents=True, exist_ok=True)
            (context / "nonce").write_text(nonce)  # a cold build each time
            head = "ARG BASE\nFROM ${BASE}\n" if base else "FROM scratch\nCOPY busybox /bin/busybox\n"
            if not base:
                shutil.copy(BUSYBOX, context / "busybox")
            (context / "Dockerfile").write_text(
                head + f'COPY nonce /nonce-{name}\nRUN ["/bin/busybox", "sleep", "{seconds}"]\n'
            )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lines = [f"registry: {registry}/{namespace}", "pipelines:", "  dag:", "    images:"]
        for name, (_, base) in MAKESPAN_DAG.items():
            lines += [f"      {name}:", f"        context: {name}"]
            if base:
                lines += [f'        build_args: {{BASE: "{{{{ images.{base} }}}}"}}']
        (root / "pipelines.yaml").write_text("\n".join(lines) + "\n")
        write_dag(root, uuid.uuid4().hex)
        ours = pipeline("run", "--jobs", "4", "--no-push", cwd=root)

        write_dag(root, uuid.uuid4().hex)
        started = time.perf_counter()
        for name, (_, base) in MAKESPAN_DAG.items():
            args = ["--build-arg", f"BASE={namespace}/{base}:seq"] if base else []
            sh("docker", "build", "-q", *args, "-t", f"{namespace}/{name}:seq", str(root / name))
        sequential = time.perf_counter() - started

        write_dag(root, uuid.uuid4().hex)
        services = ["services:"]
        for name, (_, base) in MAKESPAN_DAG.items():
            services += [
                f"  {name}:",
                f"    image: {namespace}/{name}:compose",
                "    build:",
                f"      context: ./{name}",
            ]
            if base:
                services += [f"      args: {{BASE: '{namespace}/{base}:compose'}}", f"    depends_on: [{base}]"]
        (root / "docker-compose.yml").write_text('version: "3.8"\n' + "\n".join(services) + "\n")
        # compose 1.29 builds services in parallel without ordering them by their bases, so a DAG
        # takes one `build --parallel` per dependency level, as a user would script it.
        compose_time = sum(sh(compose, "build", "--parallel", *level, cwd=root) for level in levels())
    floor = critical_path()
    print("2. cold build makespan (each Dockerfile sleeps; no push)")
    print(f"   critical path (sum of sleeps)            {floor:7.2f} s")
    ratio = ours / floor
    print(f"   pipeline run --jobs 4                    {ours:7.2f} s   {ratio:5.2f}x critical path  target <= 1.15x")
    print(f"   sequential docker build loop             {sequential:7.2f} s   {sequential / ours:5.2f}x pipeline")
    print(f"   docker-compose build --parallel          {compose_time:7.2f} s   {compose_time / ours:5.2f}x pipeline")


# --- 3. tag fan-out ----------------------------------------------------------------------


def fanout(registry: str) -> None:
    namespace = f"bench-fanout-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        for i in range(20):
            (context / f"layer{i}.bin").write_bytes(os.urandom(256 * 1024))
        (context / "Dockerfile").write_text("FROM scratch\nCOPY . /data\n")
        image = f"{registry}/{namespace}/app"
        sh("docker", "build", "-q", "-t", f"{image}:1.2.3", str(context))
        sh("docker", "push", "-q", f"{image}:1.2.3")
        tags = ["1.2", "1", "latest", "stable", *(f"extra-{i}" for i in range(8))]

        with RegistryClient(lambda _: None) as client:
            ref = parse_reference(f"{image}:1.2.3")
            digest = client.resolve_digest(ref)
            assert digest is not None
            client.tag(ref.repository, digest, "warm")  # connections and auth settled before timing
            started = time.perf_counter()
            for tag in tags:
                client.tag(ref.repository, digest, f"{tag}-seq")
            sequential = time.perf_counter() - started

            changes = [
                TagChange("app", ref.repository, tag, "extra", Action.CREATE, digest, None, "bench") for tag in tags
            ]
            journal = Path(tmp) / "state"
            started = time.perf_counter()
            apply_changes(changes, client, lambda *_: None, lambda _c: journal, "bench")
            ours = time.perf_counter() - started

        started = time.perf_counter()
        for tag in tags:
            sh("docker", "tag", f"{image}:1.2.3", f"{image}:{tag}-cli")
            sh("docker", "push", "-q", f"{image}:{tag}-cli")
        cli = time.perf_counter() - started
    print(f"3. tag fan-out: {len(tags)} tags on a pushed 5 MiB image")
    print(f"   pipeline publish (journal, writes together)  {ours * 1000:7.1f} ms")
    print(f"   registry-side tagging one by one             {sequential * 1000:7.1f} ms   {sequential / ours:5.1f}x")
    print(f"   docker tag + docker push, one by one         {cli * 1000:7.1f} ms   {cli / ours:5.1f}x  target >= 5x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", default="127.0.0.1:5000")
    parser.add_argument("--only", default="noop,makespan,fanout")
    args = parser.parse_args()
    require("docker")
    require("git")
    chosen = args.only.split(",")
    if "makespan" in chosen:
        require("docker-compose")
    print(f"machine: {os.cpu_count()} cores; registry {args.registry}")
    if "noop" in chosen:
        noop(args.registry)
    if "makespan" in chosen:
        makespan(args.registry)
    if "fanout" in chosen:
        fanout(args.registry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
