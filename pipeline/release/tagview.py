"""A repository's tags as a semver view: one row per digest that carries versions (every version on it,
its platforms if an index, the other tags on it, and the version its labels say it was built as), then
the tags on no version's digest. The tool's own bookkeeping tags, and the build tags of an index's
variants (`sha-…-linux-amd64`, part of the index `sha-…`), are left out unless asked for."""

from __future__ import annotations

import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pipeline.cache.inputs import INPUTS_TAG_PREFIX
from pipeline.plan import REVISION_LABEL, VERSION_LABEL
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import index_platforms
from pipeline.registry.reference import Repository
from pipeline.versioning import versions_in

# What is attached to a digest under cosign's tags (`sha256-<hex>.sig`, `.att`, `.sbom`) and the OCI
# referrers fallback index (`sha256-<hex>`): `pipeline tree` shows them per digest.
_ATTACHED_TAG = re.compile(r"sha(256|512)-[0-9a-f]{64,128}(\.(sig|att|sbom))?")


def is_internal(tag: str) -> bool:
    """A tag the tool keeps for itself: the input-digest cache's `inputs-…` and the attached-artefact tags.
    The build tags (`sha-<commit>`) are not: users pull and promote by them."""
    return tag.startswith(INPUTS_TAG_PREFIX) or _ATTACHED_TAG.fullmatch(tag) is not None


@dataclass(frozen=True)
class BuiltFrom:
    """What the image's own labels say about the build that made it (a reused image keeps them)."""

    version: str | None
    revision: str | None


@dataclass(frozen=True)
class VersionRow:
    tags: tuple[str, ...]  # every version tag on this digest, highest first (2.1.5-windows with a suffix)
    digest: str | None
    also: tuple[str, ...]  # non-version tags on the same digest (2.1, 2, latest, sha-…)
    platforms: tuple[tuple[str, str], ...] = ()  # an index's (child digest, platform text); () for one image
    built_from: BuiltFrom | None = None  # None: no digest (a tag that does not resolve)
    versions: tuple[str, ...] = ()  # the versions those tags name, in the same order (2.1.5)

    @property
    def tag(self) -> str:
        return self.tags[0]

    @property
    def version(self) -> str:
        return self.versions[0] if self.versions else self.tag


@dataclass(frozen=True)
class TagView:
    repository: Repository
    versions: list[VersionRow]  # one per digest, by its highest version, highest first
    other: dict[str, str | None]  # non-version tags on no version's digest
    hidden: int = 0  # internal tags left out


def tag_view(registry: RegistryClient, repository: Repository, suffix: str = "", everything: bool = False) -> TagView:
    listed = registry.list_tags(repository)
    tags = listed if everything else [t for t in listed if not is_internal(t)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = dict(
            zip(tags, pool.map(lambda t: registry.resolve_digest(repository.with_tag(t)), tags), strict=True)
        )
    if not everything:
        parts = variant_build_tags(registry, repository, digests)
        tags = [t for t in tags if t not in parts]
    versions = versions_in(tags, suffix)
    by_digest: dict[str | None, list[str]] = {}
    for tag in tags:
        if tag not in versions:
            by_digest.setdefault(digests[tag], []).append(tag)
    grouped: dict[str, list[str]] = {}
    for tag, _version in sorted(versions.items(), key=lambda item: item[1], reverse=True):
        # Tags that do not resolve share no digest: each keeps its own row.
        grouped.setdefault(digests[tag] or f"?{tag}", []).append(tag)
    # Each digest's manifest (read once, through the content cache) says whether it is an index; its
    # config's labels, which version's build made it.
    distinct = sorted({d for d in digests.values() if d is not None and d in grouped})
    with ThreadPoolExecutor(max_workers=8) as pool:
        details = dict(zip(distinct, pool.map(lambda d: _details(registry, repository, d), distinct), strict=True))
    rows = []
    for entries in grouped.values():
        digest = digests[entries[0]]
        platforms, built_from = details.get(digest or "", ((), None))
        also = tuple(sorted(by_digest.get(digest, []))) if digest is not None else ()
        named = tuple(str(versions[tag]) for tag in entries)
        rows.append(VersionRow(tuple(entries), digest, also, platforms, built_from, named))
    version_digests = {row.digest for row in rows}
    other = {t: digests[t] for t in tags if t not in versions and digests[t] not in version_digests}
    return TagView(repository, rows, other, len(listed) - len(tags))


def variant_build_tags(registry: RegistryClient, repository: Repository, digests: Mapping[str, str | None]) -> set[str]:
    """The tags `<build tag>-<variant>` (`sha-0123456789ab-linux-amd64`) that name a child of the index their
    build tag names: each variant of an image is pushed under one before the index exists. They are part of
    that index (its platforms show them), not builds of their own. Only the indexes such a tag could belong
    to are read."""
    owners: dict[str, list[str]] = {}  # a build tag -> the tags that may be its variants'
    for tag in digests:
        if tag.startswith("sha-"):
            cuts = [i for i, c in enumerate(tag) if c == "-" and i > len("sha-")]
            for build_tag in (tag[:i] for i in cuts if tag[:i] in digests):
                owners.setdefault(build_tag, []).append(tag)
    indexes = sorted({d for b in owners if (d := digests[b]) is not None})
    with ThreadPoolExecutor(max_workers=8) as pool:
        listed = pool.map(lambda d: {child for child, _ in index_platforms(registry, repository, d)}, indexes)
        children = dict(zip(indexes, listed, strict=True))
    return {
        tag
        for build_tag, candidates in owners.items()
        for tag in candidates
        if digests[tag] is not None and digests[tag] in children.get(digests[build_tag] or "", set())
    }


def _details(
    registry: RegistryClient, repository: Repository, digest: str
) -> tuple[tuple[tuple[str, str], ...], BuiltFrom]:
    platforms = tuple(index_platforms(registry, repository, digest))
    labels = registry.manifest_labels(repository, registry.manifest_by_digest(repository, digest))
    return platforms, BuiltFrom(labels.get(VERSION_LABEL), labels.get(REVISION_LABEL))
