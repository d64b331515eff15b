"""What `pipeline tree` shows of a reference, as `cosign tree` does: its digest, the tags naming it,
what is attached to it and, for an image index, each child (platform) with its own attachments."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pipeline.errors import RegistryError
from pipeline.registry.client import RegistryClient
from pipeline.registry.index import index_platforms
from pipeline.registry.reference import ImageRef, Repository
from pipeline.signing.attached import Attached, attached

TAG_LOOKUPS = 8  # tags resolved at once: one HEAD each, so a repository of many tags is O(tags) requests


@dataclass(frozen=True)
class TreeNode:
    repository: Repository
    digest: str
    tags: tuple[str, ...]
    attached: Attached
    platform: str | None = None  # a child of an index: `linux/arm64`
    children: tuple[TreeNode, ...] = ()

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


def tags_by_digest(registry: RegistryClient, repository: Repository) -> dict[str, list[str]]:
    """Digest -> the tags naming it, without the supply chain's own `sha256-…` tags (signatures,
    attestations, referrer indexes), which would otherwise be most of a signed repository's tags."""
    tags = [t for t in registry.list_tags(repository) if not t.startswith("sha256-")]
    with ThreadPoolExecutor(max_workers=TAG_LOOKUPS) as pool:
        digests = list(pool.map(lambda tag: registry.resolve_digest(repository.with_tag(tag)), tags))
    found: dict[str, list[str]] = {}
    for tag, digest in zip(tags, digests, strict=True):
        if digest is not None:
            found.setdefault(digest, []).append(tag)
    return {digest: sorted(names) for digest, names in found.items()}


def supply_chain_tree(registry: RegistryClient, ref: ImageRef) -> TreeNode:
    """The tree of `ref` (a tag is resolved to its digest first)."""
    digest = ref.digest or registry.resolve_digest(ref)
    if digest is None:
        raise RegistryError(f"{ref}: not found in the registry")
    repository = ref.repository
    children = index_platforms(registry, repository, digest)  # also fails clearly on an unknown digest
    tags = tags_by_digest(registry, repository)
    nodes = tuple(
        TreeNode(repository, child, tuple(tags.get(child, ())), attached(registry, repository, child), platform)
        for child, platform in children
    )
    top = attached(registry, repository, digest)
    return TreeNode(repository, digest, tuple(tags.get(digest, ())), top, None, nodes)
