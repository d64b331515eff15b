"""The registry operations a run's scheduler, image build and publishing call: a `Protocol` that
`RegistryClient` satisfies, so those have fast unit tests with a registry in memory."""

from __future__ import annotations

from typing import Any, Protocol

from pipeline.registry.client import Manifest
from pipeline.registry.reference import ImageRef, Repository


class Registry(Protocol):
    def resolve_digest(self, ref: ImageRef) -> str | None:
        """The digest `ref`'s tag points at (None: no such tag)."""
        ...

    def tag(self, repository: Repository, digest: str, tag: str) -> None: ...

    def list_tags(self, repository: Repository) -> list[str]: ...

    def manifest_by_digest(self, repository: Repository, digest: str) -> Manifest: ...

    def manifest_labels(self, repository: Repository, manifest: Manifest) -> dict[str, str]: ...

    def image_config(self, repository: Repository, manifest: Manifest) -> dict[str, Any]: ...

    def put_manifest(self, repository: Repository, reference: str, manifest: Manifest) -> str: ...
