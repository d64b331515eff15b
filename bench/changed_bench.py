"""Affected detection speed: `pipeline changed` on a generated repository with 10,000 files and 200
images (a chain of bases, each with 50 files), against `git diff --name-only` alone (the floor: the
part any tool has to pay). Prints medians of several runs.

    .venv/bin/python bench/changed_bench.py [--images 200] [--files 10000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@b",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@b",
}


def generate(root: Path, images: int, files: int) -> None:
    per_image = files // images
    lines = ["registry: 127.0.0.1:5000/bench", "pipelines:", "  big:", "    images:"]
    for i in range(images):
        context = root / "images" / f"img{i:03d}"
        context.mkdir(parents=True)
        base = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n" if i % 10 else "FROM scratch\n"
        (context / "Dockerfile").write_text(base + "COPY . /app\n")
        (context / ".dockerignore").write_text("*.md\ndocs/**\n")
        for j in range(per_image - 2):
            sub = context / ("docs" if j % 5 == 0 else "src") / f"d{j % 7}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"f{j}.{'md' if j % 3 == 0 else 'txt'}").write_text(f"{i} {j}\n")
        lines.append(f"      img{i:03d}:")
        lines.append(f"        context: images/img{i:03d}")
        if i % 10:
            lines.append(f'        build_args: {{BASE_IMAGE: "{{{{ images.img{i - i % 10:03d} }}}}"}}')
    (root / "pipelines.yaml").write_text("\n".join(lines) + "\n")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "gen"], cwd=root, check=True, env=ENV)
    # The change: 3 images touched directly (one a base), plus ignored docs in 50 others.
    for i in (0, 55, 123):
        (root / "images" / f"img{i:03d}" / "src" / "d1" / "new.txt").write_text("x\n")
    for i in range(50, 100):
        (root / "images" / f"img{i:03d}" / "docs" / "d0" / "f0.md").write_text("changed\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "change"], cwd=root, check=True, env=ENV)


def timed(command: list[str], cwd: Path, runs: int) -> tuple[float, str]:
    samples, output = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
        samples.append(time.perf_counter() - started)
        output = done.stdout
    return statistics.median(samples), output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, args.images, args.files)
        tracked = len(subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True).stdout.split())
        floor, _ = timed(["git", "diff", "--name-only", "HEAD~1"], root, args.runs)
        cli, output = timed(
            [sys.executable, "-m", "pipeline", "changed", "--since", "HEAD~1", "--json"], root, args.runs
        )
        started = time.perf_counter()
        from pipeline.config import load_config
        from pipeline.run.session import Session
        from pipeline.run.settings import Settings
        from pipeline.triggers.push import affected_since

        samples = []
        for _ in range(args.runs):
            started = time.perf_counter()
            config = load_config(root / "pipelines.yaml")
            plan = Session(config, Settings.from_environment(os.environ)).plan((), None)
            affected = affected_since(config, plan, "HEAD~1")
            samples.append(time.perf_counter() - started)
        in_process = statistics.median(samples)
    print(f"pipeline changed: {tracked} tracked files, {args.images} images, {len(affected)} affected")
    print(f"  git diff --name-only (floor)      {floor * 1000:7.1f} ms")
    print(f"  pipeline changed, whole command   {cli * 1000:7.1f} ms  (interpreter start-up included)")
    print(f"  pipeline changed, in process      {in_process * 1000:7.1f} ms  target: under 200 ms")
    print(f"  ratio in-process / git diff       {in_process / floor:7.1f}x")
    assert '"images"' in output
    return 0


if __name__ == "__main__":
    sys.exit(main())
