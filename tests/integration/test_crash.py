"""Crash consistency: SIGKILL `pipeline run` at random moments (build, push, tagging, signing); the
next run converges to the state an uninterrupted run reaches."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import BASE_DOCKERFILE, git, init_git, run_cli, write_project
from tests.integration.conftest import RegistryPeek, Services

KILLS = int(os.environ.get("PIPELINE_CRASH_KILLS", "20"))
ENV = {"COSIGN_PASSWORD": "crash-test-passphrase"}
NAMES = ("base", "app", "worker")


def project(root: Path, registry: str) -> None:
    write_project(
        root,
        f"""\
        registry: {registry}
        sign: {{key: cosign.key}}
        pipelines:
          shop:
            images:
              base: {{context: images/base}}
              app:
                context: images/app
                build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}
              worker:
                context: images/worker
                build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}
        """,
        {
            "base": BASE_DOCKERFILE + 'RUN ["/bin/busybox", "sleep", "1"]\n',
            "app": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN sleep 1 && echo app > /app\n",
            "worker": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo worker > /worker\n",
        },
        busybox=("base",),
    )


def shape(peek: RegistryPeek, namespace: str, sha: str) -> dict[str, dict[str, object]]:
    """What a finished run leaves, independent of the commit: per image, each user tag (the commit's
    sha- tag under a fixed name) with its image's layer count, one digest behind all of them, signed."""
    result: dict[str, dict[str, object]] = {}
    for name in NAMES:
        repo = f"{namespace}/{name}"
        tags = {}
        for tag in sorted(peek.tags(repo)):
            if tag.endswith(".sig") or tag.startswith("sha256-"):
                continue
            if tag.startswith("sha-") and tag != f"sha-{sha[:12]}":
                continue  # builds of the intermediate commits the crash loop made
            key = "sha-<commit>" if tag == f"sha-{sha[:12]}" else tag
            # Layer digests differ between builds of RUN steps (file times), so compare their number.
            tags[key] = (len(peek.layers(repo, tag)), peek.digest(repo, tag))
        signed = {t for t in peek.tags(repo) if t.endswith(".sig")}
        digests = {digest for _, digest in tags.values()}
        result[name] = {
            "tags": {tag: layers for tag, (layers, _) in tags.items()},
            "all_signed": all(f"{str(d).replace(':', '-')}.sig" in signed for d in digests),
            "one_digest": len(digests) == 1,
        }
    return result


def test_sigkill_at_random_moments_then_converge(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    project(reference, f"{services.plain_registry}/{namespace}-ref")
    project(crashed, f"{services.plain_registry}/{namespace}-crash")
    for root in (reference, crashed):
        assert run_cli(["keys", "generate"], root, env=ENV).code == 0
    ref_sha = init_git(reference)
    crash_sha = init_git(crashed)

    started = time.monotonic()
    assert run_cli(["run", "--version", "2.0.0", "--no-cache"], reference, env=ENV).code == 0
    duration = time.monotonic() - started
    expected = shape(plain_peek, f"{namespace}-ref", ref_sha)

    rng = random.Random(7)
    moments = []
    for attempt in range(KILLS):
        if attempt % 5 == 0:  # now and then a change, so builds and pushes (not only reuse) get killed
            (crashed / "images/app/marker").write_text(f"{attempt}\n")
            git(crashed, "add", "-A")
            git(crashed, "commit", "-qm", f"attempt {attempt}")
        delay = rng.uniform(0.3, duration)
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", "--version", "2.0.0", "--force"],
            cwd=crashed,
            env={**os.environ, **ENV},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.stderr is not None
        progress = process.stderr.read().strip().splitlines()
        moments.append(progress[-1].split("]", 1)[-1].split()[1] if progress else "start")
    (crashed / "images/app/marker").unlink(missing_ok=True)
    git(crashed, "add", "-A")
    git(crashed, "commit", "-qm", "final")
    crash_sha = git(crashed, "rev-parse", "HEAD")

    final = run_cli(["run", "--version", "2.0.0", "--force", "--json"], crashed, env=ENV)
    assert final.code == 0, final.output
    assert shape(plain_peek, f"{namespace}-crash", crash_sha) == expected
    # And it has converged: one more run changes nothing.
    again = run_cli(["run", "--version", "2.0.0", "--json"], crashed, env=ENV)
    assert again.code == 0, again.output
    assert {c["action"] for c in json.loads(again.stdout)["tag_changes"]} == {"unchanged"}
    print(f"\nkilled {KILLS} runs; last step seen before each kill: {sorted(set(moments))}")
