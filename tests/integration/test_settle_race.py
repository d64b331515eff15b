"""Settling floating tags and reading tags back against the real local registry, with claims on a real bare
git remote: a version no runner released (a planted tag) attracts no floating tag, one another runner
released does; a tag overwritten between the write and the read-back is a lost race naming the winner."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
import semver

from pipeline.common.reporting import SILENT, Forward
from pipeline.plan import REVISION_LABEL
from pipeline.registry.client import OCI_MANIFEST, Manifest, RegistryClient
from pipeline.registry.reference import Repository, parse_repository
from pipeline.release.claims import ReleaseClaims, Runner
from pipeline.release.publish import Action, RaceLost, TagChange, Target, read_back, revision_of, settle_floating
from pipeline.vcs.refs import RefsRemote
from pipeline.versioning import tag_set
from tests.helpers import git
from tests.integration.conftest import RegistryPeek, Services


def push_tiny(registry: RegistryClient, repository: Repository, tag: str, commit: str) -> str:
    """A real (layerless) image built from `commit`, tagged `tag`; its digest."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {REVISION_LABEL: commit}},
        }
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    registry.upload_blob(repository, config_digest, io.BytesIO(config))
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "layers": [],
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
        }
    ).encode()
    return registry.put_manifest(
        repository, tag, Manifest(OCI_MANIFEST, "sha256:" + hashlib.sha256(body).hexdigest(), body)
    )


def remote(tmp_path: Path, name: str) -> RefsRemote:
    origin = tmp_path / "origin.git"
    if not origin.exists():
        git(tmp_path, "init", "-q", "--bare", str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(tmp_path / name))
    found = RefsRemote.of(tmp_path / name)
    assert found is not None
    return found


def claims(where: RefsRemote, repository: Repository, version: str, commit: str, pid: int) -> ReleaseClaims:
    return ReleaseClaims(where, [str(repository)], version, commit, Runner("host", pid, None), False, SILENT)


def test_a_planted_higher_version_does_not_attract_latest_but_a_released_one_does(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    repository = parse_repository(f"{services.plain_registry}/{namespace}/app")
    mine = claims(remote(tmp_path, "a"), repository, "1.0.0", "a" * 40, 1)
    mine.claim()
    notes: list[str] = []
    target = Target("app", repository, tag_set(semver.Version.parse("1.0.0"), "a" * 40, floating=("latest",)))
    with RegistryClient(lambda _: None) as registry, mine.publishing():
        ours = push_tiny(registry, repository, "1.0.0", "a" * 40)
        registry.tag(repository, ours, "latest")
        push_tiny(registry, repository, "99.0.0", "f" * 40)  # pushed by hand: no claim on the remote
        settle_floating([], [target], registry, Forward(step=lambda i, s, m: notes.append(m)), mine.released)
        assert plain_peek.digest(f"{namespace}/app", "latest") == ours
        assert notes == [
            f"{repository}:latest not moved to 99.0.0: no runner released that version (its claim on the git "
            "remote is not done); left as it is"
        ]
    # In a repository without the planted tag, a version another runner released (claim done) does attract it.
    clean = parse_repository(f"{services.plain_registry}/{namespace}/clean")
    target = Target("app", clean, target.tags)
    other = claims(remote(tmp_path, "b"), clean, "2.0.0", "b" * 40, 2)
    other.claim()
    with RegistryClient(lambda _: None) as registry:
        ours = push_tiny(registry, clean, "1.0.0", "a" * 40)
        registry.tag(clean, ours, "latest")
        with other.publishing():
            theirs = push_tiny(registry, clean, "2.0.0", "b" * 40)
        settle_floating([], [target], registry, Forward(step=lambda i, s, m: notes.append(m)), mine.released)
    assert plain_peek.digest(f"{namespace}/clean", "latest") == theirs


def test_a_tag_overwritten_before_the_read_back_is_a_lost_race_naming_the_winner(
    services: Services, namespace: str
) -> None:
    repository = parse_repository(f"{services.plain_registry}/{namespace}/app")
    with RegistryClient(lambda _: None) as registry:
        ours = push_tiny(registry, repository, "1.0.0", "a" * 40)  # this run's write ...
        theirs = push_tiny(registry, repository, "1.0.0", "b" * 40)  # ... overwritten by another runner
        written = TagChange("app", repository, "1.0.0", "release", Action.CREATE, ours, None, "new release")
        with pytest.raises(RaceLost) as lost:
            read_back([written], registry, revision_of(registry))
    assert str(lost.value).startswith(
        f"lost a race with another runner: {repository}:1.0.0 is {theirs} (built from commit bbbbbbbbbbbb), "
        f"not {ours} as this run wrote"
    )
