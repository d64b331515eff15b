"""The SLSA v1 provenance predicate of one build: what it says, that it is valid SLSA v1 inside an
in-toto v1 statement, and that no credential or empty field gets into it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pipeline import __version__
from pipeline.attest.provenance import BaseImage, BuildFacts, provenance_predicate, provenance_statement
from tests.helpers import build_facts, fake_digests

SCHEMA = Path(__file__).resolve().parents[2] / "data" / "schemas" / "slsa-provenance-v1.schema.json"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
IMAGE_DIGEST, BASE_DIGEST, TOOLS_DIGEST, DOCKERFILE_DIGEST, INPUT_DIGEST = fake_digests("abcde")
SECRET = "s3cr3t-v4lue-0f-the-run"
REGISTRY_PASSWORD = "registry-p4ssw0rd"

FACTS = build_facts(
    "localhost:5000/shop/api",
    IMAGE_DIGEST,
    config_path="deploy/pipelines.yaml",
    variant="arm",
    version="2.1.5",
    target="runtime",
    platform="linux/arm64",
    build_args={"PYTHON": "3.12", "APP_VERSION": "2.1.5"},  # not sorted: the predicate sorts them
    source_repository="https://git.example/shop.git",
    source_ref="refs/heads/main",
    commit=COMMIT,
    dockerfile="services/api/Dockerfile",
    dockerfile_digest=DOCKERFILE_DIGEST,
    context="services/api",
    base_images=(
        BaseImage("localhost:5000/shop/base:2.1.5", BASE_DIGEST),
        BaseImage("ghcr.io/org/tools:1", TOOLS_DIGEST),
    ),
    input_digest=INPUT_DIGEST,
    engine="arm-box",
    engine_version="20.10.24",
    buildx_version="v0.11.2",
    invocation_id="run-20260301-0001",
    started_on=datetime(2026, 3, 1, 12, 0, 5, 250_000, tzinfo=UTC),
    finished_on=datetime(2026, 3, 1, 13, 1, 40, tzinfo=timezone(timedelta(hours=1))),  # 12:01:40Z
)

# The fields SLSA Provenance v1.0 and in-toto's ResourceDescriptor define, level by level: the schema allows
# extension fields (as the specs do), so a misspelt name would pass it; this catches that.
SPEC_FIELDS = {
    "predicate": {"buildDefinition", "runDetails"},
    "buildDefinition": {"buildType", "externalParameters", "internalParameters", "resolvedDependencies"},
    "runDetails": {"builder", "metadata", "byproducts"},
    "builder": {"id", "builderDependencies", "version"},
    "metadata": {"invocationId", "startedOn", "finishedOn"},
    "resourceDescriptor": {"name", "uri", "digest", "content", "downloadLocation", "mediaType", "annotations"},
}


@cache
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def statement_of(facts: BuildFacts) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(provenance_statement(facts))
    return document


def nulls_and_empties(value: Any, path: str = "$") -> list[str]:
    if value is None or value == {} or value == []:
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in nulls_and_empties(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in nulls_and_empties(item, f"{path}[{i}]")]
    return []


def test_predicate_says_what_was_built_from_what() -> None:
    predicate = provenance_predicate(FACTS)
    definition, run = predicate["buildDefinition"], predicate["runDetails"]
    assert definition["buildType"] == "https://github.com/pipeline-build/pipeline/buildtypes/image/v1"
    assert definition["externalParameters"] == {
        "config": "deploy/pipelines.yaml",
        "pipeline": "shop",
        "image": "api",
        "variant": "arm",
        "version": "2.1.5",
        "target": "runtime",
        "platform": "linux/arm64",
        "buildArgs": {"APP_VERSION": "2.1.5", "PYTHON": "3.12"},
        "source": {"repository": "https://git.example/shop.git", "ref": "refs/heads/main"},
    }
    assert list(definition["externalParameters"]["buildArgs"]) == ["APP_VERSION", "PYTHON"]
    assert definition["internalParameters"] == {
        "inputDigest": INPUT_DIGEST,
        "builder": "buildx",
        "engine": "arm-box",
        "dockerfile": "services/api/Dockerfile",
        "context": "services/api",
    }
    assert definition["resolvedDependencies"] == [
        {"uri": "git+https://git.example/shop.git@refs/heads/main", "digest": {"gitCommit": COMMIT}},
        {
            "name": "services/api/Dockerfile",
            "uri": f"git+https://git.example/shop.git@{COMMIT}#services/api/Dockerfile",
            "digest": {"sha256": "dd" * 32},
        },
        {
            "name": "localhost:5000/shop/base:2.1.5",
            "uri": "pkg:docker/shop/base@2.1.5?platform=linux/arm64&repository_url=localhost:5000",
            "digest": {"sha256": "bb" * 32},
        },
        {
            "name": "ghcr.io/org/tools:1",
            "uri": "pkg:docker/org/tools@1?platform=linux/arm64&repository_url=ghcr.io",
            "digest": {"sha256": "cc" * 32},
        },
    ]
    assert run == {
        "builder": {
            "id": "https://github.com/pipeline-build/pipeline/builders/buildx",
            "version": {"pipeline": __version__, "engine": "20.10.24", "buildx": "v0.11.2"},
        },
        "metadata": {
            "invocationId": "run-20260301-0001",
            "startedOn": "2026-03-01T12:00:05Z",
            "finishedOn": "2026-03-01T12:01:40Z",
        },
    }


def test_statement_is_about_the_pushed_digest() -> None:
    statement = statement_of(FACTS)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": "localhost:5000/shop/api", "digest": {"sha256": "aa" * 32}}]
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["predicate"] == provenance_predicate(FACTS)


def test_an_acr_build_names_its_builder_registry_and_run() -> None:
    facts = replace(
        FACTS, builder="acr", engine=None, engine_version=None, buildx_version=None,
        acr_registry="shop.azurecr.io", acr_run_id="cb12",
    )  # fmt: skip
    predicate = provenance_predicate(facts)
    assert predicate["runDetails"]["builder"] == {
        "id": "https://github.com/pipeline-build/pipeline/builders/acr",
        "version": {"pipeline": __version__},
    }
    assert predicate["buildDefinition"]["internalParameters"]["acr"] == {"registry": "shop.azurecr.io", "runId": "cb12"}
    assert "engine" not in predicate["buildDefinition"]["internalParameters"]
    validator().validate(statement_of(facts))


def test_a_dirty_tree_says_so_and_does_not_claim_the_dockerfile_is_in_the_commit() -> None:
    predicate = provenance_predicate(replace(FACTS, dirty=True))
    assert predicate["buildDefinition"]["externalParameters"]["source"]["dirty"] is True
    dockerfile = predicate["buildDefinition"]["resolvedDependencies"][1]
    assert dockerfile == {"name": "services/api/Dockerfile", "digest": {"sha256": "dd" * 32}}


def test_a_detached_head_pins_the_source_by_commit_and_an_scp_remote_becomes_a_uri() -> None:
    facts = replace(FACTS, source_ref=None, source_repository="git@git.example:shop/shop.git")
    definition = provenance_predicate(facts)["buildDefinition"]
    assert definition["externalParameters"]["source"] == {"repository": "git@git.example:shop/shop.git"}
    assert definition["resolvedDependencies"][0] == {
        "uri": f"git+ssh://git@git.example/shop/shop.git@{COMMIT}",
        "digest": {"gitCommit": COMMIT},
    }
    validator().validate(statement_of(facts))


@pytest.mark.parametrize(
    "facts",
    [
        FACTS,
        replace(FACTS, dirty=True, source_ref=None, variant=None, build_args={}),
        build_facts("localhost:5000/p/i", IMAGE_DIGEST, "classic"),  # outside git, nothing optional known
    ],
    ids=["full", "dirty-detached", "minimal"],
)
def test_statement_is_valid_slsa_v1_without_nulls_or_unknown_fields(facts: BuildFacts) -> None:
    statement = statement_of(facts)
    validator().validate(statement)
    assert nulls_and_empties(statement["predicate"]) == []
    predicate = statement["predicate"]
    definition, run = predicate["buildDefinition"], predicate["runDetails"]
    assert set(predicate) <= SPEC_FIELDS["predicate"]
    assert set(definition) <= SPEC_FIELDS["buildDefinition"]
    assert set(run) <= SPEC_FIELDS["runDetails"]
    assert set(run["builder"]) <= SPEC_FIELDS["builder"]
    assert set(run.get("metadata", {})) <= SPEC_FIELDS["metadata"]
    for dependency in definition.get("resolvedDependencies", []):
        assert set(dependency) <= SPEC_FIELDS["resourceDescriptor"]


def test_the_schema_refuses_what_slsa_v1_refuses() -> None:
    """The schema and its format checks are live: each broken statement fails for its own reason."""
    good = statement_of(FACTS)
    broken = {
        "no builder id": ("runDetails", "builder", "id"),
        "local time": ("runDetails", "metadata", "startedOn"),
        "upper-case hex": ("buildDefinition", "resolvedDependencies"),
        "no buildType": ("buildDefinition", "buildType"),
    }
    for reason, path in broken.items():
        statement = json.loads(json.dumps(good))
        parent = statement["predicate"]
        for key in path[:-1]:
            parent = parent[key]
        if reason == "local time":
            parent[path[-1]] = "2026-03-01T13:00:05+01:00"
        elif reason == "upper-case hex":
            parent[path[-1]][0]["digest"]["gitCommit"] = COMMIT.upper()
        else:
            del parent[path[-1]]
        assert not validator().is_valid(statement), reason
    assert not validator().is_valid({**good, "_type": "https://in-toto.io/Statement/v0.1"})
    assert not validator().is_valid({**good, "subject": []})


def test_no_secret_or_credential_gets_into_the_statement() -> None:
    """Build secrets have no field in BuildFacts; a credential a user wrote into a URL (the remote, a
    build arg pointing at a package index or a registry) is stripped wherever it is."""
    facts = replace(
        FACTS,
        source_repository=f"https://ci-bot:{SECRET}@git.example/shop.git",
        build_args={
            "PIP_INDEX_URL": f"https://pypi-user:{REGISTRY_PASSWORD}@pypi.example/simple",
            "MIRROR": f"--registry-mirror https://{SECRET}@mirror.example:5001/v2",
            "PYTHON": "3.12",
        },
    )
    payload = provenance_statement(facts)
    assert SECRET.encode() not in payload
    assert REGISTRY_PASSWORD.encode() not in payload
    external = json.loads(payload)["predicate"]["buildDefinition"]["externalParameters"]
    assert external["source"]["repository"] == "https://git.example/shop.git"
    assert external["buildArgs"] == {
        "MIRROR": "--registry-mirror https://mirror.example:5001/v2",
        "PIP_INDEX_URL": "https://pypi.example/simple",
        "PYTHON": "3.12",
    }
    assert not any("secret" in name for name in BuildFacts.__dataclass_fields__)


def test_same_facts_give_the_same_bytes() -> None:
    reordered = replace(FACTS, build_args=dict(reversed(list(FACTS.build_args.items()))))
    assert provenance_statement(FACTS) == provenance_statement(FACTS) == provenance_statement(reordered)
    assert b"\n" not in provenance_statement(FACTS) and b", " not in provenance_statement(FACTS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"started_on": datetime(2026, 3, 1, 12, 0)}, "no time zone"),
        ({"digest": "sha256:" + "AA" * 32}, "is not a digest"),
        ({"base_images": (BaseImage("debian:12", "bb" * 32),)}, "is not a digest"),
        ({"commit": "abc123"}, "is not a git commit"),
    ],
)
def test_facts_refuse_what_the_predicate_could_not_say(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(FACTS, **change)
