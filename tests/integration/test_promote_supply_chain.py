"""`promote` carries signatures, attestations and referrers to the destination (or signs anew there), and
`pipeline tree` shows them; checked at the destination with trixie's cosign, an implementation no one here
wrote, and by reading the registry."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.registry.client import RegistryClient
from pipeline.registry.reference import parse_repository
from pipeline.signing.keys import read_private_key, read_public_key
from pipeline.signing.payloads import (
    CYCLONEDX_BOM,
    SIGN_PREDICATE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SLSA_PROVENANCE_V1,
    in_toto_statement,
)
from pipeline.signing.signer import key_bundle, key_envelope
from pipeline.signing.storage import (
    BUNDLE_MEDIA_TYPE,
    attestation_tag,
    fallback_referrers_tag,
    signature_tag,
    write_bundle,
    write_legacy_attestation,
)
from tests.faults.proxy import FaultPlan, fault_proxy
from tests.helpers import BASE_DOCKERFILE, app_project, init_git, run_cli, user_tags
from tests.integration.conftest import RegistryPeek, Services
from tests.integration.test_index import Pushed, two_platform_image
from tests.integration.test_signing import ENV, PASSWORD, cosign, cosign_verify, push_unsigned
from tests.integration.test_signing import cosign_attest as cosign_attest_predicate

PROVENANCE = {"buildDefinition": {"buildType": "https://example.com/t", "externalParameters": {}}, "runDetails": {}}
CARRIED_ONE_IMAGE = {"signature": 2, "attestation": 2, "sbom": 0, "other": 0}


def cosign_attest(services: Services, root: Path, ref: str, *extra: str) -> None:
    """trixie's cosign attests this file's PROVENANCE for `ref` with ./cosign.key."""
    cosign_attest_predicate(services, root, ref, PROVENANCE, *extra)


def referrer_digests(peek: RegistryPeek, repo_path: str, digest: str) -> list[str]:
    """What the fallback referrers index of `digest` lists (the registries here have no referrers API)."""
    found = peek.manifest(repo_path, fallback_referrers_tag(digest))
    if found is None:
        return []
    return [str(m["digest"]) for m in found[1]["manifests"]]  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Promoted:
    root: Path
    namespace: str
    digest: str
    source: str  # repository path at the plain registry
    destination: str  # repository path at the plain registry
    output: dict[str, Any]  # promote --json
    stderr: str


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory, services: Services) -> Promoted:
    """An image signed with a key in both forms and attested by cosign in both forms, promoted to
    another repository of the same registry."""
    root = tmp_path_factory.mktemp("promoted")
    namespace = f"t{uuid.uuid4().hex[:10]}"
    app_project(root, f"{services.plain_registry}/{namespace}", BASE_DOCKERFILE, busybox=True)
    init_git(root)
    assert run_cli(["run", "--version", "1.0.0"], root).code == 0
    assert run_cli(["keys", "generate"], root, env=ENV).code == 0
    ref = f"{services.plain_registry}/{namespace}/app:1.0.0"
    signed = run_cli(["sign", ref, "--key", "cosign.key", "--storage", "both", "--json"], root, env=ENV)
    assert signed.code == 0, signed.output
    cosign_attest(services, root, ref)
    cosign_attest(services, root, ref, "--new-bundle-format")
    done = run_cli(
        ["promote", ref, f"{services.plain_registry}/{namespace}/prod", "--version", "1.0.0", "--json"], root
    )
    assert done.code == 0, done.output
    return Promoted(
        root,
        namespace,
        json.loads(signed.stdout)["digest"],
        f"{namespace}/app",
        f"{namespace}/prod",
        json.loads(done.stdout),
        done.stderr,
    )


def test_promote_carries_signatures_attestations_and_referrers_and_cosign_verifies_at_the_destination(
    services: Services, plain_peek: RegistryPeek, promoted: Promoted
) -> None:
    digest, source, destination = promoted.digest, promoted.source, promoted.destination
    assert promoted.output["carried"] == CARRIED_ONE_IMAGE
    assert promoted.output["already"] == dict.fromkeys(CARRIED_ONE_IMAGE, 0)
    tags = plain_peek.all_tags(destination)
    assert {signature_tag(digest), attestation_tag(digest), fallback_referrers_tag(digest)} <= tags
    # Legacy manifests and referrers arrive byte for byte: the same digests as at the source.
    for tag in (signature_tag(digest), attestation_tag(digest)):
        assert plain_peek.digest(destination, tag) == plain_peek.digest(source, tag)
    referrers = referrer_digests(plain_peek, source, digest)
    assert len(referrers) == 2  # our signature bundle, cosign's attestation bundle
    assert referrer_digests(plain_peek, destination, digest) == referrers
    for referrer in referrers:
        assert plain_peek.digest(destination, referrer) == referrer
    # Carried before any tag moved.
    lines = promoted.stderr.splitlines()
    last_carry = max(i for i, line in enumerate(lines) if line.startswith("carry "))
    first_tag = min(i for i, line in enumerate(lines) if line.startswith("tag "))
    assert last_carry < first_tag, promoted.stderr

    at_destination = f"{services.plain_registry}/{destination}:1.0.0"
    verified = cosign_verify(services, promoted.root / "cosign.pub", at_destination)
    assert verified.returncode == 0, verified.stderr
    assert digest in verified.stdout
    attested = cosign(
        services,
        "verify-attestation",
        "--key",
        str(promoted.root / "cosign.pub"),
        "--type",
        "slsaprovenance1",
        "--insecure-ignore-tlog",
        "--allow-http-registry",
        at_destination,
    )
    assert attested.returncode == 0, attested.stderr
    tree = cosign(services, "tree", "--allow-http-registry", at_destination)
    assert tree.returncode == 0, tree.stderr
    assert f"{destination}:{signature_tag(digest)}" in tree.stdout
    assert f"{destination}:{attestation_tag(digest)}" in tree.stdout


def test_pipeline_verify_accepts_the_carried_signatures_at_the_destination(
    services: Services, promoted: Promoted
) -> None:
    verified = run_cli(
        ["verify", f"{services.plain_registry}/{promoted.destination}:1.0.0", "--key", "cosign.pub"], promoted.root
    )
    assert verified.code == 0, verified.output


def test_promote_again_keeps_what_was_signed_at_the_destination(
    services: Services, plain_peek: RegistryPeek, promoted: Promoted
) -> None:
    root, digest = promoted.root, promoted.digest
    destination = f"{promoted.namespace}/merged"
    source_ref = f"{services.plain_registry}/{promoted.source}:1.0.0"
    at_destination = f"{services.plain_registry}/{destination}:1.0.0"
    promote = ["promote", source_ref, f"{services.plain_registry}/{destination}", "--version", "1.0.0"]
    assert run_cli(promote, root).code == 0
    # Someone signs the destination with another key, in both forms; then the promotion is run again.
    assert run_cli(["keys", "generate", "--output-prefix", "prod"], root, env=ENV).code == 0
    signed = run_cli(["sign", at_destination, "--key", "prod.key", "--storage", "both"], root, env=ENV)
    assert signed.code == 0, signed.output
    before = referrer_digests(plain_peek, destination, digest)
    assert len(before) == 3
    sig_before = plain_peek.digest(destination, signature_tag(digest))

    again = run_cli([*promote, "--json"], root)
    assert again.code == 0, again.output
    # Everything the source has was there already: nothing is reported as carried now.
    assert json.loads(again.stdout)["carried"] == dict.fromkeys(CARRIED_ONE_IMAGE, 0)
    assert json.loads(again.stdout)["already"] == CARRIED_ONE_IMAGE
    assert referrer_digests(plain_peek, destination, digest) == before  # nothing dropped, nothing doubled
    assert plain_peek.digest(destination, signature_tag(digest)) == sig_before  # both layers were there
    sig = plain_peek.manifest(destination, signature_tag(digest))
    assert sig is not None and len(sig[1]["layers"]) == 2  # type: ignore[arg-type]
    for key in ("cosign.pub", "prod.pub"):
        verified = cosign_verify(services, root / key, at_destination)
        assert verified.returncode == 0, f"{key}: {verified.stderr}"


def test_resign_signs_the_destination_and_carries_only_attestations(
    tmp_path: Path, services: Services, plain_peek: RegistryPeek, promoted: Promoted
) -> None:
    root, digest = promoted.root, promoted.digest
    assert run_cli(["keys", "generate", "--output-prefix", "release"], root, env=ENV).code == 0
    destination = f"{promoted.namespace}/resigned"
    done = run_cli(
        [
            "promote",
            f"{services.plain_registry}/{promoted.source}:1.0.0",
            f"{services.plain_registry}/{destination}",
            "--version",
            "1.0.0",
            "--resign",
            "--key",
            "release.key",
            "--storage",
            "both",
            "--json",
        ],
        root,
        env=ENV,
    )
    assert done.code == 0, done.output
    output = json.loads(done.stdout)
    assert output["carried"] == {"signature": 0, "attestation": 2, "sbom": 0, "other": 0}
    assert [(r["digest"], r["written"]) for r in output["resigned"]] == [(digest, ["legacy", "referrers"])]
    at_destination = f"{services.plain_registry}/{destination}:1.0.0"
    assert cosign_verify(services, root / "release.pub", at_destination).returncode == 0
    assert cosign_verify(services, root / "cosign.pub", at_destination).returncode != 0  # not carried
    assert plain_peek.digest(destination, attestation_tag(digest)) == plain_peek.digest(
        promoted.source, attestation_tag(digest)
    )
    verified = run_cli(["verify", at_destination, "--key", "release.pub"], root)
    assert verified.code == 0, verified.output
    source_ref, destination_repo = (
        f"{services.plain_registry}/{promoted.source}:1.0.0",
        f"{services.plain_registry}/{destination}",
    )
    wrong = run_cli(["promote", source_ref, destination_repo, "--version", "1.0.0", "--key", "release.key"], root)
    assert wrong.code == 2 and "go with --resign" in wrong.output
    # A key that cannot be used stops --resign before anything is copied.
    elsewhere = f"{promoted.namespace}/never"
    for key, env in (("missing.key", ENV), ("release.key", {"COSIGN_PASSWORD": "wrong passphrase"})):
        refused = run_cli(
            ["promote", source_ref, f"{services.plain_registry}/{elsewhere}", "--version", "1.0.0", "--resign"]
            + ["--key", key],
            root,
            env=env,
        )
        assert refused.code != 0 and refused.output.count("error:") == 1, refused.output
        assert plain_peek.manifest(elsewhere, digest) is None  # nothing copied


def test_promote_to_the_htpasswd_registry_carries_the_signatures(
    services: Services, auth_peek: RegistryPeek, promoted: Promoted
) -> None:
    env = {"DOCKER_CONFIG": str(services.auth_docker_config)}
    destination = f"{services.auth_registry}/{promoted.namespace}/prod"
    done = run_cli(
        ["promote", f"{services.plain_registry}/{promoted.source}:1.0.0", destination, "--version", "1.0.0", "--json"],
        promoted.root,
        env=env,
    )
    assert done.code == 0, done.output
    assert json.loads(done.stdout)["carried"] == CARRIED_ONE_IMAGE
    assert signature_tag(promoted.digest) in auth_peek.all_tags(f"{promoted.namespace}/prod")
    assert len(referrer_digests(auth_peek, f"{promoted.namespace}/prod", promoted.digest)) == 2
    verified = cosign(
        services,
        "verify",
        "--key",
        str(promoted.root / "cosign.pub"),
        "--insecure-ignore-tlog",
        "--allow-http-registry",
        f"{destination}:1.0.0",
        env=env,
    )
    assert verified.returncode == 0, verified.stderr


def test_when_carrying_fails_no_tag_moves(tmp_path: Path, services: Services, namespace: str) -> None:
    app_project(tmp_path, f"{services.plain_registry}/{namespace}", BASE_DOCKERFILE, busybox=True)
    init_git(tmp_path)
    assert run_cli(["run", "--version", "1.0.0"], tmp_path).code == 0
    assert run_cli(["keys", "generate"], tmp_path, env=ENV).code == 0
    signed = run_cli(
        ["sign", f"{services.plain_registry}/{namespace}/app:1.0.0", "--key", "cosign.key", "--json"], tmp_path, env=ENV
    )
    assert signed.code == 0, signed.output
    digest = json.loads(signed.stdout)["digest"]
    plan = FaultPlan(fail_references={signature_tag(digest)})
    peek = RegistryPeek(services.plain_registry)
    with fault_proxy(services.plain_registry, plan) as proxy:
        done = run_cli(
            ["promote", f"{proxy}/{namespace}/app:1.0.0", f"{proxy}/{namespace}/prod", "--version", "1.0.0"],
            tmp_path,
            env={"PIPELINE_REGISTRY_TIMEOUT": "3"},
        )
    assert done.code == 1, done.output
    assert "Traceback" not in done.output
    assert done.stderr.strip().splitlines()[-1].startswith("error: "), done.output
    assert signature_tag(digest) in done.stderr.strip().splitlines()[-1]
    # The fault fired (on the destination's signature tag), and nothing was tagged there.
    assert {(fault, method, path) for fault, method, path in plan.injected} == {
        ("fail-tag", "PUT", f"/v2/{namespace}/prod/manifests/{signature_tag(digest)}")
    }
    assert user_tags(peek.all_tags(f"{namespace}/prod")) == set()
    assert peek.digest(f"{namespace}/prod", digest) == digest  # the image itself had arrived (untagged)


@pytest.fixture(scope="module")
def signed_index(tmp_path_factory: pytest.TempPathFactory, services: Services) -> tuple[Path, Pushed]:
    """A two-platform index (tagged 1.0.0, children tagged amd64 and arm64), signed in both forms."""
    root = tmp_path_factory.mktemp("index")
    image = two_platform_image(root, services, f"t{uuid.uuid4().hex[:10]}")
    assert run_cli(["keys", "generate"], root, env=ENV).code == 0
    signed = run_cli(["sign", image.tagged, "--key", "cosign.key", "--storage", "both"], root, env=ENV)
    assert signed.code == 0, signed.output
    return root, image


def test_promoting_an_index_carries_every_childs_signatures(
    services: Services, plain_peek: RegistryPeek, signed_index: tuple[Path, Pushed]
) -> None:
    root, image = signed_index
    source = image.repository.path
    destination = source.rsplit("/", 1)[0] + "/prod"
    done = run_cli(
        ["promote", image.tagged, f"{services.plain_registry}/{destination}", "--version", "1.0.0", "--json"], root
    )
    assert done.code == 0, done.output
    assert json.loads(done.stdout)["carried"] == {"signature": 6, "attestation": 0, "sbom": 0, "other": 0}
    for digest in (image.index, image.amd64, image.arm64):
        assert plain_peek.digest(destination, signature_tag(digest)) == plain_peek.digest(source, signature_tag(digest))
        assert referrer_digests(plain_peek, destination, digest) == referrer_digests(plain_peek, source, digest) != []
        accepted = cosign_verify(services, root / "cosign.pub", f"{services.plain_registry}/{destination}@{digest}")
        assert accepted.returncode == 0, f"{digest}: {accepted.stderr}"


def test_pipeline_verify_accepts_an_index_with_carried_signatures_at_the_destination(
    services: Services, signed_index: tuple[Path, Pushed]
) -> None:
    root, image = signed_index
    destination = f"{services.plain_registry}/{image.repository.path.rsplit('/', 1)[0]}/verified"
    done = run_cli(["promote", image.tagged, destination, "--version", "1.0.0"], root)
    assert done.code == 0, done.output
    verified = run_cli(["verify", f"{destination}:1.0.0", "--key", "cosign.pub"], root)
    assert verified.code == 0, verified.output
    assert "(linux/arm64): verified" in verified.stdout


def _signatures(peek: RegistryPeek, repo: str, digest: str, key_id: str) -> list[dict[str, Any]]:
    return [
        {
            "form": "legacy",
            "manifest": peek.digest(repo, signature_tag(digest)),
            "tag": signature_tag(digest),
            "media_type": SIMPLE_SIGNING_MEDIA_TYPE,
            "predicate_type": None,
            "signer": {"kind": "key", "hint": None, "verified": False},
            "referrers": [],
        },
        {
            "form": "referrers",
            "manifest": referrer_digests(peek, repo, digest)[0],
            "tag": None,
            "media_type": BUNDLE_MEDIA_TYPE,
            "predicate_type": SIGN_PREDICATE,
            "signer": {"kind": "key", "hint": key_id, "verified": False},
            "referrers": [],
        },
    ]


def test_tree_shows_an_index_its_children_and_each_ones_signatures(
    services: Services, plain_peek: RegistryPeek, signed_index: tuple[Path, Pushed]
) -> None:
    root, image = signed_index
    repo = image.repository.path
    key_id = read_public_key(root / "cosign.pub").key_id
    shown = run_cli(["tree", image.tagged, "--json"], root)
    assert shown.code == 0, shown.output

    def node(digest: str, platform: str | None, tags: list[str], children: list[Any]) -> dict[str, Any]:
        return {
            "reference": f"{image.repository}@{digest}",
            "digest": digest,
            "platform": platform,
            "tags": tags,
            "signatures": _signatures(plain_peek, repo, digest, key_id),
            "attestations": [],
            "sboms": [],
            "other": [],
            "referrers_api": False,
            "children": children,
        }

    assert json.loads(shown.stdout) == node(
        image.index,
        None,
        ["1.0.0"],
        [node(image.amd64, "linux/amd64", ["amd64"], []), node(image.arm64, "linux/arm64", ["arm64"], [])],
    )
    text = run_cli(["tree", image.tagged], root)
    assert text.code == 0, text.output
    assert text.stdout.splitlines()[:2] == [f"{image.repository}@{image.index}", "├── tags: 1.0.0"]
    assert f"├── linux/amd64: {image.amd64}  (tags: amd64)" in text.stdout
    assert f"└── linux/arm64: {image.arm64}  (tags: arm64)" in text.stdout
    assert text.stdout.count("signatures (2)") == 3
    assert text.stdout.count(f"signer key {key_id} (unverified)") == 3


def test_tree_shows_attestations_with_their_type_and_a_missing_reference_is_one_line(
    services: Services, promoted: Promoted
) -> None:
    shown = run_cli(["tree", f"{services.plain_registry}/{promoted.source}:1.0.0", "--json"], promoted.root)
    assert shown.code == 0, shown.output
    data = json.loads(shown.stdout)
    assert [(a["form"], a["predicate_type"]) for a in data["attestations"]] == [
        ("legacy", SLSA_PROVENANCE_V1),
        ("referrers", SLSA_PROVENANCE_V1),
    ]
    assert {"1", "1.0", "1.0.0", "latest"} <= set(data["tags"])
    assert not [tag for tag in data["tags"] if tag.startswith("sha256-")]  # the supply chain's own tags

    missing = run_cli(["tree", f"{services.plain_registry}/{promoted.namespace}/nothing:1.0.0"], promoted.root)
    assert missing.code == 1, missing.output
    assert missing.stderr.strip() == (
        f"error: {services.plain_registry}/{promoted.namespace}/nothing:1.0.0: not found in the registry"
    )
    assert missing.stdout == ""
    assert "Example:" in run_cli(["tree", "--help"], promoted.root).stdout


@dataclass(frozen=True)
class Misannotated:
    root: Path
    ref: str  # repository@digest
    digest: str


@pytest.fixture(scope="module")
def misannotated(tmp_path_factory: pytest.TempPathFactory, services: Services) -> Misannotated:
    """An image with a signature bundle annotated as SLSA provenance, a legacy `.att` layer whose envelope
    holds provenance but whose annotation says CycloneDX, and an SBOM attested by `pipeline attest`."""
    root = tmp_path_factory.mktemp("misannotated")
    ref = push_unsigned(root, services, f"t{uuid.uuid4().hex[:10]}")
    repository, digest = ref.split("@")
    assert run_cli(["keys", "generate"], root, env=ENV).code == 0
    key = read_private_key(root / "cosign.key", PASSWORD)
    with RegistryClient(lambda _: None) as registry:
        repo = parse_repository(repository)
        signature = key_bundle(key, in_toto_statement(repository, digest))  # cosign's sign/v1 statement
        write_bundle(registry, repo, digest, signature, predicate_type=SLSA_PROVENANCE_V1)
        provenance = key_envelope(key, in_toto_statement(repository, digest, SLSA_PROVENANCE_V1, PROVENANCE))
        write_legacy_attestation(registry, repo, digest, provenance, CYCLONEDX_BOM, None)
    (root / "sbom.json").write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}))
    attest = ["attest", ref, "--key", "cosign.key", "--type", "sbom", "--predicate", "sbom.json", "--storage", "legacy"]
    assert run_cli(attest, root, env=ENV).code == 0
    return Misannotated(root, ref, digest)


def test_tree_and_resign_class_a_bundle_by_its_statement_not_its_unsigned_annotation(
    services: Services, misannotated: Misannotated
) -> None:
    root, ref = misannotated.root, misannotated.ref
    assert run_cli(["verify", ref, "--key", "cosign.pub"], root).code == 0  # it is a signature, and verifies as one
    shown = run_cli(["tree", ref, "--json"], root)
    assert shown.code == 0, shown.output
    data = json.loads(shown.stdout)
    assert [(s["form"], s["predicate_type"]) for s in data["signatures"]] == [("referrers", SIGN_PREDICATE)]
    assert [(a["form"], a["predicate_type"]) for a in data["attestations"]] == [("legacy", SLSA_PROVENANCE_V1)]
    assert [(s["form"], s["predicate_type"]) for s in data["sboms"]] == [("legacy", CYCLONEDX_BOM)]

    # --resign leaves the source's signatures behind: this one too.
    assert run_cli(["keys", "generate", "--output-prefix", "release"], root, env=ENV).code == 0
    destination = ref.split("@")[0].rsplit("/", 1)[0] + "/resigned"
    promote = ["promote", ref, destination, "--version", "1.0.0", "--resign", "--key", "release.key", "--json"]
    done = run_cli(promote, root, env=ENV)
    assert done.code == 0, done.output
    assert json.loads(done.stdout)["carried"]["signature"] == 0
    assert run_cli(["verify", f"{destination}:1.0.0", "--key", "release.pub"], root).code == 0
    carried = run_cli(["verify", f"{destination}:1.0.0", "--key", "cosign.pub"], root)
    assert carried.code == 1, carried.output


def test_tree_shows_who_signed_a_legacy_sbom_attestation(services: Services, misannotated: Misannotated) -> None:
    shown = run_cli(["tree", misannotated.ref, "--json"], misannotated.root)
    assert shown.code == 0, shown.output
    [sbom] = json.loads(shown.stdout)["sboms"]
    assert sbom["tag"] == attestation_tag(misannotated.digest)
    assert sbom["signer"] == {"kind": "key", "hint": None, "verified": False}  # cosign's `.att` stores no key hint
    text = run_cli(["tree", misannotated.ref], misannotated.root)
    assert text.stdout.count("signer key (no hint stored) (unverified)") == 2, text.stdout  # the .att's two layers
