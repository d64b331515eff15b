"""Image indexes against the real registry and engine, checked with tools no one here wrote: skopeo,
`docker manifest inspect`, `docker pull --platform` and trixie's cosign."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.common.reporting import SILENT
from pipeline.registry.client import DOCKER_LIST, OCI_INDEX, OCI_MANIFEST, Manifest, RegistryClient
from pipeline.registry.index import PlatformClash, index_platforms, push_index
from pipeline.registry.reference import Repository, parse_repository
from pipeline.release.publish import Action, TagChange, apply_changes
from tests.faults.proxy import FaultPlan, fault_proxy
from tests.helpers import run_cli
from tests.integration.conftest import RegistryPeek, Services, _modern_engine
from tests.integration.test_signing import ENV, consumer_project, cosign_sign, cosign_verify

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

WINDOWS_VERSION = "10.0.17763.1"


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    # buildx's default provenance attestation off, as pipeline has it: on Docker 26 with the containerd store
    # it would make each one-platform fixture image an index (an image and its attestation manifest).
    env = os.environ | {"BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=300, env=env)


def build_and_push(tmp_path: Path, ref: str, platform: str, content: str) -> str:
    """Build `FROM scratch` + `COPY` (no RUN: no emulation needed) for `platform` on the engine's BuildKit,
    push it with the docker CLI, drop it from the engine again; return the pushed manifest's digest."""
    context = tmp_path / f"ctx-{uuid.uuid4().hex[:8]}"
    context.mkdir()
    (context / "content").write_text(content)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY content /content\n")
    built = docker("buildx", "build", "--builder", "default", "--platform", platform, "-t", ref, str(context))
    assert built.returncode == 0, built.stderr
    pushed = docker("push", ref)
    assert pushed.returncode == 0, pushed.stderr
    docker("image", "rm", ref)
    digest = next(word for line in pushed.stdout.splitlines() if "digest:" in line for word in line.split()[2:3])
    assert digest.startswith("sha256:"), pushed.stdout
    return digest


@dataclass(frozen=True)
class Pushed:
    repository: Repository
    amd64: str
    arm64: str
    index: str

    @property
    def tagged(self) -> str:
        return f"{self.repository}:1.0.0"


def client() -> RegistryClient:
    return RegistryClient(lambda _: None)


def two_platform_image(tmp_path: Path, services: Services, namespace: str, name: str = "app") -> Pushed:
    """linux/amd64 and linux/arm64 children (different content), an index of both tagged 1.0.0."""
    repo = f"{services.plain_registry}/{namespace}/{name}"
    amd64 = build_and_push(tmp_path, f"{repo}:amd64", "linux/amd64", f"amd64 {namespace}\n")
    arm64 = build_and_push(tmp_path, f"{repo}:arm64", "linux/arm64", f"arm64 {namespace}\n")
    repository = parse_repository(repo)
    with client() as registry:
        index = push_index(registry, repository, [amd64, arm64])
        registry.tag(repository, index.digest, "1.0.0")
    return Pushed(repository, amd64, arm64, index.digest)


def skopeo_raw(services: Services, ref: str) -> dict[str, Any]:
    done = subprocess.run(
        [services.skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    raw: dict[str, Any] = json.loads(done.stdout)
    return raw


def platforms_of(index: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["digest"]: m["platform"] for m in index["manifests"]}


def test_an_index_of_two_platforms_is_what_skopeo_docker_and_a_per_platform_pull_see(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek, docker_engine: str
) -> None:
    image = two_platform_image(tmp_path, services, namespace)
    expected = {
        image.amd64: {"architecture": "amd64", "os": "linux"},
        image.arm64: {"architecture": "arm64", "os": "linux"},
    }

    raw = skopeo_raw(services, image.tagged)
    assert raw["mediaType"] == OCI_INDEX and raw["schemaVersion"] == 2
    assert platforms_of(raw) == expected
    inspected = docker("manifest", "inspect", "--insecure", image.tagged)
    assert inspected.returncode == 0, inspected.stderr
    assert platforms_of(json.loads(inspected.stdout)) == expected

    # Assembling again from the same children gives the same bytes, so the same digest.
    with client() as registry:
        assert push_index(registry, image.repository, [image.amd64, image.arm64]).digest == image.index
        assert index_platforms(registry, image.repository, image.index) == [
            (image.amd64, "linux/amd64"),
            (image.arm64, "linux/arm64"),
        ]

    # The engine picks the arm64 child of the tag: its config is the pulled image.
    found = plain_peek.manifest(f"{namespace}/app", image.arm64)
    assert found is not None
    arm64_config = found[1]["config"]
    assert isinstance(arm64_config, dict)
    pulled = docker("pull", "--platform", "linux/arm64", image.tagged)
    try:
        assert pulled.returncode == 0, pulled.stderr
        assert image.index in pulled.stdout
        shown = json.loads(docker("image", "inspect", image.tagged).stdout)[0]
        assert shown["Architecture"] == "arm64"
        # The engines differ in what an image's ID is: the classic store's is the config's digest, the
        # containerd store's the digest of what was pulled (here the index; its arm64 child is what runs).
        assert shown["Id"] == (image.index if docker_engine == "docker26" else arm64_config["digest"])
        assert f"{image.repository}@{image.index}" in shown["RepoDigests"]
    finally:
        docker("image", "rm", image.tagged)

    # skopeo copy --all of the tag copies every child, and the index keeps its digest.
    (tmp_path / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    copied = subprocess.run(
        [
            services.skopeo,
            "--policy",
            str(tmp_path / "policy.json"),
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{image.tagged}",
            f"docker://{services.plain_registry}/{namespace}/copied:1.0.0",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert copied.returncode == 0, copied.stderr
    assert plain_peek.digest(f"{namespace}/copied", "1.0.0") == image.index
    for child in (image.amd64, image.arm64):
        assert plain_peek.digest(f"{namespace}/copied", child) == child


def test_pipeline_sign_signs_the_index_and_every_child_and_cosign_accepts_each(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    image = two_platform_image(tmp_path, services, namespace)
    assert run_cli(["keys", "generate"], tmp_path, env=ENV).code == 0
    signed = run_cli(["sign", image.tagged, "--key", "cosign.key", "--json"], tmp_path, env=ENV)
    assert signed.code == 0, signed.output
    data = json.loads(signed.stdout)
    assert data["digest"] == image.index
    assert [(c["digest"], c["platform"]) for c in data["children"]] == [
        (image.amd64, "linux/amd64"),
        (image.arm64, "linux/arm64"),
    ]
    for digest in (image.index, image.amd64, image.arm64):
        accepted = cosign_verify(services, tmp_path / "cosign.pub", f"{image.repository}@{digest}")
        assert accepted.returncode == 0, accepted.stderr
        assert digest in accepted.stdout
    verified = run_cli(["verify", image.tagged, "--key", "cosign.pub", "--json"], tmp_path)
    assert verified.code == 0, verified.output
    verdict = json.loads(verified.stdout)
    assert verdict["verified"] is True
    assert [(c["platform"], c["verified"]) for c in verdict["children"]] == [
        ("linux/amd64", True),
        ("linux/arm64", True),
    ]
    assert "--recursive" in run_cli(["sign", "--help"], tmp_path).stdout


def test_verify_fails_closed_when_one_child_is_unsigned_and_names_its_platform(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    image = two_platform_image(tmp_path, services, namespace)
    assert run_cli(["keys", "generate"], tmp_path, env=ENV).code == 0
    # cosign signs the index (cosign sign is not recursive by default) and the amd64 child; arm64 stays unsigned.
    for digest in (image.index, image.amd64):
        done = cosign_sign(services, tmp_path / "cosign.key", f"{image.repository}@{digest}")
        assert done.returncode == 0, done.stderr
    assert cosign_verify(services, tmp_path / "cosign.pub", image.tagged).returncode == 0  # the index alone passes

    refused = run_cli(["verify", image.tagged, "--key", "cosign.pub"], tmp_path)
    assert refused.code == 1, refused.output
    assert f"not verified: child linux/arm64 ({image.arm64}): no signature" in refused.output
    assert "linux/amd64" not in refused.output
    verdict = json.loads(run_cli(["verify", image.tagged, "--key", "cosign.pub", "--json"], tmp_path).stdout)
    assert verdict["verified"] is False
    assert [(c["platform"], c["verified"]) for c in verdict["children"]] == [
        ("linux/amd64", True),
        ("linux/arm64", False),
    ]


def test_trust_policy_and_promote_cover_every_child_and_the_promoted_index_verifies_at_the_destination(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    image = two_platform_image(tmp_path, services, f"{namespace}-upstream", "base")
    assert run_cli(["keys", "generate"], tmp_path, env=ENV).code == 0
    # Only the index and amd64 are signed: the base image gate and promote refuse, naming arm64.
    assert run_cli(["sign", f"{image.repository}@{image.amd64}", "--key", "cosign.key"], tmp_path, env=ENV).code == 0
    signed_index_only = cosign_sign(services, tmp_path / "cosign.key", f"{image.repository}@{image.index}")
    assert signed_index_only.returncode == 0, signed_index_only.stderr
    consumer = tmp_path / "consumer"
    consumer_project(
        consumer,
        f"{services.plain_registry}/{namespace}",
        f"{services.plain_registry}/{namespace}-upstream",
        (tmp_path / "cosign.pub").read_bytes(),
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nENV CONSUMER=1\n",
        image.tagged,
    )
    unsigned_child = f"its linux/arm64 image {image.arm64} is not signed as the trust policy requires: no signature"
    gated = run_cli(["run"], consumer)
    assert gated.code == 1, gated.output
    assert unsigned_child in gated.output
    destination = f"{services.plain_registry}/{namespace}/promoted"
    refused = run_cli(["promote", image.tagged, destination, "--version", "1.0.0"], consumer)
    assert refused.code == 1, refused.output
    assert unsigned_child in refused.output
    assert plain_peek.all_tags(f"{namespace}/promoted") == set()

    # Every child signed: the gate lets the build through and promote copies the index with all children.
    assert run_cli(["sign", image.tagged, "--key", "cosign.key"], tmp_path, env=ENV).code == 0
    assert run_cli(["run"], consumer).code == 0
    promoted = run_cli(["promote", image.tagged, destination, "--version", "1.0.0", "--json"], consumer)
    assert promoted.code == 0, promoted.output
    assert json.loads(promoted.stdout)["digest"] == image.index
    raw = skopeo_raw(services, f"{destination}:1.0.0")
    assert set(platforms_of(raw)) == {image.amd64, image.arm64}
    for child in (image.amd64, image.arm64):
        assert skopeo_raw(services, f"{destination}@{child}")["config"]["digest"]

    # The signatures of the index and every child came along (`pipeline verify` of a carried signature at the
    # destination: test_promote_supply_chain).
    for digest in (image.index, image.amd64, image.arm64):
        accepted = cosign_verify(services, tmp_path / "cosign.pub", f"{destination}@{digest}")
        assert accepted.returncode == 0, accepted.stderr


def push_windows_looking_image(registry: RegistryClient, repository: Repository) -> str:
    """An image whose config says windows/amd64 10.0.17763.1 (one empty layer), written by hand."""
    layer_file = io.BytesIO()
    with tarfile.open(fileobj=layer_file, mode="w"):
        pass
    layer = layer_file.getvalue()
    layer_digest = registry.push_blob(repository, layer)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "windows",
            "os.version": WINDOWS_VERSION,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "config": {},
        }
    ).encode()
    config_digest = registry.push_blob(repository, config)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": len(layer)}
            ],
        }
    ).encode()
    manifest = Manifest(OCI_MANIFEST, "sha256:" + hashlib.sha256(body).hexdigest(), body)
    return registry.put_manifest(repository, manifest.digest, manifest)


def test_a_windows_child_carries_its_os_version_in_the_index_and_tags_shows_it(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    repo = f"{services.plain_registry}/{namespace}/app"
    repository = parse_repository(repo)
    linux = build_and_push(tmp_path, f"{repo}:linux", "linux/amd64", "linux\n")
    with client() as registry:
        windows = push_windows_looking_image(registry, repository)
        index = push_index(registry, repository, [linux, windows])
        registry.tag(repository, index.digest, "1.0.0")
        registry.tag(repository, index.digest, "latest")
    raw = skopeo_raw(services, f"{repo}:1.0.0")
    assert platforms_of(raw) == {
        linux: {"architecture": "amd64", "os": "linux"},
        windows: {"architecture": "amd64", "os": "windows", "os.version": WINDOWS_VERSION},
    }
    inspected = docker("manifest", "inspect", "--insecure", f"{repo}:1.0.0")
    assert inspected.returncode == 0, inspected.stderr
    assert platforms_of(json.loads(inspected.stdout))[windows]["os.version"] == WINDOWS_VERSION

    shown = run_cli(["tags", repo, "--json"], tmp_path)
    assert shown.code == 0, shown.output
    (row,) = json.loads(shown.stdout)["versions"]
    assert row["digest"] == index.digest and row["also"] == ["latest"]
    assert row["platforms"] == [
        {"platform": "linux/amd64", "digest": linux},
        {"platform": f"windows/amd64 {WINDOWS_VERSION}", "digest": windows},
    ]
    text = run_cli(["tags", repo], tmp_path).stdout
    assert f"[linux/amd64, windows/amd64 {WINDOWS_VERSION}]  (latest)" in text


def test_two_children_of_one_platform_are_refused_before_anything_is_written(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    repo = f"{services.plain_registry}/{namespace}/app"
    first = build_and_push(tmp_path, f"{repo}:a", "linux/amd64", "a\n")
    second = build_and_push(tmp_path, f"{repo}:b", "linux/amd64", "b\n")
    with client() as registry, pytest.raises(PlatformClash, match="are both linux/amd64"):
        push_index(registry, parse_repository(repo), [first, second])
    assert plain_peek.all_tags(f"{namespace}/app") == {"a", "b"}


def test_a_registry_that_refuses_oci_indexes_gets_a_docker_manifest_list(
    tmp_path: Path, services: Services, namespace: str
) -> None:
    repo = f"{services.plain_registry}/{namespace}/app"
    amd64 = build_and_push(tmp_path, f"{repo}:amd64", "linux/amd64", "amd64\n")
    arm64 = build_and_push(tmp_path, f"{repo}:arm64", "linux/arm64", "arm64\n")
    plan = FaultPlan(refuse_manifest_types={OCI_INDEX})
    with fault_proxy(services.plain_registry, plan) as proxy, client() as registry:
        through = parse_repository(f"{proxy}/{namespace}/app")
        index = push_index(registry, through, [amd64, arm64])
        registry.tag(through, index.digest, "1.0.0")
    assert [fault for fault, _method, _path in plan.injected] == ["refuse-type"]
    raw = skopeo_raw(services, f"{repo}:1.0.0")
    assert raw["mediaType"] == DOCKER_LIST and index.media_type == DOCKER_LIST
    assert set(platforms_of(raw)) == {amd64, arm64}
    inspected = docker("manifest", "inspect", "--insecure", f"{repo}:1.0.0")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["mediaType"] == DOCKER_LIST


class RecordingTransport(httpx.HTTPTransport):
    """The real connection to the registry, noting each request's method and path."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        return super().handle_request(request)


def test_tagging_an_index_just_pushed_writes_each_tag_without_reading_the_index_back(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """The executor's build tag and publish's release and floating tags on a new index are one PUT each:
    the client has the bytes it just wrote (issue 14's budget for an index over one image)."""
    repo = f"{services.plain_registry}/{namespace}/app"
    repository = parse_repository(repo)
    amd64 = build_and_push(tmp_path, f"{repo}:amd64", "linux/amd64", "amd64\n")
    arm64 = build_and_push(tmp_path, f"{repo}:arm64", "linux/arm64", "arm64\n")
    transport = RecordingTransport()
    with RegistryClient(lambda _: None, transport=transport) as registry:
        index = push_index(registry, repository, [amd64, arm64])
        registry.tag(repository, index.digest, "sha-build")
        changes = [
            TagChange("app", repository, tag, kind, Action.CREATE, index.digest, None, "test")
            for tag, kind in (("1.0.0", "release"), ("latest", "floating"))
        ]
        apply_changes(changes, registry, SILENT)
    path = f"/v2/{namespace}/app/manifests/"
    manifest_reads = sorted((m, p) for m, p in transport.requests if p.startswith(path) and m != "PUT")
    assert manifest_reads == sorted([("GET", path + amd64), ("GET", path + arm64)])  # the children, once each
    for tag in ("sha-build", "1.0.0", "latest"):
        assert plain_peek.digest(f"{namespace}/app", tag) == index.digest, tag


def test_an_index_buildx_pushed_with_attestation_manifests_shows_signs_builds_on_and_promotes_only_its_images(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    """Docker 26's buildx (containerd store) pushes a two-platform index with its provenance attestations: beside
    each image an attestation manifest, platform unknown/unknown. Met as a base image or under `tags`, `tree`,
    `sign`, `verify` and `promote`, only the two images are platforms; promote copies the index whole."""
    modern = _modern_engine()  # whatever engine the run's leg builds on: the upstream is Docker 26's
    context = tmp_path / "upstream"
    context.mkdir()
    (context / "content").write_text(f"upstream {namespace}\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY content /content\n")
    repo = f"{services.plain_registry}/{namespace}-upstream/base"
    pushed = subprocess.run(
        ["docker", "buildx", "build", "--builder", "default", "--platform", "linux/amd64,linux/arm64"]
        + ["--attest", "type=provenance,mode=min", "--push", "-t", f"{repo}:1.0.0", str(context)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k not in ("DOCKER_CONTEXT", "BUILDX_NO_DEFAULT_ATTESTATIONS")}
        | {"DOCKER_HOST": modern},
    )
    assert pushed.returncode == 0, pushed.stderr
    found = plain_peek.manifest(f"{namespace}-upstream/base", "1.0.0")
    assert found is not None
    index, raw = found
    entries = raw["manifests"]
    assert isinstance(entries, list)
    images = {f"{e['platform']['os']}/{e['platform']['architecture']}": e["digest"] for e in entries[:2]}
    assert set(images) == {"linux/amd64", "linux/arm64"}
    attestations = [e for e in entries[2:] if e["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"]
    assert len(entries) == 4 and len(attestations) == 2, raw
    assert {e["platform"]["os"] for e in attestations} == {"unknown"}
    platforms = [("linux/amd64", images["linux/amd64"]), ("linux/arm64", images["linux/arm64"])]
    tagged = f"{repo}:1.0.0"

    shown = run_cli(["tags", repo, "--json"], tmp_path)
    assert shown.code == 0, shown.output
    (row,) = json.loads(shown.stdout)["versions"]
    assert row["digest"] == index
    assert [(p["platform"], p["digest"]) for p in row["platforms"]] == platforms

    assert run_cli(["keys", "generate"], tmp_path, env=ENV).code == 0
    signed = run_cli(["sign", tagged, "--key", "cosign.key", "--json"], tmp_path, env=ENV)
    assert signed.code == 0, signed.output
    assert [(c["platform"], c["digest"]) for c in json.loads(signed.stdout)["children"]] == platforms
    verified = run_cli(["verify", tagged, "--key", "cosign.pub", "--json"], tmp_path)
    assert verified.code == 0, verified.output
    verdict = json.loads(verified.stdout)
    assert verdict["verified"] is True
    assert [(c["platform"], c["verified"]) for c in verdict["children"]] == [(p, True) for p, _ in platforms]
    tree = run_cli(["tree", tagged, "--json"], tmp_path)
    assert tree.code == 0, tree.output
    assert [(c["platform"], c["digest"]) for c in json.loads(tree.stdout)["children"]] == platforms

    # A build on it (its trust policy checks every image of the index) stands on its amd64 image.
    consumer = tmp_path / "consumer"
    consumer_project(
        consumer,
        f"{services.plain_registry}/{namespace}",
        f"{services.plain_registry}/{namespace}-upstream",
        (tmp_path / "cosign.pub").read_bytes(),
        f"FROM {tagged}\nENV CONSUMER=1\n",
    )
    built = run_cli(["run", "--json"], consumer)
    assert built.code == 0, built.output
    (app,) = json.loads(built.stdout)["images"]
    assert [(b["platform"], b["digest"], b["index"]) for b in app["bases"]] == [
        ("linux/amd64", images["linux/amd64"], index)
    ]
    assert plain_peek.files(f"{namespace}/app", app["digest"])["content"] == f"upstream {namespace}\n".encode()

    # Promote copies the index whole (its attestation manifests too: the index names them) and verifies.
    destination = f"{services.plain_registry}/{namespace}/promoted"
    promoted = run_cli(["promote", tagged, destination, "--version", "1.0.0", "--json"], consumer)
    assert promoted.code == 0, promoted.output
    assert json.loads(promoted.stdout)["digest"] == index
    assert plain_peek.manifest(f"{namespace}/promoted", "1.0.0") == found
    for entry in entries:
        assert plain_peek.digest(f"{namespace}/promoted", entry["digest"]) == entry["digest"]
    again = run_cli(["verify", f"{destination}:1.0.0", "--key", "cosign.pub", "--json"], tmp_path)
    assert again.code == 0, again.output
    assert [c["platform"] for c in json.loads(again.stdout)["children"]] == ["linux/amd64", "linux/arm64"]
