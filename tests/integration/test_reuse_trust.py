"""Reuse only what the pipeline can vouch for (README "Reuse and trust"): a look-alike planted under an
`inputs-` tag (its `org.pipeline.*` labels copied: they are plain text) is rebuilt, never released and
signed; pull request builds write tags branch builds never read; cache sources of a signing pipeline
are its own signed images only. Real registry, engine, git and cosign."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.registry.client import Manifest, RegistryClient
from pipeline.registry.reference import parse_repository
from tests.helpers import CliResult, commit_files, git, init_git, run_cli, shop_project, write_project
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_signing import ENV, cosign_attest, cosign_verify

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OUTSIDE_CI = {"GITHUB_ACTIONS": "", "GITLAB_CI": "", "TF_BUILD": ""}


@pytest.fixture
def registry() -> Iterator[RegistryClient]:
    with RegistryClient(lambda _: None) as client:
        yield client


def plant(registry: RegistryClient, peek: RegistryPeek, repository: str, tag: str, copy_of: str) -> str:
    """A look-alike under `repository:tag`: no layers of ours, but every label of `copy_of` (the real
    build) plus a marker, as anyone with push rights could make it; its digest."""
    host, _, path = repository.partition("/")
    labels = dict(peek.config(path, copy_of)["config"]["Labels"]) | {"planted": "yes"}
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": labels}}).encode()
    repo = parse_repository(repository)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": registry.push_blob(repo, config),
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    return registry.put_manifest(repo, tag, Manifest(OCI_MANIFEST, digest, body))


def report_of(path: Path) -> dict[str, dict[str, Any]]:
    return {i["image"]: i for i in json.loads(path.read_text(encoding="utf-8"))["images"]}


def input_tag(digest: str, prefix: str = "inputs-") -> str:
    return prefix + digest.split(":", 1)[1][:24]


def signed_shop(root: Path, registry: str, sign: str = "{key: cosign.key}", extra: str = "") -> None:
    shop_project(root, registry, sign=False, extra_config=f"sign: {sign}\n{extra}")
    assert run_cli(["keys", "generate"], root, env=ENV).code == 0
    init_git(root)


def first_run(root: Path, registry: str, *args: str, **signing: str) -> tuple[CliResult, dict[str, Any]]:
    """`signed_shop(root, registry, **signing)`, then a run (with `args`) that succeeds: it and its report."""
    signed_shop(root, registry, **signing)
    first = run_cli(["run", *args, "--report", "first.json"], root, env=ENV)
    assert first.code == 0, first.output
    return first, report_of(root / "first.json")


def test_a_planted_look_alike_is_rebuilt_and_the_release_is_our_own_signed_build(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, registry: RegistryClient
) -> None:
    prefix = f"{services.plain_registry}/{namespace}"
    _first, built = first_run(tmp_path, prefix)
    app = built["shop/app"]
    tag = input_tag(app["inputs"])
    assert plain_peek.digest(f"{namespace}/app", tag) == app["digest"]
    planted = plant(registry, plain_peek, f"{prefix}/app", tag, app["digest"])

    done = run_cli(["run", "--version", "1.0.0", "--report", "second.json"], tmp_path, env=ENV)
    assert done.code == 0, done.output
    released = plain_peek.digest(f"{namespace}/app", "1.0.0")
    assert released is not None and released != planted  # today's main released (and signed) the planted one
    why = f"not reused: {planted} is not signed by this pipeline's key"
    assert any(why in line and "shop/app" in line for line in done.stderr.splitlines()), done.stderr
    report = report_of(tmp_path / "second.json")
    assert report["shop/app"]["reused"] is False
    assert [line.split(" (")[0] for line in report["shop/app"]["not_reused"]] == [why]
    assert report["shop/base"]["reused"] is True and report["shop/worker"]["reused"] is True
    assert report["shop/base"]["digest"] == built["shop/base"]["digest"]
    assert report["shop/worker"]["digest"] == built["shop/worker"]["digest"]
    assert released == report["shop/app"]["digest"]
    assert plain_peek.digest(f"{namespace}/app", tag) == released  # the input tag is ours again
    verified = cosign_verify(services, tmp_path / "cosign.pub", f"{prefix}/app@{released}")
    assert verified.returncode == 0, verified.stderr
    assert cosign_verify(services, tmp_path / "cosign.pub", f"{prefix}/app@{planted}").returncode != 0


def test_signed_by_the_key_but_provenance_of_other_inputs_is_rebuilt(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, registry: RegistryClient
) -> None:
    prefix = f"{services.plain_registry}/{namespace}"
    _first, report = first_run(tmp_path, prefix, sign="{key: cosign.key, attest: [provenance]}")
    app = report["shop/app"]
    again = run_cli(["run", "--report", "again.json"], tmp_path, env=ENV)
    assert again.code == 0, again.output
    assert all(i["reused"] for i in report_of(tmp_path / "again.json").values())  # signed and attested: reused

    tag = input_tag(app["inputs"])
    planted = plant(registry, plain_peek, f"{prefix}/app", tag, app["digest"])
    # Signed with the pipeline's own key (a leaked key, or a signer tricked into it) and attested, but
    # the provenance names other inputs.
    signed = run_cli(["sign", "--key", "cosign.key", f"{prefix}/app@{planted}"], tmp_path, env=ENV)
    assert signed.code == 0, signed.output
    other = {
        "buildDefinition": {
            "buildType": "https://example.com/t",
            "externalParameters": {},
            "internalParameters": {"inputDigest": "sha256:" + "0" * 64},
        },
        "runDetails": {"builder": {"id": "https://example.com/builder"}},
    }
    cosign_attest(services, tmp_path, f"{prefix}/app@{planted}", other)

    done = run_cli(["run", "--version", "1.0.0", "--report", "second.json"], tmp_path, env=ENV)
    assert done.code == 0, done.output
    why = f"not reused: {planted} has no provenance by this pipeline's key for these inputs"
    assert any(why in line for line in done.stderr.splitlines()), done.stderr
    report = report_of(tmp_path / "second.json")
    assert report["shop/app"]["reused"] is False and report["shop/base"]["reused"] is True
    released = plain_peek.digest(f"{namespace}/app", "1.0.0")
    assert released is not None and released != planted

    # Re-running the release is a no-op: each 1.0.0 is ours, signed, its provenance naming these inputs.
    same = run_cli(["run", "--version", "1.0.0", "--report", "same.json"], tmp_path, env=ENV)
    assert same.code == 0, same.output
    assert report_of(tmp_path / "same.json")["shop/app"]["digest"] == released

    # A re-run of that release finds 1.0.0 moved to the look-alike (its labels name this commit): signed by
    # the key, but its provenance names other inputs, so it is not signed or published again.
    registry.tag(parse_repository(f"{prefix}/app"), planted, "1.0.0")
    rerun = run_cli(["run", "--version", "1.0.0"], tmp_path, env=ENV)
    assert rerun.code != 0, rerun.output
    refused = (
        f"shop/app: {prefix}/app:1.0.0 is not reused: {planted} has no provenance by this pipeline's key "
        "for these inputs"
    )
    assert refused in rerun.stderr, rerun.stderr
    assert plain_peek.digest(f"{namespace}/app", "latest") == released


def test_reuse_any_on_a_signing_pipeline_warns_and_reuses_what_is_planted(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, registry: RegistryClient
) -> None:
    prefix = f"{services.plain_registry}/{namespace}"
    first, _report = first_run(tmp_path, prefix, extra="reuse: any")
    warning = (
        "warning: pipeline shop: `reuse: any` on a pipeline that signs reuses images anyone with push rights "
        "can plant under an inputs- tag, then signs them (use `reuse: trusted`)"
    )
    assert warning in first.stderr.splitlines()
    planned = run_cli(["plan"], tmp_path)
    assert planned.code == 0 and warning in planned.stderr.splitlines(), planned.output
    app = report_of(tmp_path / "first.json")["shop/app"]
    planted = plant(registry, plain_peek, f"{prefix}/app", input_tag(app["inputs"]), app["digest"])
    done = run_cli(["run", "--report", "second.json"], tmp_path, env=ENV)
    assert done.code == 0, done.output
    assert report_of(tmp_path / "second.json")["shop/app"]["digest"] == planted  # what `any` means


def test_reuse_trusted_without_signing_is_a_config_error(tmp_path: Path) -> None:
    config = write_project(
        tmp_path,
        "registry: 127.0.0.1:5000/x\npipelines:\n  shop:\n    reuse: trusted\n    images:\n"
        "      base: {context: images/b}\n",
        {"b": "FROM scratch\n"},
    )
    done = run_cli(["plan", "--offline"], tmp_path)
    assert done.code == 2, done.output
    assert f"{config.name}:4:12: pipelines.shop.reuse" in done.stderr, done.stderr
    assert "`reuse: trusted` needs signing, but pipeline shop does not sign" in done.stderr


def github(kind: str, tmp_path: Path) -> dict[str, str]:
    if kind == "pr":  # a pull request from a fork (no event payload: counts as a fork)
        return OUTSIDE_CI | {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REF": "refs/pull/9/merge",
            "GITHUB_REF_NAME": "9/merge",
            "GITHUB_EVENT_NAME": "pull_request",
        }
    return OUTSIDE_CI | {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_EVENT_NAME": "push",
    }


def test_a_pull_request_build_writes_scoped_tags_a_branch_build_never_reads(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    write_project(
        tmp_path,
        f"registry: {services.plain_registry}/{namespace}\npipelines:\n  shop:\n    images:\n"
        "      web: {context: images/web}\n",
        {"web": "FROM scratch\nCOPY hello /hello\n"},
    )
    (tmp_path / "images" / "web" / "hello").write_text("hello\n", encoding="utf-8")
    sha = init_git(tmp_path)
    pr = github("pr", tmp_path)

    planned = run_cli(["plan", "--json"], tmp_path, pr)
    assert planned.code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["scope"] == {
        "untrusted": True,
        "why": "pull/merge request 9",
        "writes_input_tags": "inputs-pr-<hash>",
        "reads_input_tags": ["inputs-<hash>", "inputs-pr-<hash>"],
    }
    [row] = plan["images"]
    assert row["reuse"]["rule"] == "any" and row["reuse"]["writes"].startswith("inputs-pr-")
    text = run_cli(["plan"], tmp_path, pr)
    assert "scope: pull/merge request 9 (untrusted): writes inputs-pr-<hash> and pr-sha-<commit>" in text.stdout

    built = run_cli(["run", "--report", "pr.json"], tmp_path, pr)
    assert built.code == 0, built.output
    web = report_of(tmp_path / "pr.json")["shop/web"]
    tags = plain_peek.all_tags(f"{namespace}/web")
    assert input_tag(web["inputs"], "inputs-pr-") in tags and f"pr-sha-{sha[:12]}" in tags
    assert input_tag(web["inputs"]) not in tags and f"sha-{sha[:12]}" not in tags

    branch = github("branch", tmp_path)
    branch_plan = json.loads(run_cli(["plan", "--json"], tmp_path, branch).stdout)
    assert branch_plan["scope"]["untrusted"] is False
    assert branch_plan["images"][0]["action"] == "build"
    assert branch_plan["images"][0]["reuse"]["reads"] == [input_tag(web["inputs"])]
    done = run_cli(["run", "--report", "branch.json"], tmp_path, branch)
    assert done.code == 0, done.output
    assert report_of(tmp_path / "branch.json")["shop/web"]["reused"] is False
    # A later pull request build may read the branch's tag.
    again = run_cli(["run", "--report", "pr2.json"], tmp_path, pr)
    assert again.code == 0 and report_of(tmp_path / "pr2.json")["shop/web"]["reused"] is True


def test_a_signing_pipeline_builds_only_on_its_own_signed_cache_sources(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, registry: RegistryClient
) -> None:
    prefix = f"{services.plain_registry}/{namespace}"
    _first, report = first_run(tmp_path, prefix)
    app = report["shop/app"]
    planted = plant(registry, plain_peek, f"{prefix}/app", "latest", app["digest"])
    commit_files(tmp_path, {"images/app/more.txt": "more\n"})

    done = run_cli(["run"], tmp_path, env=ENV)
    assert done.code == 0, done.output
    dropped = f"cache source {prefix}/app:latest dropped: {planted} is not signed by this pipeline's key"
    assert any(dropped in line for line in done.stderr.splitlines()), done.stderr
    # The earlier build on this history is ours and signed: kept, by digest.
    assert not any(f"{prefix}/app:sha-" in line and "dropped" in line for line in done.stderr.splitlines())


@pytest.mark.parametrize("reuse", ["", "reuse: never", "reuse: any"])
def test_a_planted_release_tag_of_this_commit_is_not_signed_or_published(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, registry: RegistryClient, reuse: str
) -> None:
    """Whatever `reuse:` says, a signing pipeline never signs a release tag it did not verify."""
    prefix = f"{services.plain_registry}/{namespace}"
    _first, report = first_run(tmp_path, prefix, "--version", "1.0.0", extra=reuse)
    app = report["shop/app"]
    planted = plant(registry, plain_peek, f"{prefix}/app", "1.0.0", app["digest"])  # its revision: this commit

    done = run_cli(["run", "--version", "1.0.0"], tmp_path, env=ENV)
    assert done.code != 0, done.output
    assert f"shop/app: {prefix}/app:1.0.0 is not reused: {planted} is not signed by this pipeline's key" in done.stderr
    assert cosign_verify(services, tmp_path / "cosign.pub", f"{prefix}/app@{planted}").returncode != 0
    assert plain_peek.digest(f"{namespace}/app", "latest") == app["digest"]


def test_run_since_builds_on_a_dependency_only_when_its_pinned_build_is_signed(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, registry: RegistryClient
) -> None:
    """`run --since` (the path of trigger, watch and serve) pins an unchanged dependency to its last
    `sha-<commit>` build: anyone with push rights can re-point that tag. A `reuse: trusted` pipeline pins
    only a digest its signer signed; a look-alike is not built on: the dependency is built instead."""
    prefix = f"{services.plain_registry}/{namespace}"
    _first, report = first_run(tmp_path, prefix)
    base = report["shop/base"]["digest"]
    tag = f"sha-{git(tmp_path, 'rev-parse', 'HEAD')[:12]}"
    assert plain_peek.digest(f"{namespace}/base", tag) == base
    planted = plant(registry, plain_peek, f"{prefix}/base", tag, base)  # what the old code built app on
    sha2 = commit_files(tmp_path, {"images/app/extra.txt": "changed\n"})

    done = run_cli(["run", "--since", "HEAD~1", "--report", "second.json"], tmp_path, env=ENV)
    assert done.code == 0, done.output
    app = plain_peek.config(f"{namespace}/app", f"sha-{sha2[:12]}")["config"]["Labels"]
    assert json.loads(app["org.pipeline.dependencies"]) == {"shop/base": base}
    assert planted not in json.dumps(app)
    base_layers = plain_peek.layers(f"{namespace}/base", base)
    assert plain_peek.layers(f"{namespace}/app", f"sha-{sha2[:12]}")[: len(base_layers)] == base_layers
    report = report_of(tmp_path / "second.json")
    assert report["shop/base"]["digest"] == base  # our own signed build, reused by its inputs
    why = f"shop/base: not pinned: {planted} is not signed by this pipeline's key"
    assert any(line.startswith(why) and line.endswith("; building shop/base") for line in done.stderr.splitlines()), (
        done.stderr
    )
    verified = cosign_verify(services, tmp_path / "cosign.pub", f"{prefix}/app@{report['shop/app']['digest']}")
    assert verified.returncode == 0, verified.stderr
