"""A repository's tags as a semver view: each version, its digest (with an index's platforms), and the
other tags on that digest."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pipeline.registry.client import RegistryClient
from pipeline.registry.index import index_platforms
from pipeline.registry.reference import Repository
from pipeline.versioning import versions_in


@dataclass(frozen=True)
class VersionRow:
    version: str
    tag: str
    digest: str | None
    also: tuple[str, ...]  # non-version tags on the same digest (2.1, 2, latest, sha-…)
    platforms: tuple[tuple[str, str], ...] = ()  # an index's (child digest, platform text); () for one image


@dataclass(frozen=True)
class TagView:
    repository: Repository
    versions: list[VersionRow]  # highest first
    other: dict[str, str | None]  # non-version tags on no version's digest


def tag_view(registry: RegistryClient, repository: Repository, suffix: str = "") -> TagView:
    tags = registry.list_tags(repository)
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = dict(
            zip(tags, pool.map(lambda t: registry.resolve_digest(repository.with_tag(t)), tags), strict=True)
        )
    versions = versions_in(tags, suffix)
    by_digest: dict[str | None, list[str]] = {}
    for tag in tags:
        if tag not in versions:
            by_digest.setdefault(digests[tag], []).append(tag)
    ordered = sorted(versions.items(), key=lambda item: item[1], reverse=True)
    # Each version's manifest (read once per digest, through the content cache) says whether it is an index.
    distinct = sorted({d for tag, _ in ordered if (d := digests[tag]) is not None})
    with ThreadPoolExecutor(max_workers=8) as pool:
        platforms = dict(
            zip(
                distinct,
                pool.map(lambda d: tuple(index_platforms(registry, repository, d)), distinct),
                strict=True,
            )
        )
    rows = [
        VersionRow(
            str(version),
            tag,
            digests[tag],
            tuple(sorted(by_digest.get(digests[tag], []))),
            platforms.get(digests[tag] or "", ()),
        )
        for tag, version in ordered
    ]
    version_digests = {row.digest for row in rows}
    other = {t: digests[t] for t in tags if t not in versions and digests[t] not in version_digests}
    return TagView(repository, rows, other)
