"""What coordinating several runners costs: `pipeline run --version X` on a small DAG (3 images: a base
and two on it, `COPY` only, warm BuildKit cache) in a clone of a local bare origin, with this tree's code
and with another tree's (the code before claims), alternating round by round on the same machine, each
round a new version (so every round claims, publishes under the lease and marks its claim done). Prints
medians of the wall time; also an unversioned run, which must not talk to the remote at all.

    PYTHONPATH=$PWD .venv/bin/python bench/runners_bench.py --before /tmp/old [--rounds 7] \
        [--registry 127.0.0.1:5000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@b",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@b",
}
CONFIG = """registry: {registry}
network: none
pipelines:
  shop:
    images:
      base: {{context: images/base}}
      app: {{context: images/app, build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}}}
      worker: {{context: images/worker, build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}}}
"""


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, env=ENV, capture_output=True)


def project(root: Path, registry: str) -> Path:
    seed, origin, clone = root / "seed", root / "origin.git", root / "clone"
    (seed / "images/base").mkdir(parents=True)
    (seed / "images/base/Dockerfile").write_text("FROM scratch\nCOPY base.txt /base.txt\n")
    (seed / "images/base/base.txt").write_text("base\n")
    for name in ("app", "worker"):
        (seed / f"images/{name}").mkdir(parents=True)
        (seed / f"images/{name}/Dockerfile").write_text(f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nCOPY {name}.txt /\n")
        (seed / f"images/{name}/{name}.txt").write_text(f"{name}\n")
    (seed / "pipelines.yaml").write_text(CONFIG.format(registry=registry))
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "seed")
    git(root, "init", "-q", "--bare", str(origin))
    git(seed, "push", "-q", str(origin), "main")
    git(root, "clone", "-q", "-b", "main", str(origin), str(clone))
    return clone


def timed(code: Path, clone: Path, state: Path, args: list[str]) -> float:
    env = {**ENV, "PYTHONPATH": str(code), "XDG_STATE_HOME": str(state), "XDG_CACHE_HOME": str(state / "cache")}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=clone, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{code}: pipeline {' '.join(args)} failed:\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code before claims")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--registry", default="127.0.0.1:5000")
    args = parser.parse_args()
    after = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clone = project(root, f"{args.registry}/bench-runners-{uuid.uuid4().hex[:8]}")
        state = root / "state"
        timed(after, clone, state, ["run", "--version", "0.0.1"])  # warm: built, pushed, cached
        times: dict[str, list[float]] = {"before": [], "after": []}
        plain: dict[str, list[float]] = {"before": [], "after": []}
        for i in range(args.rounds):
            order = [("before", args.before), ("after", after)]
            for name, code in order if i % 2 == 0 else reversed(order):
                major = 1 if name == "before" else 2  # a new version each run, never one the other side made
                times[name].append(timed(code, clone, state, ["run", "--version", f"{major}.{i}.0"]))
                plain[name].append(timed(code, clone, state, ["run"]))
        # An unversioned run with an origin that cannot be reached: it must not ask it.
        git(clone, "remote", "set-url", "origin", str(root / "nowhere.git"))
        timed(after, clone, state, ["run"])
        for name in ("before", "after"):
            print(
                f"{name:6} run --version: median {statistics.median(times[name]):.3f} s "
                f"(min {min(times[name]):.3f}, max {max(times[name]):.3f});  run: median "
                f"{statistics.median(plain[name]):.3f} s"
            )
        added = statistics.median(times["after"]) - statistics.median(times["before"])
        print(f"added by claims + lease + read-back: {added * 1000:.0f} ms per versioned run")
        print("unversioned run with an unreachable origin: ok (the remote is not asked)")


if __name__ == "__main__":
    main()
