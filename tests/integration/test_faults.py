"""Randomized registry faults between pipeline (and the engine) and the registry: every run either
succeeds (retries) or fails with a clear message, and after each the registry is consistent."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import parse_repository
from pipeline.signing.keys import read_public_key
from pipeline.signing.verify import KeyRequirement, verify_digest
from tests.faults.proxy import FaultPlan, fault_proxy
from tests.helpers import BASE_DOCKERFILE, git, init_git, run_cli, write_project
from tests.integration.conftest import Services

RUNS = int(os.environ.get("PIPELINE_FAULT_RUNS", "100"))
PASSWORD = "fault-test-passphrase"
RELEASE = re.compile(r"^\d+\.\d+\.\d+$")
FLOATING = re.compile(r"^(\d+|\d+\.\d+|latest)$")


def check_registry(
    registry: RegistryClient, repositories: list[str], key: KeyRequirement, releases: dict[str, str]
) -> int:
    """Every floating tag names a complete, signed manifest; no release tag ever changed. Returns
    how many floating tags were checked."""
    checked = 0
    for name in repositories:
        repository = parse_repository(name)
        for tag in registry.list_tags(repository):
            digest = registry.resolve_digest(repository.with_tag(tag))
            assert digest is not None, f"{name}:{tag} listed but unresolvable"
            if RELEASE.match(tag):
                assert releases.setdefault(f"{name}:{tag}", digest) == digest, f"release tag {name}:{tag} moved"
            if FLOATING.match(tag):
                manifest = registry.get_manifest(repository.with_digest(digest)).json()
                for blob in [manifest["config"], *manifest["layers"]]:
                    assert registry.blob_exists(repository, blob["digest"]), f"{name}:{tag} misses {blob['digest']}"
                verified = verify_digest(registry, repository, digest, [key])
                assert verified.verified, f"{name}:{tag} ({digest}) is not signed: {verified.reason}"
                checked += 1
    return checked


@pytest.mark.timeout(3000)  # 100 full release runs with retries and backoff
def test_randomized_registry_faults_leave_a_consistent_registry(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    plan = FaultPlan(rate=0.05, seed=20261123)
    outcomes = {"succeeded": 0, "failed": 0}
    failures: list[str] = []
    releases: dict[str, str] = {}
    with fault_proxy(services.plain_registry, plan) as proxy:
        write_project(
            tmp_path,
            f"""\
            registry: {proxy}/{namespace}
            sign: {{key: cosign.key}}
            pipelines:
              shop:
                images:
                  base: {{context: images/base}}
                  app:
                    context: images/app
                    build_args: {{BASE_IMAGE: "{{{{ images.base }}}}"}}
            """,
            {"base": BASE_DOCKERFILE, "app": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n"},
            busybox=("base",),
        )
        env = {"COSIGN_PASSWORD": PASSWORD}
        assert run_cli(["keys", "generate"], tmp_path, env=env).code == 0
        init_git(tmp_path)
        key = KeyRequirement(read_public_key(tmp_path / "cosign.pub"), "cosign.pub")
        repositories = [f"{proxy}/{namespace}/base", f"{proxy}/{namespace}/app"]
        floating_checked = 0
        for run in range(RUNS):
            (tmp_path / "images/app/build.txt").write_text(f"build {run}\n")
            git(tmp_path, "add", "-A")
            git(tmp_path, "commit", "-qm", f"build {run}")
            result = run_cli(["run", "--version", f"1.{run // 10}.{run % 10}"], tmp_path, env=env, timeout=600)
            assert "Traceback" not in result.output, result.output
            assert result.code in (0, 1), result.output
            if result.code == 0:
                outcomes["succeeded"] += 1
            else:
                outcomes["failed"] += 1
                last = result.stderr.strip().splitlines()[-1]
                assert last.startswith("error: "), result.output
                detail = [line for line in result.stdout.splitlines() if line.startswith("shop/")]
                failures.append((detail[0] if detail else last)[:160])
            rate, plan.rate = plan.rate, 0.0  # inspect the registry without faults
            with RegistryClient(lambda _: None) as registry:
                floating_checked += check_registry(registry, repositories, key, releases)
            plan.rate = rate
    kinds = {fault for fault, _, _ in plan.injected}
    print(
        f"\nfault runs: {RUNS}, succeeded {outcomes['succeeded']}, failed cleanly {outcomes['failed']}, "
        f"requests {plan.requests}, faults injected {len(plan.injected)} ({', '.join(sorted(kinds))}), "
        f"floating tags verified {floating_checked}, release tags tracked {len(releases)}"
    )
    for line in failures:
        print(f"  clean failure: {line}")
    assert len(plan.injected) >= RUNS // 2, "the proxy injected too few faults to mean anything"
    assert outcomes["succeeded"] >= RUNS // 2, outcomes  # retries should carry most runs through
