"""Crash consistency, never with --force: SIGKILL `pipeline run` at each step of a run (build, push,
sign, tag) and at each tag write of publishing (held in the fault proxy, so the kill lands exactly
there); after each kill the registry shows no tag of that version or part of the recorded release,
and the next run completes it to the state an uninterrupted run reaches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.proxy import FaultPlan, Hold, fault_proxy
from tests.helpers import SHOP_IMAGES, git, init_git, release_tags, run_cli, shop_project
from tests.integration.conftest import RegistryPeek, Services

ENV = {"COSIGN_PASSWORD": "crash-test-passphrase"}
WRITES_PER_RELEASE = len(SHOP_IMAGES) * 4  # X.Y.Z, X.Y, X and latest for each image
SLOW_APP = 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\nRUN ["/bin/busybox", "sleep", "1"]\n'


def start(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    assert process.stderr is not None
    process.stderr.close()


def signed(peek: RegistryPeek, namespace: str, name: str, digest: str | None) -> bool:
    return f"{str(digest).replace(':', '-')}.sig" in peek.all_tags(f"{namespace}/{name}")


def journal_of(state: Path) -> dict[str, object] | None:
    found = list(state.glob("pipeline/pipelines/*/publish-journal.json"))
    assert len(found) <= 1, found
    return json.loads(found[0].read_text()) if found else None


@pytest.mark.timeout(1800)
def test_sigkill_at_every_tag_write_of_publishing_then_the_next_run_completes(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    root, state = tmp_path / "shop", tmp_path / "state"
    env = {**ENV, "XDG_STATE_HOME": str(state)}
    plan = FaultPlan()
    with fault_proxy(services.plain_registry, plan) as proxy:
        shop_project(root, f"{proxy}/{namespace}")
        assert run_cli(["keys", "generate"], root, env=env).code == 0
        init_git(root)
        assert run_cli(["run", "--version", "1.0.0"], root, env=env).code == 0

        for k in range(1, WRITES_PER_RELEASE + 1):
            version = f"1.{k}.0"
            (root / "images/base/release.txt").write_text(f"{version}\n")  # every image gets a new digest
            git(root, "add", "-A")
            git(root, "commit", "-qm", version)
            previous = release_tags(plain_peek, namespace)
            plan.publish_writes = 0
            plan.hold = held = Hold(nth=k)
            process = start(["run", "--version", version], root, env)
            assert held.held.wait(timeout=180), f"write {k} of publishing {version} never came"
            journal = journal_of(state)
            assert journal is not None, "no journal recorded before the first tag write"
            changes = journal["changes"]
            assert isinstance(changes, list) and len(changes) == WRITES_PER_RELEASE

            def landed(changes: list[dict[str, str]] = changes) -> int:
                now = release_tags(plain_peek, namespace)
                return sum(now[c["repository"].rsplit("/", 1)[1]].get(c["tag"]) == c["digest"] for c in changes)

            # Writes go out together: while one is held, every other one lands (a sequential publisher
            # would be stuck behind the held write).
            deadline = time.monotonic() + 60
            while landed() < WRITES_PER_RELEASE - 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            kill(process)
            print(f"killed {version} at publishing write {k} ({held.what})", flush=True)
            held.release.set()  # the proxy drops the held write: it never reaches the registry
            plan.hold = None

            killed = release_tags(plain_peek, namespace)
            for change in changes:
                name = change["repository"].rsplit("/", 1)[1]
                now = killed[name].get(change["tag"])
                if (f"{namespace}/{name}", change["tag"]) == held.what:
                    assert now == change["previous"], "the held write reached the registry"
                else:
                    assert now == change["digest"], (k, change, now)
            # Nothing outside the recorded release moved.
            for name in SHOP_IMAGES:
                recorded = {c["tag"] for c in changes if c["repository"].endswith(f"/{name}")}
                for tag, digest in previous[name].items():
                    if tag not in recorded:
                        assert killed[name][tag] == digest, (name, tag)

            done = run_cli(["run", "--version", version, "--json"], root, env=env)
            assert done.code == 0, done.output
            assert "completing it first" in done.stderr, done.stderr
            assert f"1 tag(s) written, {WRITES_PER_RELEASE - 1} already in place" in done.stderr, done.stderr
            assert journal_of(state) is None
            assert {c["action"] for c in json.loads(done.stdout)["tag_changes"]} == {"unchanged"}
            final = release_tags(plain_peek, namespace)
            for name in SHOP_IMAGES:
                digest = final[name][version]
                assert digest != previous[name]["latest"]
                for tag in (f"1.{k}", "1", "latest"):
                    assert final[name][tag] == digest, (name, tag)
                assert signed(plain_peek, namespace, name, digest)


def test_sigkill_at_each_step_of_a_run_then_converge(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """Kill after the n-th progress line, for every line of a reference run up to publishing, on one
    commit and version: the next run converges to the reference's tags, signed, with nothing forced."""
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    env = {**ENV, "XDG_STATE_HOME": str(tmp_path / "state")}
    for root, suffix in ((reference, "ref"), (crashed, "crash")):
        shop_project(root, f"{services.plain_registry}/{namespace}-{suffix}", app_dockerfile=SLOW_APP)
        assert run_cli(["keys", "generate"], root, env=env).code == 0
        init_git(root)
    done = run_cli(["run", "--version", "2.0.0", "--no-cache"], reference, env=env)
    assert done.code == 0, done.output
    lines = [line for line in done.stderr.splitlines() if line.startswith("[")]
    steps = [line.split("]", 1)[1].split()[1] for line in lines]
    expected = release_tags(plain_peek, f"{namespace}-ref")
    # Every progress line before the last tag write is a moment to die at.
    last = max(i for i, step in enumerate(steps) if step == "tag")
    moments = []
    for n in range(1, last, max(1, last // 12)):
        process = start(["run", "--version", "2.0.0", "--no-cache"], crashed, env)
        assert process.stderr is not None
        seen = [process.stderr.readline() for _ in range(n)]
        kill(process)
        moments.append(seen[-1].split("]", 1)[-1].split()[1] if seen[-1] else "?")
        state = release_tags(plain_peek, f"{namespace}-crash")
        versions = {tag for tags in state.values() for tag in tags}
        assert versions <= set(expected["app"]), versions  # nothing but this release's tags
    # Reach convergence with the input cache (a killed run's pushes are reused, nothing forced).
    final = run_cli(["run", "--version", "2.0.0"], crashed, env=env)
    assert final.code == 0, final.output
    converged = release_tags(plain_peek, f"{namespace}-crash")
    for name in SHOP_IMAGES:
        assert set(converged[name]) == set(expected[name]), name
        assert len(set(converged[name].values())) == 1, converged[name]  # one digest behind every tag
        assert signed(plain_peek, f"{namespace}-crash", name, converged[name]["2.0.0"])
    again = run_cli(["run", "--version", "2.0.0", "--json"], crashed, env=env)
    assert again.code == 0, again.output
    assert {c["action"] for c in json.loads(again.stdout)["tag_changes"]} == {"unchanged"}
    print(f"\nkilled {len(moments)} runs; steps seen before each kill: {sorted(set(moments))}")
    assert {"build", "tag"} & set(moments), moments
