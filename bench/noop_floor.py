"""The floor of a no-op `pipeline run` on this machine, and the run itself beside it (issue 29).

Floor: what a no-op cannot avoid — an interpreter start, `git rev-parse HEAD`, `git ls-files -s`, and one
manifest HEAD for each tag a no-op looks up (an image's input tag and its build tag), all in parallel
on a pool of keep-alive connections (stdlib http.client, nothing else imported). The project is
benchmark 1's DAG (bench/run_bench.py, chains of ten), built and pushed once; then floor and
`pipeline run` (warm: nothing to build) alternate, so load from elsewhere falls on both alike. Both run
with bytecode caching on (PYTHONDONTWRITEBYTECODE dropped), as an installed package has it: without it,
every run compiles pipeline's ~120 modules again, a third of a no-op's start-up.
                                      targets: 30 images <= 2x the floor; 100 <= 0.5 s; 300 <= 1.0 s; 1,000 <= 2.5 s

    .venv/bin/python bench/noop_floor.py [--registry $PIPELINE_PLAIN_REGISTRY] [--images 30,100,300,1000]
        [--rounds 5] [--jobs 4]  # --jobs: the first (cold) build's; 1,000 images take minutes to build
        [--before DIR]    # another checkout of pipeline (`git worktree add DIR <commit>`), timed in the same rounds

The per-image cost of the run (and of the checkout before) is printed from each size to the next (100 ->
300 -> 1,000): the difference of medians over the difference of images, so a fixed start-up cost drops out.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run_bench import pipeline, require, sh, write_noop_project  # noqa: E402

# The floor's child process: only the stdlib, so its start-up is the interpreter's own.
FLOOR = """
import http.client, json, subprocess, sys, threading
registry, paths = sys.argv[1], json.loads(open(sys.argv[2]).read())
subprocess.run(["git", "rev-parse", "HEAD"], check=True, capture_output=True)
subprocess.run(["git", "ls-files", "-s"], check=True, capture_output=True)
oci, docker = "application/vnd.oci.image.", "application/vnd.docker.distribution.manifest."
accept = {"Accept": f"{oci}index.v1+json, {oci}manifest.v1+json, {docker}v2+json, {docker}list.v2+json"}
def worker(share):
    connection = http.client.HTTPConnection(registry)
    for path in share:
        connection.request("HEAD", path, headers=accept)
        response = connection.getresponse()
        response.read()
        assert response.status == 200 and response.getheader("Docker-Content-Digest"), (path, response.status)
workers = [threading.Thread(target=worker, args=(paths[i::8],)) for i in range(min(8, len(paths)))]
for w in workers: w.start()
for w in workers: w.join()
"""


def tag_paths(registry: str, namespace: str, count: int) -> list[str]:
    """The manifest paths of every tag the run left in each image's repository (its input and build tags)."""
    connection = http.client.HTTPConnection(registry)
    paths = []
    for i in range(count):
        repository = f"{namespace}/img{i:03d}"
        connection.request("GET", f"/v2/{repository}/tags/list")
        response = connection.getresponse()
        tags = json.loads(response.read())["tags"]
        paths += [f"/v2/{repository}/manifests/{tag}" for tag in tags]
    return paths


# An installed pipeline has its bytecode compiled; an editable checkout gets it on the first (untimed) run.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 1)[0]


def measure(
    registry: str, count: int, rounds: int, before: Path | None, jobs: int
) -> tuple[float, float, float | None]:
    """(floor, pipeline, before) medians for a `count`-image DAG; prints them with their rounds and the
    load; `before`: a checkout whose `pipeline run` is timed in each round too (its PYTHONPATH), else None."""
    old_env = {**ENV, "PYTHONPATH": str(before)} if before else ENV
    namespace = f"bench-floor-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_noop_project(root, registry, namespace, count)
        cold = pipeline("run", "--jobs", str(jobs), cwd=root, env=ENV)
        print(f"{count} images: built and pushed (cold, --jobs {jobs}) in {cold:.1f} s", flush=True)
        pipeline("run", cwd=root, env=ENV)  # warm: page cache, content cache, bytecode
        pipeline("run", cwd=root, env=old_env)
        paths = tag_paths(registry, namespace, count)
        listed = root / "floor-paths.json"  # 2,000 paths are more than one argument may hold
        listed.write_text(json.dumps(paths))
        floors: list[float] = []
        runs: list[float] = []
        olds: list[float] = []
        loads = [load()]
        for _ in range(rounds):
            floors.append(sh(sys.executable, "-c", FLOOR, registry, str(listed), cwd=root, env=ENV))
            runs.append(pipeline("run", cwd=root, env=ENV))
            if before:
                olds.append(pipeline("run", cwd=root, env=old_env))
            loads.append(load())
    floor, ours = statistics.median(floors), statistics.median(runs)
    print(f"{count} images ({len(paths)} HEADs), median of {rounds} alternating rounds (min)")
    print(f"   floor                 {floor:6.3f} s ({min(floors):5.3f})")
    print(
        f"   pipeline run no-op    {ours:6.3f} s ({min(runs):5.3f})   {ours / floor:5.2f}x the floor "
        f"({min(runs) / min(floors):4.2f}x)   {ours / count * 1000:5.2f} ms an image"
    )
    if olds:
        old = statistics.median(olds)
        print(
            f"   before ({before})  {old:6.3f} s ({min(olds):5.3f})   {old / floor:5.2f}x the floor "
            f"({min(olds) / min(floors):4.2f}x)   {old / count * 1000:5.2f} ms an image"
        )
        print(f"   rounds before: {', '.join(f'{x:.3f}' for x in olds)}")
    print(f"   rounds: floor {', '.join(f'{x:.3f}' for x in floors)}; run {', '.join(f'{x:.3f}' for x in runs)}")
    print(f"   load average (1 min) before and after each round: {' '.join(loads)}", flush=True)
    return floor, ours, statistics.median(olds) if olds else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", default=os.environ.get("PIPELINE_PLAIN_REGISTRY", "127.0.0.1:5000"))
    parser.add_argument("--images", default="30,100,300,1000")
    parser.add_argument("--jobs", type=int, default=4, help="the first (cold) build's --jobs")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another checkout of pipeline, timed in the same rounds")
    args = parser.parse_args()
    require("docker")
    require("git")
    print(f"machine: {os.cpu_count()} cores; registry {args.registry}; load {load()}")
    counts = [int(count) for count in args.images.split(",")]
    results = {count: measure(args.registry, count, args.rounds, args.before, args.jobs) for count in counts}
    counts.sort()
    for smaller, larger in zip(counts, counts[1:], strict=False):
        extra = (results[larger][1] - results[smaller][1]) / (larger - smaller)
        line = f"per-image cost of the run from {smaller} to {larger} images: {extra * 1000:5.2f} ms an image"
        old_small, old_large = results[smaller][2], results[larger][2]
        if old_small is not None and old_large is not None:
            line += f" (before: {(old_large - old_small) / (larger - smaller) * 1000:5.2f} ms)"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
