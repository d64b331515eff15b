"""Several runners releasing at once: separate clones of one bare origin, separate state and cache
directories, real `pipeline` processes and a real registry. Each interleaving is forced, not hoped for:
the fault proxy holds one runner's write of one tag until the other runner has done its part."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.proxy import FaultPlan, Hold, fault_proxy
from tests.helpers import git, init_git, run_cli, shop_project
from tests.integration.conftest import RegistryPeek, Services

IMAGES = ("base", "app")
FLOATING = ("latest", "1")


@dataclass
class Runner:
    """One CI runner: its own clone of the shared origin and its own state and cache directories."""

    root: Path
    env: dict[str, str]

    def commit(self, content: str) -> str:
        (self.root / "images/app/app.txt").write_text(content)
        git(self.root, "commit", "-qam", f"app: {content.strip()}")
        return git(self.root, "rev-parse", "HEAD")


def runners(tmp_path: Path, registry: str, count: int = 2) -> list[Runner]:
    seed, origin = tmp_path / "seed", tmp_path / "origin.git"
    shop_project(seed, registry, sign=False, images=IMAGES)
    (seed / "images/app/app.txt").write_text("seed\n")
    init_git(seed)
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(seed, "push", "-q", str(origin), "main")
    found = []
    for name in "ABC"[:count]:
        root = tmp_path / name
        git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(root))
        env = {"XDG_STATE_HOME": str(tmp_path / f"state-{name}"), "XDG_CACHE_HOME": str(tmp_path / f"cache-{name}")}
        found.append(Runner(root, env))
    return found


@dataclass
class Started:
    process: subprocess.Popen[str]
    out: Path
    err: Path

    def wait(self, timeout: float = 600) -> tuple[int, dict[str, object] | None, str]:
        code = self.process.wait(timeout=timeout)
        text = self.out.read_text()
        return code, (json.loads(text) if text.startswith("{") else None), self.err.read_text()

    def stderr(self) -> str:
        return self.err.read_text()


def start(runner: Runner, args: list[str], name: str) -> Started:
    out, err = runner.root.parent / f"{name}.out", runner.root.parent / f"{name}.err"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        cwd=runner.root,
        env={**os.environ, **runner.env},
        stdout=out.open("w"),
        stderr=err.open("w"),
        text=True,
    )
    return Started(process, out, err)


def digests(report: dict[str, object]) -> dict[str, str]:
    images = report["images"]
    assert isinstance(images, list)
    return {i["name"]: i["digest"] for i in images}


def tags_of(peek: RegistryPeek, namespace: str, tags: tuple[str, ...]) -> dict[str, dict[str, str | None]]:
    return {name: {tag: peek.digest(f"{namespace}/{name}", tag) for tag in tags} for name in IMAGES}


@contextmanager
def held(plan: FaultPlan, match: str) -> Iterator[Hold]:
    plan.hold = hold = Hold(nth=0, match=match, forward=True)
    try:
        yield hold
    finally:
        hold.release.set()


@pytest.mark.timeout(900)
def test_one_version_from_two_commits_exactly_one_runner_wins(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """Runner A is held in the middle of publishing 1.0.0 (its write of app:1.0.0); runner B releases
    1.0.0 from another commit meanwhile. B must lose, naming A's commit, and leave nothing; A then
    completes, and the registry's 1.0.0 of every image is what A's report says."""
    plan = FaultPlan()
    with fault_proxy(services.plain_registry, plan) as proxy:
        a, b = runners(tmp_path, f"{proxy}/{namespace}")
        commit_a, commit_b = a.commit("from A\n"), b.commit("from B\n")
        with held(plan, f"{namespace}/app:1.0.0") as hold:
            first = start(a, ["run", "--version", "1.0.0", "--json"], "a")
            assert hold.held.wait(timeout=300), first.stderr()
            second = run_cli(["run", "--version", "1.0.0", "--json"], b.root, env=b.env)
            assert tags_of(plain_peek, namespace, ("1.0.0",))["app"]["1.0.0"] is None  # A's write is still held
        code, report, stderr = first.wait()
        # A finished release of its own commit is re-run as it was: same digests, nothing moves.
        again = run_cli(["run", "--version", "1.0.0", "--json"], a.root, env=a.env)
    assert code == 0, stderr
    assert report is not None
    assert second.code == 1, second.output
    assert "lost the race for version 1.0.0" in second.stderr, second.stderr
    assert f"commit {commit_a[:12]}" in second.stderr and commit_b[:12] in second.stderr, second.stderr
    assert "nothing was built or moved" in second.stderr
    won = digests(report)
    final = tags_of(plain_peek, namespace, ("1.0.0", *FLOATING))
    for name in IMAGES:
        assert final[name] == dict.fromkeys(("1.0.0", *FLOATING), won[name]), (name, final, won)
    revisions = {
        name: plain_peek.image_config(f"{namespace}/{name}", "1.0.0")["config"]["Labels"][
            "org.opencontainers.image.revision"
        ]
        for name in IMAGES
    }
    assert revisions == dict.fromkeys(IMAGES, commit_a)
    assert again.code == 0, again.output
    assert {c["action"] for c in json.loads(again.stdout)["tag_changes"]} == {"unchanged"}


@pytest.mark.timeout(900)
def test_two_adjacent_versions_floating_tags_end_on_the_higher_one(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """Runner A publishes 1.3.0 and is held before its app:1.3.0 lands; runner B publishes 1.2.0 meanwhile.
    Both may succeed, but `latest` and `1` end on 1.3.0's digests, `1.2` on 1.2.0's, `1.3` on 1.3.0's."""
    plan = FaultPlan()
    with fault_proxy(services.plain_registry, plan) as proxy:
        a, b = runners(tmp_path, f"{proxy}/{namespace}")
        a.commit("1.3\n")
        b.commit("1.2\n")
        with held(plan, f"{namespace}/app:1.3.0") as hold:
            first = start(a, ["run", "--version", "1.3.0", "--json"], "a")
            assert hold.held.wait(timeout=300), first.stderr()
            second = start(b, ["run", "--version", "1.2.0", "--json"], "b")
            # B either waits for A's publishing (with the remote) or finishes on its own (without).
            deadline = time.monotonic() + 300
            while second.process.poll() is None and "waiting for runner" not in second.stderr():
                assert time.monotonic() < deadline, second.stderr()
                time.sleep(0.2)
        code_a, report_a, stderr_a = first.wait()
        code_b, report_b, stderr_b = second.wait()
    assert code_a == 0, stderr_a
    assert report_a is not None
    high = digests(report_a)
    final = tags_of(plain_peek, namespace, ("1.2.0", "1.3.0", "1.2", "1.3", *FLOATING))
    for name in IMAGES:
        for tag in ("1.3.0", "1.3", *FLOATING):
            assert final[name][tag] == high[name], (name, tag, final)
    assert code_b == 0, stderr_b
    assert report_b is not None
    low = digests(report_b)
    for name in IMAGES:
        assert final[name]["1.2.0"] == final[name]["1.2"] == low[name], (name, final)
    # What B's report says it moved is what the registry shows.
    for change in report_b["tag_changes"]:  # type: ignore[union-attr]
        if change["action"] in ("create", "move", "unchanged"):
            name = change["image"].rsplit("/", 1)[-1]
            assert final[name].get(change["tag"], change["digest"]) == change["digest"], change


@pytest.mark.timeout(900)
def test_promote_of_one_version_from_two_runners_exactly_one_wins(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """Two runners promote different tested images into one repository as 1.0.0; A is held at its write of
    prod:1.0.0 while B promotes. B loses, naming A's digest, and copies nothing; A's image is 1.0.0."""
    plan = FaultPlan()
    with fault_proxy(services.plain_registry, plan) as proxy:
        a, b = runners(tmp_path, f"{proxy}/{namespace}")
        a.commit("tested A\n")
        b.commit("tested B\n")
        for runner, version in ((a, "0.1.0"), (b, "0.2.0")):
            done = run_cli(["run", "--version", version], runner.root, env=runner.env)
            assert done.code == 0, done.output
        source_a, source_b = (plain_peek.digest(f"{namespace}/app", v) for v in ("0.1.0", "0.2.0"))
        assert source_a and source_b and source_a != source_b
        dest = f"{proxy}/{namespace}/prod"
        with held(plan, f"{namespace}/prod:1.0.0") as hold:
            first = start(a, ["promote", f"{proxy}/{namespace}/app:0.1.0", dest, "--version", "1.0.0", "--json"], "a")
            assert hold.held.wait(timeout=300), first.stderr()
            second = run_cli(
                ["promote", f"{proxy}/{namespace}/app:0.2.0", dest, "--version", "1.0.0"], b.root, env=b.env
            )
        code, _, stderr = first.wait()
    assert code == 0, stderr
    assert second.code == 1, second.output
    assert "lost the race for version 1.0.0" in second.stderr and f"digest {source_a[:19]}" in second.stderr, (
        second.stderr
    )
    assert plain_peek.digest(f"{namespace}/prod", source_b) is None  # B copied nothing
    final = {tag: plain_peek.digest(f"{namespace}/prod", tag) for tag in ("1.0.0", "1.0", "1", "latest")}
    assert final == dict.fromkeys(final, source_a)


@pytest.mark.timeout(900)
def test_triggered_releases_on_two_runners_claim_on_the_watched_repository(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """`pipeline trigger` for tags v1.3.0 and v1.2.0 on two runners, each with its own mirror of the watched
    repository (a file:// URL); A is held at its write of app:1.3.0 while B releases 1.2.0. `latest` and
    `1` end on 1.3.0's digests, and the claims are on the watched repository, marked done."""
    plan = FaultPlan()
    release_rule = '[{tag: "^v(?P<version>\\\\d+\\\\.\\\\d+\\\\.\\\\d+)$", release: true}]'
    with fault_proxy(services.plain_registry, plan) as proxy:
        seed, server = tmp_path / "seed", tmp_path / "server.git"
        shop_project(seed, f"{proxy}/{namespace}", sign=False, images=IMAGES, triggers=release_rule)
        (seed / "images/app/app.txt").write_text("1.2\n")
        low_sha = init_git(seed)
        git(seed, "tag", "-a", "v1.2.0", "-m", "1.2.0")
        (seed / "images/app/app.txt").write_text("1.3\n")
        git(seed, "commit", "-qam", "1.3")
        high_sha = git(seed, "rev-parse", "HEAD")
        git(seed, "tag", "-a", "v1.3.0", "-m", "1.3.0")
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(server))
        git(seed, "push", "-q", "--tags", str(server), "main")
        url = f"file://{server}"
        envs = [
            {"XDG_STATE_HOME": str(tmp_path / f"state-{n}"), "XDG_CACHE_HOME": str(tmp_path / f"cache-{n}")}
            for n in "AB"
        ]
        a, b = (Runner(tmp_path, env) for env in envs)

        def trigger(version: str, sha: str) -> list[str]:
            return ["trigger", "--repo", url, "--ref", f"refs/tags/v{version}", "--after", sha, "--report"]

        with held(plan, f"{namespace}/app:1.3.0") as hold:
            first = start(a, [*trigger("1.3.0", high_sha), str(tmp_path / "a.json")], "a")
            assert hold.held.wait(timeout=300), first.stderr()
            second = start(b, [*trigger("1.2.0", low_sha), str(tmp_path / "b.json")], "b")
            deadline = time.monotonic() + 300
            while second.process.poll() is None and "waiting for runner" not in second.stderr():
                assert time.monotonic() < deadline, second.stderr()
                time.sleep(0.2)
        code_a, _, stderr_a = first.wait()
        code_b, _, stderr_b = second.wait()
    assert code_a == 0, stderr_a
    assert code_b == 0, stderr_b
    high = digests(json.loads((tmp_path / "a.json").read_text()))
    low = digests(json.loads((tmp_path / "b.json").read_text()))
    final = tags_of(plain_peek, namespace, ("1.2.0", "1.3.0", "1.2", "1.3", *FLOATING))
    for name in IMAGES:
        assert final[name]["1.3.0"] == final[name]["1.3"] == final[name]["latest"] == final[name]["1"] == high[name]
        assert final[name]["1.2.0"] == final[name]["1.2"] == low[name], (name, final)
    claims = git(server, "for-each-ref", "--format=%(refname) %(contents)", "refs/pipeline/claims")
    assert claims.count("state: done") == 2 * len(IMAGES), claims
    assert git(server, "for-each-ref", "refs/pipeline/leases") == ""


def test_a_versioned_run_needs_its_remote_and_an_unversioned_one_never_asks_it(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """`origin` pointing nowhere: an unversioned run succeeds (the remote is not asked); a versioned one
    stops before any registry write, saying what to do; PIPELINE_CLAIMS=off releases without the remote."""
    (a,) = runners(tmp_path, f"{services.plain_registry}/{namespace}", count=1)
    git(a.root, "remote", "set-url", "origin", "https://token:s3cret@git.invalid/shop.git")
    plain = run_cli(["run"], a.root, env=a.env)
    assert plain.code == 0, plain.output
    refused = run_cli(["run", "--version", "1.0.0"], a.root, env=a.env)
    assert refused.code == 1, refused.output
    assert "git remote 'origin': push refused or failed" in refused.stderr, refused.stderr
    assert "PIPELINE_CLAIMS=off" in refused.stderr and "s3cret" not in refused.output
    assert "1.0.0" not in plain_peek.all_tags(f"{namespace}/app")
    unguarded = run_cli(["run", "--version", "1.0.0"], a.root, env={**a.env, "PIPELINE_CLAIMS": "off"})
    assert unguarded.code == 0, unguarded.output
    assert "1.0.0" in plain_peek.all_tags(f"{namespace}/app")
